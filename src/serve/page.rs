//! The review page itself: one static HTML file, its script and its style sheet, built into the
//! binary (no build step, nothing fetched). The page gets all its data from the JSON API and
//! builds its DOM with `textContent` only, so no name can become markup.
//!
//! Static content only: nothing here reads the database or the file system.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const HTML: &str = include_str!("page.html");
const JS: &str = include_str!("page.js");
const CSS: &str = include_str!("page.css");

/// Scripts and styles from this server only, no inline script, no frames, no form targets.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub async fn html() -> Response {
    asset("text/html; charset=utf-8", HTML)
}

pub async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

pub async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}
