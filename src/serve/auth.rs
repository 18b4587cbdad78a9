//! Who may talk to the server: every request must carry the access token (in the query on the
//! first visit, then in an HttpOnly SameSite=Strict cookie; or in a header for scripts), must
//! name this server in `Host` (no DNS rebinding), and a state-changing request must come from
//! the page itself (`Origin`). Security headers go on every answer.
//!
//! This module only admits or refuses requests; it must not look at what they ask for.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, App, ServeError};

/// The header scripts can send the token in (or `Authorization: Bearer TOKEN`).
pub const TOKEN_HEADER: &str = "x-visage-token";

/// Shortest token accepted from `--token` / `VISAGE_TOKEN`.
pub const MIN_TOKEN_LEN: usize = 16;

/// The token and the names this server answers to.
pub struct Auth {
    token: String,
    /// The cookie's name; with the port in it, two servers on one machine keep their own.
    cookie: String,
    /// `Host` values accepted; empty when remote access is allowed (any name then).
    hosts: Vec<String>,
}

/// How a request proved it has the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proof {
    Query,
    Cookie,
    Header,
}

impl Auth {
    pub fn new(token: String, addr: SocketAddr, allow_remote: bool) -> Self {
        let port = addr.port();
        let hosts = if allow_remote && !addr.ip().is_loopback() {
            Vec::new()
        } else {
            vec![
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
                addr.to_string(),
            ]
        };
        Auth {
            token,
            cookie: format!("visage_token_{port}"),
            hosts,
        }
    }

    fn host_ok(&self, host: &str) -> bool {
        self.hosts.is_empty() || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    fn proof(&self, req: &Request) -> Option<Proof> {
        let headers = req.headers();
        let header_token = headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
            });
        if header_token.is_some_and(|t| self.matches(t)) {
            return Some(Proof::Header);
        }
        if cookies(headers).any(|(k, v)| k == self.cookie && self.matches(v)) {
            return Some(Proof::Cookie);
        }
        let query = req.uri().query().unwrap_or("");
        if query
            .split('&')
            .filter_map(|kv| kv.strip_prefix("token="))
            .any(|t| self.matches(t))
        {
            return Some(Proof::Query);
        }
        None
    }

    /// Compares in time independent of where the strings differ.
    fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.token.as_bytes(), candidate.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    fn set_cookie(&self) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            self.cookie, self.token
        ))
        .expect("the token is hex")
    }
}

/// The `name=value` pairs of every Cookie header.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
}

/// A fresh random token: 32 hex digits from the kernel's generator.
pub fn new_token() -> Result<String, ServeError> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(ServeError::NoRandom)?;
    Ok(hex::encode(bytes))
}

/// A token given by the user: long enough, and only characters that need no escaping.
pub fn check_token(token: &str) -> Result<String, ServeError> {
    if token.len() < MIN_TOKEN_LEN || !token.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ServeError::BadToken);
    }
    Ok(token.to_string())
}

/// The middleware in front of every route.
pub async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let mut response = match admit(&app, &req) {
        Err(e) => e.into_response(),
        Ok(Proof::Query) if req.method() == Method::GET && req.uri().path() == "/" => {
            // First visit: trade the token in the URL for the cookie, and take it out of the
            // address bar (and of the history) at once.
            let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, app.auth.set_cookie());
            r
        }
        Ok(proof) => {
            let mut r = next.run(req).await;
            if proof == Proof::Query {
                r.headers_mut()
                    .insert(header::SET_COOKIE, app.auth.set_cookie());
            }
            r
        }
    };
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The first URL carries the token: never send it on as a Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn admit(app: &App, req: &Request) -> Result<Proof, ApiError> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !app.auth.host_ok(host) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("this server does not answer to Host {host:?}"),
        ));
    }
    let proof = app.auth.proof(req).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong access token: open the URL `visage serve` printed",
        )
    })?;
    let reads = [Method::GET, Method::HEAD];
    if !reads.contains(req.method()) {
        check_origin(req.headers(), host, proof)?;
    }
    Ok(proof)
}

/// A state-changing request must come from this server's own page: its `Origin` is this host,
/// and the browser does not call it cross-site. Scripts that send the token in a header may
/// leave `Origin` out (a browser always sends it on a POST).
fn check_origin(headers: &HeaderMap, host: &str, proof: Proof) -> Result<(), ApiError> {
    let forbidden = |m: String| ApiError::new(StatusCode::FORBIDDEN, m);
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site != "same-origin"
        && site != "none"
    {
        return Err(forbidden(format!(
            "a {site} request cannot change anything"
        )));
    }
    match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        Some(Ok(origin)) if origin.eq_ignore_ascii_case(&format!("http://{host}")) => Ok(()),
        Some(origin) => Err(forbidden(format!(
            "a request from origin {:?} cannot change anything here",
            origin.unwrap_or("?")
        ))),
        None if proof == Proof::Header => Ok(()),
        None => Err(forbidden(
            "a state-changing request needs an Origin header (or the token in a header)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        Auth::new("a".repeat(32), "127.0.0.1:8177".parse().unwrap(), false)
    }

    #[test]
    fn tokens_hosts_and_origins() {
        let a = auth();
        assert!(a.matches(&"a".repeat(32)));
        assert!(!a.matches(&"a".repeat(31)) && !a.matches(&"b".repeat(32)));
        assert!(
            a.host_ok("127.0.0.1:8177") && a.host_ok("LOCALHOST:8177") && a.host_ok("[::1]:8177")
        );
        assert!(!a.host_ok("127.0.0.1:8178") && !a.host_ok("evil.example:8177") && !a.host_ok(""));
        let remote = Auth::new("a".repeat(32), "0.0.0.0:8177".parse().unwrap(), true);
        assert!(remote.host_ok("photos.lan:8177"));

        let mut h = HeaderMap::new();
        assert!(check_origin(&h, "127.0.0.1:8177", Proof::Header).is_ok());
        assert!(check_origin(&h, "127.0.0.1:8177", Proof::Cookie).is_err());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8177"),
        );
        assert!(check_origin(&h, "127.0.0.1:8177", Proof::Cookie).is_ok());
        assert!(check_origin(&h, "localhost:8177", Proof::Cookie).is_err());
        h.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
        assert!(check_origin(&h, "127.0.0.1:8177", Proof::Cookie).is_err());
    }

    #[test]
    fn new_tokens_are_random_hex() {
        let (t, u) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(t.len(), 32);
        assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(t, u);
        assert!(check_token("short").is_err());
        assert!(check_token("has spaces in it, sixteen+").is_err());
        assert!(check_token("abcdefABCDEF0123").is_ok());
    }
}
