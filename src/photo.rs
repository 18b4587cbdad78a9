//! Reading a photo file into what the pipeline needs: the EXIF-oriented colour image downscaled to
//! fit [`DETECT_SIDE`], its luminance for detection, and the scale back to the original (oriented)
//! pixels.
//!
//! [`open_full`] gives the same photo at full size (oriented) for cutting thumbnails.
//!
//! Decoding is bounded (dimensions and allocation limits) so a decompression bomb fails cleanly.
//! It must not detect anything or touch any device.

use std::io::Cursor;
use std::path::Path;

use fast_image_resize as fir;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};
use thiserror::Error;

/// Faces are looked for on an image whose longest side is at most this (PhotoPrism's largest
/// detection thumbnail).
pub const DETECT_SIDE: u32 = 1280;
/// Refuse images wider or taller than this.
pub const MAX_SIDE: u32 = 50_000;
/// Refuse images whose decoded pixels would need more memory than this.
pub const MAX_DECODE_BYTES: u64 = 1 << 30;

// The messages carry the system's or the decoder's error itself, and no variant has a `source`,
// so a printed chain (`{:#}`) says it once.
#[derive(Debug, Error)]
pub enum PhotoError {
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    #[error("not a supported image: {0}")]
    Decode(image::ImageError),
    #[error("image is empty (0 pixels)")]
    Empty,
    #[error("file is empty (0 bytes)")]
    EmptyFile,
    #[error("truncated: the JPEG data ends before its end-of-image marker")]
    TruncatedJpeg,
    #[error("resizing failed: {0}")]
    Resize(String),
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

/// A photo ready for detection and face cropping.
#[derive(Debug, Clone)]
pub struct Photo {
    /// Luminance, row-major, `width x height`, at most [`DETECT_SIDE`] on the longest side.
    pub gray: Vec<u8>,
    /// The same pixels in colour (faces are cut from these).
    pub rgb: RgbImage,
    pub width: u32,
    pub height: u32,
    /// Size of the original image after EXIF orientation.
    pub original_width: u32,
    pub original_height: u32,
    /// The EXIF orientation that was applied (1-8; 1 is upright).
    pub orientation: u8,
}

impl Photo {
    /// Decode, orient, convert to luminance and downscale a photo file.
    pub fn open(path: &Path) -> Result<Self, PhotoError> {
        Self::from_bytes(&std::fs::read(path)?)
    }

    /// Same as [`Photo::open`] for a file's bytes already read.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PhotoError> {
        let (image, orientation) = decode(bytes)?;
        Self::from_image(image, orientation)
    }

    /// Same as [`Photo::open`] for an image already in memory (orientation already applied).
    pub fn from_dynamic(image: DynamicImage) -> Result<Self, PhotoError> {
        Self::from_image(image, image::metadata::Orientation::NoTransforms)
    }

    fn from_image(
        image: DynamicImage,
        orientation: image::metadata::Orientation,
    ) -> Result<Self, PhotoError> {
        let (w, h) = (image.width(), image.height());
        if w == 0 || h == 0 {
            return Err(PhotoError::Empty);
        }
        // Downscaling first, orientation last: both are cheaper on the small image.
        let (sw, sh) = fit(w, h, DETECT_SIDE);
        let rgb = image.into_rgb8();
        let small = if (sw, sh) == (w, h) {
            rgb
        } else {
            downscale(&rgb, sw, sh)?
        };
        let mut oriented = DynamicImage::ImageRgb8(small);
        oriented.apply_orientation(orientation);
        let rgb = oriented.into_rgb8();
        let swapped = rgb.width() != sw;
        let (ow, oh) = if swapped { (h, w) } else { (w, h) };
        Ok(Photo {
            width: rgb.width(),
            height: rgb.height(),
            gray: luminance(&rgb),
            rgb,
            original_width: ow,
            original_height: oh,
            orientation: orientation.to_exif(),
        })
    }

    /// Original pixels per detection-image pixel, horizontally and vertically.
    pub fn scale(&self) -> (f32, f32) {
        (
            self.original_width as f32 / self.width as f32,
            self.original_height as f32 / self.height as f32,
        )
    }
}

/// Decode a file's bytes with the bounds above; returns the pixels as stored and the EXIF
/// orientation still to apply.
fn decode(bytes: &[u8]) -> Result<(DynamicImage, image::metadata::Orientation), PhotoError> {
    if bytes.is_empty() {
        return Err(PhotoError::EmptyFile);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    if reader.format() == Some(image::ImageFormat::Jpeg) && !ends_with_eoi(bytes) {
        // The decoder would fill the missing part with grey and say nothing.
        return Err(PhotoError::TruncatedJpeg);
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder)?;
    if image.width() == 0 || image.height() == 0 {
        return Err(PhotoError::Empty);
    }
    Ok((image, orientation))
}

/// A photo file at full size, EXIF orientation applied: the pixels face boxes are measured in
/// (thumbnails are cut from these, never from the detection image). Same bounds as
/// [`Photo::open`].
pub fn open_full(path: &Path) -> Result<RgbImage, PhotoError> {
    let (image, orientation) = decode(&std::fs::read(path)?)?;
    let mut image = DynamicImage::ImageRgb8(image.into_rgb8());
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

/// `rgb` resampled to exactly `w x h` with a sharp filter (Catmull-Rom), for images people look
/// at (detection keeps its own bilinear downscale).
pub fn resize_for_display(rgb: &RgbImage, w: u32, h: u32) -> Result<RgbImage, PhotoError> {
    resize(rgb, w, h, fir::FilterType::CatmullRom)
}

/// True if a JPEG ends with its end-of-image marker (some writers pad a few bytes after it).
fn ends_with_eoi(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
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
        let img = DynamicImage::ImageLuma8(image::GrayImage::new(2560, 1000));
        let p = Photo::from_image(img, image::metadata::Orientation::Rotate90).unwrap();
        assert_eq!((p.width, p.height), (500, 1280));
        assert_eq!((p.original_width, p.original_height), (1000, 2560));
        assert_eq!(p.scale(), (2.0, 2.0));
    }
}
