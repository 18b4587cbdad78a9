//! JPEG, decoded at the scale asked for: libjpeg's DCT scaling (n/8 of each side, 1 <= n <= 8)
//! skips most of the inverse DCT, upsampling and colour conversion of pixels that would be
//! thrown away, and the smallest n that still gives what was asked is taken. A JPEG wanted at
//! full size goes through the `image` crate's decoder (zune-jpeg, with SIMD), as before.
//!
//! The libjpeg is the system's libjpeg-turbo (`libjpeg.so.62`, loaded at run time, never
//! linked), whose SIMD inverse DCTs, upsampling and colour conversion read a 48 MP photo for
//! detection (at 2/8) in about four fifths of the time (`benches/decode`; the rest is Huffman
//! decoding, which SIMD does not speed up); or, where the system has
//! none that takes visage's structures (libjpeg 6.2's ABI), the one built in (mozjpeg's
//! libjpeg-turbo, which `mozjpeg-sys` builds with the C compiler alone, without SIMD). Both give
//! the same pixels, to the bit (see [`Libjpeg`]).
//!
//! [`decode_part`] reads one rectangle of a JPEG at a finer scale (libjpeg's scanline cropping
//! and skipping), for faces too small in the detection image.
//!
//! The JPEG's own end is found by walking its markers and entropy-coded data to the
//! end-of-image marker: a file that ends before it is truncated (the decoders would fill the
//! rest with grey and say nothing); what follows it (the video of a motion photo) is not read.
//! libjpeg's errors unwind out of its calls into a typed error (never a crash; through the
//! system's library too, which x86-64 distributions build with unwind tables); its warnings are
//! counted, not printed. Memory is bounded: the decoded pixels by the photo limits, and
//! libjpeg's own buffers (a progressive JPEG keeps every coefficient) by `max_memory_to_use`.

use std::ffi::{c_int, c_long, c_ulong};
use std::fmt;
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

/// The system's libjpeg-turbo, as its ABI 6.2 build is named (Debian's and Fedora's
/// `libjpeg62-turbo` / `libjpeg-turbo`).
const SYSTEM_LIBJPEG: &str = "libjpeg.so.62";

/// The libjpeg calls visage makes, with the types `mozjpeg-sys` declares them with, taken from
/// the built-in libjpeg or from a loaded one by name.
macro_rules! calls {
    ($($field:ident = $symbol:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// One libjpeg's functions.
        #[derive(Clone, Copy)]
        struct Calls {
            $($field: unsafe extern "C-unwind" fn($($arg),*) $(-> $ret)?,)*
        }

        impl Calls {
            fn built_in() -> Self {
                Calls { $($field: ffi::$symbol,)* }
            }

            /// # Safety
            /// `library` must be a libjpeg whose functions have these types (libjpeg 6.2's API).
            unsafe fn load(library: &libloading::Library) -> Result<Self, libloading::Error> {
                // SAFETY: the caller's promise.
                unsafe {
                    Ok(Calls {
                        $($field: *library.get::<unsafe extern "C-unwind" fn($($arg),*) $(-> $ret)?>(
                            concat!(stringify!($symbol), "\0").as_bytes(),
                        )?,)*
                    })
                }
            }
        }
    };
}

calls! {
    std_error = jpeg_std_error: fn(&mut ffi::jpeg_error_mgr) -> &mut ffi::jpeg_error_mgr;
    create = jpeg_CreateDecompress: fn(*mut ffi::jpeg_decompress_struct, c_int, usize);
    destroy = jpeg_destroy_decompress: fn(&mut ffi::jpeg_decompress_struct);
    mem_src = jpeg_mem_src: fn(&mut ffi::jpeg_decompress_struct, *const u8, c_ulong);
    read_header = jpeg_read_header: fn(&mut ffi::jpeg_decompress_struct, ffi::boolean) -> c_int;
    calc_output_dimensions = jpeg_calc_output_dimensions: fn(&mut ffi::jpeg_decompress_struct);
    start = jpeg_start_decompress: fn(&mut ffi::jpeg_decompress_struct) -> ffi::boolean;
    read_scanlines = jpeg_read_scanlines:
        fn(&mut ffi::jpeg_decompress_struct, ffi::JSAMPARRAY_MUT, ffi::JDIMENSION) -> ffi::JDIMENSION;
    crop_scanline = jpeg_crop_scanline:
        fn(&mut ffi::jpeg_decompress_struct, &mut ffi::JDIMENSION, &mut ffi::JDIMENSION);
    skip_scanlines = jpeg_skip_scanlines:
        fn(&mut ffi::jpeg_decompress_struct, ffi::JDIMENSION) -> ffi::JDIMENSION;
    finish = jpeg_finish_decompress: fn(&mut ffi::jpeg_decompress_struct) -> ffi::boolean;
    abort = jpeg_abort_decompress: fn(&mut ffi::jpeg_decompress_struct);
}

/// The libjpeg JPEGs are decoded with: the system's libjpeg-turbo ([`Libjpeg::system`]), or the
/// one built in. libjpeg-turbo's SIMD routines give the same pixels as its C ones for the
/// integer inverse DCTs, the upsampling and the colour conversion visage asks for, so the two
/// decode alike to the bit (a test checks it on the real photos at every scale).
pub struct Libjpeg {
    calls: Calls,
    /// Where it was loaded from (`None`: built in).
    loaded: Option<String>,
    /// Kept loaded while its calls are used.
    _library: Option<libloading::Library>,
}

impl fmt::Debug for Libjpeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Libjpeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loaded {
            Some(path) => write!(f, "the system's libjpeg-turbo ({path})"),
            None => write!(
                f,
                "the built-in libjpeg (mozjpeg's libjpeg-turbo, without SIMD)"
            ),
        }
    }
}

impl Libjpeg {
    /// The libjpeg built into visage.
    pub fn built_in() -> Self {
        Libjpeg {
            calls: Calls::built_in(),
            loaded: None,
            _library: None,
        }
    }

    /// The system's libjpeg-turbo, where it has every call visage makes (libjpeg-turbo's
    /// scanline cropping and skipping are not in IJG's libjpeg) and takes visage's structures:
    /// creating a decompressor checks libjpeg's version (6.2) and the structure's size, and a
    /// small JPEG must decode to the built-in libjpeg's pixels.
    pub fn system() -> Result<Self, String> {
        // SAFETY: loading runs the library's initialisers (libjpeg-turbo's only detect the
        // CPU's SIMD), and the calls are checked below before any photo meets them.
        let library = unsafe { libloading::Library::new(SYSTEM_LIBJPEG) }
            .map_err(|e| format!("{SYSTEM_LIBJPEG}: {e}"))?;
        // SAFETY: a library named libjpeg.so.62 has libjpeg 6.2's API; its version is checked
        // by jpeg_CreateDecompress before anything else is called.
        let calls =
            unsafe { Calls::load(&library) }.map_err(|e| format!("{SYSTEM_LIBJPEG}: {e}"))?;
        let loaded = Libjpeg {
            calls,
            loaded: Some(SYSTEM_LIBJPEG.to_string()),
            _library: Some(library),
        };
        let sample = sample_jpeg();
        let decode = |lib: &Libjpeg| Decompress::new(lib, &sample).and_then(|mut d| d.read(8));
        let mine = decode(&loaded).map_err(|e| format!("{SYSTEM_LIBJPEG}: {e}"))?;
        let built_in = decode(&Libjpeg::built_in()).map_err(|e| e.to_string())?;
        if mine != built_in {
            return Err(format!(
                "{SYSTEM_LIBJPEG} decodes a JPEG differently from the built-in libjpeg"
            ));
        }
        Ok(loaded)
    }

    /// The system's libjpeg-turbo, or else the built-in libjpeg (why is logged, quietly: the
    /// built-in one decodes the same pixels, more slowly).
    pub fn find() -> Self {
        Self::system().unwrap_or_else(|why| {
            log::debug!("JPEGs are decoded by the built-in libjpeg: {why}");
            Self::built_in()
        })
    }

    /// Whether this is the system's libjpeg.
    pub fn is_system(&self) -> bool {
        self.loaded.is_some()
    }
}

/// A small JPEG of smooth colours and an edge, 4:2:0 (the image crate's encoder), to check a
/// loaded libjpeg with.
fn sample_jpeg() -> Vec<u8> {
    let img = RgbImage::from_fn(48, 32, |x, y| {
        let edge = if x + y > 40 { 90 } else { 0 };
        image::Rgb([(x * 5) as u8 + edge, (y * 7) as u8, ((x ^ y) * 3) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
        .encode_image(&img)
        .expect("a JPEG encodes into memory");
    out
}

/// Decode a JPEG at the smallest DCT scale that gives `want`.
pub(super) fn decode(lib: &Libjpeg, bytes: &[u8], want: Want) -> Result<Decoded, PhotoError> {
    let layout = layout(bytes)?;
    let data = &bytes[..layout.end];
    let orientation = layout.orientation(bytes);
    let mut d = Decompress::new(lib, data)?;
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
    lib: &Libjpeg,
    bytes: &[u8],
    rect: Rect,
    shown: (u32, u32),
    fraction: f32,
) -> Result<Part, PhotoError> {
    let layout = layout(bytes)?;
    let data = &bytes[..layout.end];
    let o = layout.orientation(bytes);
    let mut d = Decompress::new(lib, data)?;
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
    lib: &'a Libjpeg,
    cinfo: Box<ffi::jpeg_decompress_struct>,
    err: Box<ErrorManager>,
    _progress: Box<ProgressManager>,
    _data: PhantomData<&'a [u8]>,
}

impl Drop for Decompress<'_> {
    fn drop(&mut self) {
        // SAFETY: cinfo was created by jpeg_create_decompress; destroying frees its memory in
        // any state (after an error too).
        unsafe { (self.lib.calls.destroy)(&mut self.cinfo) };
    }
}

impl<'a> Decompress<'a> {
    /// Start on a JPEG's bytes and read its header.
    fn new(lib: &'a Libjpeg, data: &'a [u8]) -> Result<Self, PhotoError> {
        // SAFETY: zeroed structs are what libjpeg's create functions expect to fill; the error
        // manager and progress monitor are boxed so their addresses stay put while libjpeg
        // holds them, and live as long as cinfo (dropped after it).
        let mut d = unsafe {
            let mut err: Box<ErrorManager> = Box::new(std::mem::zeroed());
            (lib.calls.std_error)(&mut err.mgr);
            err.mgr.error_exit = Some(error_exit);
            err.mgr.emit_message = Some(emit_message);
            let mut progress: Box<ProgressManager> = Box::new(std::mem::zeroed());
            progress.mgr.progress_monitor = Some(progress_monitor);
            let mut cinfo: Box<ffi::jpeg_decompress_struct> = Box::new(std::mem::zeroed());
            cinfo.common.err = &mut err.mgr;
            Decompress {
                lib,
                cinfo,
                err,
                _progress: progress,
                _data: PhantomData,
            }
        };
        let progress: *mut ffi::jpeg_progress_mgr = &mut d._progress.mgr;
        let cinfo = &mut *d.cinfo;
        let lib = d.lib;
        guarded(|| {
            // SAFETY: cinfo is zeroed with a valid error manager; `data` outlives it ('a).
            unsafe {
                (lib.calls.create)(
                    cinfo,
                    ffi::JPEG_LIB_VERSION,
                    std::mem::size_of::<ffi::jpeg_decompress_struct>(),
                );
                (*cinfo.common.mem).max_memory_to_use = MAX_DECODE_BYTES as c_long;
                cinfo.common.progress = progress;
                (lib.calls.mem_src)(cinfo, data.as_ptr(), data.len() as c_ulong);
                (lib.calls.read_header)(cinfo, 1);
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
        guarded(|| unsafe { (self.lib.calls.calc_output_dimensions)(cinfo) })?;
        let (w, h) = (cinfo.output_width, cinfo.output_height);
        if w as u64 * h as u64 * 3 > MAX_DECODE_BYTES {
            return Err(PhotoError::TooLarge {
                width: w as u64,
                height: h as u64,
            });
        }
        // SAFETY: as above.
        guarded(|| unsafe { (self.lib.calls.start)(cinfo) })?;
        Ok((cinfo.output_width, cinfo.output_height))
    }

    /// The whole image at n/8.
    fn read(&mut self, n: u32) -> Result<RgbImage, PhotoError> {
        let (w, h) = self.start(n)?;
        let mut out = vec![0u8; w as usize * h as usize * 3];
        self.read_rows(&mut out, w, h)?;
        let cinfo = &mut *self.cinfo;
        // SAFETY: every scanline was read.
        guarded(|| unsafe { (self.lib.calls.finish)(cinfo) })?;
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
            (self.lib.calls.crop_scanline)(cinfo, &mut xoff, &mut width);
            if y0 > 0 {
                (self.lib.calls.skip_scanlines)(cinfo, y0);
            }
        })?;
        let rows = y1 - y0;
        let mut wide = vec![0u8; width as usize * rows as usize * 3];
        self.read_rows(&mut wide, width, rows)?;
        let cinfo = &mut *self.cinfo;
        // Not every scanline was read: abort rather than finish.
        // SAFETY: aborting is valid in any state after start.
        guarded(|| unsafe { (self.lib.calls.abort)(cinfo) })?;
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
                    (self.lib.calls.read_scanlines)(
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

    /// The two libjpegs: every test of a decode runs on both (the system's must be there: it is
    /// Debian's libjpeg62-turbo, which `.ci/run` installs).
    fn both() -> [Libjpeg; 2] {
        let system = Libjpeg::system().unwrap_or_else(|e| panic!("no system libjpeg-turbo: {e}"));
        assert!(system.is_system());
        [system, Libjpeg::built_in()]
    }

    #[test]
    fn scaled_and_part_decodes() {
        let jpeg = encoded(640, 480);
        for lib in both() {
            let d = decode(&lib, &jpeg, Want::Side(160)).unwrap();
            assert_eq!(d.rgb.dimensions(), (160, 120));
            assert_eq!(d.full, (640, 480));
            let d = decode(&lib, &jpeg, Want::Side(200)).unwrap();
            assert_eq!(d.rgb.dimensions(), (240, 180), "3/8 is the smallest >= 200");
            // A part at half scale: the pixels under (100, 50, 200, 100) of the 640 x 480.
            let rect = Rect {
                x: 100.0,
                y: 50.0,
                w: 200.0,
                h: 100.0,
            };
            let part = decode_part(&lib, &jpeg, rect, (640, 480), 0.5).unwrap();
            assert!(part.covers.x <= 100.0 && part.covers.y <= 50.0);
            assert!(
                part.covers.x + part.covers.w >= 300.0 && part.covers.y + part.covers.h >= 150.0
            );
            assert_eq!(part.rgb.width() as f32, part.covers.w / 2.0);
            assert_eq!(part.rgb.height() as f32, part.covers.h / 2.0);
            // Its pixels are those of the whole image decoded at the same scale.
            let whole = decode(&lib, &jpeg, Want::Fraction(0.5)).unwrap().rgb;
            let (x, y) = ((part.covers.x / 2.0) as u32, (part.covers.y / 2.0) as u32);
            for (px, py, p) in part.rgb.enumerate_pixels() {
                let q = whole.get_pixel(x + px, y + py);
                for c in 0..3 {
                    assert!(
                        (p[c] as i32 - q[c] as i32).abs() <= 2,
                        "{lib}: {px},{py}: {p:?} {q:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_two_libjpegs_give_the_same_parts() {
        let jpeg = encoded(1000, 700);
        let [system, built_in] = both();
        let rect = Rect {
            x: 333.0,
            y: 401.0,
            w: 250.0,
            h: 180.0,
        };
        for fraction in [0.2, 0.5, 0.7, 1.0] {
            let a = decode_part(&system, &jpeg, rect, (1000, 700), fraction).unwrap();
            let b = decode_part(&built_in, &jpeg, rect, (1000, 700), fraction).unwrap();
            assert_eq!(a.covers, b.covers, "{fraction}");
            assert!(a.rgb == b.rgb, "{fraction}: the pixels differ");
        }
    }

    #[test]
    fn bad_data_is_an_error_not_a_crash() {
        let mut jpeg = encoded(64, 48);
        // Break the frame header's precision (SOF0's first byte after its length).
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpeg[sof + 4] = 3;
        for lib in both() {
            // The error unwinds out of this libjpeg's own frames.
            let e = Decompress::new(&lib, &jpeg).err().expect("an error");
            assert!(
                matches!(e, PhotoError::Jpeg(ref m) if !m.is_empty()),
                "{lib}: {e}"
            );
        }
    }
}
