//! JPEG, decoded at the scale asked for: libjpeg's DCT scaling (n/8 of each side, 1 <= n <= 8,
//! through mozjpeg, the libjpeg-turbo fork `mozjpeg-sys` builds from C with the C compiler
//! alone) skips most of the inverse DCT, upsampling and colour conversion of pixels that would
//! be thrown away, and the smallest n that still gives what was asked is taken. A JPEG wanted at
//! full size goes through the `image` crate's decoder (zune-jpeg, with SIMD), as before.
//!
//! [`decode_part`] reads one rectangle of a JPEG at a finer scale (libjpeg's scanline cropping
//! and skipping), for faces too small in the detection image.
//!
//! The JPEG's own end is found by walking its markers and entropy-coded data to the
//! end-of-image marker: a file that ends before it is truncated (the decoders would fill the
//! rest with grey and say nothing); what follows it (the video of a motion photo) is not read.
//! libjpeg's errors unwind out of its calls into a typed error (never a crash); its warnings
//! are counted, not printed. Memory is bounded: the decoded pixels by the photo limits, and
//! libjpeg's own buffers (a progressive JPEG keeps every coefficient) by `max_memory_to_use`.

use std::ffi::{c_int, c_long, c_ulong};
use std::marker::PhantomData;
use std::ops::Range;
use std::panic::AssertUnwindSafe;

use image::RgbImage;
use image::metadata::Orientation;
use mozjpeg_sys as ffi;

use super::orientation::{self, Rect};
use super::{Decoded, MAX_DECODE_BYTES, MAX_SIDE, Part, PhotoError, Want, raster};

/// A progressive JPEG with more scans than this is refused (libjpeg-turbo's own tools stop at
/// 500: each scan is another pass over every coefficient, a denial of service).
const MAX_SCANS: c_int = 500;

/// Decode a JPEG at the smallest DCT scale that gives `want`.
pub(super) fn decode(bytes: &[u8], want: Want) -> Result<Decoded, PhotoError> {
    let layout = layout(bytes)?;
    let data = &bytes[..layout.end];
    let orientation = layout.orientation(bytes);
    let mut d = Decompress::new(data)?;
    let full = d.size();
    check_side(full)?;
    let long = full.0.max(full.1);
    let n = eighths(long, want.fraction(long));
    if n == 8 || !d.converts_to_rgb() {
        // Full size (or a colour space libjpeg does not turn into RGB, such as CMYK): the image
        // crate's decoder.
        let mut decoded = raster::decode(data)?;
        decoded.orientation = orientation;
        return Ok(decoded);
    }
    let rgb = d.read(n)?;
    Ok(Decoded {
        rgb,
        orientation,
        full,
        finest: false,
    })
}

/// The pixels of `rect` (pixels of the original as shown, whose size is `shown`) at `fraction`
/// of full size or more, as shown, and the part of the original they cover.
pub(super) fn decode_part(
    bytes: &[u8],
    rect: Rect,
    shown: (u32, u32),
    fraction: f32,
) -> Result<Part, PhotoError> {
    let layout = layout(bytes)?;
    let data = &bytes[..layout.end];
    let o = layout.orientation(bytes);
    let mut d = Decompress::new(data)?;
    let full = d.size();
    check_side(full)?;
    if orientation::oriented_size(full, o) != shown || !d.converts_to_rgb() {
        return Err(PhotoError::Changed);
    }
    let n = eighths(full.0.max(full.1), fraction);
    let stored = orientation::rect_to_stored(rect, shown, o);
    let (rgb, covers) = d.read_rect(n, stored)?;
    Ok(Part {
        rgb: orientation::apply(rgb, o),
        covers: orientation::rect_to_shown(covers, full, o),
    })
}

/// The smallest n (of n/8) that scales a side of `long` pixels to at least `fraction` of it.
fn eighths(long: u32, fraction: f32) -> u32 {
    let need = ((long as f64 * fraction as f64) - 1e-3).ceil().max(1.0) as u64;
    (1..=8u64)
        .find(|n| (long as u64 * n).div_ceil(8) >= need)
        .unwrap_or(8) as u32
}

fn check_side((w, h): (u32, u32)) -> Result<(), PhotoError> {
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(PhotoError::TooLarge {
            width: w as u64,
            height: h as u64,
        });
    }
    Ok(())
}

/// Where a JPEG's parts lie in a file.
struct Layout {
    /// Just past the end-of-image marker.
    end: usize,
    /// The Exif APP1 segment's TIFF data.
    exif: Option<Range<usize>>,
}

impl Layout {
    fn orientation(&self, bytes: &[u8]) -> Orientation {
        self.exif
            .clone()
            .and_then(|r| Orientation::from_exif_chunk(&bytes[r]))
            .unwrap_or(Orientation::NoTransforms)
    }
}

/// Walk a JPEG's markers and entropy-coded data to its end-of-image marker.
fn layout(bytes: &[u8]) -> Result<Layout, PhotoError> {
    let mut exif = None;
    let mut at = 2; // past SOI
    loop {
        // A marker: 0xFF (fill bytes allowed), then its code.
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&0xFF), Some(&code)) = (bytes.get(at), bytes.get(at + 1)) else {
            return Err(PhotoError::TruncatedJpeg);
        };
        at += 2;
        match code {
            0xD9 => {
                return Ok(Layout { end: at, exif });
            }
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = match bytes.get(at..at + 2) {
            Some(l) => u16::from_be_bytes([l[0], l[1]]) as usize,
            None => return Err(PhotoError::TruncatedJpeg),
        };
        if len < 2 || at + len > bytes.len() {
            return Err(PhotoError::TruncatedJpeg);
        }
        let segment = at + 2..at + len;
        if code == 0xE1 && exif.is_none() && bytes[segment.clone()].starts_with(b"Exif\0\0") {
            exif = Some(segment.start + 6..segment.end);
        }
        at += len;
        if code == 0xDA {
            // Entropy-coded data: runs until a 0xFF that is neither stuffing (0x00) nor a
            // restart marker.
            loop {
                let Some(ff) = memchr::memchr(0xFF, &bytes[at..]) else {
                    return Err(PhotoError::TruncatedJpeg);
                };
                at += ff;
                match bytes.get(at + 1) {
                    Some(0x00) | Some(0xD0..=0xD7) | Some(0xFF) => at += 1,
                    Some(_) => break,
                    None => return Err(PhotoError::TruncatedJpeg),
                }
            }
        }
    }
}

/// libjpeg's error manager with what visage keeps beside it (the callbacks find it through
/// the pointer libjpeg holds to its first field).
#[repr(C)]
struct ErrorManager {
    mgr: ffi::jpeg_error_mgr,
    /// The last warning's code (libjpeg goes on after a warning).
    warning: Option<c_int>,
}

/// libjpeg's progress monitor (it counts the scans read).
#[repr(C)]
struct ProgressManager {
    mgr: ffi::jpeg_progress_mgr,
}

/// A libjpeg error, carried out of its call by unwinding.
struct LibjpegError(String);

/// Stop libjpeg with this message: unwind to [`guarded`] (`resume_unwind` runs no panic hook,
/// so nothing is printed).
fn fail(message: String) -> ! {
    std::panic::resume_unwind(Box::new(LibjpegError(message)))
}

unsafe extern "C-unwind" fn error_exit(cinfo: &mut ffi::jpeg_common_struct) {
    // SAFETY: `err` points at the ErrorManager this decompressor was made with.
    let message = unsafe { message(cinfo) };
    fail(message)
}

unsafe extern "C-unwind" fn emit_message(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    if level < 0 {
        // SAFETY: as above.
        let err = unsafe { &mut *(cinfo.err as *mut ErrorManager) };
        err.mgr.num_warnings += 1;
        err.warning = Some(err.mgr.msg_code);
    }
}

unsafe extern "C-unwind" fn progress_monitor(cinfo: &mut ffi::jpeg_common_struct) {
    if cinfo.is_decompressor != 0 {
        // SAFETY: a decompressor's common struct is the first field of its decompress struct.
        let d = unsafe { &*(cinfo as *const _ as *const ffi::jpeg_decompress_struct) };
        if d.input_scan_number > MAX_SCANS {
            fail(format!("more than {MAX_SCANS} progressive scans"));
        }
    }
}

/// The text of libjpeg's current message.
///
/// # Safety
/// `cinfo.err` must point at a live `jpeg_error_mgr`.
unsafe fn message(cinfo: &mut ffi::jpeg_common_struct) -> String {
    let mut buffer = [0u8; 80];
    // libjpeg's format_message writes into its buffer: called through a pointer to it.
    type Format = unsafe extern "C-unwind" fn(*mut ffi::jpeg_common_struct, *mut u8);
    // SAFETY: the caller's promise; format_message is libjpeg's own (set by jpeg_std_error),
    // and a reference and a pointer pass alike.
    unsafe {
        if let Some(format) = (*cinfo.err).format_message {
            let format: Format = std::mem::transmute(format);
            format(cinfo, buffer.as_mut_ptr());
        }
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// Run libjpeg calls, turning an error it raised into a [`PhotoError`] (any other panic goes on).
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, PhotoError> {
    std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        match payload.downcast::<LibjpegError>() {
            Ok(e) => PhotoError::Jpeg(e.0),
            Err(other) => std::panic::resume_unwind(other),
        }
    })
}

/// One JPEG being decompressed by libjpeg, its header read.
struct Decompress<'a> {
    cinfo: Box<ffi::jpeg_decompress_struct>,
    err: Box<ErrorManager>,
    _progress: Box<ProgressManager>,
    _data: PhantomData<&'a [u8]>,
}

impl Drop for Decompress<'_> {
    fn drop(&mut self) {
        // SAFETY: cinfo was created by jpeg_create_decompress; destroying frees its memory in
        // any state (after an error too).
        unsafe { ffi::jpeg_destroy_decompress(&mut self.cinfo) };
    }
}

impl<'a> Decompress<'a> {
    /// Start on a JPEG's bytes and read its header.
    fn new(data: &'a [u8]) -> Result<Self, PhotoError> {
        // SAFETY: zeroed structs are what libjpeg's create functions expect to fill; the error
        // manager and progress monitor are boxed so their addresses stay put while libjpeg
        // holds them, and live as long as cinfo (dropped after it).
        let mut d = unsafe {
            let mut err: Box<ErrorManager> = Box::new(std::mem::zeroed());
            ffi::jpeg_std_error(&mut err.mgr);
            err.mgr.error_exit = Some(error_exit);
            err.mgr.emit_message = Some(emit_message);
            let mut progress: Box<ProgressManager> = Box::new(std::mem::zeroed());
            progress.mgr.progress_monitor = Some(progress_monitor);
            let mut cinfo: Box<ffi::jpeg_decompress_struct> = Box::new(std::mem::zeroed());
            cinfo.common.err = &mut err.mgr;
            Decompress {
                cinfo,
                err,
                _progress: progress,
                _data: PhantomData,
            }
        };
        let progress: *mut ffi::jpeg_progress_mgr = &mut d._progress.mgr;
        let cinfo = &mut *d.cinfo;
        guarded(|| {
            // SAFETY: cinfo is zeroed with a valid error manager; `data` outlives it ('a).
            unsafe {
                ffi::jpeg_create_decompress(cinfo);
                (*cinfo.common.mem).max_memory_to_use = MAX_DECODE_BYTES as c_long;
                cinfo.common.progress = progress;
                ffi::jpeg_mem_src(cinfo, data.as_ptr(), data.len() as c_ulong);
                ffi::jpeg_read_header(cinfo, 1);
            }
        })?;
        Ok(d)
    }

    /// The image's size as stored.
    fn size(&self) -> (u32, u32) {
        (self.cinfo.image_width, self.cinfo.image_height)
    }

    /// Whether libjpeg turns this JPEG's colour space into RGB (not CMYK or YCCK).
    fn converts_to_rgb(&self) -> bool {
        matches!(
            self.cinfo.jpeg_color_space,
            ffi::J_COLOR_SPACE::JCS_GRAYSCALE
                | ffi::J_COLOR_SPACE::JCS_YCbCr
                | ffi::J_COLOR_SPACE::JCS_RGB
        )
    }

    /// Set the output to RGB at n/8 and start decompressing; the output size.
    fn start(&mut self, n: u32) -> Result<(u32, u32), PhotoError> {
        let cinfo = &mut *self.cinfo;
        cinfo.scale_num = n;
        cinfo.scale_denom = 8;
        cinfo.out_color_space = ffi::J_COLOR_SPACE::JCS_RGB;
        cinfo.dct_method = ffi::J_DCT_METHOD::JDCT_ISLOW;
        cinfo.do_fancy_upsampling = 1;
        // SAFETY: the header was read; the scale and colour space are valid for it.
        guarded(|| unsafe { ffi::jpeg_calc_output_dimensions(cinfo) })?;
        let (w, h) = (cinfo.output_width, cinfo.output_height);
        if w as u64 * h as u64 * 3 > MAX_DECODE_BYTES {
            return Err(PhotoError::TooLarge {
                width: w as u64,
                height: h as u64,
            });
        }
        // SAFETY: as above.
        guarded(|| unsafe { ffi::jpeg_start_decompress(cinfo) })?;
        Ok((cinfo.output_width, cinfo.output_height))
    }

    /// The whole image at n/8.
    fn read(&mut self, n: u32) -> Result<RgbImage, PhotoError> {
        let (w, h) = self.start(n)?;
        let mut out = vec![0u8; w as usize * h as usize * 3];
        self.read_rows(&mut out, w, h)?;
        let cinfo = &mut *self.cinfo;
        // SAFETY: every scanline was read.
        guarded(|| unsafe { ffi::jpeg_finish_decompress(cinfo) })?;
        self.check_warnings()?;
        Ok(RgbImage::from_raw(w, h, out).expect("buffer matches dimensions"))
    }

    /// The pixels under `rect` (stored pixels of the full image) at n/8, and the part of the
    /// full image (stored pixels) they cover.
    fn read_rect(&mut self, n: u32, rect: Rect) -> Result<(RgbImage, Rect), PhotoError> {
        let (full_w, full_h) = self.size();
        let (ow, oh) = self.start(n)?;
        let (kx, ky) = (ow as f32 / full_w as f32, oh as f32 / full_h as f32);
        // Output rows and columns that cover the rectangle.
        let y0 = ((rect.y * ky).floor() as u32).min(oh - 1);
        let y1 = (((rect.y + rect.h) * ky).ceil() as u32).clamp(y0 + 1, oh);
        let x0 = ((rect.x * kx).floor() as u32).min(ow - 1);
        let x1 = (((rect.x + rect.w) * kx).ceil() as u32).clamp(x0 + 1, ow);
        let cinfo = &mut *self.cinfo;
        // libjpeg widens the columns to whole iMCUs: it says where they start and how many.
        let (mut xoff, mut width) = (x0, x1 - x0);
        // SAFETY: decompression started; the columns lie inside the output.
        guarded(|| unsafe {
            ffi::jpeg_crop_scanline(cinfo, &mut xoff, &mut width);
            if y0 > 0 {
                ffi::jpeg_skip_scanlines(cinfo, y0);
            }
        })?;
        let rows = y1 - y0;
        let mut wide = vec![0u8; width as usize * rows as usize * 3];
        self.read_rows(&mut wide, width, rows)?;
        let cinfo = &mut *self.cinfo;
        // Not every scanline was read: abort rather than finish.
        // SAFETY: aborting is valid in any state after start.
        guarded(|| unsafe { ffi::jpeg_abort_decompress(cinfo) })?;
        self.check_warnings()?;
        let wide = RgbImage::from_raw(width, rows, wide).expect("buffer matches dimensions");
        let rgb = image::imageops::crop_imm(&wide, x0 - xoff, 0, x1 - x0, rows).to_image();
        let covers = Rect {
            x: x0 as f32 / kx,
            y: y0 as f32 / ky,
            w: (x1 - x0) as f32 / kx,
            h: rows as f32 / ky,
        };
        Ok((rgb, covers))
    }

    /// Read `rows` scanlines of `w` RGB pixels into `out`.
    fn read_rows(&mut self, out: &mut [u8], w: u32, rows: u32) -> Result<(), PhotoError> {
        let cinfo = &mut *self.cinfo;
        let stride = w as usize * 3;
        guarded(|| {
            let mut done = 0usize;
            while done < rows as usize {
                // Up to 16 rows a call (libjpeg gives at most rec_outbuf_height at once).
                let mut pointers: Vec<*mut u8> = out[done * stride..]
                    .chunks_exact_mut(stride)
                    .take(16)
                    .map(|row| row.as_mut_ptr())
                    .collect();
                // SAFETY: each pointer is a row of `stride` bytes inside `out`.
                let got = unsafe {
                    ffi::jpeg_read_scanlines(
                        cinfo,
                        pointers.as_mut_ptr(),
                        pointers.len() as ffi::JDIMENSION,
                    )
                };
                if got == 0 {
                    fail("no scanline read".into());
                }
                done += got as usize;
            }
        })
    }

    /// A warning that the data ended early is a truncated file (libjpeg filled the rest).
    fn check_warnings(&self) -> Result<(), PhotoError> {
        match self.err.warning {
            Some(code) if code == ffi::JWRN_JPEG_EOF as c_int => Err(PhotoError::TruncatedJpeg),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_scale_that_gives_what_is_asked() {
        // 12 MP (4000 px): 1280 px needs 3/8 (1500); 48 MP (8000 px): 2/8 (2000).
        assert_eq!(eighths(4000, 1280.0 / 4000.0), 3);
        assert_eq!(eighths(8000, 1280.0 / 8000.0), 2);
        assert_eq!(eighths(16_000, 1280.0 / 16_000.0), 1);
        assert_eq!(eighths(1400, 1280.0 / 1400.0), 8);
        assert_eq!(eighths(2560, 0.5), 4);
        assert_eq!(eighths(1000, 1.0), 8);
    }

    /// A real JPEG with its SOS data, then what a motion photo appends.
    fn encoded(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, (x ^ y) as u8]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&img)
            .unwrap();
        out
    }

    #[test]
    fn the_end_of_image_is_found_and_what_follows_is_not_read() {
        let jpeg = encoded(64, 48);
        let mut motion = jpeg.clone();
        motion.extend(b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom\xFF\xD9\xFF\xD8");
        assert_eq!(layout(&jpeg).unwrap().end, jpeg.len());
        assert_eq!(layout(&motion).unwrap().end, jpeg.len());
        assert!(matches!(
            layout(&jpeg[..jpeg.len() / 2]),
            Err(PhotoError::TruncatedJpeg)
        ));
        assert!(matches!(
            layout(&jpeg[..jpeg.len() - 1]),
            Err(PhotoError::TruncatedJpeg)
        ));
    }

    #[test]
    fn scaled_and_part_decodes() {
        let jpeg = encoded(640, 480);
        let d = decode(&jpeg, Want::Side(160)).unwrap();
        assert_eq!(d.rgb.dimensions(), (160, 120));
        assert_eq!(d.full, (640, 480));
        let d = decode(&jpeg, Want::Side(200)).unwrap();
        assert_eq!(d.rgb.dimensions(), (240, 180), "3/8 is the smallest >= 200");
        // A part at half scale: the pixels under (100, 50, 200, 100) of the 640 x 480.
        let rect = Rect {
            x: 100.0,
            y: 50.0,
            w: 200.0,
            h: 100.0,
        };
        let part = decode_part(&jpeg, rect, (640, 480), 0.5).unwrap();
        assert!(part.covers.x <= 100.0 && part.covers.y <= 50.0);
        assert!(part.covers.x + part.covers.w >= 300.0 && part.covers.y + part.covers.h >= 150.0);
        assert_eq!(part.rgb.width() as f32, part.covers.w / 2.0);
        assert_eq!(part.rgb.height() as f32, part.covers.h / 2.0);
        // Its pixels are those of the whole image decoded at the same scale.
        let whole = decode(&jpeg, Want::Fraction(0.5)).unwrap().rgb;
        let (x, y) = ((part.covers.x / 2.0) as u32, (part.covers.y / 2.0) as u32);
        for (px, py, p) in part.rgb.enumerate_pixels() {
            let q = whole.get_pixel(x + px, y + py);
            for c in 0..3 {
                assert!(
                    (p[c] as i32 - q[c] as i32).abs() <= 2,
                    "{px},{py}: {p:?} {q:?}"
                );
            }
        }
    }

    #[test]
    fn bad_data_is_an_error_not_a_crash() {
        let mut jpeg = encoded(64, 48);
        // Break the frame header's precision (SOF0's first byte after its length).
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 4] = 3;
        let e = Decompress::new(&jpeg).err().expect("an error");
        assert!(matches!(e, PhotoError::Jpeg(ref m) if !m.is_empty()), "{e}");
    }
}
