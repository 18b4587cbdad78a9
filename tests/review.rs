//! Naming that converges (issue 16), on the indexed celebrity set: the simulated review reaches
//! its goals at the default settings and at cluster distance 1.0; every kind of decision is undone
//! to exactly the rows it changed; `suggestions`, naming several faces, `history` and `undo` from
//! the command line.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::types::Value as Sql;
use serde_json::Value;

use crate::common::{assert_tally, lines, run, visage};
use crate::server::{self, Library};
use visage::config::{DeviceChoice, Settings};
use visage::graph::GraphBackend;
use visage::people::{self, Ref, Rematch, Verdict, history, suggest};
use visage::store::{ClusterId, FaceId, Store};

/// `visage bench review PHOTOS --db DB` with extra flags; its one JSON line.
fn review(lib: &Library, flags: &[&str]) -> Value {
    let mut args = vec![
        "bench",
        "review",
        lib.photos.to_str().unwrap(),
        "--db",
        lib.db.to_str().unwrap(),
    ];
    args.extend(flags);
    let out = visage(&args, &[("VISAGE_DEVICE", "cpu")]);
    assert!(
        out.status.success(),
        "bench review {flags:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&out).pop().unwrap()
}

#[test]
fn the_simulated_review_names_everyone_in_a_few_actions() {
    let lib = server::library("review-sim");
    let defaults = review(&lib, &[]);
    eprintln!("defaults: {defaults}");
    assert_eq!(defaults["people"], 5, "{defaults}");
    assert!(defaults["faces"].as_u64().unwrap() >= 110, "{defaults}");
    // Three photos show someone beside the folder's person (Cher beside Elton John, Julia
    // Louis-Dreyfus beside Jerry Seinfeld, a face behind Mindy Kaling): strangers, whom the
    // simulated user never names.
    assert_eq!(defaults["strangers"], 3, "{defaults}");
    assert!(defaults["actions"].as_u64().unwrap() <= 12, "{defaults}");
    assert!(defaults["corrections"].as_u64().unwrap() <= 2, "{defaults}");
    assert!(
        defaults["auto_assigned"].as_u64().unwrap() > 0,
        "{defaults}"
    );
    assert!(
        defaults["auto_precision"].as_f64().unwrap() >= 0.99,
        "{defaults}"
    );
    let wide = review(&lib, &["--face-cluster-dist", "1.0"]);
    eprintln!("distance 1.0: {wide}");
    assert!(wide["actions"].as_u64().unwrap() <= 10, "{wide}");
}

/// Every row of the four tables a decision changes, in id order: every column but the automatic
/// side's bookkeeping (`people::history::BOOKKEEPING`), which an undo leaves to the next run.
fn snapshot(db: &Path) -> Vec<(String, Vec<Vec<Sql>>)> {
    let store = Store::open(db).unwrap();
    ["faces", "clusters", "people", "rejections"]
        .iter()
        .map(|t| {
            let rows = store
                .read(|c| {
                    let cols: Vec<String> = c
                        .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))?
                        .query_map([], |r| r.get::<_, String>(0))?
                        .collect::<Result<Vec<_>, _>>()?
                        .into_iter()
                        .filter(|n| !visage::people::history::BOOKKEEPING.contains(&n.as_str()))
                        .collect();
                    let mut stmt = c.prepare(&format!(
                        "SELECT {} FROM {t} ORDER BY 1, 2",
                        cols.join(", ")
                    ))?;
                    let n = stmt.column_count();
                    stmt.query_map([], |r| (0..n).map(|k| r.get::<_, Sql>(k)).collect())?
                        .collect()
                })
                .unwrap();
            (t.to_string(), rows)
        })
        .collect()
}

/// Faces of a person (or `None`: faces with no person), by id.
fn faces_of(store: &Store, person: Option<&str>) -> Vec<FaceId> {
    store
        .read(|c| {
            let mut stmt = c.prepare(
                "SELECT f.id FROM faces f LEFT JOIN people p ON p.id = f.person
                 WHERE p.name IS ?1 ORDER BY f.id",
            )?;
            stmt.query_map([person], |r| r.get(0))?.collect()
        })
        .unwrap()
}

/// Do `action`, check it changed something, undo it, and check every row is back.
fn undone_exactly(
    db: &Path,
    what: &str,
    action: impl FnOnce(&mut Store) -> Option<i64>,
) -> Option<i64> {
    let before = snapshot(db);
    let tally_before = assert_tally(db, &format!("before {what}"));
    let mut store = Store::open(db).unwrap();
    let id = action(&mut store);
    assert!(id.is_some(), "{what}: recorded no action");
    assert_ne!(snapshot(db), before, "{what}: changed nothing");
    assert_tally(db, what);
    let undone = history::undo(&mut store, 1).unwrap();
    assert_eq!(undone.len(), 1, "{what}");
    assert_eq!(Some(undone[0].id), id, "{what}");
    assert_eq!(
        assert_tally(db, &format!("{what}, undone")),
        tally_before,
        "{what}: the counts are not back"
    );
    let after = snapshot(db);
    for ((table, a), (_, b)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{what}: {table} is not as it was");
    }
    id
}

#[test]
fn every_kind_of_decision_is_undone_to_the_same_rows() {
    let lib = server::library("review-undo");
    let db = &lib.db;
    let settings = Settings {
        device: DeviceChoice::Cpu,
        face_cluster_dist: 1.0,
        ..Settings::default()
    };
    let backend = GraphBackend::choose(DeviceChoice::Cpu).unwrap();
    let rematch = Some(Rematch {
        settings: &settings,
        backend: &backend,
    });
    // The clusters by id (`visage clusters` lists the largest first).
    let mut clusters: Vec<ClusterId> = lib
        .visage_json(&["clusters", "--json"])
        .iter()
        .map(|c| c["id"].as_str().unwrap().parse().unwrap())
        .collect();
    clusters.sort_by_key(|c| c.0);
    let cid = |k: usize| -> ClusterId { clusters[k] };
    let members = |store: &Store, c: ClusterId| -> Vec<FaceId> {
        store
            .read(|conn| {
                let mut stmt =
                    conn.prepare("SELECT id FROM faces WHERE cluster = ?1 ORDER BY id")?;
                stmt.query_map([c], |r| r.get(0))?.collect()
            })
            .unwrap()
    };
    // Naming a cluster with a face taken out, and the matching that follows.
    undone_exactly(db, "name a cluster", |s| {
        let out = members(s, cid(0))[0];
        people::name_several(
            s,
            &[Ref::Cluster(cid(0))],
            "Ann",
            &[out],
            &settings,
            rematch,
        )
        .unwrap()
        .action
    });
    // Keep some decisions to build on.
    let mut store = Store::open(db).unwrap();
    people::name(&mut store, Ref::Cluster(cid(0)), "Ann", &settings, rematch).unwrap();
    people::name(&mut store, Ref::Cluster(cid(1)), "Ben", &settings, rematch).unwrap();
    drop(store);
    let unnamed = |s: &Store| faces_of(s, None);
    undone_exactly(db, "name one face", |s| {
        let f = unnamed(s)[0];
        people::name(s, Ref::Face(f), "Cy", &settings, rematch)
            .unwrap()
            .action
    });
    undone_exactly(db, "name several faces", |s| {
        let f: Vec<Ref> = unnamed(s).iter().take(3).map(|&f| Ref::Face(f)).collect();
        people::name_several(s, &f, "Ann", &[], &settings, rematch)
            .unwrap()
            .action
    });
    undone_exactly(db, "rename", |s| {
        people::rename(s, "Ann", "Anna").unwrap().action
    });
    undone_exactly(db, "merge", |s| {
        people::merge(s, "Ben", "Ann").unwrap().action
    });
    undone_exactly(db, "split", |s| {
        let f: Vec<FaceId> = faces_of(s, Some("Ann")).into_iter().take(2).collect();
        people::split(s, &f, "Dee", &settings, rematch)
            .unwrap()
            .action
    });
    undone_exactly(db, "reject", |s| {
        let f: Vec<FaceId> = faces_of(s, Some("Ben")).into_iter().take(2).collect();
        people::reject(s, &f, None).unwrap().0.action
    });
    undone_exactly(db, "ignore", |s| people::ignore(s, cid(2)).unwrap().action);
    let mut store = Store::open(db).unwrap();
    people::ignore(&mut store, cid(3)).unwrap();
    drop(store);
    undone_exactly(db, "unignore", |s| {
        people::unignore(s, cid(3)).unwrap().action
    });
    undone_exactly(db, "hide", |s| people::hide(s, "Ben", true).unwrap().action);
    undone_exactly(db, "mark", |s| {
        let f: Vec<FaceId> = unnamed(s).into_iter().take(2).collect();
        people::set_verdict(s, &f, Some(Verdict::NotAFace))
            .unwrap()
            .action
    });
    // A suggestion group accepted with one face taken out.
    let mut store = Store::open(db).unwrap();
    let one = unnamed(&store)[0];
    people::name(&mut store, Ref::Face(one), "Eve", &settings, None).unwrap();
    let groups = store
        .read(|c| suggest::groups(c, None, &settings, suggest::GROUP))
        .unwrap();
    drop(store);
    assert!(!groups.is_empty(), "no suggestions after naming");
    let g = groups[0].clone();
    undone_exactly(db, "accept", |s| {
        let (out, keep) = g.faces.split_first().unwrap();
        people::accept(s, keep, &g.person, &[*out], &settings, rematch)
            .unwrap()
            .action
    });
    // Matched faces confirmed.
    let store = Store::open(db).unwrap();
    let matched: Vec<FaceId> = store
        .read(|c| {
            let mut stmt =
                c.prepare("SELECT id FROM faces WHERE assigned = 'auto' AND person IS NOT NULL")?;
            stmt.query_map([], |r| r.get(0))?.collect()
        })
        .unwrap();
    drop(store);
    if let Some(&f) = matched.first() {
        undone_exactly(db, "confirm", |s| {
            people::confirm(s, &[f], &settings, rematch).unwrap().action
        });
    }
    // A name imported from XMP: export one name, take it back, import it.
    let store = Store::open(db).unwrap();
    let ann = faces_of(&store, Some("Ann"))[0];
    let photo: String = store
        .read(|c| {
            c.query_row(
                "SELECT p.path FROM faces f JOIN photos p ON p.id = f.photo WHERE f.id = ?1",
                [ann],
                |r| r.get(0),
            )
        })
        .unwrap();
    drop(store);
    run(db, &["export", "xmp", &photo], 0);
    let mut store = Store::open(db).unwrap();
    people::split(&mut store, &[ann], "Zed", &settings, None).unwrap();
    drop(store);
    let before = snapshot(db);
    run(db, &["import", "xmp", "--prefer", "file", &photo], 0);
    assert_ne!(snapshot(db), before, "import changed nothing");
    let mut store = Store::open(db).unwrap();
    let undone = history::undo(&mut store, 1).unwrap();
    assert_eq!(undone[0].kind, "import", "{undone:?}");
    drop(store);
    assert_eq!(snapshot(db), before, "import: not undone exactly");

    // A later action that touched the same rows makes an earlier one refuse, naming it.
    let mut store = Store::open(db).unwrap();
    let first = people::rename(&mut store, "Ben", "Benjamin")
        .unwrap()
        .action
        .unwrap();
    let later = people::hide(&mut store, "Benjamin", true)
        .unwrap()
        .action
        .unwrap();
    let err = history::undo_action(&mut store, first)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("#{later}")) && err.contains("hide"),
        "{err}"
    );
    history::undo(&mut store, 2).unwrap();
    assert!(faces_of(&store, Some("Ben")).len() > 1);
    assert_eq!(
        store.integrity_check().unwrap(),
        "ok",
        "integrity after every undo"
    );
    drop(store);
    let audit = run(db, &["audit"], 0);
    assert!(
        String::from_utf8_lossy(&audit.stdout).contains("no inconsistencies"),
        "{}",
        String::from_utf8_lossy(&audit.stdout)
    );
}

#[test]
fn suggestions_names_history_and_undo_from_the_command_line() {
    let lib = server::library("review-cli");
    // Every command with the settings the library was clustered with (suggestions take a face's
    // cluster for a person's only within that cluster distance). One face named: suggestions for
    // that person, as JSON lines.
    let unknown: Vec<Value> = lib
        .faces()
        .into_iter()
        .filter(|f| f["person"].is_null())
        .collect();
    let first = unknown[0]["id"].as_str().unwrap().to_string();
    let truth = Path::new(unknown[0]["path"].as_str().unwrap())
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // The page's rule for names holds on the command line too: empty, blank or over 200
    // characters is refused with the reason, and nothing is named.
    let long = "x".repeat(201);
    for bad in ["", "  ", long.as_str()] {
        for args in [
            vec!["name", first.as_str(), bad],
            vec!["split", first.as_str(), "--to", bad],
        ] {
            let out = lib.run(&args, 2);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("name"), "{args:?}: {stderr}");
        }
    }
    assert!(lib.people().is_empty());
    lib.run(&["name", &first, &truth], 0);
    let out = lib.run(&["rename", &truth, &long], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 200 characters"));
    let out = lib.run(&["suggestions", "--json", "--person", &truth], 0);
    let groups = lines(&out);
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["person"], truth.as_str());
    let suggested: Vec<String> = groups[0]["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert!(suggested.len() >= 2, "{groups:?}");
    assert!(!suggested.contains(&first));
    assert!(suggested.iter().all(|f| f.starts_with('f')));
    // Unknown person: a clear error.
    let out = lib.run(&["suggestions", "--person", "Nobody At All"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Nobody At All"));

    // Several faces named in one transaction and one action.
    let mut args: Vec<&str> = vec!["name"];
    args.extend(suggested.iter().take(2).map(String::as_str));
    args.push(&truth);
    lib.run(&args, 0);
    let named: HashSet<String> = lib
        .faces()
        .into_iter()
        .filter(|f| f["person"] == truth.as_str() && f["assigned"] == "manual")
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        named.contains(&first) && named.contains(&suggested[0]) && named.contains(&suggested[1])
    );

    // History: newest first, the two namings.
    let out = lib.run(&["history", "--json"], 0);
    let actions = lines(&out);
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(actions[0]["kind"], "name");
    assert!(
        actions[0]["what"].as_str().unwrap().contains(&suggested[1]),
        "{actions:?}"
    );
    assert!(actions[0]["undone"].is_null());

    // History survives re-indexing (the first face's photo changed, so its face is replaced by a
    // new one that inherits its name) and `cluster --recluster`.
    let path = unknown[0]["path"].as_str().unwrap().to_string();
    let img = image::open(&path).unwrap();
    img.save_with_format(&path, image::ImageFormat::Jpeg)
        .unwrap();
    lib.run(&["index", lib.photos.to_str().unwrap()], 0);
    lib.run(&["cluster", "--recluster"], 0);
    let first = lib
        .faces()
        .into_iter()
        .filter(|f| f["path"] == path.as_str())
        .max_by_key(|f| f["size"].as_u64())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(
        first,
        unknown[0]["id"].as_str().unwrap(),
        "the photo was not re-indexed"
    );
    assert_eq!(
        lib.faces()
            .iter()
            .find(|f| f["id"] == first.as_str())
            .unwrap()["person"],
        truth.as_str()
    );

    // Undo takes back the last one: the two faces have no person again, the first keeps its name.
    let out = lib.run(&["undo"], 0);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("undid #"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let faces = lib.faces();
    let person_of = |id: &str| {
        faces
            .iter()
            .find(|f| f["id"] == id)
            .map(|f| f["person"].clone())
            .unwrap()
    };
    assert_eq!(person_of(&first), truth.as_str());
    assert!(person_of(&suggested[0]).is_null() && person_of(&suggested[1]).is_null());
    let actions = lines(&lib.run(&["history", "--json"], 0));
    assert!(actions[0]["undone"].is_number(), "{actions:?}");
    // Undo 5 when one is left: takes back that one (the first name, followed to its new face), then
    // says so.
    lib.run(&["undo", "5"], 0);
    assert!(
        lib.faces().iter().all(|f| f["person"].is_null()),
        "{:?}",
        lib.faces()
            .iter()
            .filter(|f| !f["person"].is_null())
            .collect::<Vec<_>>()
    );
    let out = lib.run(&["undo"], 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to undo"));
}
