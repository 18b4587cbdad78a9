//! XMP export and import with the real binary, real photos and a real reader no one here wrote:
//! ExifTool (Debian's libimage-exiftool-perl) reads every exported sidecar back, for all 8 EXIF
//! orientations; a library survives export, a deleted database, a new index and import; regions
//! ExifTool wrote (MWG in a sidecar, Microsoft inside a JPEG) are imported; an existing sidecar
//! keeps its rating and keywords; hostile XMP is a per-file error.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{self, faces, iou, lines, models, run, tempdir};
use image::DynamicImage;
use image::metadata::Orientation;
use serde_json::Value;

/// `exiftool ARGS`, which must succeed; without ExifTool the test fails naming its package.
fn exiftool(args: &[&str]) -> Output {
    let out = Command::new(common::tools::exiftool())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "exiftool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn exif_json(file: &Path, tags: &[&str]) -> Value {
    let mut args = vec!["-j", "-struct", "-n"];
    args.extend(tags);
    args.push(file.to_str().unwrap());
    let out = exiftool(&args);
    serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone()
}

/// `visage import xmp --json DIR`: its report.
fn import_json(db: &Path, dir: &Path) -> Value {
    serde_json::from_slice(&run(db, &["import", "xmp", "--json", dir.to_str().unwrap()], 0).stdout)
        .unwrap()
}

/// The strings of a JSON array (ExifTool writes a one-item list as a plain string).
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(|s| s.as_str().unwrap().to_string()).collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The names of a sidecar's MWG regions, as ExifTool reads them.
fn region_names(tags: &Value) -> Vec<String> {
    tags["RegionInfo"]["RegionList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Name"].as_str().unwrap().to_string())
        .collect()
}

/// A face's id as the commands take it (`f12`), as `faces --json` writes it.
fn face_ref(f: &Value) -> String {
    f["id"].as_str().unwrap().to_string()
}

fn boxes(v: &Value) -> [f64; 4] {
    ["x", "y", "w", "h"].map(|k| v[k].as_f64().unwrap())
}

/// The 8 ways to turn and mirror an image.
fn dihedral(img: &DynamicImage, k: usize) -> DynamicImage {
    match k {
        0 => img.clone(),
        1 => img.fliph(),
        2 => img.rotate180(),
        3 => img.flipv(),
        4 => img.rotate90().fliph(),
        5 => img.rotate90(),
        6 => img.rotate270().fliph(),
        _ => img.rotate270(),
    }
}

/// The pixel operation that makes a stored image which, shown with EXIF `orientation`, is
/// `shown`: found by trying all 8 against the image crate's own `apply_orientation`.
fn stored_op(shown: &DynamicImage, orientation: u8) -> usize {
    (0..8)
        .find(|&k| {
            let mut back = dihedral(shown, k);
            back.apply_orientation(Orientation::from_exif(orientation).unwrap());
            back.as_bytes() == shown.as_bytes() && back.width() == shown.width()
        })
        .expect("one of the 8 operations")
}

/// The map from stored pixels to shown pixels (continuous coordinates) that pixel operation
/// `op` made, measured on an image whose pixels hold their own coordinates; nothing of visage's
/// orientation code is used.
fn stored_to_shown(shown: (u32, u32), op: usize) -> impl Fn(f64, f64) -> (f64, f64) {
    let coords = image::ImageBuffer::from_fn(shown.0, shown.1, |x, y| {
        image::Rgb([x as u16, y as u16, 0u16])
    });
    let stored = dihedral(&DynamicImage::ImageRgb16(coords), op).into_rgb16();
    let at = |x, y| {
        let p = stored.get_pixel(x, y);
        (p[0] as f64, p[1] as f64)
    };
    let (o, ex, ey) = (at(0, 0), at(1, 0), at(0, 1));
    let (a, b) = ((ex.0 - o.0, ex.1 - o.1), (ey.0 - o.0, ey.1 - o.1));
    // Pixel centres map affinely: shown = o + a * (u - 0.5) + b * (v - 0.5), then + 0.5.
    move |u, v| {
        let (u, v) = (u - 0.5, v - 0.5);
        (o.0 + a.0 * u + b.0 * v + 0.5, o.1 + a.1 * u + b.1 * v + 0.5)
    }
}

/// A stored-image rectangle (normalised, top-left corner) in shown pixels.
fn shown_box(map: &impl Fn(f64, f64) -> (f64, f64), stored: (f64, f64), r: [f64; 4]) -> [f64; 4] {
    let (x0, y0) = map(r[0] * stored.0, r[1] * stored.1);
    let (x1, y1) = map((r[0] + r[2]) * stored.0, (r[1] + r[3]) * stored.1);
    [x0.min(x1), y0.min(y1), (x1 - x0).abs(), (y1 - y0).abs()]
}

/// The group photo stored in all 8 orientations (re-encoded, EXIF Orientation set by ExifTool),
/// each shown exactly as the original; returns (file, orientation, pixel op).
fn oriented_copies(dir: &Path) -> Vec<(PathBuf, u8, usize)> {
    let shown = image::open(common::testdata().join("group/t1.jpg")).unwrap();
    let mut out = Vec::new();
    for o in 1..=8u8 {
        let op = stored_op(&shown, o);
        let path = dir.join(format!("t1-orientation-{o}.jpg"));
        let mut f = std::fs::File::create(&path).unwrap();
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut f, 95);
        dihedral(&shown, op)
            .into_rgb8()
            .write_with_encoder(enc)
            .unwrap();
        f.flush().unwrap();
        drop(f);
        let tag = format!("-Orientation={o}");
        exiftool(&[
            "-q",
            "-n",
            "-overwrite_original",
            &tag,
            path.to_str().unwrap(),
        ]);
        out.push((path, o, op));
    }
    out
}

#[test]
fn exported_regions_read_back_in_every_orientation_and_survive_a_new_database() {
    models();
    let dir = tempdir("xmp-orient");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let copies = oriented_copies(&photos);
    let db = dir.join("v.db");
    run(&db, &["index", "--no-cluster", photos.to_str().unwrap()], 0);

    // Name every face by hand, each with a name of its own.
    let before = faces(&db);
    assert!(
        before.len() >= 8 * 3,
        "t1.jpg has several faces in each copy: {before:?}"
    );
    for f in &before {
        run(
            &db,
            &["name", &face_ref(f), &format!("Person {}", face_ref(f))],
            0,
        );
    }
    let out = run(&db, &["export", "xmp", "--json"], 0);
    let summary = lines(&out).pop().unwrap();
    assert_eq!(summary["written"].as_u64(), Some(8), "{summary}");
    assert_eq!(summary["faces"].as_u64(), Some(before.len() as u64));

    let shown = image::open(common::testdata().join("group/t1.jpg")).unwrap();
    let (sw, sh) = (shown.width() as f64, shown.height() as f64);
    for (path, o, op) in &copies {
        let canonical = std::fs::canonicalize(path).unwrap();
        let sidecar = PathBuf::from(format!("{}.xmp", path.display()));
        let tags = exif_json(
            &sidecar,
            &[
                "-XMP:RegionInfo",
                "-XMP:RegionInfoMP",
                "-XMP:Subject",
                "-XMP:HierarchicalSubject",
                "-XMP:TagsList",
            ],
        );
        let stored = if *o >= 5 { (sh, sw) } else { (sw, sh) };
        let dims = &tags["RegionInfo"]["AppliedToDimensions"];
        assert_eq!(
            (dims["W"].as_f64(), dims["H"].as_f64()),
            (Some(stored.0), Some(stored.1)),
            "{o}"
        );
        assert_eq!(dims["Unit"], "pixel");
        let map = stored_to_shown((shown.width(), shown.height()), *op);
        let mwg: BTreeMap<String, [f64; 4]> = tags["RegionInfo"]["RegionList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert_eq!(r["Type"], "Face");
                assert_eq!(r["Area"]["Unit"], "normalized");
                let a = ["X", "Y", "W", "H"].map(|k| r["Area"][k].as_f64().unwrap());
                let rect = [a[0] - a[2] / 2.0, a[1] - a[3] / 2.0, a[2], a[3]];
                (
                    r["Name"].as_str().unwrap().to_string(),
                    shown_box(&map, stored, rect),
                )
            })
            .collect();
        let mp: BTreeMap<String, [f64; 4]> = tags["RegionInfoMP"]["Regions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let v: Vec<f64> = r["Rectangle"]
                    .as_str()
                    .unwrap()
                    .split(',')
                    .map(|s| s.trim().parse().unwrap())
                    .collect();
                let name = r["PersonDisplayName"].as_str().unwrap().to_string();
                (name, shown_box(&map, stored, [v[0], v[1], v[2], v[3]]))
            })
            .collect();
        let mine: Vec<&Value> = before
            .iter()
            .filter(|f| f["path"].as_str() == Some(canonical.to_str().unwrap()))
            .collect();
        assert!(!mine.is_empty(), "{o}: faces in {}", path.display());
        assert_eq!(mwg.len(), mine.len(), "orientation {o}");
        assert_eq!(mp.len(), mine.len(), "orientation {o}");
        for f in mine {
            let name = format!("Person {}", face_ref(f));
            // visage's box, cut to the image as regions are.
            let b = boxes(f);
            let (x0, y0) = (b[0].max(0.0), b[1].max(0.0));
            let (x1, y1) = ((b[0] + b[2]).min(sw), (b[1] + b[3]).min(sh));
            let want = [x0, y0, x1 - x0, y1 - y0];
            for (form, got) in [("MWG", mwg.get(&name)), ("Microsoft", mp.get(&name))] {
                let got = got.unwrap_or_else(|| panic!("{o}: no {form} region for {name}"));
                for k in 0..4 {
                    assert!(
                        (got[k] - want[k]).abs() <= 0.5,
                        "orientation {o}, {form} region of {name}: {got:?} vs visage's {want:?}"
                    );
                }
            }
            for (tag, value) in [
                ("Subject", name.clone()),
                ("HierarchicalSubject", format!("People|{name}")),
                ("TagsList", format!("People/{name}")),
            ] {
                let list = strings(&tags[tag]);
                assert!(list.contains(&value), "{o}: {tag} {list:?}");
            }
        }
    }

    // The same export again writes nothing.
    let again = lines(&run(&db, &["export", "xmp", "--json"], 0))
        .pop()
        .unwrap();
    assert_eq!(again["written"].as_u64(), Some(0), "{again}");
    assert_eq!(again["unchanged"].as_u64(), Some(8), "{again}");

    // Round trip: a new database, a new index, then import: every name is back on its face.
    std::fs::remove_file(&db).unwrap();
    let _ = std::fs::remove_file(dir.join("v.db-wal"));
    let _ = std::fs::remove_file(dir.join("v.db-shm"));
    run(&db, &["index", "--no-cluster", photos.to_str().unwrap()], 0);
    let report: Value = import_json(&db, &photos);
    assert_eq!(
        report["regions"].as_u64(),
        Some(before.len() as u64),
        "{report}"
    );
    assert_eq!(
        report["matched"].as_u64(),
        Some(before.len() as u64),
        "{report}"
    );
    assert_eq!(report["created"].as_u64(), Some(0), "{report}");
    let after = faces(&db);
    for f in &before {
        let again = after
            .iter()
            .filter(|g| g["path"] == f["path"])
            .max_by(|a, b| iou(boxes(a), boxes(f)).total_cmp(&iou(boxes(b), boxes(f))))
            .unwrap();
        assert!(iou(boxes(again), boxes(f)) > 0.99, "{f} vs {again}");
        assert_eq!(
            again["person"],
            Value::String(format!("Person {}", face_ref(f))),
            "{again}"
        );
        assert_eq!(again["assigned"], "manual");
    }
}

#[test]
fn regions_exiftool_wrote_are_imported_and_a_sidecars_rating_and_keywords_survive_export() {
    models();
    let dir = tempdir("xmp-import");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    // The first three photos of three people; a, b and c are one of each in which visage found a
    // face (a few tight head shots have none).
    let people = common::testdata().join("celebrity/train");
    for person in ["ben_afflek", "madonna", "elton_john"] {
        let mut v: Vec<PathBuf> = std::fs::read_dir(people.join(person))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        for (i, p) in v.iter().take(3).enumerate() {
            std::fs::copy(p, photos.join(format!("{person}-{i}.jpg"))).unwrap();
        }
    }
    let db = dir.join("v.db");
    run(&db, &["index", "--no-cluster", photos.to_str().unwrap()], 0);
    let found = faces(&db);
    let with_face = |person: &str| -> PathBuf {
        (0..3)
            .map(|i| photos.join(format!("{person}-{i}.jpg")))
            .find(|p| {
                let canonical = std::fs::canonicalize(p).unwrap();
                found
                    .iter()
                    .any(|f| f["path"].as_str() == Some(canonical.to_str().unwrap()))
            })
            .unwrap_or_else(|| panic!("a photo of {person} with a face"))
    };
    let (a, b, c) = (
        with_face("ben_afflek"),
        with_face("madonna"),
        with_face("elton_john"),
    );
    let face_of = |p: &Path| -> Value {
        let canonical = std::fs::canonicalize(p).unwrap();
        found
            .iter()
            .filter(|f| f["path"].as_str() == Some(canonical.to_str().unwrap()))
            .max_by(|x, y| (boxes(x)[2] * boxes(x)[3]).total_cmp(&(boxes(y)[2] * boxes(y)[3])))
            .unwrap()
            .clone()
    };
    let size = |p: &Path| image::image_dimensions(p).unwrap();

    // a.jpg: an MWG region in a sidecar ExifTool makes, on the face visage found, plus a rating,
    // a label and a keyword. b.jpg: a Microsoft region inside the JPEG itself. c.jpg: an MWG
    // region where visage found no face (the top-left corner).
    let fa = boxes(&face_of(&a));
    let (aw, ah) = size(&a);
    let mwg = format!(
        "{{AppliedToDimensions={{W={aw},H={ah},Unit=pixel}},RegionList=[{{Area={{X={},Y={},W={},H={},Unit=normalized}},Name=Ben Affleck,Type=Face}},{{Area={{X=0.9,Y=0.9,W=0.1,H=0.1,Unit=normalized}},Name=Rex,Type=Pet}}]}}",
        (fa[0] + fa[2] / 2.0) / aw as f64,
        (fa[1] + fa[3] / 2.0) / ah as f64,
        fa[2] / aw as f64,
        fa[3] / ah as f64
    );
    let sidecar = |p: &Path| PathBuf::from(format!("{}.xmp", p.display()));
    let sidecar_a = sidecar(&a);
    exiftool(&[
        "-q",
        &format!("-RegionInfo={mwg}"),
        "-XMP:Rating=4",
        "-XMP:Label=Red",
        "-XMP:Subject=holiday",
        "-o",
        sidecar_a.to_str().unwrap(),
        a.to_str().unwrap(),
    ]);
    let fb = boxes(&face_of(&b));
    let (bw, bh) = size(&b);
    let rect = format!(
        "{}|, {}|, {}|, {}",
        fb[0] / bw as f64,
        fb[1] / bh as f64,
        fb[2] / bw as f64,
        fb[3] / bh as f64
    );
    exiftool(&[
        "-q",
        "-overwrite_original",
        &format!("-RegionInfoMP={{Regions=[{{Rectangle={rect},PersonDisplayName=Madonna}}]}}"),
        b.to_str().unwrap(),
    ]);
    let sidecar_c = c.with_extension("xmp");
    exiftool(&[
        "-q",
        "-RegionInfo={AppliedToDimensions={W=100,H=100,Unit=pixel},RegionList=[{Area={X=0.15,Y=0.2,W=0.2,H=0.3,Unit=normalized},Name=Somebody Else,Type=Face}]}",
        "-o",
        sidecar_c.to_str().unwrap(),
        c.to_str().unwrap(),
    ]);
    // b.jpg changed (its XMP): index sees that and keeps its faces.
    run(&db, &["index", "--no-cluster", photos.to_str().unwrap()], 0);

    let report: Value = import_json(&db, &photos);
    assert_eq!(report["regions"].as_u64(), Some(3), "{report}");
    assert_eq!(report["matched"].as_u64(), Some(2), "{report}");
    assert_eq!(report["created"].as_u64(), Some(1), "{report}");
    let after = faces(&db);
    let named =
        |name: &str| -> Vec<&Value> { after.iter().filter(|f| f["person"] == name).collect() };
    assert_eq!(named("Ben Affleck").len(), 1);
    assert!(iou(boxes(named("Ben Affleck")[0]), fa) > 0.99);
    assert_eq!(named("Madonna").len(), 1);
    assert!(iou(boxes(named("Madonna")[0]), fb) > 0.99);
    let (cw, ch) = size(&c);
    let made = named("Somebody Else");
    assert_eq!(made.len(), 1, "{after:?}");
    let want = [
        0.05 * cw as f64,
        0.05 * ch as f64,
        0.2 * cw as f64,
        0.3 * ch as f64,
    ];
    assert!(iou(boxes(made[0]), want) > 0.99, "{} vs {want:?}", made[0]);
    assert!(named("Rex").is_empty(), "a pet region is not a person");
    let people = lines(&run(&db, &["people", "--json"], 0));
    assert_eq!(people.len(), 3, "{people:?}");

    // Importing again changes nothing; a face named differently in visage is a conflict that
    // keeps visage's name unless --prefer file.
    let again: Value = import_json(&db, &photos);
    assert_eq!(again["already"].as_u64(), Some(3), "{again}");
    run(&db, &["rename", "Madonna", "Louise"], 0);
    let conflict: Value = serde_json::from_slice(
        &run(&db, &["import", "xmp", "--json", b.to_str().unwrap()], 0).stdout,
    )
    .unwrap();
    assert_eq!(
        conflict["conflicts"].as_array().unwrap().len(),
        1,
        "{conflict}"
    );
    assert!(faces(&db).iter().any(|f| f["person"] == "Louise"));
    run(
        &db,
        &["import", "xmp", "--prefer", "file", b.to_str().unwrap()],
        0,
    );
    assert!(faces(&db).iter().any(|f| f["person"] == "Madonna"));

    // Export into ExifTool's a.jpg.xmp: the rating, label, keyword and pet region stay, the face
    // region is written in both forms with the name added to the keywords; c.jpg gains a
    // sidecar with both its faces.
    run(&db, &["name", &face_ref(&face_of(&c)), "Elton John"], 0);
    run(&db, &["export", "xmp", photos.to_str().unwrap()], 0);
    let kept_and_named = |name: &str| {
        let tags = exif_json(&sidecar_a, &["-XMP:all"]);
        assert_eq!(tags["Rating"].as_f64(), Some(4.0), "{tags}");
        assert_eq!(tags["Label"], "Red");
        let subjects = strings(&tags["Subject"]);
        assert!(
            subjects.contains(&"holiday".into()) && subjects.contains(&name.into()),
            "{subjects:?}"
        );
        let mut names = region_names(&tags);
        names.sort();
        assert_eq!(names, vec![name.to_string(), "Rex".to_string()]);
        tags
    };
    let tags = kept_and_named("Ben Affleck");
    assert_eq!(
        tags["RegionInfoMP"]["Regions"][0]["PersonDisplayName"], "Ben Affleck",
        "{tags}"
    );
    let before_bytes = std::fs::read(&sidecar_a).unwrap();
    run(&db, &["export", "xmp", photos.to_str().unwrap()], 0);
    assert_eq!(
        std::fs::read(&sidecar_a).unwrap(),
        before_bytes,
        "a second export changes nothing"
    );
    let names = region_names(&exif_json(&sidecar(&c), &["-XMP:RegionInfo"]));
    assert!(
        names.contains(&"Elton John".into()) && names.contains(&"Somebody Else".into()),
        "{names:?}"
    );
    // A new name on a's face (with --overwrite) rewrites that region and keeps the rest.
    run(&db, &["rename", "Ben Affleck", "Ben"], 0);
    let kept = run(&db, &["export", "xmp", a.to_str().unwrap()], 0);
    assert!(
        String::from_utf8_lossy(&kept.stderr).contains("Ben Affleck"),
        "the conflict is named"
    );
    run(
        &db,
        &["export", "xmp", "--overwrite", a.to_str().unwrap()],
        0,
    );
    kept_and_named("Ben");

    // A sidecar that cannot be written (a folder is in its place) is a per-file error; the run
    // goes on and the photos are never touched.
    let photo_bytes = std::fs::read(&c).unwrap();
    std::fs::remove_file(sidecar(&c)).unwrap();
    std::fs::create_dir(sidecar(&c)).unwrap();
    run(&db, &["rename", "Ben", "Benjamin"], 0);
    let out = run(
        &db,
        &["export", "xmp", "--overwrite", photos.to_str().unwrap()],
        1,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(sidecar(&c).file_name().unwrap().to_str().unwrap()),
        "{err}"
    );
    assert!(
        strings(&exif_json(&sidecar_a, &["-XMP:Subject"])["Subject"]).contains(&"Benjamin".into())
    );
    assert_eq!(std::fs::read(&c).unwrap(), photo_bytes);
}

#[test]
fn hostile_xmp_is_a_per_file_error_and_never_hangs() {
    let dir = tempdir("xmp-hostile");
    let photo = common::testdata().join("group/t1.jpg");
    let laughs = {
        let mut s =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
        for i in 1..10 {
            s.push_str(&format!(
                " <!ENTITY lol{i} \"{}\">\n",
                format!("&lol{};", i - 1)
                    .repeat(10)
                    .replace("&lol0;", "&lol;")
            ));
        }
        s.push_str("]>\n<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">&lol9;</x:xmpmeta>\n");
        s
    };
    let external = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\
        <x:xmpmeta xmlns:x=\"adobe:ns:meta/\">&xxe;</x:xmpmeta>";
    let truncated = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description>";
    let cases: [(&str, &[u8]); 3] = [
        ("laughs", laughs.as_bytes()),
        ("external", external.as_bytes()),
        ("truncated", truncated.as_bytes()),
    ];
    for (name, bytes) in cases {
        std::fs::copy(&photo, dir.join(format!("{name}.jpg"))).unwrap();
        std::fs::write(dir.join(format!("{name}.jpg.xmp")), bytes).unwrap();
    }
    std::fs::copy(&photo, dir.join("huge.jpg")).unwrap();
    let huge = std::fs::File::create(dir.join("huge.jpg.xmp")).unwrap();
    huge.set_len(100 << 20).unwrap();
    std::fs::copy(&photo, dir.join("fine.jpg")).unwrap();

    let db = dir.join("v.db");
    let out = run(&db, &["import", "xmp", "--json", dir.to_str().unwrap()], 1);
    let err = String::from_utf8_lossy(&out.stderr);
    for (name, why) in [
        ("laughs", "document type declaration"),
        ("external", "document type declaration"),
        ("truncated", "truncated"),
        ("huge", "refused"),
    ] {
        let line = err
            .lines()
            .find(|l| l.contains(&format!("{name}.jpg")))
            .unwrap_or_else(|| panic!("no error for {name}: {err}"));
        assert!(line.contains(why), "{name}: {line}");
    }
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["photos"].as_u64(), Some(5), "{report}");
    assert_eq!(report["failed"].as_u64(), Some(4), "{report}");
}
