//! Shared by the integration tests: where the real test photos are (fetched on first use with
//! `scripts/fetch-testdata`), the models (fetched on first use), running the binary and reading
//! its faces back; [`tools`] finds the real tools (GPU adapter, Chromium, ExifTool, Slurm) or fails
//! naming the package to install; [`slurm`] starts a one-node Slurm cluster.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;
use visage::geometry::Rect;

pub mod border;
pub mod slurm;
pub mod tools;

pub use tools::{burn_gpu, gpu};

/// Root of the test photos: `$VISAGE_TESTDATA` or `~/.cache/visage/testdata`, fetched if missing.
pub fn testdata() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::var_os("VISAGE_TESTDATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let cache = std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache")
                    });
                cache.join("visage/testdata")
            });
        if !root.join(".complete-v4").exists() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-testdata");
            let status = Command::new("bash")
                .arg(&script)
                .env("VISAGE_TESTDATA", &root)
                .status()
                .expect("run scripts/fetch-testdata");
            assert!(
                status.success(),
                "scripts/fetch-testdata failed: the tests need its photos"
            );
        }
        root
    })
    .clone()
}

/// The library-kinds test files (videos, a Live Photo, motion photos, a RAW and its JPEG, a
/// folder of what visage does not read), made from the test photos by `scripts/make-kinds` with
/// ffmpeg and ExifTool on first use: `testdata()/kinds`. Fails naming the package of a missing
/// tool.
pub fn kinds() -> PathBuf {
    static KINDS: OnceLock<PathBuf> = OnceLock::new();
    KINDS
        .get_or_init(|| {
            let root = testdata();
            let kinds = root.join("kinds");
            if !kinds.join(".complete-v1").exists() {
                tool("ffmpeg", "ffmpeg");
                tool("exiftool", "libimage-exiftool-perl");
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-kinds");
                let status = Command::new("bash")
                    .arg(&script)
                    .arg(&root)
                    .status()
                    .expect("run scripts/make-kinds");
                assert!(
                    status.success() && kinds.join(".complete-v1").exists(),
                    "scripts/make-kinds failed: the library-kinds tests need its files"
                );
            }
            kinds
        })
        .clone()
}

/// Check that a program the tests run is installed; fails naming the Debian package if not.
pub fn tool(program: &str, package: &str) {
    let found = Command::new(program)
        .arg(match program {
            "exiftool" => "-ver",
            "ffmpeg" | "ffprobe" => "-version",
            _ => "--version",
        })
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "this test needs {program}: apt-get install {package} (.ci/run installs it)"
    );
}

/// Run a program the tests need (see [`tool`]), asserting it succeeds.
pub fn run_tool(program: &str, package: &str, args: &[&str]) -> Output {
    tool(program, package);
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every photo of the 5-celebrity set, sorted, as paths relative to [`testdata`].
pub fn celebrity_photos() -> Vec<String> {
    let root = testdata();
    let mut out: Vec<String> = walkdir::WalkDir::new(root.join("celebrity"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    out.sort();
    out
}

/// Reference face boxes (see `scripts/reference_faces.py`): path relative to [`testdata`] ->
/// boxes (x, y, w, h) in original pixels.
pub fn reference_faces() -> Vec<(String, Vec<[f32; 4]>)> {
    let text = include_str!("../data/reference_faces.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    let photos = v["photos"].as_object().unwrap();
    let mut out: Vec<_> = photos
        .iter()
        .map(|(k, faces)| {
            let boxes = faces
                .as_array()
                .unwrap()
                .iter()
                .map(|f| ["x", "y", "w", "h"].map(|c| f[c].as_f64().unwrap() as f32))
                .collect();
            (k.clone(), boxes)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Pigo's facefinder with its 444 mid-stage tree thresholds (-15.0) set to `value`: -1337.0 gives the
/// file visage shipped before issue 19 (no window is rejected mid-stage), a value near the stage
/// thresholds rejects many windows mid-stage.
pub fn facefinder_with_mid_stage(value: f32) -> visage::detection::pico::cascade::Cascade {
    use visage::detection::pico::cascade::{Cascade, FACEFINDER_MID_STAGE_THRESHOLD};
    let mut cascade = Cascade::facefinder().unwrap();
    for t in &mut cascade.thresholds {
        if *t == FACEFINDER_MID_STAGE_THRESHOLD {
            *t = value;
        }
    }
    cascade
}

/// Intersection over union of two boxes (a [`Rect`] or `[x, y, w, h]`): visage's own
/// [`Rect::iou`].
pub fn iou<T: num_traits::Float>(a: impl Into<Rect<T>>, b: impl Into<Rect<T>>) -> T {
    a.into().iou(&b.into())
}

/// The model cache (`$VISAGE_MODELS` or the default), with a model fetched if missing (once per
/// test binary; concurrent fetches by several binaries are safe too).
pub fn model(file: &visage::models::ModelFile) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let models = visage::models::Models::new(std::env::var_os("VISAGE_MODELS").map(PathBuf::from));
    models
        .get(file)
        .unwrap_or_else(|e| panic!("the tests need model {}: {e}", file.name))
}

/// Every model the binary loads (FaceNet, P-Net, R-Net, O-Net), fetched first so a command run
/// by a test finds them and a failed fetch fails with the tests' message.
pub fn models() {
    for m in &visage::models::ALL {
        model(m);
    }
}

/// An RGB image file as 160x160 HWC bytes (the FaceNet fixture crops are exactly that size).
pub fn crop_png(path: &Path) -> Vec<u8> {
    let img = image::open(path).unwrap().into_rgb8();
    assert_eq!(img.dimensions(), (160, 160), "{}", path.display());
    img.into_raw()
}

/// Run the visage binary with these arguments and extra environment variables.
pub fn visage(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_visage"));
    cmd.args(args)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .env("RUST_LOG", "warn");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Run `visage ARGS --db DB` on the CPU, asserting the exit code (stdout and stderr in the message).
pub fn run(db: &Path, args: &[&str], code: i32) -> Output {
    run_with(db, args, code, &[("VISAGE_DEVICE", "cpu")])
}

/// [`run`] with these environment variables.
pub fn run_with(db: &Path, args: &[&str], code: i32, env: &[(&str, &str)]) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--db", db.to_str().unwrap()]);
    let out = visage(&all, env);
    assert_eq!(
        out.status.code(),
        Some(code),
        "visage {all:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A photo decoded by the image crate alone, its EXIF orientation applied (independent of
/// visage's own decoding).
pub fn decode_oriented(path: &Path) -> image::DynamicImage {
    let mut decoder = image::ImageReader::open(path)
        .unwrap()
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    let orientation = image::ImageDecoder::orientation(&mut decoder).unwrap();
    let mut img = image::DynamicImage::from_decoder(decoder).unwrap();
    img.apply_orientation(orientation);
    img
}

/// Copy a folder tree (files and folders, no links).
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Each stdout line parsed as JSON.
pub fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every face of the library at `db`, as `visage faces --json` gives them (on the CPU).
pub fn faces(db: &Path) -> Vec<Value> {
    lines(&run(db, &["faces", "--json"], 0))
}

/// The library's counts as its tally keeps them equal a recount from its tables (what `visage
/// stats`, the page's progress and its totals read); `what` says after what.
pub fn assert_tally(db: &Path, what: &str) -> visage::store::report::Tally {
    let store = visage::store::Store::open(db).unwrap();
    let (kept, counted) = store
        .read(|c| {
            Ok((
                visage::store::report::tally(c)?,
                visage::store::report::recount(c)?,
            ))
        })
        .unwrap();
    assert_eq!(kept, counted, "{what}: the tally is not a recount");
    kept
}

/// A fresh, empty folder for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("visage-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A valid PNG signature and IHDR chunk for an 8-bit RGB image of the given size, no pixel data.
pub fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(13u32.to_be_bytes());
    out.extend(&ihdr);
    out.extend(crc32(&ihdr).to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The bad files every command must survive, written into `dir` next to a good photo
/// (`a_good.jpg`, the group photo): empty, not an image, a truncated JPEG, and a decompression
/// bomb (a PNG header announcing 60000 x 60000 pixels). Returns the bad files' names.
pub fn bad_files(dir: &Path) -> [&'static str; 4] {
    let good = testdata().join("group/t1.jpg");
    std::fs::copy(&good, dir.join("a_good.jpg")).unwrap();
    std::fs::write(dir.join("b_empty.jpg"), b"").unwrap();
    std::fs::write(dir.join("c_text.png"), b"this is not an image").unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(dir.join("d_truncated.jpg"), &bytes[..bytes.len() / 3]).unwrap();
    std::fs::write(dir.join("e_bomb.png"), png_header(60_000, 60_000)).unwrap();
    ["b_empty.jpg", "c_text.png", "d_truncated.jpg", "e_bomb.png"]
}

/// Each of `files` has its own stderr line that names it and gives a reason.
pub fn assert_each_named(stderr: &str, files: &[&str]) {
    for bad in files {
        let line = stderr
            .lines()
            .find(|l| l.contains(bad))
            .unwrap_or_else(|| panic!("{bad}: {stderr}"));
        assert!(line.len() > bad.len() + 20, "no reason given: {line}");
    }
}

/// The review page's thumbnail of `face` (its `x`, `y`, `w`, `h`) cut from `img` as the issue asks:
/// the box's longer side times 1.6, centred on it, inside the image, resampled to 256 px.
pub fn face_square(img: &image::RgbImage, face: &Value) -> image::RgbImage {
    let f = |k: &str| face[k].as_f64().unwrap() as f32;
    let (iw, ih) = (img.width() as f32, img.height() as f32);
    let side = (f("w").max(f("h")) * 1.6).min(iw).min(ih);
    let left = (f("x") + f("w") / 2.0 - side / 2.0).clamp(0.0, iw - side);
    let top = (f("y") + f("h") / 2.0 - side / 2.0).clamp(0.0, ih - side);
    let square = image::imageops::crop_imm(
        img,
        left.round() as u32,
        top.round() as u32,
        side.round() as u32,
        side.round() as u32,
    )
    .to_image();
    image::imageops::resize(&square, 256, 256, image::imageops::FilterType::CatmullRom)
}

/// The mean absolute difference of two images of one size, per channel value (0-255).
pub fn mean_abs_diff(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    sum as f64 / a.as_raw().len() as f64
}
