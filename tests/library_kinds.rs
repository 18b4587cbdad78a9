//! Every kind of file a real library holds, with the real binary on files real tools made from
//! the test photos (`scripts/make-kinds`: ffmpeg, ExifTool): videos give one face per person at
//! the moment it is clearest, a Live Photo and a motion photo give their still's faces only, a
//! RAW and its JPEG are one photo, a file is read as its content says, and every file not read
//! is counted with its reason (ffmpeg or libheif missing too), in the summary and in `--json`.
//! ffmpeg comes from the system, or from its wheel when there is none. A video's face's
//! thumbnail is cut from the still it was found in, and a RAW face's shows the face as its JPEG
//! twin's does.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common::{self, kinds, lines, run, run_tool, run_with, tempdir};

/// The networks' files, fetched once.
fn models() {
    common::model(&visage::models::ONET);
    common::model(&visage::models::PNET);
    common::model(&visage::models::RNET);
    common::model(&visage::models::FACENET);
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn faces(db: &Path) -> Vec<Value> {
    lines(&run(db, &["faces", "--json"], 0))
}

fn f64s(v: &Value, keys: &[&str]) -> Vec<f64> {
    keys.iter().map(|k| v[k].as_f64().unwrap()).collect()
}

/// `visage index --json --no-cluster PATHS`: its report's `index` part.
fn index_json(db: &Path, paths: &[&Path], code: i32) -> Value {
    let mut args = vec!["index", "--json", "--no-cluster"];
    args.extend(paths.iter().map(|p| p.to_str().unwrap()));
    let out = run(db, &args, code);
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["index"].clone()
}

/// The file names in a report's `not_read_files`, each with its `why`.
fn not_read(report: &Value) -> Vec<(String, String)> {
    report["not_read_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = Path::new(f["path"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, f["why"].as_str().unwrap().to_string())
        })
        .collect()
}

/// `dir/name` holding a copy of each file, under its new name.
fn folder(dir: &Path, name: &str, files: &[(PathBuf, &str)]) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    for (from, to) in files {
        std::fs::copy(from, folder.join(to)).unwrap();
    }
    folder
}

fn name_of(face: &Value) -> String {
    Path::new(face["path"].as_str().unwrap())
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_file_not_read_is_counted_with_its_reason() {
    models();
    let kinds = kinds();
    let dir = tempdir("kinds-summary");
    let db = dir.join("library.db");
    let (mixed, live) = (kinds.join("mixed"), kinds.join("live"));
    let out = run(
        &db,
        &[
            "index",
            "--no-cluster",
            mixed.to_str().unwrap(),
            live.to_str().unwrap(),
        ],
        0,
    );
    let text = stdout(&out);
    // IMG_0005.JPG, logo.svg, poster.psd; IMG_0001.JPG and its MOV. The sidecar, the AAE, the
    // Takeout JSON, notes.txt, Thumbs.db, .DS_Store and the NAS thumbnail are not worth a word.
    assert!(
        text.contains("5 files: 2 indexed, 0 unchanged, 0 failed, 3 not read, 0 gone"),
        "{text}"
    );
    for line in [
        "  1 .mov: part of a Live Photo (its still is read)",
        "  1 .psd: not a kind visage reads",
        "  1 .svg: not a kind visage reads",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    let listed = faces(&db);
    let mut names: Vec<String> = listed.iter().map(name_of).collect();
    names.sort();
    assert_eq!(names, ["IMG_0001.JPG", "IMG_0005.JPG"], "{listed:?}");

    // --json lists each file not read, with its reason (and a Live Photo's still).
    let report = index_json(&dir.join("other.db"), &[&mixed, &live], 0);
    assert_eq!(report["files"], 5, "{report}");
    assert_eq!(report["not_read"], 3, "{report}");
    assert_eq!(
        not_read(&report),
        [
            ("IMG_0001.MOV".to_string(), "live_photo".to_string()),
            ("logo.svg".into(), "unsupported".into()),
            ("poster.psd".into(), "unsupported".into()),
        ]
    );
    let mov = &report["not_read_files"][0];
    assert_eq!(mov["reason"], "part of a Live Photo (its still is read)");
    assert!(
        mov["partner"]
            .as_str()
            .is_some_and(|p| p.ends_with("live/IMG_0001.JPG")),
        "{mov}"
    );
    let kinds_list = report["not_read_kinds"].as_array().unwrap();
    assert!(kinds_list.iter().any(|k| k["extension"] == "psd"
        && k["files"] == 1
        && k["reason"] == "not a kind visage reads"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_live_photo_gives_its_still_s_faces_only() {
    models();
    let dir = tempdir("kinds-live");
    common::copy_tree(&kinds().join("live"), &dir.join("live"));
    let (folder, mov) = (dir.join("live"), dir.join("live/IMG_0001.MOV"));
    let db = dir.join("library.db");
    // Named by itself, the MOV is read as the video it is (someone else's face)...
    let report = index_json(&db, &[&mov], 0);
    assert_eq!(
        (report["indexed"].as_u64(), report["videos"].as_u64()),
        (Some(1), Some(1))
    );
    let video_faces = faces(&db);
    assert_eq!(video_faces.len(), 1, "{video_faces:?}");
    // ...but beside its still it is part of the Live Photo: the still is read, the video's row
    // goes, and the faces are the still's alone.
    let report = index_json(&db, &[&folder], 0);
    assert_eq!(report["indexed"], 1, "{report}");
    assert_eq!(report["gone"], 1, "{report}");
    assert_eq!(
        not_read(&report),
        [("IMG_0001.MOV".into(), "live_photo".into())]
    );
    let listed = faces(&db);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(name_of(&listed[0]), "IMG_0001.JPG");
    assert!(listed[0].get("moment").is_none(), "{}", listed[0]);

    // The still alone gives the same face.
    let alone = dir.join("alone.db");
    index_json(&alone, &[&folder.join("IMG_0001.JPG")], 0);
    assert_eq!(
        f64s(&faces(&alone)[0], &["x", "y", "w", "h"]),
        f64s(&listed[0], &["x", "y", "w", "h"])
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_motion_photo_gives_its_still_s_faces_only() {
    models();
    let dir = tempdir("kinds-motion");
    let db = dir.join("library.db");
    let motion = kinds().join("motion");
    let report = index_json(&db, &[&motion], 0);
    assert_eq!(report["indexed"], 2, "{report}");
    assert_eq!(report["videos"], 0, "{report}");
    // Both are Madonna's photo with a video of Ben Affleck after it: the faces are the photo's.
    let plain = common::testdata()
        .join("celebrity/train/madonna/httpwwwetonlinecomphotomadonnabdayjpg.jpg");
    let alone = dir.join("alone.db");
    index_json(&alone, &[&plain], 0);
    let want = faces(&alone);
    assert_eq!(want.len(), 1, "{want:?}");
    let got = faces(&db);
    assert_eq!(got.len(), 2, "{got:?}");
    for f in &got {
        assert_eq!(
            f64s(f, &["x", "y", "w", "h"]),
            f64s(&want[0], &["x", "y", "w", "h"]),
            "{f}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A video's frame at `at` seconds as ffmpeg shows it, written losslessly to `png`, scaled to at
/// most `side` pixels a side.
fn ffmpeg_still(video: &Path, at: f64, side: u32, png: &Path) {
    run_tool(
        "ffmpeg",
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-ss",
            &format!("{at:.3}"),
            "-i",
            video.to_str().unwrap(),
            "-frames:v",
            "1",
            "-vf",
            &format!(
                "scale=w='min({side},iw)':h='min({side},ih)':force_original_aspect_ratio=decrease"
            ),
            "-pix_fmt",
            "rgb24",
            png.to_str().unwrap(),
        ],
    );
}

/// The stills `visage` takes from a video, taken with ffmpeg itself into PNG files (lossless, so
/// visage sees the same pixels): `(moment, path)`.
fn stills(video: &Path, moments: &[f64], into: &Path) -> Vec<(f64, PathBuf)> {
    std::fs::create_dir_all(into).unwrap();
    moments
        .iter()
        .map(|&at| {
            let png = into.join(format!("at-{at:06.3}.png"));
            ffmpeg_still(video, at, 1280, &png);
            (at, png)
        })
        .collect()
}

#[test]
fn a_video_gives_one_face_per_person_at_the_moment_it_is_clearest() {
    models();
    let dir = tempdir("kinds-video");
    let video = kinds().join("video/slideshow.mp4");
    let db = dir.join("library.db");
    let report = index_json(&db, &[&video], 0);
    // 60 s: a still every 10 s, each in the middle of its stretch (key frames every 5 s, so the
    // moments are exactly 5, 15, ... 55 s).
    assert_eq!(
        (report["videos"].as_u64(), report["stills"].as_u64()),
        (Some(1), Some(6))
    );
    let got = faces(&db);
    // Three people, 20 s each, each seen at two moments: three faces.
    assert_eq!(got.len(), 3, "{got:?}");
    let photo = lines(&run(&db, &["faces", "--json"], 0));
    assert!(
        photo
            .iter()
            .all(|f| f["path"].as_str().unwrap().ends_with("slideshow.mp4"))
    );

    // The same stills as PNG files, indexed as photos: two faces of each person.
    let moments = [5.0, 15.0, 25.0, 35.0, 45.0, 55.0];
    let pngs = stills(&video, &moments, &dir.join("stills"));
    let still_db = dir.join("stills.db");
    index_json(&still_db, &[&dir.join("stills")], 0);
    let still_faces = faces(&still_db);
    assert_eq!(still_faces.len(), 6, "{still_faces:?}");
    let at = |f: &Value| -> f64 {
        let name = name_of(f);
        pngs.iter()
            .find(|(_, p)| p.file_name().unwrap().to_string_lossy() == name)
            .unwrap()
            .0
    };
    // Each person's face is the clearer of their two, from that still, its box in the video's
    // full 1920 x 1080 frame (the stills are 1280 x 720).
    for (k, face) in got.iter().enumerate() {
        let moment = face["moment"]
            .as_f64()
            .expect("a video's face has its moment");
        let segment = (moment / 20.0).floor() as usize;
        assert_eq!(segment, k, "one face in each person's 20 s: {got:?}");
        let pair: Vec<&Value> = still_faces
            .iter()
            .filter(|f| (at(f) / 20.0).floor() as usize == segment)
            .collect();
        assert_eq!(pair.len(), 2, "{still_faces:?}");
        let clarity = |f: &Value| f["size"].as_f64().unwrap() * f["probability"].as_f64().unwrap();
        let clearest = pair
            .iter()
            .max_by(|a, b| clarity(a).total_cmp(&clarity(b)))
            .unwrap();
        assert_eq!(moment, at(clearest), "{face} vs {pair:?}");
        // The same pixels; PICO's boxes are whole pixels of each photo's own size, so O-Net
        // refines from boxes a rounding apart.
        let want: Vec<f64> = f64s(clearest, &["x", "y", "w", "h"])
            .iter()
            .map(|v| v * 1.5)
            .collect();
        let side = want[2].max(want[3]);
        for (g, w) in f64s(face, &["x", "y", "w", "h"]).iter().zip(&want) {
            assert!((g - w).abs() < 0.02 * side, "{face} vs {clearest}");
        }
        let (s, t) = (
            face["size"].as_f64().unwrap(),
            clearest["size"].as_f64().unwrap(),
        );
        assert!((s - t).abs() <= 0.02 * t, "{face} vs {clearest}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_turned_video_s_faces_are_in_the_frame_as_shown() {
    models();
    let dir = tempdir("kinds-portrait");
    let video = kinds().join("video/portrait.mov");
    let db = dir.join("library.db");
    index_json(&db, &[&video], 0);
    // 640 x 480 coded, shown turned a quarter: the photo is 480 x 640.
    let stats = lines(&run(&db, &["faces", "--json"], 0));
    assert_eq!(stats.len(), 1, "{stats:?}");
    let face = &stats[0];
    // 8 s: one still, at the first key frame after 4 s (the clip has one every 5 s).
    assert_eq!(face["moment"], 5.0);
    let pngs = stills(&video, &[5.0], &dir.join("stills"));
    let still_db = dir.join("stills.db");
    index_json(&still_db, &[&pngs[0].1], 0);
    let want = &faces(&still_db)[0];
    let image = image::open(&pngs[0].1).unwrap();
    assert_eq!((image.width(), image.height()), (480, 640));
    // The video's still is the frame as shown, at full size: the same pixels, the same face.
    assert_eq!(
        f64s(face, &["x", "y", "w", "h"]),
        f64s(want, &["x", "y", "w", "h"])
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_video_ffmpeg_cannot_read_fails_alone_and_the_run_goes_on() {
    models();
    let dir = tempdir("kinds-broken");
    let folder = folder(
        &dir,
        "photos",
        &[(kinds().join("mixed/IMG_0005.JPG"), "IMG_0005.JPG")],
    );
    std::fs::write(folder.join("broken.mp4"), b"this is not a video at all").unwrap();
    let bytes = std::fs::read(kinds().join("video/slideshow.mp4")).unwrap();
    std::fs::write(folder.join("cut.mp4"), &bytes[..bytes.len() / 50]).unwrap();
    let db = dir.join("library.db");
    let out = run(&db, &["index", "--no-cluster", folder.to_str().unwrap()], 1);
    let text = stdout(&out);
    assert!(
        text.contains("3 files: 1 indexed, 0 unchanged, 2 failed"),
        "{text}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for bad in ["broken.mp4", "cut.mp4"] {
        let line = err
            .lines()
            .find(|l| l.contains(bad))
            .unwrap_or_else(|| panic!("{err}"));
        assert!(line.contains("ffmpeg"), "{line}");
    }
    assert_eq!(faces(&db).len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// A folder on `PATH` holding only links to these programs (found on the real `PATH`).
fn path_with(dir: &Path, programs: &[&str]) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for p in programs {
        // The real program, not a shim that needs its own tools on PATH (pyenv's python3).
        let real = match *p {
            "python3" => {
                let out = run_tool(
                    "python3",
                    "python3",
                    &["-c", "import sys; print(sys.executable)"],
                );
                PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
            }
            other => PathBuf::from(other),
        };
        std::os::unix::fs::symlink(real, dir.join(p)).unwrap();
    }
    dir.to_str().unwrap().to_string()
}

#[test]
fn without_ffmpeg_videos_are_counted_not_read_never_silently() {
    let dir = tempdir("kinds-no-ffmpeg");
    let folder = folder(
        &dir,
        "videos",
        &[(kinds().join("video/portrait.mov"), "clip.mov")],
    );
    // No ffmpeg on PATH, and no python3 to fetch one with, nor a fetched one in the cache.
    let path = path_with(&dir.join("bin"), &[]);
    let models = dir.join("models");
    let db = dir.join("library.db");
    let out = run_with(
        &db,
        &["index", "--no-cluster", folder.to_str().unwrap()],
        0,
        &[
            ("VISAGE_DEVICE", "cpu"),
            ("PATH", &path),
            ("VISAGE_MODELS", models.to_str().unwrap()),
        ],
    );
    let text = stdout(&out);
    assert!(
        text.contains("1 file: 0 indexed, 0 unchanged, 0 failed, 1 not read"),
        "{text}"
    );
    assert!(
        text.contains("  1 .mov: ffmpeg not found (install ffmpeg"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn ffmpeg_is_fetched_from_its_wheel_when_the_system_has_none() {
    models();
    let dir = tempdir("kinds-fetched-ffmpeg");
    // python3 (with pip) but no ffmpeg on PATH: the static build comes from the imageio-ffmpeg
    // wheel, once, into the models folder (the tests' own, kept between runs).
    let path = path_with(&dir.join("bin"), &["python3"]);
    let models = common::model(&visage::models::ONET)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let db = dir.join("library.db");
    let video = kinds().join("video/portrait.mov");
    let out = run_with(
        &db,
        &["index", "--json", "--no-cluster", video.to_str().unwrap()],
        0,
        &[
            ("VISAGE_DEVICE", "cpu"),
            ("PATH", &path),
            ("VISAGE_MODELS", models.to_str().unwrap()),
        ],
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["index"]["videos"], 1, "{report}");
    let fetched = models.join(visage::photo::video::FFMPEG_WHEEL.file);
    assert!(fetched.is_file(), "{}", fetched.display());
    assert_eq!(faces(&db).len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_video_gets_no_sidecar_and_two_photos_never_share_one() {
    models();
    let dir = tempdir("kinds-sidecars");
    // One shot kept as JPEG and as PNG: both are read (neither is a RAW).
    let jpeg = kinds().join("mixed/IMG_0005.JPG");
    let folder = folder(
        &dir,
        "photos",
        &[
            (kinds().join("video/portrait.mov"), "clip.mov"),
            (jpeg.clone(), "IMG_7.jpg"),
        ],
    );
    run_tool(
        "ffmpeg",
        "ffmpeg",
        &[
            "-nostdin",
            "-v",
            "error",
            "-i",
            jpeg.to_str().unwrap(),
            folder.join("IMG_7.png").to_str().unwrap(),
        ],
    );
    let db = dir.join("library.db");
    run(&db, &["index", "--no-cluster", folder.to_str().unwrap()], 0);
    let listed = faces(&db);
    assert_eq!(listed.len(), 3, "{listed:?}");
    for f in &listed {
        run(&db, &["name", f["id"].as_str().unwrap(), "Someone"], 0);
    }
    // Sidecars named after the whole file name: one each, none for the video.
    let out = run(&db, &["export", "xmp"], 0);
    let text = stdout(&out);
    assert!(
        text.contains("1 video with named faces left out: a video gets no sidecar"),
        "{text}"
    );
    let mut sidecars: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".xmp"))
        .collect();
    sidecars.sort();
    assert_eq!(sidecars, ["IMG_7.jpg.xmp", "IMG_7.png.xmp"]);
    // Named as Lightroom names them, both would be IMG_7.xmp: each is refused, naming the other.
    let out = run(&db, &["export", "xmp", "--sidecar-name", "photo.xmp"], 1);
    let err = String::from_utf8_lossy(&out.stderr);
    for (photo, other) in [("IMG_7.jpg", "IMG_7.png"), ("IMG_7.png", "IMG_7.jpg")] {
        assert!(
            err.lines()
                .any(|l| l.contains("IMG_7.xmp would be the sidecar of")
                    && l.ends_with(&format!("{other} too; use --sidecar-name photo.jpg.xmp"))),
            "{photo}: {err}"
        );
    }
    assert!(!folder.join("IMG_7.xmp").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_raw_and_its_jpeg_are_one_photo_whose_faces_count_once() {
    models();
    let dir = tempdir("kinds-stack");
    common::copy_tree(&kinds().join("stack"), &dir.join("stack"));
    let folder = dir.join("stack");
    let db = dir.join("library.db");
    // The RAW alone is read (its faces are the group photo's)...
    let report = index_json(&db, &[&folder.join("IMG_0004.DNG")], 0);
    assert_eq!(report["indexed"], 1, "{report}");
    let raw_faces = faces(&db).len();
    assert!(raw_faces >= 5, "{raw_faces} faces in the RAW");
    // ...beside its JPEG the two are one photo: the JPEG is read, the RAW counted once, stacked,
    // and its row goes, so no face is counted twice.
    let report = index_json(&db, &[&folder], 0);
    assert_eq!(
        (
            report["files"].as_u64(),
            report["indexed"].as_u64(),
            report["gone"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(
        not_read(&report),
        [("IMG_0004.DNG".into(), "stacked".into())]
    );
    assert!(
        report["not_read_files"][0]["partner"]
            .as_str()
            .is_some_and(|p| p.ends_with("IMG_0004.JPG"))
    );
    let listed = faces(&db);
    assert!(
        listed.iter().all(|f| name_of(f) == "IMG_0004.JPG"),
        "{listed:?}"
    );
    let alone = dir.join("alone.db");
    index_json(&alone, &[&folder.join("IMG_0004.JPG")], 0);
    assert_eq!(listed.len(), faces(&alone).len());
    let out = run(
        &dir.join("text.db"),
        &["index", "--no-cluster", folder.to_str().unwrap()],
        0,
    );
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l == "  1 .dng: stacked with its JPEG (the JPEG is read)"),
        "{}",
        stdout(&out)
    );
    // Beside a HEIF of the same name, the HEIF is read, and the line says so.
    let heif = dir.join("heif");
    std::fs::create_dir_all(&heif).unwrap();
    std::fs::copy(folder.join("IMG_0004.DNG"), heif.join("IMG_0009.DNG")).unwrap();
    std::fs::copy(
        common::testdata().join("heif/group.heic"),
        heif.join("IMG_0009.HEIC"),
    )
    .unwrap();
    let report = index_json(&dir.join("heif.db"), &[&heif], 0);
    assert_eq!(report["indexed"], 1, "{report}");
    let stacked = &report["not_read_files"][0];
    assert_eq!(
        (stacked["why"].as_str(), stacked["detail"].as_str()),
        (Some("stacked"), Some("HEIF")),
        "{report}"
    );
    assert_eq!(
        stacked["reason"], "stacked with its HEIF (the HEIF is read)",
        "{report}"
    );
    assert!(
        stacked["partner"]
            .as_str()
            .is_some_and(|p| p.ends_with("IMG_0009.HEIC")),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A point of the stored image in the image as shown with EXIF `orientation` (stored size `w x h`).
fn shown_point(orientation: u64, w: f64, h: f64, (x, y): (f64, f64)) -> (f64, f64) {
    match orientation {
        2 => (w - x, y),
        3 => (w - x, h - y),
        4 => (x, h - y),
        5 => (y, x),
        6 => (h - y, x),
        7 => (h - y, w - x),
        8 => (y, w - x),
        _ => (x, y),
    }
}

#[test]
fn a_raw_s_sidecar_regions_lie_where_its_readers_draw_them() {
    models();
    let dir = tempdir("kinds-raw-xmp");
    // A DNG stored a quarter turn left (Orientation 6), of the group photo at twice its size.
    let raw = dir.join("IMG_0006.DNG");
    std::fs::copy(common::testdata().join("raw/group-rot.dng"), &raw).unwrap();
    let db = dir.join("library.db");
    index_json(&db, &[&raw], 0);
    let listed = faces(&db);
    assert!(listed.len() >= 5, "{listed:?}");
    for (k, f) in listed.iter().enumerate() {
        run(
            &db,
            &["name", f["id"].as_str().unwrap(), &format!("Person {k}")],
            0,
        );
    }
    // darktable's and digiKam's name by default, Lightroom's on request.
    run(&db, &["export", "xmp"], 0);
    run(&db, &["export", "xmp", "--sidecar-name", "photo.xmp"], 0);
    let sidecar = dir.join("IMG_0006.DNG.xmp");
    assert!(sidecar.is_file() && dir.join("IMG_0006.xmp").is_file());

    // What ExifTool reads: the RAW's stored size and orientation, and the sidecar's regions.
    let exif = |file: &Path, tags: &[&str]| -> Value {
        let mut args = vec!["-j", "-struct", "-n"];
        args.extend(tags);
        args.push(file.to_str().unwrap());
        serde_json::from_slice::<Value>(
            &run_tool("exiftool", "libimage-exiftool-perl", &args).stdout,
        )
        .unwrap()[0]
            .clone()
    };
    let dng = exif(
        &raw,
        &["-IFD0:ImageWidth", "-IFD0:ImageHeight", "-IFD0:Orientation"],
    );
    let (w, h) = (
        dng["ImageWidth"].as_f64().unwrap(),
        dng["ImageHeight"].as_f64().unwrap(),
    );
    let orientation = dng["Orientation"].as_u64().unwrap();
    assert_eq!(orientation, 6, "{dng}");
    let regions = exif(&sidecar, &["-RegionInfo"]);
    let info = &regions["RegionInfo"];
    // Regions refer to the RAW's own stored pixels.
    assert_eq!(info["AppliedToDimensions"]["W"].as_f64(), Some(w), "{info}");
    assert_eq!(info["AppliedToDimensions"]["H"].as_f64(), Some(h), "{info}");

    // Turned as its readers show the RAW, each region lies on a face of the upright photo it was
    // made from (at twice its size).
    let jpeg_db = dir.join("jpeg.db");
    index_json(&jpeg_db, &[&common::testdata().join("group/t1.jpg")], 0);
    let upright: Vec<[f64; 4]> = faces(&jpeg_db)
        .iter()
        .map(|f| {
            let v = f64s(f, &["x", "y", "w", "h"]);
            [2.0 * v[0], 2.0 * v[1], 2.0 * v[2], 2.0 * v[3]]
        })
        .collect();
    let list = info["RegionList"].as_array().unwrap();
    assert_eq!(list.len(), listed.len(), "{info}");
    for r in list {
        let a = &r["Area"];
        let (cx, cy, rw, rh) = (
            a["X"].as_f64().unwrap() * w,
            a["Y"].as_f64().unwrap() * h,
            a["W"].as_f64().unwrap() * w,
            a["H"].as_f64().unwrap() * h,
        );
        let p = shown_point(orientation, w, h, (cx - rw / 2.0, cy - rh / 2.0));
        let q = shown_point(orientation, w, h, (cx + rw / 2.0, cy + rh / 2.0));
        let shown = [
            p.0.min(q.0),
            p.1.min(q.1),
            (p.0 - q.0).abs(),
            (p.1 - q.1).abs(),
        ];
        let best = upright.iter().map(|u| iou(shown, *u)).fold(0.0, f64::max);
        assert!(
            best > 0.6,
            "region {r} shown at {shown:?}: best IoU {best} with {upright:?}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The review page's thumbnails of a library's faces, by face id.
fn thumbnails(db: &Path, dir: &Path) -> Vec<(Value, image::RgbImage)> {
    use crate::server::{self, Client};
    let lib = server::Library {
        dir: dir.to_path_buf(),
        photos: dir.to_path_buf(),
        db: db.to_path_buf(),
        cache: dir.join("cache"),
    };
    let api = server::Api::new(&lib);
    faces(db)
        .into_iter()
        .map(|face| {
            let r = api.get(&format!("/faces/{}.jpg", face["id"].as_str().unwrap()));
            assert_eq!(r.status, 200, "{}", r.text());
            let thumb = image::load_from_memory(&r.body).unwrap().into_rgb8();
            assert_eq!(thumb.dimensions(), (256, 256));
            (face, thumb)
        })
        .collect()
}

#[test]
fn a_raw_face_s_thumbnail_shows_the_face_its_jpeg_twin_s_does() {
    models();
    let dir = tempdir("kinds-raw-thumbs");
    // Two DNGs of the group photo at twice its size, each with the photo as its real embedded
    // preview (scripts/dng.py, read back by ExifTool): one upright, one stored a quarter turn
    // left (Orientation 6), and the photo itself as their JPEG twin, each in a library of its own.
    let raws = folder(
        &dir,
        "raw",
        &[
            (common::testdata().join("raw/group.dng"), "IMG_0007.DNG"),
            (common::testdata().join("raw/group-rot.dng"), "IMG_0008.DNG"),
        ],
    );
    let jpegs = folder(
        &dir,
        "jpeg",
        &[(common::testdata().join("group/t1.jpg"), "IMG_0009.JPG")],
    );
    let (raw_db, jpeg_db) = (dir.join("raw.db"), dir.join("jpeg.db"));
    index_json(&raw_db, &[&raws], 0);
    index_json(&jpeg_db, &[&jpegs], 0);
    let twins = thumbnails(&jpeg_db, &dir.join("jpeg-server"));
    assert!(twins.len() >= 5, "{} faces in the JPEG", twins.len());
    let raw = thumbnails(&raw_db, &dir.join("raw-server"));
    for file in ["IMG_0007.DNG", "IMG_0008.DNG"] {
        let mine: Vec<_> = raw.iter().filter(|(f, _)| name_of(f) == file).collect();
        assert_eq!(mine.len(), twins.len(), "{file}: {mine:?}");
        for (face, thumb) in mine {
            // Its twin: the JPEG's face in the same place (the RAW is twice the JPEG's size).
            let b: Vec<f64> = f64s(face, &["x", "y", "w", "h"])
                .iter()
                .map(|v| v / 2.0)
                .collect();
            let near = |(f, _): &&(Value, image::RgbImage)| {
                let t = f64s(f, &["x", "y", "w", "h"]);
                iou([b[0], b[1], b[2], b[3]], [t[0], t[1], t[2], t[3]])
            };
            let twin = twins
                .iter()
                .max_by(|a, b| near(a).total_cmp(&near(b)))
                .unwrap();
            assert!(near(&twin) > 0.6, "{file}: {face} has no twin in the JPEG");
            // The same face, upright, as the twin's thumbnail shows it (each library found its
            // faces itself, so the squares differ by a few pixels); not any other face.
            let own = common::mean_abs_diff(thumb, &twin.1);
            let other = twins
                .iter()
                .filter(|t| !std::ptr::eq(*t, twin))
                .map(|t| common::mean_abs_diff(thumb, &t.1))
                .fold(f64::INFINITY, f64::min);
            assert!(
                own < 16.0 && other > own + 20.0,
                "{file}: {face}: {own} from its twin's thumbnail, {other} from another face's"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let w = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
    let h = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
    w * h / (a[2] * a[3] + b[2] * b[3] - w * h)
}

#[test]
fn a_file_is_read_as_its_content_says_whatever_its_name() {
    models();
    let dir = tempdir("kinds-content");
    // A video named as a JPEG, and a JPEG named as a video.
    let folder = folder(
        &dir,
        "photos",
        &[
            (kinds().join("video/portrait.mov"), "clip.jpg"),
            (kinds().join("mixed/IMG_0005.JPG"), "photo.mov"),
        ],
    );
    let db = dir.join("library.db");
    let report = index_json(&db, &[&folder], 0);
    assert_eq!(
        (
            report["indexed"].as_u64(),
            report["videos"].as_u64(),
            report["failed"].as_u64()
        ),
        (Some(2), Some(1), Some(0)),
        "{report}"
    );
    let got = faces(&db);
    assert_eq!(got.len(), 2, "{got:?}");
    for face in &got {
        match name_of(face).as_str() {
            "clip.jpg" => assert_eq!(face["moment"], 5.0, "{face}"),
            "photo.mov" => assert!(face.get("moment").is_none(), "{face}"),
            other => panic!("{other}"),
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_heif_without_libheif_is_counted_not_read_with_how_to_get_it() {
    use visage::photo::heif::Origin;
    models();
    let dir = tempdir("kinds-no-libheif");
    let folder = folder(
        &dir,
        "photos",
        &[
            (common::testdata().join("heif/group.heic"), "IMG_0007.HEIC"),
            (kinds().join("mixed/IMG_0005.JPG"), "IMG_0008.JPG"),
        ],
    );
    let settings = visage::config::Settings {
        device: visage::config::DeviceChoice::Cpu,
        models: std::env::var_os("VISAGE_MODELS").map(Into::into),
        ..Default::default()
    };
    // The system's libheif not asked for, and none can be fetched: the machine a user without
    // libheif1 and pip has.
    let nowhere = visage::models::Models::new(Some("/dev/null/models".into()));
    let reader = visage::photo::Reader::with_libheif(nowhere, Origin::Wheel);
    let mut store = visage::store::Store::open_or_create(&dir.join("library.db")).unwrap();
    let mut errors = Vec::new();
    let report = visage::index::index(
        &mut store,
        || visage::pipeline::Pipeline::new(&settings, true),
        &reader,
        std::slice::from_ref(&folder),
        &visage::index::IndexOptions::new(&settings, None),
        |p, why| errors.push(format!("{}: {why}", p.display())),
    )
    .unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        (report.files, report.indexed, report.failed, report.not_read),
        (2, 1, 0, 1),
        "{report:?}"
    );
    let kind = &report.not_read_kinds[0];
    assert_eq!((kind.extension.as_str(), kind.files), ("heic", 1));
    assert!(
        kind.reason.contains("apt-get install libheif1") && kind.reason.contains("pip"),
        "{}",
        kind.reason
    );
    assert!(report.not_read_files[0].path.ends_with("IMG_0007.HEIC"));
    // Nothing of it is stored: with libheif, the next run reads it.
    let reader = visage::photo::Reader::new(visage::models::Models::new(settings.models.clone()));
    let report = visage::index::index(
        &mut store,
        || visage::pipeline::Pipeline::new(&settings, true),
        &reader,
        std::slice::from_ref(&folder),
        &visage::index::IndexOptions::new(&settings, None),
        |p, why| panic!("{}: {why}", p.display()),
    )
    .unwrap();
    assert_eq!(
        (report.indexed, report.unchanged, report.not_read),
        (1, 1, 0),
        "{report:?}"
    );
    assert!(report.faces >= 5, "{report:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A video's full frame at `at` seconds, as ffmpeg shows it, lossless.
fn full_still(video: &Path, at: f64, png: &Path) -> image::RgbImage {
    ffmpeg_still(video, at, 1 << 16, png);
    image::open(png).unwrap().into_rgb8()
}

#[test]
fn a_video_face_s_thumbnail_is_cut_from_the_still_it_was_found_in() {
    use crate::server::{self, Client};
    models();
    let dir = tempdir("kinds-video-thumbs");
    let photos = folder(
        &dir,
        "photos",
        &[(kinds().join("video/slideshow.mp4"), "slideshow.mp4")],
    );
    let video = photos.join("slideshow.mp4");
    let db = dir.join("visage.db");
    index_json(&db, &[&video], 0);
    let got = faces(&db);
    assert_eq!(got.len(), 3, "{got:?}");
    let lib = server::Library {
        dir: dir.clone(),
        photos,
        db,
        cache: dir.join("cache"),
    };
    let api = server::Api::new(&lib);
    let still_of = |face: &Value| {
        let at = face["moment"].as_f64().unwrap();
        full_still(&video, at, &dir.join(format!("at-{at}.png")))
    };
    for (k, face) in got.iter().enumerate() {
        let r = api.get(&format!("/faces/{}.jpg", face["id"].as_str().unwrap()));
        assert_eq!(r.status, 200, "{}", r.text());
        let thumb = image::load_from_memory(&r.body).unwrap().into_rgb8();
        assert_eq!(thumb.dimensions(), (256, 256));
        // The face's square of its own still, not the same square of another moment (another
        // person stands there then).
        let own = common::mean_abs_diff(&thumb, &common::face_square(&still_of(face), face));
        let other = common::mean_abs_diff(
            &thumb,
            &common::face_square(&still_of(&got[(k + 1) % 3]), face),
        );
        assert!(own < 8.0 && other > own + 5.0, "{face}: {own} vs {other}");
    }
    // The video's view: the still of its first face, the boxes of that still's faces.
    let photo = got[0]["photo"].as_str().unwrap();
    let r = api.get(&format!("/photos/{photo}.jpg"));
    assert_eq!(r.status, 200, "{}", r.text());
    let view = image::load_from_memory(&r.body).unwrap().into_rgb8();
    assert_eq!(view.dimensions(), (1600, 900));
    let first = image::imageops::resize(
        &still_of(&got[0]),
        1600,
        900,
        image::imageops::FilterType::CatmullRom,
    );
    assert!(common::mean_abs_diff(&view, &first) < 8.0);
    let listed = api.get(&format!("/api/photos/{photo}")).json();
    let moments: Vec<f64> = listed["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["moment"].as_f64().unwrap())
        .collect();
    assert_eq!(moments.len(), 3, "{listed}");
    let _ = std::fs::remove_dir_all(dir);
}
