//! The `visage detect` command end to end: JSON output, bad files, exit codes, settings checks and
//! EXIF orientation, with the real binary on real photos.

use crate::common::{self, lines, tempdir, visage};

use std::path::Path;

#[test]
fn bad_files_are_named_and_the_run_goes_on() {
    let dir = tempdir("bad-files");
    // The bomb (a PNG header announcing 60000 x 60000 pixels) must be refused, not allocated.
    let bad = common::bad_files(&dir);
    std::fs::write(dir.join("notes.txt"), b"ignored: not a photo extension").unwrap();

    let out = visage(
        &["detect", "--json", "--device", "cpu", dir.to_str().unwrap()],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "some files failed: {stderr}");
    common::assert_each_named(&stderr, &bad);
    assert!(!stderr.contains("notes.txt"));
    let json = lines(&out);
    // The truncated JPEG may still decode partially; the good photo must be there with its faces.
    let good = json
        .iter()
        .find(|j| j["path"].as_str().unwrap().ends_with("a_good.jpg"))
        .unwrap();
    assert_eq!(
        (good["width"].as_u64(), good["height"].as_u64()),
        (Some(1280), Some(886))
    );
    let faces = good["faces"].as_array().unwrap();
    assert!(faces.len() >= 5, "{good}");
    for f in faces {
        for k in ["x", "y", "w", "h", "score"] {
            assert!(f[k].is_number(), "{f}");
        }
    }
}

#[test]
fn missing_paths_fail_with_their_name() {
    // Refused before any work (tests/mistakes.rs checks every command that takes paths).
    let out = visage(&["detect", "--device", "cpu", "/no/such/photo.jpg"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/photo.jpg"));
}

#[test]
fn out_of_range_settings_are_refused_by_flag_and_by_env() {
    let t1 = common::testdata().join("group/t1.jpg");
    let t1 = t1.to_str().unwrap();
    let out = visage(&["detect", "--face-overlap", "0", t1], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--face-overlap") && err.contains("1 to 100"),
        "{err}"
    );

    let out = visage(&["detect", t1], &[("VISAGE_FACE_SIZE", "5")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--face-size") && err.contains("20 to 10000"),
        "{err}"
    );

    // In range from the environment: taken.
    let out = visage(
        &["detect", "--json", "--device", "cpu", t1],
        &[("VISAGE_FACE_SIZE", "400")],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        lines(&out)[0]["faces"].as_array().unwrap().len(),
        0,
        "no face is 400 px wide"
    );
}

#[test]
fn exif_orientation_is_applied_and_boxes_are_in_oriented_pixels() {
    // Store t1.jpg turned 90 degrees counter-clockwise with EXIF orientation 6 ("rotate 90 CW to
    // view"): visage must see the upright photo and report boxes in its pixels.
    let dir = tempdir("exif");
    let src = common::testdata().join("group/t1.jpg");
    let upright = image::open(&src).unwrap();
    let stored = upright.rotate270();
    let mut jpeg = Vec::new();
    stored
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let rotated = dir.join("t1_exif6.jpg");
    std::fs::write(&rotated, with_exif_orientation(&jpeg, 6)).unwrap();
    let plain = dir.join("t1_plain.jpg");
    std::fs::write(&plain, &jpeg).unwrap();

    let run = |p: &Path| {
        let out = visage(
            &["detect", "--json", "--device", "cpu", p.to_str().unwrap()],
            &[],
        );
        assert_eq!(out.status.code(), Some(0));
        lines(&out).remove(0)
    };
    let reference = run(&src);
    let oriented = run(&rotated);
    assert_eq!(
        (oriented["width"].as_u64(), oriented["height"].as_u64()),
        (Some(1280), Some(886))
    );
    let faces = |j: &serde_json::Value| -> Vec<[f32; 4]> {
        j["faces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| ["x", "y", "w", "h"].map(|k| f[k].as_f64().unwrap() as f32))
            .collect()
    };
    let (want, got) = (faces(&reference), faces(&oriented));
    assert!(want.len() >= 5);
    let matched = want
        .iter()
        .filter(|w| got.iter().any(|g| common::iou(**w, *g) > 0.7))
        .count();
    assert!(matched + 1 >= want.len(), "{want:?} vs {got:?}");
    // Without the tag the same pixels are a sideways photo: the upright faces are not found.
    let sideways = run(&plain);
    assert_eq!(sideways["width"].as_u64(), Some(886));
}

/// Insert an APP1 Exif segment holding only the orientation tag right after the JPEG's SOI.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes()); // IFD0 offset
    tiff.extend(1u16.to_le_bytes()); // one entry
    tiff.extend(0x0112u16.to_le_bytes()); // Orientation
    tiff.extend(3u16.to_le_bytes()); // SHORT
    tiff.extend(1u32.to_le_bytes());
    tiff.extend(orientation.to_le_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_le_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}
