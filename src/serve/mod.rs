//! `visage serve`: a local web server with a review page for seeing faces and naming people, and
//! the JSON API the page uses (and scripts can). This module holds the server's state ([`App`]),
//! its router, the error every handler answers with ([`ApiError`]: its `From` impls turn the
//! library's typed errors and axum's extractor rejections into a status and `{"error": ...}`),
//! the error of starting ([`ServeError`]), and the loop that runs it. [`auth`] admits requests,
//! [`api`] is the JSON API, [`images`] the thumbnails and photos over HTTP, [`thumbs`] their
//! cache, [`page`] the page itself.
//!
//! It decides nothing about faces: every action calls the same `people` operation as the CLI
//! command, and every view reads through `people::report` and `store`. No request path ever
//! reaches the file system; files are found by id in the database.

pub mod api;
pub mod auth;
pub mod images;
pub mod page;
pub mod thumbs;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::Settings;
use crate::gpu::GpuError;
use crate::graph::GraphBackend;
use crate::people::PeopleError;
use crate::store::{Store, StoreError};

/// What `visage serve` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to listen (port 0: any free port).
    pub bind: SocketAddr,
    /// Whether a non-loopback `bind` is allowed.
    pub allow_remote: bool,
    /// The database.
    pub db: PathBuf,
    /// The access token; a random one if `None`.
    pub token: Option<String>,
    /// Where thumbnails are cached.
    pub thumbs: PathBuf,
    /// The settings naming and re-matching use (match distance, cluster settings, device).
    pub settings: Settings,
}

/// Why the server could not start, or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0}: it is not a loopback address, so other machines could reach \
         the page; add --allow-remote to do it anyway (the token is still required)"
    )]
    NotLoopback(SocketAddr),
    #[error(
        "the token must be at least {} letters and digits (leave it out for a random one)",
        auth::MIN_TOKEN_LEN
    )]
    BadToken,
    #[error("cannot make an access token from /dev/urandom: {0}")]
    NoRandom(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Device(#[from] GpuError),
    /// The message carries the system's error (no `source`, so a printed chain says it once).
    #[error("cannot create the thumbnail cache {}: {error}", dir.display())]
    Cache { dir: PathBuf, error: std::io::Error },
    #[error("cannot make the placeholder image: {0}")]
    Placeholder(crate::photo::PhotoError),
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The address cannot be listened on; `advice` says why and what to do instead.
    #[error("cannot listen on {bind}: {advice}")]
    Bind { bind: SocketAddr, advice: String },
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// The server's state, shared by every request.
pub struct App {
    pub db: Db,
    pub settings: Settings,
    /// Where re-matching after a naming action computes distances; one run at a time.
    pub backend: Mutex<GraphBackend>,
    pub auth: auth::Auth,
    pub thumbs: thumbs::Thumbs,
    /// The heavy reads' answers, kept until the library changes.
    pub answers: Answers,
}

/// Answers of reads that scan the faces (clusters with the faces offered with them,
/// suggestions, progress), each kept while the store's generation (its count of write
/// transactions, by any process) stays the same: a page that re-reads them pays once per change
/// of the library, and any change (an action here, `visage index` elsewhere) drops them all.
#[derive(Default)]
pub struct Answers {
    kept: Mutex<(i64, HashMap<String, serde_json::Value>)>,
}

/// Answers kept at most (distinct pages and people asked for).
const ANSWERS_KEPT: usize = 256;

impl Answers {
    /// The answer to `key` for the library as it is now: kept, or computed and kept.
    pub fn get(
        &self,
        store: &Store,
        key: &str,
        compute: impl FnOnce(&Store) -> Result<serde_json::Value, ApiError>,
    ) -> Result<serde_json::Value, ApiError> {
        // Read before computing: a change while computing makes the kept answer stale at once.
        let generation = store.generation()?;
        {
            let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
            if kept.0 == generation
                && let Some(v) = kept.1.get(key)
            {
                return Ok(v.clone());
            }
        }
        let value = compute(store)?;
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.0 != generation || kept.1.len() >= ANSWERS_KEPT {
            *kept = (generation, HashMap::new());
        }
        kept.1.insert(key.to_string(), value.clone());
        Ok(value)
    }
}

impl App {
    /// The state of a server that answers at `addr` to requests carrying `token` (see [`auth`]):
    /// the database opened (and migrated) once, so a bad one fails here and not per page, the
    /// device for re-matching chosen, the thumbnail cache ready.
    pub fn new(options: &Options, token: String, addr: SocketAddr) -> Result<App, ServeError> {
        let store = Store::open(&options.db)?;
        let backend = GraphBackend::choose(options.settings.device)?;
        log::info!("re-matching on {}", backend.describe());
        let db = Db::new(options.db.clone());
        db.lock().push(store);
        Ok(App {
            db,
            settings: options.settings.clone(),
            backend: Mutex::new(backend),
            auth: auth::Auth::new(token, addr, options.allow_remote),
            thumbs: thumbs::Thumbs::new(
                options.thumbs.clone(),
                crate::photo::Reader::for_settings(&options.settings),
            )?,
            answers: Answers::default(),
        })
    }

    /// Run `f` on a blocking thread (SQLite and image work must not stall the async workers).
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&App) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let app = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&app))
            .await
            .map_err(|e| {
                log::error!("a request's work failed: {e}");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the request failed")
            })?
    }
}

/// Open connections to the database, reused across requests (each request takes one).
pub struct Db {
    path: PathBuf,
    idle: Mutex<Vec<Store>>,
}

/// Connections kept open when idle.
const IDLE_CONNECTIONS: usize = 8;

impl Db {
    pub fn new(path: PathBuf) -> Self {
        Db {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Run `f` with a connection (opened if none is idle).
    pub fn with<T>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let idle = self.lock().pop();
        let mut store = match idle {
            Some(s) => s,
            None => Store::open(&self.path)?,
        };
        let out = f(&mut store);
        let mut idle = self.lock();
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(store);
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Store>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An answer other than success: a status and a message, sent as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// A failure of the server's own (logged).
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        log::error!("{message}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({ "error": self.message }));
        (self.status, body).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // The thing asked for is not there: "no cluster c12"; anything else refused is a
            // request that cannot be carried out as asked.
            e @ StoreError::NotFound(_) => ApiError::not_found(e.to_string()),
            StoreError::Refused(m) => ApiError::bad(m),
            e if is_busy(&e) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the database is busy, try again: {e}"),
            ),
            e => {
                log::error!("{e}");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

/// A query string that does not fit what the handler reads: a 400 that says which field and why.
impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::bad(format!("bad query: {}", reason(&e, e.body_text())))
    }
}

/// A body that is not the JSON an action takes: 415 without `Content-Type: application/json`,
/// 413 over [`api::MAX_BODY`] bytes, otherwise a 400 that says where and why (axum's own 422 for
/// JSON of the wrong shape included: to the client both are a malformed request).
impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        match e {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the request as Content-Type: application/json",
            ),
            e if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is over {} bytes", api::MAX_BODY),
            ),
            e => ApiError::bad(format!("bad JSON: {}", reason(&e, e.body_text()))),
        }
    }
}

/// What an extractor's rejection says underneath axum's summary (serde's message with the
/// field's path), or the summary where there is nothing underneath.
fn reason(e: &dyn std::error::Error, summary: String) -> String {
    e.source().map_or(summary, |s| s.to_string())
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(e).into()
    }
}

impl From<PeopleError> for ApiError {
    fn from(e: PeopleError) -> Self {
        match e {
            PeopleError::Store(e) => e.into(),
            e => {
                log::error!("{e}");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

fn is_busy(e: &StoreError) -> bool {
    let sql = match e {
        StoreError::Sql(s) | StoreError::Sqlite { error: s, .. } => s,
        _ => return false,
    };
    matches!(
        sql.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Every route. Each passes the guard in [`auth`] first.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(page::html))
        .route("/page.js", get(page::js))
        .route("/page.css", get(page::css))
        .route("/api/people", get(api::people))
        .route("/api/clusters", get(api::clusters))
        .route("/api/also", get(api::also))
        .route("/api/faces", get(api::faces))
        .route("/api/photos/{id}", get(api::photo))
        .route("/api/name", post(api::name))
        .route("/api/rename", post(api::rename))
        .route("/api/merge", post(api::merge))
        .route("/api/split", post(api::split))
        .route("/api/reject", post(api::reject))
        .route("/api/ignore", post(api::ignore))
        .route("/api/hide", post(api::hide))
        .route("/api/unignore", post(api::unignore))
        .route("/api/accept", post(api::accept))
        .route("/api/confirm", post(api::confirm))
        .route("/api/mark", post(api::mark))
        .route("/api/undo", post(api::undo))
        .route("/api/ignored", get(api::ignored))
        .route("/api/suggestions", get(api::suggestions))
        .route("/api/history", get(api::history_list))
        .route("/api/progress", get(api::progress))
        .route("/faces/{file}", get(images::face))
        .route("/photos/{file}", get(images::photo))
        .fallback(|| async { ApiError::not_found("no such page") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed: reads are GET, actions are POST",
            )
        })
        .layer(DefaultBodyLimit::max(api::MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&app),
            auth::guard,
        ))
        .with_state(app)
}

/// Listen, call `ready` with the URL to open (token included), and serve until Ctrl-C or
/// SIGTERM.
pub fn run(options: Options, ready: impl FnOnce(&str)) -> Result<(), ServeError> {
    if !options.bind.ip().is_loopback() && !options.allow_remote {
        return Err(ServeError::NotLoopback(options.bind));
    }
    let token = match options.token.clone() {
        Some(t) => auth::check_token(&t)?,
        None => auth::new_token()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(options.bind))
        .map_err(|e| bind_error(options.bind, e))?;
    let addr = listener.local_addr().map_err(ServeError::Serve)?;
    let app = Arc::new(App::new(&options, token.clone(), addr)?);
    ready(&format!("http://{addr}/?token={token}"));
    log::info!(
        "serving {} on http://{addr}/ (thumbnails cached in {})",
        options.db.display(),
        options.thumbs.display()
    );
    let serving = axum::serve(listener, router(app)).with_graceful_shutdown(shutdown());
    runtime
        .block_on(std::future::IntoFuture::into_future(serving))
        .map_err(ServeError::Serve)
}

/// Why `bind` cannot be listened on, and what to do instead.
fn bind_error(bind: SocketAddr, e: std::io::Error) -> ServeError {
    let other = |port: u16| SocketAddr::new(bind.ip(), port);
    let next = other(bind.port().checked_add(1).unwrap_or(8177));
    let advice = match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "the port is taken, probably by another `visage serve` (or another program); pick \
             another port with --bind {next}, or --bind {} for any free one (the URL to open is \
             printed)",
            other(0)
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "ports below 1024 need privileges; pick another with --bind {}",
            other(8177)
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "no network interface of this machine has that address ({e}); --bind 127.0.0.1:{} \
             listens on this machine only",
            bind.port()
        ),
        _ => e.to_string(),
    };
    ServeError::Bind { bind, advice }
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    log::info!("stopping");
}
