//! The mistakes people make, with the real binary on real data: a database that does not exist,
//! a path that does not exist, an id that does not exist, a port already taken, a listing that
//! comes out empty. Each gets a clear answer (the exit code and the words a user needs), and none
//! changes what the user has: no database is made, no cluster or decision is touched (the
//! database is compared before and after).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::types::ValueRef;
use serde_json::Value;

use crate::common::{self, lines, run, tempdir, visage};
use crate::server::{self, Server};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `out`'s stderr has every one of `words`.
fn says(out: &Output, words: &[&str]) {
    let err = stderr(out);
    for w in words {
        assert!(err.contains(w), "{w:?} missing from: {err}");
    }
}

/// Every file and folder under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| e.unwrap().path().strip_prefix(dir).unwrap().to_path_buf())
        .collect();
    out.sort();
    out
}

/// What the user has in a database: every row of every table (blobs by length and checksum),
/// read with SQLite alone. Photo rows are left out with `with_photos` false (a run may record a
/// file's new time or failure there).
fn snapshot(db: &Path, with_photos: bool) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut out = String::new();
    let mut tables = vec!["people", "clusters", "faces", "rejections"];
    if with_photos {
        tables.push("photos");
    }
    for table in tables {
        out.push_str(&format!("[{table}]\n"));
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for k in 0..n {
                match row.get_ref(k).unwrap() {
                    ValueRef::Blob(b) => out.push_str(&format!(
                        "blob({}, {}) ",
                        b.len(),
                        b.iter().map(|&x| x as u64).sum::<u64>()
                    )),
                    v => out.push_str(&format!("{v:?} ")),
                }
            }
            out.push('\n');
        }
    }
    out
}

#[test]
fn a_database_that_does_not_exist_is_refused_and_none_is_made() {
    let dir = tempdir("mistakes-no-db");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(
        common::testdata().join("group/t1.jpg"),
        photos.join("t1.jpg"),
    )
    .unwrap();
    let typo = dir.join("typo/visage.db");
    let before = listing(&dir);
    let p = photos.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["clusters"],
        &["clusters", "--json"],
        &["people"],
        &["person", "Grandma"],
        &["faces"],
        &["faces", "--cluster", "c1"],
        &["faces", "--unassigned"],
        &["stats"],
        &["audit", "--fix"],
        &["cluster"],
        &["name", "c1", "Grandma"],
        &["rename", "Grandma", "Gran"],
        &["merge-person", "Grandma", "Gran"],
        &["split", "f1", "--to", "Gran"],
        &["reject", "f1"],
        &["ignore", "c1"],
        &["hide", "Grandma"],
        &["unhide", "Grandma"],
        &["reset", "--all", "--force"],
        &["export", "xmp", "--dry-run"],
        &["export", "xmp", p],
        &["serve", "--bind", "127.0.0.1:0"],
        &["eval", p],
    ];
    for args in commands {
        let out = run(&typo, args, 2);
        says(&out, &[typo.to_str().unwrap(), "visage index --db"]);
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
    }
    assert_eq!(listing(&dir), before, "nothing was made");

    // The default database (no --db, no VISAGE_DB) says how to start a library.
    let xdg = dir.join("xdg");
    let out = Command::new(env!("CARGO_BIN_EXE_visage"))
        .arg("people")
        .env_remove("VISAGE_DB")
        .env("XDG_DATA_HOME", &xdg)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    says(
        &out,
        &[
            &xdg.join("visage/visage.db").display().to_string(),
            "no library yet",
            "visage index DIR",
        ],
    );
    assert!(!xdg.exists());

    // A folder, or another program's file, is not taken for a library, nor changed.
    let out = run(&photos, &["people"], 2);
    says(&out, &["is not a visage database", "folder"]);
    let photo = photos.join("t1.jpg");
    let bytes = std::fs::read(&photo).unwrap();
    let out = run(&photo, &["index", p], 2);
    says(
        &out,
        &["t1.jpg is not a visage database", "not an SQLite file"],
    );
    assert_eq!(std::fs::read(&photo).unwrap(), bytes);
    assert_eq!(listing(&dir), before);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_path_that_does_not_exist_is_refused_before_any_work() {
    let dir = tempdir("mistakes-no-path");
    let db = dir.join("new.db");
    let missing = "/no/such/dir";
    let real = common::testdata().join("group");
    let real = real.to_str().unwrap();
    // `index` and `import` would make the library: they must not make it for nothing.
    let with_db: &[&[&str]] = &[
        &["index", missing],
        &["index", real, missing],
        &["import", "xmp", missing],
        &["eval", missing],
    ];
    let without_db: &[&[&str]] = &[
        &["detect", missing],
        &["detect", real, missing],
        &["embed", missing],
        &["embed", "--aligned", missing],
        &["bench", "index", missing],
    ];
    let outs = with_db.iter().map(|args| (args, run(&db, args, 2)));
    let outs = outs.chain(without_db.iter().map(|args| {
        let out = visage(args, server::ENV);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        (args, out)
    }));
    for (args, out) in outs {
        says(
            &out,
            &[missing, "no such file or folder", "nothing was done"],
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
    }
    // Two missing paths are both named.
    let out = visage(&["detect", "/no/such/a.jpg", "/no/such/b.jpg"], server::ENV);
    assert_eq!(out.status.code(), Some(2));
    says(&out, &["/no/such/a.jpg", "/no/such/b.jpg"]);
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_empty_library_says_so_and_a_taken_port_says_what_to_do() {
    let dir = tempdir("mistakes-empty");
    let empty = dir.join("photos");
    std::fs::create_dir_all(&empty).unwrap();
    let db = dir.join("visage.db");
    // `index` makes the library; a folder with no photo says so, and there is nothing to cluster.
    let out = run(&db, &["index", empty.to_str().unwrap()], 0);
    says(&out, &["no photo files under"]);
    assert!(
        stdout(&out).contains("0 files: 0 indexed"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("clustering: no faces to cluster yet"),
        "{}",
        stdout(&out)
    );
    let before = snapshot(&db, true);

    for (args, words) in [
        (
            &["people"][..],
            "nobody is named yet: see `visage clusters`",
        ),
        (&["clusters"], "no clusters yet"),
        (&["faces"], "no faces yet: `visage index DIR`"),
        (&["faces", "--unassigned"], "no unassigned faces"),
    ] {
        let out = run(&db, args, 0);
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
        says(&out, &[words]);
        // In --json mode empty output stays empty, and so does stderr.
        let mut json = args.to_vec();
        json.push("--json");
        let out = run(&db, &json, 0);
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{json:?}");
    }
    let out = run(&db, &["export", "xmp", "--dry-run"], 0);
    says(&out, &["nothing to export: no face is named by hand yet"]);
    assert!(stdout(&out).starts_with("0 photos with 0 named faces: 0 sidecars would be written"));

    // The port is taken: by another program here (another visage is the same: see below).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&db, &["serve", "--bind", &addr], 2);
    says(
        &out,
        &[
            &format!("cannot listen on {addr}"),
            "another `visage serve` (or another program)",
            "--bind 127.0.0.1:0",
        ],
    );
    assert!(out.stdout.is_empty());
    assert_eq!(snapshot(&db, true), before);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn mistakes_on_a_real_library_leave_it_as_it_was() {
    let lib = server::library("mistakes");
    let db = &lib.db;
    let photos = lib.photos.to_str().unwrap();

    // Nobody is named yet: said on stderr, exit 0, nothing on stdout.
    let out = run(db, &["people"], 0);
    assert!(out.stdout.is_empty());
    says(&out, &["nobody is named yet: see `visage clusters`"]);

    // A decision to keep: the largest cluster is Grandma.
    let clusters = lines(&run(db, &["clusters", "--json"], 0));
    let largest = clusters
        .iter()
        .max_by_key(|c| c["faces"].as_u64().unwrap())
        .unwrap();
    let cid = largest["id"].as_str().unwrap();
    let n = largest["faces"].as_u64().unwrap();
    assert!(n > 1);
    let out = run(db, &["name", cid, "Grandma"], 0);
    assert_eq!(stdout(&out).trim(), format!("named {n} faces \"Grandma\""));

    // Matching after the name, then nothing changed on disk: nothing to cluster again (the
    // copied photos' new times are recorded). (Other cluster settings than the library's would
    // rebuild its clusters.)
    run(db, &["cluster", "--face-cluster-dist", "1.0"], 0);
    let out = run(db, &["index", photos, "--face-cluster-dist", "1.0"], 0);
    assert!(
        stdout(&out).contains("clustering: nothing new to cluster"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("matched"), "{}", stdout(&out));
    let before = snapshot(db, true);
    let files = user_files(&lib.dir);

    // Paths that do not exist.
    for args in [
        &["export", "xmp", "/no/such/dir", "--dry-run"][..],
        &["export", "xmp", "/no/such/dir"],
        &["index", "/no/such/dir"],
        &["index", photos, "/no/such/dir"],
        &["import", "xmp", "/no/such/dir"],
    ] {
        let out = run(db, args, 2);
        says(
            &out,
            &["/no/such/dir: no such file or folder (nothing was done)"],
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
    }

    // Ids and names that do not exist: the same answer from every command that takes one.
    for (args, words) in [
        (
            &["faces", "--cluster", "c99999"][..],
            "no cluster c99999 (see `visage clusters`)",
        ),
        (
            &["faces", "--cluster", "c99999", "--json"],
            "no cluster c99999",
        ),
        (
            &["name", "c99999", "Bob"],
            "no cluster c99999 (see `visage clusters`)",
        ),
        (
            &["ignore", "c99999"],
            "no cluster c99999 (see `visage clusters`)",
        ),
        (
            &["name", "f99999", "Bob"],
            "no face f99999 (see `visage faces`)",
        ),
        (&["reject", "f99999"], "no face f99999 (see `visage faces`)"),
        (
            &["split", "f99999", "--to", "Bob"],
            "no face f99999 (see `visage faces`)",
        ),
        (
            &["faces", "--person", "Nobody"],
            "no person named \"Nobody\" (see `visage people --all`)",
        ),
        (
            &["person", "Nobody"],
            "no person named \"Nobody\" (see `visage people --all`)",
        ),
        (
            &["rename", "Nobody", "Bob"],
            "no person named \"Nobody\" (see `visage people --all`)",
        ),
        (
            &["merge-person", "Nobody", "Grandma"],
            "no person named \"Nobody\" (see `visage people --all`)",
        ),
        (
            &["hide", "Nobody"],
            "no person named \"Nobody\" (see `visage people --all`)",
        ),
        (
            &["faces", "--cluster", "f3"],
            "\"f3\" is a face; expected a cluster like c12",
        ),
        (
            &["reject", "c3"],
            "\"c3\" is a cluster; expected a face like f345",
        ),
        (&["ignore", "c1x"], "expected a cluster like c12"),
    ] {
        let out = run(db, args, 2);
        says(&out, &[words]);
        assert!(out.stdout.is_empty(), "{args:?}: {}", stdout(&out));
    }

    // `visage serve` twice on one port: the second says why and what to do.
    let first = Server::start(&lib, &[]);
    let addr = first.addr.to_string();
    let out = run(db, &["serve", "--bind", &addr], 2);
    says(
        &out,
        &[
            &format!("cannot listen on {addr}: the port is taken"),
            "another `visage serve`",
            "--bind 127.0.0.1:0",
        ],
    );
    assert!(out.stdout.is_empty());
    first.stop();

    assert_eq!(snapshot(db, true), before, "a mistake changed the library");
    assert_eq!(user_files(&lib.dir), files, "no file made or removed");

    // A run in which every file fails records the failures, and clusters nothing again.
    let bad = lib.dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("empty.jpg"), b"").unwrap();
    std::fs::write(bad.join("text.png"), b"this is not an image").unwrap();
    let out = run(
        db,
        &["index", bad.to_str().unwrap(), "--face-cluster-dist", "1.0"],
        1,
    );
    says(&out, &["empty.jpg", "text.png"]);
    assert!(stdout(&out).contains("2 files: 0 indexed, 0 unchanged, 2 failed"));
    assert!(
        stdout(&out).contains("clustering: nothing new to cluster"),
        "{}",
        stdout(&out)
    );
    assert_eq!(snapshot(db, false), snapshot_without_photos(&before));

    // Faces in no cluster and of no person, as the page's "Unknown" lists them.
    let all = lines(&run(db, &["faces", "--json"], 0));
    let open: Vec<&Value> = all
        .iter()
        .filter(|f| f["cluster"].is_null() && f["person"].is_null())
        .collect();
    let unassigned = lines(&run(db, &["faces", "--unassigned", "--json"], 0));
    assert!(!unassigned.is_empty());
    assert_eq!(unassigned.iter().collect::<Vec<_>>(), open);
    let text = stdout(&run(db, &["faces", "--unassigned"], 0));
    assert_eq!(text.lines().count(), open.len());
    assert!(
        text.lines()
            .all(|l| l.ends_with("\t-\t-") || l.ends_with("ambiguous"))
    );
    let out = run(db, &["faces", "--unassigned", "--cluster", cid], 2);
    says(&out, &["cannot be used with"]);

    // Scores: what `visage faces` prints is on the scale --face-score and --face-cluster-score
    // use, and `visage faces --help` says what it is.
    let scores: Vec<f64> = all.iter().map(|f| f["score"].as_f64().unwrap()).collect();
    assert!(
        scores.iter().all(|&s| s >= 9.0),
        "kept at --face-score 9 or more"
    );
    assert!(
        scores.iter().any(|&s| s > 100.0),
        "PICO's summed scores pass 100"
    );
    let help = stdout(&run(db, &["faces", "--help"], 0));
    for words in [
        "--face-score",
        "--face-cluster-score",
        "summed score",
        "100 x O-Net",
    ] {
        assert!(help.contains(words), "{words:?}: {help}");
    }

    // Plurals: one face is "1 face", in "1 photo".
    let face = open[0]["id"].as_str().unwrap();
    let out = run(db, &["name", face, "Solo"], 0);
    assert_eq!(stdout(&out).trim(), "named 1 face \"Solo\"");
    let people = stdout(&run(db, &["people"], 0));
    assert!(
        people.contains("Solo\t1 face in 1 photo (1 named by hand, 0 matched)"),
        "{people}"
    );
    assert!(
        people.contains("Grandma\t") && people.contains(&format!("({n} named by hand, ")),
        "{people}"
    );
    let out = run(db, &["hide", "Solo"], 0);
    assert!(stdout(&out).contains("\"Solo\" is hidden"));
}

/// The files of a test library a user would call theirs: its photos and its database, not
/// SQLite's `-wal` and `-shm` files nor the thumbnail cache.
fn user_files(dir: &Path) -> Vec<PathBuf> {
    listing(dir)
        .into_iter()
        .filter(|p| !p.starts_with("cache") && !p.to_string_lossy().contains(".db-"))
        .collect()
}

/// `snapshot(db, true)`'s text without its photo rows.
fn snapshot_without_photos(full: &str) -> String {
    full.split("[photos]").next().unwrap().to_string()
}
