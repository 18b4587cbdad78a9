//! A camera's RAW photo (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2, PEF) through `rawler` (pure
//! Rust, dnglab's engine; LGPL-2.1).
//!
//! Faces are taken from the embedded preview when its long side is at least [`PREVIEW_SIDE`]
//! and it shows the whole frame (as digiKam does, and Immich with "prefer embedded preview");
//! otherwise the RAW is developed in full (demosaic, white balance, colour matrix, sRGB), one at
//! a time and within a memory bound. Either way the photo's size is the RAW's own (its default
//! crop), oriented by the RAW's orientation as other programs show the file: boxes found on a
//! smaller preview are scaled to it. Previews are stored unrotated in these formats, so the
//! RAW's orientation is applied to them, never the preview's own.
//!
//! rawler's failures (and its panics on data it does not expect) become a [`RawError`].

use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};
use rawler::RawImage;
use rawler::decoders::{Decoder, RawDecodeParams};
use rawler::imgop::develop::RawDevelop;
use rawler::rawsource::RawSource;

use super::{Decoded, MAX_DECODE_BYTES, MAX_SIDE, PhotoError, RawFormat};

/// A preview whose long side is at least this is used instead of developing the RAW.
pub const PREVIEW_SIDE: u32 = 1280;
/// A preview's aspect ratio may differ from the RAW's by this much (rounding of its size).
const ASPECT_TOLERANCE: f32 = 0.02;
/// Developing takes about this many bytes a pixel at its peak (the raw samples, a float copy,
/// the demosaiced float image and the 16-bit result).
const DEVELOP_BYTES_PER_PIXEL: u64 = 48;
/// Developing is refused past this peak.
const MAX_DEVELOP_BYTES: u64 = 4 * MAX_DECODE_BYTES;

#[derive(Debug, Clone, thiserror::Error)]
pub enum RawError {
    /// rawler does not read this file (or this camera).
    #[error("{format}: rawler cannot read it: {message}")]
    Unreadable { format: RawFormat, message: String },
    /// No preview large enough, and the RAW cannot be developed.
    #[error(
        "{format}: no usable embedded preview ({preview}), and developing the RAW failed: {message}"
    )]
    NoPreview {
        format: RawFormat,
        preview: String,
        message: String,
    },
    #[error("{format}: {width} x {height} is too large to develop within the memory bound")]
    TooLarge {
        format: RawFormat,
        width: u64,
        height: u64,
    },
}

/// A RAW's faces image: its preview, or the RAW developed (holding `developing`: one RAW is
/// developed at a time, each taking up to a few GiB).
pub(super) fn decode(
    bytes: &[u8],
    format: RawFormat,
    developing: &Mutex<()>,
) -> Result<Decoded, PhotoError> {
    let source = RawSource::new_from_slice(bytes);
    let unreadable = |message: String| RawError::Unreadable { format, message };
    let decoder = guarded(|| rawler::get_decoder(&source))
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(unreadable)?;
    let params = RawDecodeParams::default();
    // The RAW's size and orientation, without decoding its pixels.
    let raw = guarded(|| decoder.raw_image(&source, &params, true))
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(unreadable)?;
    let full = crop_size(&raw);
    let orientation = orientation(&raw);
    let preview = match guarded(|| decoder.preview_image(&source, &params)) {
        Ok(Ok(Some(p))) => usable(p, full),
        Ok(Ok(None)) => Err("none".to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(panic),
    };
    match preview {
        Ok(rgb) => Ok(Decoded {
            rgb,
            orientation,
            full,
        }),
        Err(why) => {
            let _one = developing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            develop(decoder.as_ref(), &source, format, full, orientation, why)
        }
    }
}

/// A preview as RGB if it is large enough and shows the whole frame, else why not.
fn usable(preview: DynamicImage, full: (u32, u32)) -> Result<RgbImage, String> {
    let (w, h) = (preview.width(), preview.height());
    if w.max(h) < PREVIEW_SIDE {
        return Err(format!("{w} x {h}, under {PREVIEW_SIDE} px"));
    }
    let aspect = |(w, h): (u32, u32)| w as f32 / h.max(1) as f32;
    if (aspect((w, h)) / aspect(full) - 1.0).abs() > ASPECT_TOLERANCE {
        return Err(format!(
            "{w} x {h} does not show the RAW's {} x {} frame",
            full.0, full.1
        ));
    }
    Ok(preview.into_rgb8())
}

/// The RAW developed in full.
fn develop(
    decoder: &dyn Decoder,
    source: &RawSource,
    format: RawFormat,
    full: (u32, u32),
    orientation: Orientation,
    preview: String,
) -> Result<Decoded, PhotoError> {
    let (w, h) = (full.0 as u64, full.1 as u64);
    if w > MAX_SIDE as u64
        || h > MAX_SIDE as u64
        || w * h * DEVELOP_BYTES_PER_PIXEL > MAX_DEVELOP_BYTES
    {
        return Err(RawError::TooLarge {
            format,
            width: w,
            height: h,
        }
        .into());
    }
    let failed = |message: String| RawError::NoPreview {
        format,
        preview: preview.clone(),
        message,
    };
    let params = RawDecodeParams::default();
    let image = guarded(|| -> Result<Option<DynamicImage>, String> {
        let raw = decoder
            .raw_image(source, &params, false)
            .map_err(|e| e.to_string())?;
        let developed = RawDevelop::default()
            .develop_intermediate(&raw)
            .map_err(|e| e.to_string())?;
        Ok(developed.to_dynamic_image())
    })
    .and_then(|r| r)
    .map_err(failed)?
    .ok_or_else(|| failed("rawler gave no image".into()))?;
    let rgb = image.into_rgb8();
    Ok(Decoded {
        full: rgb.dimensions(),
        rgb,
        orientation,
    })
}

/// The RAW's size as shown before orientation: its default crop, else its active area.
fn crop_size(raw: &RawImage) -> (u32, u32) {
    let r = raw.crop_area.as_ref().or(raw.active_area.as_ref());
    let (w, h) = r.map_or((raw.width, raw.height), |r| (r.d.w, r.d.h));
    (w as u32, h as u32)
}

fn orientation(raw: &RawImage) -> Orientation {
    Orientation::from_exif(raw.orientation.to_u16().min(255) as u8)
        .unwrap_or(Orientation::NoTransforms)
}

/// Run rawler, turning a panic (rawler has `unimplemented!` and `todo!` in some paths) into an
/// error message.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "rawler failed".to_string())
    })
}
