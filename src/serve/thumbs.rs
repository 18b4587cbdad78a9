//! The thumbnail cache: face thumbnails and display-sized photos cut from the original photo,
//! oriented, decoded at the scale they need (a JPEG at a DCT scale, never the 1280 px detection
//! image), all the faces of a photo in one decode, and kept on disk under
//! `$XDG_CACHE_HOME/visage/thumbs`, keyed by the face, its box and the photo's content, written
//! atomically (temporary file, then rename). The HTTP side (`/faces/fN.jpg`, `/photos/pN.jpg`) is
//! [`super::images`].
//!
//! The file read is always the path the database holds for the id asked for; no part of a
//! request becomes a path. This module must not change the database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use image::RgbImage;
use sha2::{Digest, Sha256};

use super::ServeError;
use crate::geometry::Rect;
use crate::photo;
use crate::store::faces::{self, Selection};
use crate::store::photos::{self, PhotoRow};
use crate::store::{FaceId, Item, PhotoId, Store, StoreError};

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
    pub(super) permits: tokio::sync::Semaphore,
    /// One decode per photo at a time: faces of one group photo wait for the first and find
    /// their thumbnails made.
    busy: Mutex<HashMap<PhotoId, Weak<Mutex<()>>>>,
    /// A neutral face, sent where the photo cannot be read.
    pub(super) placeholder: Vec<u8>,
    /// Reads the photos (at the scale the thumbnails need).
    reader: photo::Reader,
}

/// `$XDG_CACHE_HOME/visage/thumbs` (or `~/.cache/visage/thumbs`).
pub fn default_dir() -> PathBuf {
    crate::models::cache_dir().join("thumbs")
}

/// What a request needs cut: the photo, the faces to cut from it, and the cache key of each.
pub(super) struct Job {
    pub(super) photo: PhotoRow,
    /// (key, box in original oriented pixels) of each face; the first is the one asked for.
    /// Empty for the photo view.
    faces: Vec<(String, Rect)>,
    /// The photo view's key.
    view: String,
}

impl Thumbs {
    pub fn new(dir: PathBuf, reader: photo::Reader) -> Result<Self, ServeError> {
        if let Err(error) = std::fs::create_dir_all(&dir) {
            return Err(ServeError::Cache { dir, error });
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Thumbs {
            dir,
            permits: tokio::sync::Semaphore::new(cores),
            busy: Mutex::new(HashMap::new()),
            placeholder: placeholder()?,
            reader,
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.jpg"))
    }

    /// The cached bytes under `key`, if they are there.
    pub(super) fn cached(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(key)).ok()
    }

    /// Write atomically: a reader sees the whole file or none.
    fn store(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(key);
        std::fs::create_dir_all(path.parent().expect("keyed paths have a folder"))?;
        crate::atomic::write(&path, bytes)
    }

    fn photo_lock(&self, photo: PhotoId) -> Arc<Mutex<()>> {
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
    pub(super) fn make(&self, job: &Job, want: &str) -> Result<Vec<u8>, photo::PhotoError> {
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
                keep(key, jpeg(&cut(&full, &face.scaled(kx, ky))?)?);
            }
        }
        Ok(wanted.unwrap_or_default())
    }
}

impl Job {
    /// What face `id`'s thumbnail needs: its photo and every face of it (cut in the same decode),
    /// the one asked for first.
    pub(super) fn face(store: &Store, id: FaceId) -> Result<Job, StoreError> {
        let face = store
            .read(|c| faces::get(c, id))?
            .ok_or(StoreError::NotFound(Item::Face(id)))?;
        let photo = store
            .read(|c| photos::get(c, face.photo))?
            .ok_or(StoreError::NotFound(Item::Photo(face.photo)))?;
        let (_, all) = store.read(|c| faces::page(c, Selection::Photo(photo.id), 0, 10_000))?;
        let boxed = |f: &faces::FaceRow| {
            let rect = Rect {
                x: f.x,
                y: f.y,
                w: f.w,
                h: f.h,
            };
            (face_key(f.id, &rect, &photo), rect)
        };
        let mut list = vec![boxed(&face)];
        list.extend(all.iter().filter(|f| f.id != id).map(boxed));
        Ok(Job {
            faces: list,
            view: String::new(),
            photo,
        })
    }

    /// What photo `id`'s view at display size needs.
    pub(super) fn photo(store: &Store, id: PhotoId) -> Result<Job, StoreError> {
        let photo = store
            .read(|c| photos::get(c, id))?
            .ok_or(StoreError::NotFound(Item::Photo(id)))?;
        Ok(Job {
            faces: Vec::new(),
            view: key(&format!("photo {PHOTO_SIDE}"), &photo),
            photo,
        })
    }

    /// The cache key of what was asked for: the first face, or the photo view.
    pub(super) fn wanted(&self) -> &str {
        self.faces.first().map_or(&self.view, |(key, _)| key)
    }
}

/// The square around a face: centred on its box, [`FACE_CONTEXT`] times its longer side, moved
/// (and if need be shrunk) to lie inside the photo, resampled to [`FACE_SIDE`].
fn cut(full: &RgbImage, f: &Rect) -> Result<RgbImage, photo::PhotoError> {
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
fn placeholder() -> Result<Vec<u8>, ServeError> {
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
    jpeg(&img).map_err(ServeError::Placeholder)
}

/// The cache key of what is cut from a photo: what it is, and the photo's content as the
/// database knows it (its hash, or its size and time where no hash was taken).
fn key(what: &str, photo: &PhotoRow) -> String {
    let content = match &photo.hash {
        Some(h) => h.clone(),
        None => format!("{}:{}", photo.size, photo.mtime_ns),
    };
    let digest = Sha256::digest(format!("{VERSION}|{what}|{}|{content}", photo.path));
    hex::encode(digest)
}

fn face_key(id: FaceId, f: &Rect, photo: &PhotoRow) -> String {
    key(
        // The row id as a bare number, as the cache's keys have always been written.
        &format!("face {} {} {} {} {} {FACE_SIDE}", id.0, f.x, f.y, f.w, f.h),
        photo,
    )
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
        let face = |x, y, w, h| Rect { x, y, w, h };
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
}
