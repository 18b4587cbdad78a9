//! Faces cut by the frame or filling it (the border set, `common::border`): the pipeline finds
//! them, MTCNN's proposals are what finds most of them, and PICO's windows that reach past the
//! border read the same pixels, window for window, on the GPU (lavapipe in CI) and the CPU twin.

use crate::common;
use std::sync::Arc;

use crate::common::border::{BorderCase, border_set};
use visage::config::{DeviceChoice, Proposals, Settings};
use visage::detection::pico::cascade::Cascade;
use visage::detection::pico::scan::gpu::GpuScanner;
use visage::detection::pico::windows::{Border, Padding};
use visage::detection::pico::{Backend, DetectParams, Pico};
use visage::photo::Photo;
use visage::pipeline::Pipeline;

fn photo(case: &BorderCase) -> Photo {
    Photo::from_dynamic(case.image.clone()).unwrap()
}

/// Border cases whose face the pipeline finds (a box with IoU >= 0.4 with the visible face).
fn found(pipeline: &Pipeline, cases: &[BorderCase]) -> Vec<bool> {
    let mut out = Vec::new();
    for chunk in cases.chunks(32) {
        let photos: Vec<Photo> = chunk.iter().map(photo).collect();
        let refs: Vec<&Photo> = photos.iter().collect();
        for (case, faces) in chunk.iter().zip(pipeline.run(&refs).unwrap()) {
            out.push(
                faces
                    .iter()
                    .any(|f| common::iou(f.detection.rect, case.face) >= 0.4),
            );
        }
    }
    out
}

fn pipeline(proposals: Proposals) -> Pipeline {
    common::models();
    let settings = Settings {
        device: DeviceChoice::Cpu,
        models: std::env::var_os("VISAGE_MODELS").map(Into::into),
        face_proposals: proposals,
        ..Settings::default()
    };
    Pipeline::new(&settings, true).unwrap()
}

#[test]
fn faces_cut_by_the_frame_or_filling_it_are_found() {
    let cases = border_set(4);
    assert!(cases.len() >= 200, "{} cases", cases.len());
    let with = found(&pipeline(Proposals::On), &cases);
    let without = found(&pipeline(Proposals::Off), &cases);
    let n = cases.len() as f32;
    let (a, b) = (
        with.iter().filter(|&&f| f).count(),
        without.iter().filter(|&&f| f).count(),
    );
    eprintln!(
        "{} border cases: found {a} with MTCNN's proposals, {b} with PICO's alone",
        n
    );
    for kind in ["touch", "cut", "fill"] {
        let of_kind: Vec<bool> = cases
            .iter()
            .zip(&with)
            .filter(|(c, _)| c.name.ends_with(kind))
            .map(|(_, &f)| f)
            .collect();
        let share = of_kind.iter().filter(|&&f| f).count() as f32 / of_kind.len() as f32;
        eprintln!("  {kind}: {share:.3} of {}", of_kind.len());
        assert!(share >= 0.8, "{kind}: only {share:.3} found");
    }
    assert!(a as f32 >= 0.9 * n, "found {a} of {n}");
    assert!(
        a as f32 >= 1.2 * b as f32,
        "proposals add little: {a} against {b}"
    );
    // Proposals only add: every face PICO's candidates give is still found.
    let lost: Vec<&str> = cases
        .iter()
        .zip(with.iter().zip(&without))
        .filter(|(_, (w, wo))| **wo && !**w)
        .map(|(c, _)| c.name.as_str())
        .collect();
    assert!(lost.len() <= 2, "lost with proposals: {lost:?}");
}

#[test]
fn border_windows_are_scanned_alike_on_the_gpu_and_the_cpu() {
    let gpu = common::gpu();
    let cascade = Cascade::facefinder().unwrap();
    let params = |padding| DetectParams {
        border: Border {
            overhang: 0.25,
            padding,
        },
        ..DetectParams::from(&Settings::default())
    };
    let paddings = [
        Padding::Replicate,
        Padding::Mirror,
        Padding::Constant(128),
        Padding::Constant(0),
    ];
    let cases = border_set(12);
    let (mut hits, mut outside) = (0, 0);
    for (k, padding) in paddings.into_iter().enumerate() {
        let cpu = Pico::with_backend(cascade.clone(), params(padding), Backend::Cpu);
        let scanner = GpuScanner::new(Arc::clone(&gpu), &cascade);
        let on_gpu = Pico::with_backend(cascade.clone(), params(padding), Backend::Gpu(scanner));
        // Each padding on its own quarter of the cases.
        let photos: Vec<Photo> = cases.iter().skip(k).step_by(4).map(photo).collect();
        let refs: Vec<&Photo> = photos.iter().collect();
        let plans: Vec<_> = photos
            .iter()
            .map(|p| cpu.params().plan(p.width, p.height))
            .collect();
        let a = on_gpu.scan(&refs, &plans).unwrap();
        let b = cpu.scan(&refs, &plans).unwrap();
        for ((g, c), (p, plan)) in a.iter().zip(&b).zip(photos.iter().zip(&plans)) {
            assert_eq!(g.len(), c.len(), "{padding:?}");
            for (g, c) in g.iter().zip(c) {
                assert_eq!(
                    (g.level, g.row, g.col),
                    (c.level, c.row, c.col),
                    "{padding:?}"
                );
                assert!((g.score - c.score).abs() < 1e-4, "{padding:?}");
                let half = plan.levels[c.level as usize].size / 2;
                outside += (c.row < half
                    || c.col < half
                    || c.row + half >= p.height
                    || c.col + half >= p.width) as usize;
            }
            hits += c.len();
        }
    }
    eprintln!("{hits} windows passed, {outside} of them reaching past the border");
    assert!(outside >= 20, "only {outside} border windows passed");
}

/// Writes the border set for `benches/peers/score_detections.py`:
/// `VISAGE_BORDER_SET=DIR cargo test --test tests -- --ignored --exact border::write_border_set`
/// gives DIR/<case>.png and DIR/reference.json.
#[test]
#[ignore = "writes files for the benchmark; run by hand"]
fn write_border_set() {
    let dir = std::path::PathBuf::from(std::env::var("VISAGE_BORDER_SET").unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    let mut photos = serde_json::Map::new();
    for case in border_set(1) {
        let name = format!("{}.png", case.name);
        case.image.to_rgb8().save(dir.join(&name)).unwrap();
        let [x, y, w, h] = case.face;
        photos.insert(name, serde_json::json!([{"x": x, "y": y, "w": w, "h": h}]));
    }
    let reference = serde_json::json!({
        "source": "tests/common/border.rs: the 5-celebrity reference faces, cropped to touch, cut or fill the frame",
        "photos": photos,
    });
    std::fs::write(dir.join("reference.json"), reference.to_string()).unwrap();
}
