//! O-Net on real photos: it says "face" for the reference faces and puts their landmarks where a
//! face has them, says "not a face" for patches of photos without faces, and refuses a bad weights
//! file with its name. And MTCNN's three networks as prepared for the CPU give what Burn's own
//! forward passes give, on real photos.

use crate::common;
use burn::tensor::{Device, Tensor, TensorData};
use visage::alignment;
use visage::detection::mtcnn::cpu::{CpuPNet, CpuRefiner, Rows};
use visage::detection::mtcnn::layers::{batch, floats, normalise};
use visage::detection::mtcnn::{Verifier, pnet, weights};
use visage::device::InferenceDevice;
use visage::geometry::Rect;
use visage::models::{ONET, PNET, RNET};
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

/// The largest difference between two networks' answers, which must have the same shape.
fn max_abs_diff(a: &Rows, b: &Rows) -> f32 {
    assert_eq!((a.width, a.values.len()), (b.width, b.values.len()));
    a.values
        .iter()
        .zip(&b.values)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max)
}

#[test]
fn mtcnn_prepared_for_the_cpu_matches_burns_forward_on_every_value() {
    let device = Device::flex();
    let root = common::testdata();
    // The reference photo with the most faces.
    let (path, boxes) = common::reference_faces()
        .into_iter()
        .max_by_key(|(_, b)| b.len())
        .unwrap();
    let photo = Photo::open(&root.join(&path)).unwrap();
    let (w, h) = photo.rgb.dimensions();
    // P-Net on the whole photo at three pyramid levels, the short side 25 to 301 px (odd widths:
    // ceil-mode pooling clips the last window of odd sides).
    let net = weights::load_pnet(&common::model(&PNET), &device).unwrap();
    let cpu = CpuPNet::new(&net);
    for short in [300f32, 80.0, 25.0] {
        let scale = short / w.min(h) as f32;
        let (sw, sh) = ((w as f32 * scale) as usize | 1, (h as f32 * scale) as usize);
        let whole = Rect {
            x: 0.0,
            y: 0.0,
            w: w as f32,
            h: h as f32,
        };
        let pixels = alignment::crop_rect(&photo.rgb, whole, sw as u32, sh as u32);
        let mut input = vec![0f32; 3 * sw * sh];
        alignment::to_chw(&pixels, &mut input, normalise);
        let y = net.forward(Tensor::from_data(
            TensorData::new(input, [1, 3, sh, sw]),
            &device,
        ));
        let cells = pnet::output_side(sh) * pnet::output_side(sw);
        let burn = Rows::from_planes(
            cells,
            &[(&floats(y.probability), 2), (&floats(y.regression), 4)],
        );
        let ours = cpu.forward(&pixels, sh, sw);
        let diff = max_abs_diff(&ours, &burn);
        eprintln!("P-Net {sw} x {sh}: {cells} cells, max |cpu - burn| = {diff:e}");
        assert!(diff <= 1e-4, "P-Net {sw} x {sh}: {diff}");
        // Faces and not: the probabilities span the range, so the comparison means something.
        let faces = (0..cells).filter(|&k| ours.face(k) > 0.6).count();
        assert!(faces > 0 && faces < cells, "{faces} of {cells} cells");
    }
    // R-Net and O-Net on the reference faces and on boxes beside them.
    let (sx, sy) = photo.scale();
    let mut regions: Vec<Rect> = Vec::new();
    for b in &boxes {
        let r = Rect {
            x: b[0],
            y: b[1],
            w: b[2],
            h: b[3],
        }
        .scaled(1.0 / sx, 1.0 / sy);
        regions.push(r);
        regions.push(Rect { x: r.x + r.w, ..r });
    }
    regions.push(Rect {
        x: 0.0,
        y: 0.0,
        w: w as f32 / 8.0,
        h: h as f32 / 8.0,
    });
    let rnet = weights::load_rnet(&common::model(&RNET), &device).unwrap();
    let onet = weights::load_onet(&common::model(&ONET), &device).unwrap();
    for (name, cpu, side) in [
        ("R-Net", CpuRefiner::rnet(&rnet), 24),
        ("O-Net", CpuRefiner::onet(&onet), 48),
    ] {
        let crops: Vec<Vec<u8>> = regions
            .iter()
            .map(|r| alignment::crop(&photo.rgb, *r, side as u32))
            .collect();
        let n = crops.len();
        let burn = if side == 24 {
            let y = rnet.forward(batch(&crops, side, &device));
            Rows::from_rows(
                n,
                &[(&floats(y.probability), 2), (&floats(y.regression), 4)],
            )
        } else {
            let y = onet.forward(batch(&crops, side, &device));
            Rows::from_rows(
                n,
                &[
                    (&floats(y.probability), 2),
                    (&floats(y.regression), 4),
                    (&floats(y.landmarks), 10),
                ],
            )
        };
        let ours = cpu.forward(&crops.concat(), n);
        let diff = max_abs_diff(&ours, &burn);
        eprintln!("{name}: {n} crops, max |cpu - burn| = {diff:e}");
        assert!(diff <= 1e-4, "{name}: {diff}");
        let faces = (0..n).filter(|&k| ours.face(k) > 0.7).count();
        assert!(faces > 0 && faces < n, "{name}: {faces} of {n} crops");
    }
}
