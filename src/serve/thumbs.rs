//! Face thumbnails (`/faces/fN.jpg`) and display-sized photos (`/photos/pN.jpg`): cut from the
//! original photo, oriented, decoded at the scale they need (a JPEG at a DCT scale; never the
//! 1280 px detection image),
//! made on demand on blocking threads (as many at once as there are cores), and cached on disk
//! under `$XDG_CACHE_HOME/visage/thumbs`, keyed by the face, its box and the photo's content, and
//! written atomically (temporary file, then rename). Answers carry an ETag; a photo that is gone
//! or unreadable gives a placeholder image, never an error page.
//!
//! The file read is always the path the database holds for the id asked for; no part of a
//! request becomes a path. This module must not change the database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use image::RgbImage;
use sha2::{Digest, Sha256};

use super::{ApiError, App};
use crate::photo;
use crate::store::faces::{self, Selection};
use crate::store::photos::{self, PhotoRow};

/// Side of a face thumbnail, pixels (the grid shows them at up to 160 CSS px, so this stays
/// sharp on a 1.5x screen).
pub const FACE_SIDE: u32 = 256;
/// The square cut around a face is this many times the face box's longer side.
pub const FACE_CONTEXT: f32 = 1.6;
/// Longest side of the photo view.
pub const PHOTO_SIDE: u32 = 1600;
/// JPEG quality of everything made here.
const QUALITY: u8 = 85;
/// Bumped when the way thumbnails are made changes, so old cache files are not served.
const VERSION: &str = "v1";

/// The thumbnail cache and the limits on making thumbnails.
pub struct Thumbs {
    dir: PathBuf,
    /// Photos decoded at once (each can take hundreds of MB at full size).
    permits: tokio::sync::Semaphore,
    /// One decode per photo at a time: faces of one group photo wait for the first and find
    /// their thumbnails made.
    busy: Mutex<HashMap<i64, Weak<Mutex<()>>>>,
    placeholder: Vec<u8>,
    counter: AtomicU64,
    /// Reads the photos (at the scale the thumbnails need).
    reader: photo::Reader,
}

/// `$XDG_CACHE_HOME/visage/thumbs` (or `~/.cache/visage/thumbs`).
pub fn default_dir() -> PathBuf {
    crate::models::cache_dir().join("thumbs")
}

/// One face to cut: its id and box in original oriented pixels.
#[derive(Debug, Clone, Copy)]
struct FaceBox {
    id: i64,
    x: f32,
    y: f32,
    w: f32,
    h: f32,
}

/// What a request needs cut: the photo, the faces to cut from it, and the cache key of each.
struct Job {
    photo: PhotoRow,
    /// (key, face); the first is the one asked for. Empty for the photo view.
    faces: Vec<(String, FaceBox)>,
    /// The photo view's key.
    view: String,
}

impl Thumbs {
    pub fn new(dir: PathBuf, reader: photo::Reader) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).map_err(|e| {
            anyhow::anyhow!("cannot create the thumbnail cache {}: {e}", dir.display())
        })?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Thumbs {
            dir,
            permits: tokio::sync::Semaphore::new(cores),
            busy: Mutex::new(HashMap::new()),
            placeholder: placeholder()?,
            counter: AtomicU64::new(0),
            reader,
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.jpg"))
    }

    fn cached(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(key)).ok()
    }

    /// Write atomically: a reader sees the whole file or none.
    fn store(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(key);
        let dir = path.parent().expect("keyed paths have a folder");
        std::fs::create_dir_all(dir)?;
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{key}.{}.{n}.tmp", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }

    fn photo_lock(&self, photo: i64) -> Arc<Mutex<()>> {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        busy.retain(|_, w| w.strong_count() > 0);
        if let Some(lock) = busy.get(&photo).and_then(Weak::upgrade) {
            return lock;
        }
        let lock = Arc::new(Mutex::new(()));
        busy.insert(photo, Arc::downgrade(&lock));
        lock
    }

    /// Decode the photo once and cut every face of it not cached yet (or the photo view);
    /// returns the bytes asked for.
    fn make(&self, job: &Job, want: &str) -> Result<Vec<u8>, photo::PhotoError> {
        let lock = self.photo_lock(job.photo.id);
        let _one = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bytes) = self.cached(want) {
            return Ok(bytes); // made while this request waited
        }
        // Decoded at the scale the view or the smallest face to cut needs, no finer.
        let finest = job
            .faces
            .iter()
            .map(|(_, f)| FACE_SIDE as f32 / (f.w.max(f.h) * FACE_CONTEXT))
            .reduce(f32::max);
        let scale = finest.map_or(photo::Want::Side(PHOTO_SIDE), photo::Want::Fraction);
        let scaled = self.reader.scaled(Path::new(&job.photo.path), scale)?;
        let (kx, ky) = (
            scaled.rgb.width() as f32 / scaled.original.0 as f32,
            scaled.rgb.height() as f32 / scaled.original.1 as f32,
        );
        let full = scaled.rgb;
        let mut wanted = None;
        let mut keep = |key: &str, bytes: Vec<u8>| {
            if let Err(e) = self.store(key, &bytes) {
                log::warn!(
                    "cannot write the thumbnail cache {}: {e}",
                    self.dir.display()
                );
            }
            if key == want {
                wanted = Some(bytes);
            }
        };
        if job.faces.is_empty() {
            let (w, h) = photo::fit(full.width(), full.height(), PHOTO_SIDE);
            let view = if (w, h) == full.dimensions() {
                full
            } else {
                photo::resize_for_display(&full, w, h)?
            };
            keep(&job.view, jpeg(&view)?);
        } else {
            for (key, face) in &job.faces {
                if key != want && self.path(key).exists() {
                    continue;
                }
                let face = FaceBox {
                    x: face.x * kx,
                    y: face.y * ky,
                    w: face.w * kx,
                    h: face.h * ky,
                    ..*face
                };
                keep(key, jpeg(&cut(&full, &face)?)?);
            }
        }
        Ok(wanted.unwrap_or_default())
    }
}

/// The square around a face: centred on its box, [`FACE_CONTEXT`] times its longer side, moved
/// (and if need be shrunk) to lie inside the photo, resampled to [`FACE_SIDE`].
fn cut(full: &RgbImage, f: &FaceBox) -> Result<RgbImage, photo::PhotoError> {
    let (iw, ih) = (full.width() as f32, full.height() as f32);
    let side = (f.w.max(f.h) * FACE_CONTEXT).min(iw).min(ih).max(1.0);
    let (cx, cy) = (f.x + f.w / 2.0, f.y + f.h / 2.0);
    let left = (cx - side / 2.0).clamp(0.0, iw - side);
    let top = (cy - side / 2.0).clamp(0.0, ih - side);
    let side = side.round().max(1.0) as u32;
    let (left, top) = (left.round() as u32, top.round() as u32);
    let side = side
        .min(full.width() - left)
        .min(full.height() - top)
        .max(1);
    let square = image::imageops::crop_imm(full, left, top, side, side).to_image();
    photo::resize_for_display(&square, FACE_SIDE, FACE_SIDE)
}

fn jpeg(img: &RgbImage) -> Result<Vec<u8>, photo::PhotoError> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, QUALITY).encode_image(img)?;
    Ok(out)
}

/// A neutral head-and-shoulders shape on grey, for faces whose photo cannot be read.
fn placeholder() -> anyhow::Result<Vec<u8>> {
    let s = FACE_SIDE as f32;
    let img = RgbImage::from_fn(FACE_SIDE, FACE_SIDE, |x, y| {
        let (x, y) = (x as f32 / s, y as f32 / s);
        let head = (x - 0.5).powi(2) + (y - 0.4).powi(2) < 0.17f32.powi(2);
        let body = (x - 0.5).powi(2) / 0.32f32.powi(2) + (y - 1.0).powi(2) / 0.3f32.powi(2) < 1.0;
        if head || body {
            image::Rgb([168, 168, 172])
        } else {
            image::Rgb([208, 208, 212])
        }
    });
    jpeg(&img).map_err(|e| anyhow::anyhow!("cannot make the placeholder image: {e}"))
}

/// The cache key of what is cut from a photo: what it is, and the photo's content as the
/// database knows it (its hash, or its size and time where no hash was taken).
fn key(what: &str, photo: &PhotoRow) -> String {
    let content = match &photo.hash {
        Some(h) => h.clone(),
        None => format!("{}:{}", photo.size, photo.mtime_ns),
    };
    let digest = Sha256::digest(format!("{VERSION}|{what}|{}|{content}", photo.path));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn face_key(f: &FaceBox, photo: &PhotoRow) -> String {
    key(
        &format!("face {} {} {} {} {} {FACE_SIDE}", f.id, f.x, f.y, f.w, f.h),
        photo,
    )
}

/// `fN.jpg` → N.
fn file_id(file: &str, prefix: char) -> Option<i64> {
    file.strip_suffix(".jpg")?
        .strip_prefix(prefix)?
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

/// The job for face `id`: its photo and every face of that photo.
fn face_job(app: &App, id: i64) -> Result<Job, ApiError> {
    app.db.with(|store| {
        let face = store
            .read(|c| faces::get(c, id))?
            .ok_or_else(|| ApiError::not_found(format!("no face f{id}")))?;
        let photo = store
            .read(|c| photos::get(c, face.photo))?
            .ok_or_else(|| ApiError::not_found(format!("no photo for f{id}")))?;
        let (_, all) = store.read(|c| faces::page(c, Selection::Photo(photo.id), 0, 10_000))?;
        let boxed = |f: &faces::FaceRow| FaceBox {
            id: f.id,
            x: f.x,
            y: f.y,
            w: f.w,
            h: f.h,
        };
        let mut list = vec![boxed(&face)];
        list.extend(all.iter().filter(|f| f.id != id).map(boxed));
        Ok(Job {
            faces: list.iter().map(|f| (face_key(f, &photo), *f)).collect(),
            view: String::new(),
            photo,
        })
    })
}

fn photo_job(app: &App, id: i64) -> Result<Job, ApiError> {
    app.db.with(|store| {
        let photo = store
            .read(|c| photos::get(c, id))?
            .ok_or_else(|| ApiError::not_found(format!("no photo p{id}")))?;
        Ok(Job {
            faces: Vec::new(),
            view: key(&format!("photo {PHOTO_SIDE}"), &photo),
            photo,
        })
    })
}

/// `GET /faces/fN.jpg`: a face's square thumbnail.
pub async fn face(
    State(app): State<Arc<App>>,
    UrlPath(file): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = file_id(&file, 'f').ok_or_else(|| ApiError::not_found("no such face"))?;
    let job = app.blocking(move |app| face_job(app, id)).await?;
    let want = job.faces[0].0.clone();
    serve(&app, job, want, &headers).await
}

/// `GET /photos/pN.jpg`: a photo at display size (longest side [`PHOTO_SIDE`]).
pub async fn photo(
    State(app): State<Arc<App>>,
    UrlPath(file): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = file_id(&file, 'p').ok_or_else(|| ApiError::not_found("no such photo"))?;
    let job = app.blocking(move |app| photo_job(app, id)).await?;
    let want = job.view.clone();
    serve(&app, job, want, &headers).await
}

/// Answer with the cached image, a 304 when the browser has it, or make it (a placeholder if
/// the photo cannot be read).
async fn serve(
    app: &Arc<App>,
    job: Job,
    want: String,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
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
    fn the_square_stays_inside_the_photo() {
        // A gradient, so where the square was cut from shows in its pixels.
        let img = RgbImage::from_fn(400, 300, |x, y| {
            image::Rgb([(x / 2) as u8, (y / 2) as u8, 0])
        });
        let face = |x, y, w, h| FaceBox { id: 1, x, y, w, h };
        // In the middle: centred on the box.
        let t = cut(&img, &face(150.0, 100.0, 50.0, 50.0)).unwrap();
        assert_eq!(t.dimensions(), (FACE_SIDE, FACE_SIDE));
        let centre = t.get_pixel(FACE_SIDE / 2, FACE_SIDE / 2);
        assert!(
            (centre[0] as i32 - 87).abs() <= 2 && (centre[1] as i32 - 62).abs() <= 2,
            "{centre:?}"
        );
        // At a corner, and larger than the photo: moved and shrunk to fit, never out of bounds.
        let t = cut(&img, &face(380.0, 280.0, 30.0, 30.0)).unwrap();
        assert_eq!(t.dimensions(), (FACE_SIDE, FACE_SIDE));
        let t = cut(&img, &face(-50.0, -50.0, 900.0, 900.0)).unwrap();
        assert_eq!(t.dimensions(), (FACE_SIDE, FACE_SIDE));
    }

    #[test]
    fn only_ids_name_files() {
        assert_eq!(file_id("f12.jpg", 'f'), Some(12));
        assert_eq!(file_id("p3.jpg", 'p'), Some(3));
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
            assert_eq!(file_id(bad, 'f'), None, "{bad}");
        }
    }
}
