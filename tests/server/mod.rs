//! Shared by `tests/serve.rs` and `tests/browser.rs`: a real library (the 5-celebrity set indexed
//! by the real binary, once per test binary, then copied for each test), and two ways to reach
//! the review page's server, both behind one [`Client`]: [`Api`], its router in this process
//! driven with tower's `oneshot` (as axum's examples/testing does), for the API's behaviour; and
//! [`Server`], a real `visage serve` on an ephemeral port with a small HTTP/1.1 client over a
//! plain TCP socket (so a request can say exactly what a hostile client would: any path, Host,
//! Origin or bytes), for binding, the token, Host, Origin and the browser.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;

use crate::common::{self, lines, tempdir, visage};

/// Settings every command of these tests runs with: the CPU, and a cluster distance at which the
/// five people are five automatic clusters (see BENCHMARKS.md).
pub const ENV: &[(&str, &str)] = &[
    ("VISAGE_DEVICE", "cpu"),
    ("VISAGE_FACE_CLUSTER_DIST", "1.0"),
];

/// One test's library: its own photos, database and thumbnail cache.
pub struct Library {
    pub dir: PathBuf,
    pub photos: PathBuf,
    pub db: PathBuf,
    /// `XDG_CACHE_HOME` of the server (thumbnails under `visage/thumbs`).
    pub cache: PathBuf,
}

impl Library {
    /// Run `visage ARGS --db DB`, asserting it succeeds; its stdout lines as JSON.
    pub fn visage_json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = args.to_vec();
        all.extend(["--db", self.db.to_str().unwrap()]);
        let out = visage(&all, ENV);
        assert!(
            out.status.success(),
            "visage {all:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines(&out)
    }

    /// Run `visage ARGS --db DB` with the settings the library was made with ([`ENV`]), asserting
    /// its exit code.
    pub fn run(&self, args: &[&str], code: i32) -> std::process::Output {
        common::run_with(&self.db, args, code, ENV)
    }

    pub fn people(&self) -> Vec<Value> {
        self.visage_json(&["people", "--all", "--json"])
    }

    pub fn person<'a>(people: &'a [Value], name: &str) -> Option<&'a Value> {
        people.iter().find(|p| p["name"] == name)
    }

    pub fn faces(&self) -> Vec<Value> {
        self.visage_json(&["faces", "--json"])
    }
}

/// The indexed celebrity set, made once per test binary.
fn template() -> &'static (PathBuf, PathBuf) {
    static TEMPLATE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        common::models();
        let dir = tempdir("serve-template");
        let photos = dir.join("photos");
        common::copy_tree(&common::testdata().join("celebrity"), &photos);
        let db = dir.join("visage.db");
        let out = visage(
            &[
                "index",
                "--json",
                "--db",
                db.to_str().unwrap(),
                photos.to_str().unwrap(),
            ],
            ENV,
        );
        assert!(
            out.status.success(),
            "index: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Everything in the main file, so copying it copies the library.
        visage::store::Store::open(&db)
            .unwrap()
            .checkpoint()
            .unwrap();
        (photos, db)
    })
}

/// A fresh copy of the indexed library for one test (photos too, with the database's paths
/// pointing at the copies, so a test may delete or add photos).
pub fn library(name: &str) -> Library {
    let (photos, db) = template();
    let dir = tempdir(name);
    let mine = dir.join("photos");
    common::copy_tree(photos, &mine);
    let my_db = dir.join("visage.db");
    std::fs::copy(db, &my_db).unwrap();
    let mut store = visage::store::Store::open(&my_db).unwrap();
    let (old, new) = (photos.to_str().unwrap(), mine.to_str().unwrap());
    store
        .write(|tx| -> Result<(), visage::store::StoreError> {
            tx.execute(
                "UPDATE photos SET path = ?2 || substr(path, length(?1) + 1)",
                [old, new],
            )?;
            Ok(())
        })
        .unwrap();
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    Library {
        dir,
        photos: mine,
        db: my_db,
        cache,
    }
}

/// What the tests ask of the server, in this process ([`Api`]) or over a socket ([`Server`]).
pub trait Client {
    /// One request exactly as given (the target is not normalised). `Host` is the server's own
    /// unless `headers` has one.
    fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response;

    /// The access token.
    fn token(&self) -> &str;

    /// A GET as a script makes it: the token in a header.
    fn get(&self, target: &str) -> Response {
        self.request("GET", target, &[("X-Visage-Token", self.token())], b"")
    }

    /// A POST as a script makes it: JSON, the token in a header.
    fn post(&self, target: &str, body: &Value) -> Response {
        let headers = [
            ("X-Visage-Token", self.token()),
            ("Content-Type", "application/json"),
        ];
        self.request("POST", target, &headers, body.to_string().as_bytes())
    }

    /// POST, asserting 200; the answer.
    fn act(&self, target: &str, body: Value) -> Value {
        let r = self.post(target, &body);
        assert_eq!(r.status, 200, "POST {target} {body}: {}", r.text());
        r.json()
    }
}

/// The server's router (`visage::serve::router`) on the library, in this process: each request
/// goes through `tower::ServiceExt::oneshot`, the token check, the Host and Origin checks and the
/// handlers as over a socket, with the settings `visage serve` would have under [`ENV`].
pub struct Api {
    router: axum::Router,
    runtime: tokio::runtime::Runtime,
    token: String,
    host: String,
}

impl Api {
    pub fn new(lib: &Library) -> Api {
        let addr: SocketAddr = "127.0.0.1:8177".parse().unwrap();
        let token = "0123456789abcdef0123456789abcdef".to_string();
        let settings = visage::config::Settings {
            device: visage::config::DeviceChoice::Cpu,
            face_cluster_dist: 1.0,
            ..Default::default()
        };
        let options = visage::serve::Options {
            bind: addr,
            allow_remote: false,
            db: lib.db.clone(),
            token: Some(token.clone()),
            thumbs: lib.cache.join("visage/thumbs"),
            settings,
        };
        let app = visage::serve::App::new(&options, token.clone(), addr).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Api {
            router: visage::serve::router(Arc::new(app)),
            runtime,
            token,
            host: addr.to_string(),
        }
    }
}

impl Client for Api {
    fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        use tower::ServiceExt;
        let mut req = axum::http::Request::builder().method(method).uri(target);
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req = req.header("host", &self.host);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(axum::body::Body::from(body.to_vec())).unwrap();
        self.runtime.block_on(async {
            let answer = self.router.clone().oneshot(req).await.unwrap();
            let status = answer.status().as_u16();
            let headers = answer
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                .collect();
            let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec();
            Response {
                status,
                headers,
                body,
            }
        })
    }

    fn token(&self) -> &str {
        &self.token
    }
}

/// A running `visage serve`; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub token: String,
    /// The URL it printed first (with the token).
    pub url: String,
    stderr: Arc<Mutex<String>>,
    /// Kept open: the server must never find its stdout closed.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Server {
    /// `visage serve --bind 127.0.0.1:0 --db DB` plus `args`.
    pub fn start(lib: &Library, args: &[&str]) -> Server {
        Self::spawn(lib, "127.0.0.1:0", args)
    }

    /// Listening on every address (`--allow-remote`); reached here through 127.0.0.1.
    pub fn start_remote(lib: &Library) -> Server {
        Self::spawn(lib, "0.0.0.0:0", &["--allow-remote"])
    }

    fn spawn(lib: &Library, bind: &str, args: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_visage"));
        cmd.args(["serve", "--bind", bind, "--db"])
            .arg(&lib.db)
            .args(args)
            .env("XDG_RUNTIME_DIR", "/tmp")
            .env("XDG_CACHE_HOME", &lib.cache)
            .env("RUST_LOG", "info")
            .envs(ENV.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut url = String::new();
        out.read_line(&mut url).unwrap();
        let url = url.trim().to_string();
        let printed = url
            .strip_prefix("http://")
            .and_then(|u| u.split_once("/?token="));
        let Some((printed, token)) = printed else {
            panic!(
                "first stdout line {url:?}; stderr: {}",
                stderr.lock().unwrap()
            );
        };
        let mut addr: SocketAddr = printed.parse().unwrap();
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        Server {
            child,
            addr,
            token: token.to_string(),
            url,
            stderr,
            _stdout: out,
        }
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Stop it and check a healthy run: no ERROR or WARN line.
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(50));
        let log = self.stderr();
        for line in log.lines() {
            assert!(
                !line.contains("ERROR") && !line.contains("WARN"),
                "the server logged: {line}\n{log}"
            );
        }
    }
}

impl Client for Server {
    fn request(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        request(self.addr, method, target, headers, body)
    }

    fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// A 4xx/5xx answer's message, asserting it is `{"error": "..."}`.
    pub fn error(&self) -> String {
        let v = self.json();
        v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message: {v}"))
            .to_string()
    }
}

/// Send one request exactly as given (the target is not normalised) and read the answer.
/// `Host` is the server's address unless `headers` has one.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    parse(&exchange(addr, &raw))
}

/// Write raw bytes, read until the server closes.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    // The server may answer (413) and close before reading a large body: ignore a broken pipe.
    let _ = stream.write_all(raw);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

fn parse(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
}
