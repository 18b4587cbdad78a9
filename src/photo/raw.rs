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
//! A TIFF-based RAW's JPEG previews (DNG's preview IFDs, the JPEGInterchangeFormat of NEF, ARW,
//! PEF, CR2 and others) are found by walking its IFDs here and decoded by [`super::jpeg`] at the
//! DCT scale detection needs; rawler's own preview reader (a full-size decode through 16-bit
//! samples) serves the rest. A DNG's frame (size and orientation) is read from its tags here too
//! ([`dng_frame`]): rawler 0.8 decodes a DNG's whole mosaic to give it, which for a phone's
//! lossless-JPEG DNG costs several times the preview's decode.
//!
//! rawler's failures (and its panics on data it does not expect) become a [`RawError`].

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};
use rawler::RawImage;
use rawler::decoders::{Decoder, RawDecodeParams};
use rawler::imgop::develop::RawDevelop;
use rawler::rawsource::RawSource;

use super::tiff::Tiff;
use super::{Decoded, MAX_DECODE_BYTES, MAX_SIDE, PhotoError, RawFormat, Want, jpeg};

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
    libjpeg: &jpeg::Libjpeg,
    bytes: &[u8],
    format: RawFormat,
    want: Want,
    developing: &Mutex<()>,
) -> Result<Decoded, PhotoError> {
    // A DNG's frame from its tags: one with a usable preview needs rawler for nothing.
    let frame = match format {
        RawFormat::Dng => dng_frame(bytes),
        _ => None,
    };
    if let Some((full, orientation)) = frame
        && let Some((rgb, finest)) = embedded_jpeg(libjpeg, bytes, full, want)
    {
        return Ok(Decoded {
            rgb,
            orientation,
            full,
            finest,
        });
    }
    let source = RawSource::new_from_slice(bytes);
    let unreadable = |message: String| RawError::Unreadable { format, message };
    let decoder = guarded(|| rawler::get_decoder(&source))
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(unreadable)?;
    let params = RawDecodeParams::default();
    let (full, orientation) = match frame {
        Some(frame) => frame,
        None => {
            // The RAW's size and orientation, without decoding its pixels (a DNG's are decoded).
            let raw = guarded(|| decoder.raw_image(&source, &params, true))
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map_err(unreadable)?;
            let (full, orientation) = (crop_size(&raw), orientation(&raw));
            if let Some((rgb, finest)) = embedded_jpeg(libjpeg, bytes, full, want) {
                return Ok(Decoded {
                    rgb,
                    orientation,
                    full,
                    finest,
                });
            }
            (full, orientation)
        }
    };
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
            finest: true,
        }),
        Err(why) => {
            let _one = developing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            develop(decoder.as_ref(), &source, format, full, orientation, why)
        }
    }
}

/// The largest JPEG preview a TIFF-based RAW embeds that is usable (see [`usable`]), decoded at
/// the DCT scale `want` needs, and whether that is its full size (`None`: none, or not a
/// TIFF-based RAW).
fn embedded_jpeg(
    libjpeg: &jpeg::Libjpeg,
    bytes: &[u8],
    full: (u32, u32),
    want: Want,
) -> Option<(RgbImage, bool)> {
    let mut found = tiff_jpegs(bytes);
    found.sort_by_key(|r| std::cmp::Reverse(r.len()));
    // A preview's decode is asked for against its own size: the whole preview for a finer part.
    let want = match want {
        Want::Side(side) => Want::Side(side),
        Want::Fraction(_) => Want::Fraction(1.0),
    };
    found.into_iter().find_map(|range| {
        let decoded = jpeg::decode(libjpeg, &bytes[range], want).ok()?;
        // Its size as stored, checked as rawler's preview is: the RAW's orientation applies
        // to both, never the preview's own EXIF.
        let ((w, h), (fw, fh)) = (decoded.full, full);
        let ok = w.max(h) >= PREVIEW_SIDE
            && ((w as f32 / h.max(1) as f32) / (fw as f32 / fh.max(1) as f32) - 1.0).abs()
                <= ASPECT_TOLERANCE;
        ok.then_some((decoded.rgb, decoded.finest))
    })
}

/// A TIFF's IFDs: IFD0's chain and their SubIFDs, each as its offset and its tags' values (SHORT,
/// LONG and IFD; RATIONAL as rawler reads it, numerator over denominator in f32, truncated).
/// Bounded: at most 64 IFDs, 1024 tags an IFD and 1024 values a tag, each checked against the
/// file's size.
fn ifds(t: &Tiff) -> Vec<(usize, Tags)> {
    let u16_at = |at: usize| t.u16_at(at).map(u32::from);
    let u32_at = |at: usize| t.u32_at(at);
    // A tag's values, inline or at their offset.
    let values = |entry: usize| -> Vec<u32> {
        let (Some(kind), Some(count)) = (u16_at(entry + 2), u32_at(entry + 4)) else {
            return Vec::new();
        };
        let size = match kind {
            3 => 2,
            4 | 13 => 4,
            5 => 8,
            _ => return Vec::new(),
        };
        let count = count.min(1024) as usize;
        let at = if count * size <= 4 {
            entry + 8
        } else {
            match u32_at(entry + 8) {
                Some(o) => o as usize,
                None => return Vec::new(),
            }
        };
        (0..count)
            .filter_map(|i| match size {
                2 => u16_at(at + 2 * i),
                4 => u32_at(at + 4 * i),
                _ => {
                    let (n, d) = (u32_at(at + 8 * i)?, u32_at(at + 8 * i + 4)?);
                    Some((n as f32 / d as f32) as u32)
                }
            })
            .collect()
    };
    let mut out = Vec::new();
    let mut todo: Vec<u32> = t.first_ifd().map(|o| o as u32).into_iter().collect();
    let mut seen = HashSet::new();
    while let Some(ifd) = todo.pop() {
        let ifd = ifd as usize;
        if ifd == 0 || seen.len() >= 64 || !seen.insert(ifd) {
            continue;
        }
        let Some(n) = u16_at(ifd) else { continue };
        let mut tags = Tags::new();
        for i in 0..n.min(1024) as usize {
            let entry = ifd + 2 + 12 * i;
            let Some(tag) = t.u16_at(entry) else { break };
            tags.insert(tag, values(entry));
        }
        todo.extend(tags.get(&SUB_IFDS).into_iter().flatten());
        if let Some(next) = u32_at(ifd + 2 + 12 * n as usize) {
            todo.push(next);
        }
        out.push((ifd, tags));
    }
    out
}

/// An IFD's tags and their values.
type Tags = HashMap<u16, Vec<u32>>;

const SUB_IFDS: u16 = 330;

/// A tag's first value (rawler's `force_usize(0)`).
fn first(tags: &Tags, tag: u16) -> Option<u32> {
    tags.get(&tag).and_then(|v| v.first().copied())
}

/// The byte ranges of the JPEGs a TIFF file's IFDs point at: IFD0's chain and their SubIFDs,
/// each a JPEGInterchangeFormat and its length, or a JPEG-compressed image in one strip.
fn tiff_jpegs(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let Some(t) = Tiff::new(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (_, tags) in ifds(&t) {
        let one = |tag: u16| match tags.get(&tag).map(Vec::as_slice) {
            Some(&[value]) => Some(value),
            _ => None,
        };
        let mut jpeg = |offset: Option<u32>, length: Option<u32>| {
            if let (Some(o), Some(l)) = (offset, length) {
                let range = o as usize..(o as usize).saturating_add(l as usize);
                if range.end <= bytes.len()
                    && bytes.get(range.start..range.start + 2) == Some(&[0xFF, 0xD8])
                {
                    out.push(range);
                }
            }
        };
        jpeg(one(513), one(514));
        if matches!(one(259), Some(6 | 7)) {
            jpeg(one(273), one(279));
        }
    }
    out
}

/// A DNG's frame as rawler's `raw_image` gives it, read from the tags alone: the size of its
/// default crop (DefaultCropSize, where DefaultCropOrigin is there too), else of its ActiveArea,
/// else of its raw image; and IFD0's Orientation. The raw image is the one main image
/// (NewSubFileType 0 or none) among the IFDs rawler's `DngDecoder` takes it from (not reduced
/// resolution, a compression rawler reads): a phone's DNG may also hold full-size masks or depth
/// maps, of other NewSubFileTypes, after it. `None` wherever the tags leave a doubt (no main image
/// or more than one, a tag rawler needs missing, a crop or area past the image): rawler is asked
/// then.
pub fn dng_frame(bytes: &[u8]) -> Option<((u32, u32), Orientation)> {
    const NEW_SUBFILE_TYPE: u16 = 254;
    const IMAGE_WIDTH: u16 = 256;
    const IMAGE_LENGTH: u16 = 257;
    const BITS_PER_SAMPLE: u16 = 258;
    const COMPRESSION: u16 = 259;
    const PHOTOMETRIC: u16 = 262;
    const ORIENTATION: u16 = 274;
    const SAMPLES_PER_PIXEL: u16 = 277;
    const DEFAULT_CROP_ORIGIN: u16 = 50719;
    const DEFAULT_CROP_SIZE: u16 = 50720;
    const ACTIVE_AREA: u16 = 50829;
    let t = Tiff::new(bytes)?;
    let ifds = ifds(&t);
    let raws: Vec<&Tags> = ifds
        .iter()
        .map(|(_, tags)| tags)
        .filter(|tags| {
            let main = first(tags, NEW_SUBFILE_TYPE).is_none_or(|v| v == 0);
            let compression = first(tags, COMPRESSION);
            main && matches!(compression, Some(1 | 7 | 8 | 0x884c | 52546))
        })
        .collect();
    let [raw] = raws[..] else { return None };
    let (w, h) = (first(raw, IMAGE_WIDTH)?, first(raw, IMAGE_LENGTH)?);
    first(raw, SAMPLES_PER_PIXEL)?;
    first(raw, BITS_PER_SAMPLE)?;
    if !matches!(first(raw, PHOTOMETRIC)?, 1 | 32803 | 34892) {
        return None;
    }
    // ActiveArea is top, left, bottom, right.
    let active = match raw.get(&ACTIVE_AREA).map(Vec::as_slice) {
        None => None,
        Some(&[top, left, bottom, right, ..])
            if left <= right && top <= bottom && right <= w && bottom <= h =>
        {
            Some((left, top, right - left, bottom - top))
        }
        Some(_) => return None,
    };
    let crop = match (raw.get(&DEFAULT_CROP_ORIGIN), raw.get(&DEFAULT_CROP_SIZE)) {
        (Some(origin), Some(size)) => {
            let (&[x, y, ..], &[cw, ch, ..]) = (origin.as_slice(), size.as_slice()) else {
                return None;
            };
            // The origin is within the active area.
            let (dx, dy) = active.map_or((0, 0), |(left, top, _, _)| (left, top));
            let (right, bottom) = (
                x.checked_add(dx)?.checked_add(cw)?,
                y.checked_add(dy)?.checked_add(ch)?,
            );
            if right > w || bottom > h {
                return None;
            }
            Some((cw, ch))
        }
        _ => None,
    };
    let full = crop
        .or(active.map(|(_, _, aw, ah)| (aw, ah)))
        .unwrap_or((w, h));
    // IFD0's Orientation, as rawler reads it (a value it does not know is upright).
    let ifd0 = t.first_ifd()?;
    let value = ifds
        .iter()
        .find(|(at, _)| *at == ifd0)
        .and_then(|(_, tags)| first(tags, ORIENTATION))
        .map_or(0, |v| v as u16);
    let orientation = match value {
        1..=8 => Orientation::from_exif(value as u8),
        _ => None,
    }
    .unwrap_or(Orientation::NoTransforms);
    Some((full, orientation))
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
        finest: true,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian TIFF: IFD0 (at 8) points through SubIFDs at an IFD (at 26) holding a
    /// JPEGInterchangeFormat at 60, 4 bytes long; IFD0's next IFD is itself (a loop).
    fn tiff(jpeg_at: u32) -> Vec<u8> {
        let mut b = b"II*\0".to_vec();
        b.extend(8u32.to_le_bytes());
        let entry = |b: &mut Vec<u8>, tag: u16, value: u32| {
            b.extend(tag.to_le_bytes());
            b.extend(4u16.to_le_bytes()); // LONG
            b.extend(1u32.to_le_bytes());
            b.extend(value.to_le_bytes());
        };
        b.extend(1u16.to_le_bytes());
        entry(&mut b, 330, 26);
        b.extend(8u32.to_le_bytes());
        b.extend(2u16.to_le_bytes());
        entry(&mut b, 513, jpeg_at);
        entry(&mut b, 514, 4);
        b.extend(0u32.to_le_bytes());
        b.resize(60, 0);
        b.extend([0xFF, 0xD8, 0xFF, 0xD9]);
        b
    }

    /// A tag and its LONG values.
    type Entry = (u16, Vec<u32>);

    fn e(tag: u16, values: &[u32]) -> Entry {
        (tag, values.to_vec())
    }

    /// A little-endian TIFF: IFD0 with `ifd0`'s entries and SubIFDs pointing at one IFD for each
    /// of `subs`; a tag's values stored after the IFDs where there is more than one.
    fn dng(ifd0: &[Entry], subs: &[&[Entry]]) -> Vec<u8> {
        let size = |n: usize| 2 + 12 * n + 4;
        let mut starts = vec![8, 8 + size(ifd0.len() + 1)];
        for s in subs {
            starts.push(starts.last().unwrap() + size(s.len()));
        }
        let data_at = starts[subs.len() + 1];
        let write = |b: &mut Vec<u8>, data: &mut Vec<u8>, entries: &[Entry]| {
            b.extend((entries.len() as u16).to_le_bytes());
            for (tag, values) in entries {
                b.extend(tag.to_le_bytes());
                b.extend(4u16.to_le_bytes()); // LONG
                b.extend((values.len() as u32).to_le_bytes());
                if let [one] = values[..] {
                    b.extend(one.to_le_bytes());
                } else {
                    b.extend(((data_at + data.len()) as u32).to_le_bytes());
                    data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
                }
            }
            b.extend(0u32.to_le_bytes());
        };
        let (mut b, mut data) = (b"II*\0".to_vec(), Vec::new());
        b.extend(8u32.to_le_bytes());
        let subs_at: Vec<u32> = starts[1..=subs.len()].iter().map(|&o| o as u32).collect();
        let mut first = ifd0.to_vec();
        first.push((SUB_IFDS, subs_at));
        write(&mut b, &mut data, &first);
        for s in subs {
            write(&mut b, &mut data, s);
        }
        b.extend(data);
        b
    }

    #[test]
    fn a_dngs_main_image_gives_its_frame_beside_reduced_images_and_masks() {
        // A raw image of 4000 x 3000 (CFA, lossless JPEG), with a reduced thumbnail in IFD0 that
        // carries the Orientation.
        let raw = |kind: u32| {
            vec![
                e(254, &[kind]),
                e(256, &[4000]),
                e(257, &[3000]),
                e(258, &[16]),
                e(259, &[7]),
                e(262, &[32803]),
                e(277, &[1]),
            ]
        };
        let thumbnail = [
            e(254, &[1]),
            e(256, &[256]),
            e(257, &[192]),
            e(259, &[1]),
            e(274, &[6]),
        ];
        let mask = [e(254, &[4]), e(256, &[4000]), e(257, &[3000]), e(259, &[8])];
        let frame = Some(((4000, 3000), Orientation::Rotate90));
        assert_eq!(dng_frame(&dng(&thumbnail, &[&raw(0)])), frame);
        // A full-size mask after it (NewSubFileType 4): still the main image's frame.
        assert_eq!(dng_frame(&dng(&thumbnail, &[&raw(0), &mask])), frame);
        // Two main images, or none: rawler is asked.
        assert_eq!(dng_frame(&dng(&thumbnail, &[&raw(0), &raw(0)])), None);
        assert_eq!(dng_frame(&dng(&thumbnail, &[&mask])), None);
        // The active area (top, left, bottom, right), and a default crop within it.
        let framed = |crop: &[u32]| {
            let mut tags = raw(0);
            tags.extend([
                e(50829, &[10, 20, 2990, 3980]),
                e(50719, &[4, 6]),
                e(50720, crop),
            ]);
            dng_frame(&dng(&thumbnail, &[&tags])).map(|(size, _)| size)
        };
        assert_eq!(framed(&[3900, 2900]), Some((3900, 2900)));
        // A crop reaching past the image leaves a doubt.
        assert_eq!(framed(&[3980, 2900]), None);
        // Without a crop, the active area's size.
        let mut active = raw(0);
        active.push(e(50829, &[10, 20, 2990, 3980]));
        let size = dng_frame(&dng(&thumbnail, &[&active])).map(|(size, _)| size);
        assert_eq!(size, Some((3960, 2980)));
    }

    #[test]
    fn a_tiffs_embedded_jpegs_are_found_within_the_file() {
        assert_eq!(tiff_jpegs(&tiff(60)), vec![60..64]);
        // Past the end, or not at a JPEG's start: nothing.
        assert!(tiff_jpegs(&tiff(62)).is_empty());
        assert!(tiff_jpegs(&tiff(1 << 30)).is_empty());
        // Not a TIFF, or cut short: nothing, and no panic.
        assert!(tiff_jpegs(b"\xFF\xD8\xFF\xE0").is_empty());
        let whole = tiff(60);
        for cut in 0..whole.len() {
            let _ = tiff_jpegs(&whole[..cut]);
        }
    }
}
