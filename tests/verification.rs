//! O-Net on real photos: it says "face" for the reference faces and puts their landmarks where a
//! face has them, says "not a face" for patches of photos without faces, and refuses a bad weights
//! file with its name.

use crate::common;
use visage::detection::mtcnn::Verifier;
use visage::device::InferenceDevice;
use visage::geometry::Rect;
use visage::models::ONET;
use visage::photo::Photo;

fn verifier() -> Verifier {
    Verifier::load(&common::model(&ONET), &InferenceDevice::cpu()).unwrap()
}

#[test]
fn reference_faces_are_faces_with_plausible_landmarks() {
    let v = verifier();
    let root = common::testdata();
    let (mut total, mut confident, mut plausible) = (0, 0, 0);
    for (path, boxes) in common::reference_faces() {
        let photo = Photo::open(&root.join(&path)).unwrap();
        let (sx, sy) = photo.scale();
        let inputs: Vec<_> = boxes
            .iter()
            .map(|b| {
                let fb = Rect {
                    x: b[0],
                    y: b[1],
                    w: b[2],
                    h: b[3],
                };
                (&photo.rgb, fb.scaled(1.0 / sx, 1.0 / sy))
            })
            .collect();
        for ((_, b), out) in inputs.iter().zip(v.verify(&inputs)) {
            total += 1;
            if out.probability >= 0.9 {
                confident += 1;
            }
            let [le, re, nose, lm, rm] = out.landmarks;
            let inside = out.landmarks.iter().all(|p| {
                p[0] >= b.x - 0.1 * b.w
                    && p[0] <= b.x + 1.1 * b.w
                    && p[1] >= b.y - 0.1 * b.h
                    && p[1] <= b.y + 1.1 * b.h
            });
            // Upright faces: eyes left to right, above the nose, above the mouth corners.
            let ordered = le[0] < re[0]
                && lm[0] < rm[0]
                && le[1].max(re[1]) < nose[1]
                && nose[1] < lm[1].min(rm[1]);
            if inside && ordered {
                plausible += 1;
            }
            assert!(
                out.refined.iou(b) > 0.3,
                "{path}: O-Net moved the box {b:?} to {:?}",
                out.refined
            );
        }
    }
    eprintln!(
        "{confident}/{total} reference faces at p >= 0.9, {plausible} with plausible landmarks"
    );
    assert!(total >= 120);
    assert!(
        confident as f64 >= 0.95 * total as f64,
        "{confident}/{total}"
    );
    assert!(
        plausible as f64 >= 0.95 * total as f64,
        "{plausible}/{total}"
    );
}

#[test]
fn patches_without_faces_are_not_faces() {
    let v = verifier();
    let root = common::testdata();
    let (mut total, mut rejected) = (0, 0);
    for name in ["mask_white.jpg", "mask_blue.jpg", "mask_black.jpg"] {
        let photo = Photo::open(&root.join("group").join(name)).unwrap();
        let (w, h) = (photo.width as f32, photo.height as f32);
        let mut inputs = Vec::new();
        for side in [0.15f32, 0.25, 0.4] {
            let s = side * w.min(h);
            for i in 0..5 {
                for j in 0..5 {
                    let x = (w - s) * i as f32 / 4.0;
                    let y = (h - s) * j as f32 / 4.0;
                    inputs.push((&photo.rgb, Rect { x, y, w: s, h: s }));
                }
            }
        }
        for out in v.verify(&inputs) {
            total += 1;
            if out.probability < 0.5 {
                rejected += 1;
            }
        }
    }
    eprintln!("{rejected}/{total} face-free patches rejected");
    assert!(rejected as f64 >= 0.95 * total as f64, "{rejected}/{total}");
}

#[test]
fn a_bad_weights_file_is_named() {
    let dir = std::env::temp_dir().join(format!("visage-onet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("onet.pt");
    std::fs::write(&bad, b"not a pickle").unwrap();
    let err = Verifier::load(&bad, &InferenceDevice::cpu())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("onet.pt"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Weights of another network (P-Net's file given as O-Net's) fail with the file and the first
/// tensor that does not fit.
#[test]
fn another_networks_weights_name_the_file_and_the_tensor() {
    let pnet = common::model(&visage::models::PNET);
    let err = Verifier::load(&pnet, &InferenceDevice::cpu())
        .err()
        .expect("P-Net's weights are not O-Net's");
    let text = err.to_string();
    assert!(
        matches!(err, visage::models::WeightsError::Mismatch { .. }),
        "{text}"
    );
    assert!(
        text.contains("pnet.pt")
            && text.contains("tensor `conv1.weight`")
            && text.contains("shape"),
        "{text}"
    );
}
