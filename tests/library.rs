//! The library end to end with the real binary, real photos, real models and a real SQLite file:
//! `index` of the 5-celebrity set clusters faces into people; names, merges, splits, rejections and
//! ignores survive re-indexing, reclustering, `reset` and an edited photo; bad files are named and
//! recorded; a run killed with SIGKILL leaves a sound database that the next run completes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{self, copy_tree, faces, lines, models, run, tempdir};
use serde_json::Value;
use visage::evaluation::cluster_scores;
use visage::store::Store;

fn iou(a: &Value, b: &Value) -> f64 {
    let r = |v: &Value| ["x", "y", "w", "h"].map(|k| v[k].as_f64().unwrap());
    common::iou(r(a), r(b))
}

/// The face in `list` that is `face` (same photo, boxes overlapping at least half).
fn same_face<'a>(list: &'a [Value], face: &Value) -> Option<&'a Value> {
    list.iter()
        .filter(|f| f["path"] == face["path"])
        .find(|f| iou(f, face) >= 0.5)
}

/// Adjusted Rand index of the stored people/clusters against the folders, from `faces --json`:
/// the largest face of each photo, its person if it has one, else its cluster, else noise.
fn ari(list: &[Value]) -> (f64, usize) {
    let mut largest: BTreeMap<&str, &Value> = BTreeMap::new();
    for f in list {
        let area = |v: &Value| v["w"].as_f64().unwrap() * v["h"].as_f64().unwrap();
        let path = f["path"].as_str().unwrap();
        if largest.get(path).is_none_or(|old| area(old) < area(f)) {
            largest.insert(path, f);
        }
    }
    let (mut folders, mut groups) = (BTreeMap::new(), BTreeMap::new());
    let (mut truth, mut predicted) = (Vec::new(), Vec::new());
    for (path, f) in &largest {
        // celebrity/{train,val}/PERSON/photo.jpg: the parent folder's name is the person.
        let folder = Path::new(path).parent().unwrap().file_name().unwrap();
        let next = folders.len();
        truth.push(*folders.entry(folder).or_insert(next));
        let group = match (&f["person"], &f["cluster"]) {
            (Value::String(p), _) => Some(format!("person {p}")),
            (_, Value::String(c)) => Some(c.clone()),
            _ => None,
        };
        predicted.push(group.map(|g| {
            let next = groups.len() as u32;
            *groups.entry(g).or_insert(next)
        }));
    }
    (
        cluster_scores(&truth, &predicted).adjusted_rand_index,
        largest.len(),
    )
}

fn person_of<'a>(list: &'a [Value], face: &Value) -> Option<&'a str> {
    same_face(list, face).and_then(|f| f["person"].as_str())
}

#[test]
fn index_clusters_people_and_manual_decisions_survive() {
    models();
    let dir = tempdir("library");
    let photos = dir.join("photos");
    copy_tree(&common::testdata().join("celebrity"), &photos);
    let db = dir.join("visage.db");
    let p = photos.to_str().unwrap();

    // Index with the defaults: every photo stored, faces clustered.
    let out = run(&db, &["index", "--json", p], 0);
    let summary = &lines(&out)[0];
    assert_eq!(summary["index"]["files"], 118, "{summary}");
    assert_eq!(summary["index"]["indexed"], 118, "{summary}");
    assert_eq!(summary["index"]["failed"], 0, "{summary}");
    let first = faces(&db);
    assert!(first.len() >= 100, "{} faces", first.len());
    for f in &first {
        assert!(f["path"].as_str().unwrap().starts_with(p), "{f}");
        assert!(f["w"].as_f64().unwrap() >= 20.0 && f["score"].as_f64().unwrap() >= 9.0);
    }
    let (defaults_ari, scored) = ari(&first);
    eprintln!("defaults: ARI {defaults_ari:.3} over {scored} photos");
    // This FaceNet puts a person's faces further apart than 0.64 (see BENCHMARKS.md): at the
    // defaults two of the five people form clusters, cleanly. Matching into them reaches the
    // clamped sample radius plus 0.46 (issue 16; 0.725 before the clamp, 0.596 with it).
    assert!(
        defaults_ari >= 0.55,
        "ARI at the default settings {defaults_ari}"
    );

    // Again: nothing changed, nothing indexed, no duplicates.
    let again = &lines(&run(&db, &["index", "--json", p], 0))[0];
    assert_eq!(again["index"]["unchanged"], 118, "{again}");
    assert_eq!(again["index"]["indexed"], 0, "{again}");
    assert_eq!(faces(&db).len(), first.len());

    // At a cluster distance of 1.0 the clusters are the people, without a wrong face (1.000
    // measured before issue 16; 0.920 since matching into a cluster reaches its clamped sample
    // radius plus 0.46: the faces further out are offered with the cluster on the review page).
    run(
        &db,
        &["cluster", "--recluster", "--face-cluster-dist", "1.0"],
        0,
    );
    let wide = faces(&db);
    let (wide_ari, _) = ari(&wide);
    eprintln!("--face-cluster-dist 1.0: ARI {wide_ari:.3}");
    assert!(wide_ari >= 0.9, "ARI at distance 1.0: {wide_ari}");

    // Decisions. Clusters by size, largest first.
    let mut clusters = lines(&run(&db, &["clusters", "--json"], 0));
    clusters.sort_by_key(|c| std::cmp::Reverse(c["faces"].as_u64().unwrap()));
    assert!(clusters.len() >= 4, "{clusters:?}");
    let cid = |k: usize| clusters[k]["id"].as_str().unwrap().to_string();
    run(&db, &["name", &cid(0), "Alice"], 0);
    run(&db, &["name", &cid(1), "Bob"], 0);
    run(&db, &["name", &cid(2), "Robert"], 0);
    run(&db, &["merge-person", "Robert", "Bob"], 0);
    run(&db, &["ignore", &cid(3)], 0);
    let named = faces(&db);
    let alice: Vec<&Value> = named.iter().filter(|f| f["person"] == "Alice").collect();
    assert!(alice.len() >= 4);
    let rejected = alice[0].clone();
    let moved = alice[1].clone();
    run(&db, &["reject", rejected["id"].as_str().unwrap()], 0);
    run(
        &db,
        &["split", moved["id"].as_str().unwrap(), "--to", "Carol"],
        0,
    );
    run(&db, &["rename", "Alice", "Alicia"], 0);
    let decided = faces(&db);
    let manual: Vec<Value> = decided
        .iter()
        .filter(|f| f["assigned"] == "manual")
        .cloned()
        .collect();
    let ignored: Vec<Value> = decided
        .iter()
        .filter(|f| f["cluster"] == clusters[3]["id"])
        .cloned()
        .collect();
    assert!(!ignored.is_empty() && ignored.iter().all(|f| f["person"].is_null()));
    assert_eq!(person_of(&decided, &moved), Some("Carol"));
    // Naming and moving run matching (issue 16): the rejected face may join someone else, never
    // the person it was rejected for; Bob has both clusters' faces, and those matched to him.
    assert_ne!(person_of(&decided, &rejected), Some("Alicia"));
    let bob = decided.iter().filter(|f| f["person"] == "Bob").count() as u64;
    let bob_by_hand = decided
        .iter()
        .filter(|f| f["person"] == "Bob" && f["assigned"] == "manual")
        .count() as u64;
    assert_eq!(
        bob_by_hand,
        clusters[1]["faces"].as_u64().unwrap() + clusters[2]["faces"].as_u64().unwrap()
    );
    assert!(bob >= bob_by_hand);

    // Edit one of Alicia's photos (re-encoded: new bytes, same picture).
    let edited = decided
        .iter()
        .find(|f| f["person"] == "Alicia" && f["path"] != rejected["path"])
        .unwrap()
        .clone();
    let path = PathBuf::from(edited["path"].as_str().unwrap());
    let img = common::decode_oriented(&path);
    std::thread::sleep(Duration::from_millis(20));
    img.save_with_format(&path, image::ImageFormat::Png)
        .unwrap();

    // Everything that must not undo a decision.
    let reindexed = &lines(&run(&db, &["index", "--json", p], 0))[0];
    assert_eq!(reindexed["index"]["indexed"], 1, "{reindexed}");
    run(&db, &["cluster", "--recluster"], 0);
    run(&db, &["reset"], 0);
    run(&db, &["cluster"], 0);
    let after = faces(&db);
    for f in &manual {
        assert_eq!(
            person_of(&after, f),
            f["person"].as_str(),
            "manual decision lost for {f}"
        );
    }
    assert_ne!(person_of(&after, &rejected), Some("Alicia"));
    assert_eq!(person_of(&after, &edited), Some("Alicia"));
    for f in &ignored {
        let now = same_face(&after, f).unwrap();
        assert_eq!(now["cluster"], clusters[3]["id"], "{now}");
        assert!(now["person"].is_null());
    }
    let people: Vec<String> = lines(&run(&db, &["people", "--json"], 0))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    for name in ["Alicia", "Bob", "Carol"] {
        assert!(people.contains(&name.to_string()), "{people:?}");
    }
    assert!(!people.iter().any(|n| n == "Alice" || n == "Robert"));
    // Carol's photo is the moved face's (matching may have added the rejected one: the same
    // person in truth, and no longer Alicia's).
    let carol = lines(&run(&db, &["person", "Carol", "--json"], 0));
    assert!(
        carol.iter().any(|p| p["path"] == moved["path"]),
        "{carol:?}"
    );

    // A removed photo is gone, its faces with it; the audit finds nothing and SQLite is sound.
    let removed = after.iter().find(|f| f["person"] == "Bob").unwrap().clone();
    std::fs::remove_file(removed["path"].as_str().unwrap()).unwrap();
    let gone = &lines(&run(&db, &["index", "--json", p], 0))[0];
    assert_eq!(gone["index"]["gone"], 1, "{gone}");
    assert!(faces(&db).iter().all(|f| f["path"] != removed["path"]));
    let audit = run(&db, &["audit"], 0);
    assert!(String::from_utf8_lossy(&audit.stdout).contains("integrity_check: ok"));

    // `reset --all` refuses without --force, then removes every person.
    run(&db, &["reset", "--all"], 2);
    assert!(!lines(&run(&db, &["people", "--json"], 0)).is_empty());
    run(&db, &["reset", "--all", "--force"], 0);
    assert!(lines(&run(&db, &["people", "--json"], 0)).is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_files_are_named_recorded_and_the_run_goes_on() {
    models();
    let dir = tempdir("library-bad");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let bad = common::bad_files(&photos);
    let db = dir.join("visage.db");
    let p = photos.to_str().unwrap();

    let out = run(&db, &["index", "--json", p], 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    common::assert_each_named(&stderr, &bad);
    let summary = &lines(&out)[0];
    assert_eq!(summary["index"]["failed"], 4, "{summary}");
    assert_eq!(summary["index"]["indexed"], 1, "{summary}");
    let stats = &lines(&run(&db, &["stats", "--json"], 0))[0];
    assert_eq!(stats["photos"], 5);
    assert_eq!(stats["photos_failed"], 4);
    let found = faces(&db).len();
    assert!(found >= 5, "{found} faces in the group photo");

    // The empty file becomes a real photo: it is indexed; the others fail again; nothing is lost.
    std::fs::copy(photos.join("a_good.jpg"), photos.join("b_empty.jpg")).unwrap();
    let out = run(&db, &["index", "--json", p], 1);
    let summary = &lines(&out)[0];
    assert_eq!(summary["index"]["indexed"], 1, "{summary}");
    assert_eq!(summary["index"]["failed"], 3, "{summary}");
    assert_eq!(faces(&db).len(), 2 * found);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_killed_index_leaves_a_sound_database_that_the_next_run_completes() {
    models();
    let dir = tempdir("library-kill");
    let photos = dir.join("photos");
    copy_tree(&common::testdata().join("celebrity"), &photos);
    let db = dir.join("visage.db");
    let count = |sql: &str| -> i64 {
        Store::open(&db)
            .unwrap()
            .read(|c| c.query_row(sql, [], |r| r.get(0)))
            .unwrap()
    };

    let mut child = Command::new(env!("CARGO_BIN_EXE_visage"))
        .args(["index", "--no-cluster", "--device", "cpu", "--db"])
        .arg(&db)
        .arg(&photos)
        .env("XDG_RUNTIME_DIR", "/tmp")
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    // Kill it (SIGKILL) once at least one batch is committed, mid-run.
    let started = Instant::now();
    // Until the child has made the library (file and schema), `Store::open` refuses it.
    while Store::open(&db).is_err() || count("SELECT count(*) FROM photos") == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no batch stored"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let store = Store::open(&db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    drop(store);
    let photos_before = count("SELECT count(*) FROM photos");
    let faces_before = count("SELECT count(*) FROM faces");
    assert!(photos_before > 0 && photos_before < 118, "{photos_before}");

    let out = run(
        &db,
        &["index", "--json", "--no-cluster", photos.to_str().unwrap()],
        0,
    );
    let summary = &lines(&out)[0];
    assert_eq!(summary["index"]["unchanged"], photos_before, "{summary}");
    assert_eq!(
        summary["index"]["indexed"],
        118 - photos_before,
        "{summary}"
    );
    assert_eq!(count("SELECT count(*) FROM photos"), 118);
    assert_eq!(
        count("SELECT count(*) FROM faces"),
        faces_before + summary["index"]["faces"].as_i64().unwrap()
    );
    assert_eq!(count("SELECT count(DISTINCT path) FROM photos"), 118);
    let _ = std::fs::remove_dir_all(dir);
}
