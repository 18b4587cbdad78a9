//! `GET /faces/fN.jpg` (a face's square thumbnail) and `GET /photos/pN.jpg` (a photo at display
//! size): the id is read from the file name, never used as a path; the image comes from the
//! thumbnail cache ([`super::thumbs`]) or is made on a blocking thread (as many at once as there
//! are cores). Answers carry an ETag (a 304 when the browser has the image); a photo that is gone
//! or unreadable gives a placeholder image, never an error page.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::thumbs::Job;
use super::{ApiError, App};
use crate::store::{FaceId, PhotoId};

/// `f12.jpg` → face f12, `p3.jpg` → photo p3 (the id's kind as `T` asks).
fn file_id<T: std::str::FromStr>(file: &str) -> Option<T> {
    file.strip_suffix(".jpg")?.parse().ok()
}

/// `GET /faces/fN.jpg`: a face's square thumbnail.
pub async fn face(
    State(app): State<Arc<App>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id: FaceId = file_id(&file).ok_or_else(|| ApiError::not_found("no such face"))?;
    let job = app
        .blocking(move |app| app.db.with(|store| Ok(Job::face(store, id)?)))
        .await?;
    send(&app, job, &headers).await
}

/// `GET /photos/pN.jpg`: a photo at display size (longest side [`super::thumbs::PHOTO_SIDE`]).
pub async fn photo(
    State(app): State<Arc<App>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id: PhotoId = file_id(&file).ok_or_else(|| ApiError::not_found("no such photo"))?;
    let job = app
        .blocking(move |app| app.db.with(|store| Ok(Job::photo(store, id)?)))
        .await?;
    send(&app, job, &headers).await
}

/// Answer with the cached image, a 304 when the browser has it, or make it (a placeholder if
/// the photo cannot be read).
async fn send(app: &Arc<App>, job: Job, headers: &HeaderMap) -> Result<Response, ApiError> {
    let want = job.wanted().to_string();
    let etag = format!("\"{}\"", &want[..32]);
    let revalidated = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if revalidated && !job.photo.gone {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let made = if job.photo.gone {
        None
    } else {
        let cached = {
            let (app, want) = (Arc::clone(app), want.clone());
            tokio::task::spawn_blocking(move || app.thumbs.cached(&want))
                .await
                .ok()
                .flatten()
        };
        match cached {
            Some(bytes) => Some(bytes),
            None => {
                let _permit = app.thumbs.permits.acquire().await.ok();
                let (app, want) = (Arc::clone(app), want.clone());
                let path = job.photo.path.clone();
                match tokio::task::spawn_blocking(move || app.thumbs.make(&job, &want)).await {
                    Ok(Ok(bytes)) => Some(bytes),
                    Ok(Err(e)) => {
                        log::info!("{path}: {e} (a placeholder is shown)");
                        None
                    }
                    Err(e) => {
                        log::error!("{path}: making a thumbnail failed: {e}");
                        None
                    }
                }
            }
        }
    };
    let jpeg = HeaderValue::from_static("image/jpeg");
    Ok(match made {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, jpeg),
                (header::ETAG, HeaderValue::from_str(&etag).expect("hex")),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, no-cache"),
                ),
            ],
            bytes,
        )
            .into_response(),
        None => (
            [
                (header::CONTENT_TYPE, jpeg),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    header::HeaderName::from_static("x-visage-placeholder"),
                    HeaderValue::from_static("1"),
                ),
            ],
            app.thumbs.placeholder.clone(),
        )
            .into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ids_name_files() {
        assert_eq!(file_id("f12.jpg"), Some(FaceId(12)));
        assert_eq!(file_id("p3.jpg"), Some(PhotoId(3)));
        for bad in [
            "f12",
            "p12.jpg",
            "f0.jpg",
            "f-1.jpg",
            "f1.jpg.jpg",
            "../f1.jpg",
            "f1.png",
            "",
        ] {
            assert_eq!(file_id::<FaceId>(bad), None, "{bad}");
        }
    }
}
