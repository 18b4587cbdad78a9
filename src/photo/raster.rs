//! PNG, WebP, TIFF, BMP and GIF (and JPEGs decoded at full size) through the `image` crate,
//! within the decode limits, with the EXIF orientation the file carries.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader};

use super::{Decoded, MAX_DECODE_BYTES, MAX_SIDE, PhotoError};

/// Decode a whole image at full size (a file that ends early is [`PhotoError::Truncated`]).
pub(super) fn decode(bytes: &[u8]) -> Result<Decoded, PhotoError> {
    decode_whole(bytes).map_err(|e| match e {
        PhotoError::Decode(ImageError::IoError(io))
            if io.kind() == std::io::ErrorKind::UnexpectedEof =>
        {
            PhotoError::Truncated(super::kind::sniff(bytes))
        }
        other => other,
    })
}

fn decode_whole(bytes: &[u8]) -> Result<Decoded, PhotoError> {
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let rgb = DynamicImage::from_decoder(decoder)?.into_rgb8();
    let full = rgb.dimensions();
    Ok(Decoded {
        rgb,
        orientation,
        full,
        finest: true,
    })
}
