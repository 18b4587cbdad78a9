//! Shared by the integration tests: where the real test photos are (fetched on first use with
//! `scripts/fetch-testdata`), and opening the GPU, which must not be skipped in CI.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use visage::gpu::Gpu;

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
        if !root.join(".complete-v1").exists() {
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

/// The GPU, shared by the tests of one binary. `None` (test skipped, with a note) only outside CI:
/// with `CI=true` a missing adapter fails the test.
pub fn gpu() -> Option<Arc<Gpu>> {
    static GPU: OnceLock<Option<Arc<Gpu>>> = OnceLock::new();
    GPU.get_or_init(|| match Gpu::open() {
        Ok(g) => Some(Arc::new(g)),
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("CI=true but no GPU adapter: {e} (install mesa-vulkan-drivers)");
            }
            eprintln!("SKIPPED: no GPU adapter ({e})");
            None
        }
    })
    .clone()
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

/// Intersection over union of two (x, y, w, h) boxes.
pub fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    let i = ix.max(0.0) * iy.max(0.0);
    i / (a[2] * a[3] + b[2] * b[3] - i)
}
