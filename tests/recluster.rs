//! A full re-cluster with its neighbour graph computed in parts: real photos indexed once, then
//! `visage cluster --graph-shard I/3 --graphs DIR` three times (each its own process, reading the
//! library only) and `visage cluster --graphs DIR` give the library one `visage cluster
//! --recluster` gives: the same clusters (ids included), the same DBSCAN neighbour counts, the same
//! matches. A part run again for the same library does nothing; a missing part, a part of another
//! split, and parts computed before the library changed are refused by name, and nothing is
//! written then. Parts of the approximate graph run at once build its partition once and share
//! it. A re-cluster asked to stop (what Ctrl-C does) leaves the library as it was.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;
use visage::graph::GraphBackend;
use visage::people::assign;

use crate::common::{self, copy_tree, run, tempdir};

/// Settings under which the celebrity set forms several clusters with borders and noise, over
/// every pair (the IVF graph's parts are checked against one machine in `graph::parts`).
pub(crate) const SETTINGS: [&str; 6] = [
    "--face-cluster-dist",
    "0.9",
    "--face-cluster-core",
    "3",
    "--graph",
    "exact",
];

/// Every face: its cluster, person, DBSCAN neighbour count and how it was assigned.
pub(crate) type Faces = BTreeMap<i64, (Option<i64>, Option<i64>, Option<i64>, Option<String>)>;

/// Every row `sql` selects from the database at `db`, as `row` reads it.
fn query<T, C: FromIterator<T>>(
    db: &Path,
    sql: &str,
    row: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> C {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], row)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

pub(crate) fn faces(db: &Path) -> Faces {
    query(
        db,
        "SELECT id, cluster, person, neighbours, assigned FROM faces ORDER BY id",
        |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))),
    )
}

/// Every cluster: kind, person, faces, radius and centroid, bit for bit.
pub(crate) type Clusters = Vec<(i64, String, Option<i64>, i64, f64, Vec<u8>)>;

pub(crate) fn clusters(db: &Path) -> Clusters {
    query(
        db,
        "SELECT id, kind, person, faces, radius, centroid FROM clusters ORDER BY id",
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        },
    )
}

pub(crate) fn copy(db: &Path, to: &Path) {
    let conn = Connection::open(db).unwrap();
    conn.execute("VACUUM INTO ?1", [to.to_str().unwrap()])
        .unwrap();
}

pub(crate) fn with<'a>(args: &[&'a str]) -> Vec<&'a str> {
    args.iter().copied().chain(SETTINGS).collect()
}

/// The celebrity photos indexed under [`SETTINGS`] into a new folder, their largest cluster
/// named by hand: the folder and the database.
fn named_library(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    common::models();
    let dir = tempdir(name);
    let photos = dir.join("photos");
    copy_tree(
        &common::testdata().join("celebrity"),
        &photos.join("celebrity"),
    );
    let db = dir.join("visage.db");
    run(&db, &with(&["index", photos.to_str().unwrap()]), 0);
    let listed = common::lines(&run(&db, &["clusters", "--json"], 0));
    let largest = listed.iter().max_by_key(|c| c["faces"].as_u64()).unwrap();
    run(
        &db,
        &["name", largest["id"].as_str().unwrap(), "Someone"],
        0,
    );
    (dir, db)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_graph_in_parts_gives_the_clusters_of_one_machine_and_refuses_missing_or_stale_parts() {
    // A name given by hand: the re-cluster keeps it and matches faces to that person.
    let (dir, db) = named_library("recluster");

    // Asked to stop (the flag Ctrl-C sets): after dropping every automatic cluster it stops at
    // its first check, and that is rolled back with the rest.
    let stopped = dir.join("stopped.db");
    copy(&db, &stopped);
    let before = (faces(&stopped), clusters(&stopped));
    assert!(before.1.iter().any(|c| c.1 == "auto"));
    let mut store = visage::store::Store::open(&stopped).unwrap();
    let settings = visage::config::Settings {
        face_cluster_dist: 0.9,
        face_cluster_core: 3,
        graph: visage::config::GraphChoice::Exact,
        ..Default::default()
    };
    let stop = std::sync::atomic::AtomicBool::new(true);
    let how = assign::Full {
        plan: &assign::Plan::Here,
        stop: &stop,
    };
    let err = assign::run_with(&mut store, &settings, &GraphBackend::Cpu, true, how).unwrap_err();
    assert!(err.is_stopped(), "{err}");
    drop(store);
    assert_eq!((faces(&stopped), clusters(&stopped)), before);

    let one = dir.join("one.db");
    copy(&db, &one);
    let out = run(&one, &with(&["cluster", "--recluster", "--json"]), 0);
    let one_report = &common::lines(&out)[0];
    assert_eq!(one_report["full"], true);
    assert!(
        one_report["new_clusters"].as_u64().unwrap() >= 2,
        "{one_report}"
    );

    let parts = dir.join("graph");
    let parts_arg = parts.to_str().unwrap();
    let many = dir.join("many.db");
    copy(&db, &many);
    let before = faces(&many);
    let mut edges = 0;
    for i in 0..3 {
        let shard = format!("{i}/3");
        let out = run(
            &many,
            &with(&[
                "cluster",
                "--graph-shard",
                &shard,
                "--graphs",
                parts_arg,
                "--json",
            ]),
            0,
        );
        let part = &common::lines(&out)[0];
        assert_eq!(part["already"], false, "{part}");
        assert_eq!(part["method"], "cpu_exact", "{part}");
        edges += part["edges"].as_u64().unwrap();
        assert!(parts.join(format!("part-000{i}-of-0003.edges")).is_file());
    }
    assert!(edges > 100, "{edges} edges");
    // Computing a part reads the library only.
    assert_eq!(faces(&many), before);
    // A part run again (a requeued task) finds itself done for this library.
    let out = run(
        &many,
        &with(&[
            "cluster",
            "--graph-shard",
            "1/3",
            "--graphs",
            parts_arg,
            "--json",
        ]),
        0,
    );
    assert_eq!(common::lines(&out)[0]["already"], true);

    // One part missing (killed before it was written whole: no file), or one of another split:
    // refused, named, and nothing written.
    let part1 = parts.join("part-0001-of-0003.edges");
    let kept = dir.join("part1.edges");
    std::fs::rename(&part1, &kept).unwrap();
    // A killed part's temporary file is not a part.
    std::fs::write(parts.join(".visage-edges-x1y2z3"), b"half a part").unwrap();
    let out = run(&many, &with(&["cluster", "--graphs", parts_arg]), 2);
    let err = stderr(&out);
    assert!(err.contains("part 1 of 3 missing"), "{err}");
    assert!(err.contains("--graph-shard I/3"), "{err}");
    std::fs::rename(&kept, &part1).unwrap();
    let other = parts.join("part-0000-of-0002.edges");
    std::fs::copy(parts.join("part-0000-of-0003.edges"), &other).unwrap();
    let err = stderr(&run(&many, &with(&["cluster", "--graphs", parts_arg]), 2));
    assert!(err.contains("two splits"), "{err}");
    std::fs::remove_file(&other).unwrap();
    // Parts computed at another distance are refused, naming it.
    let err = stderr(&run(
        &many,
        &[
            "cluster",
            "--graphs",
            parts_arg,
            "--graph",
            "exact",
            "--face-cluster-dist",
            "0.8",
        ],
        2,
    ));
    assert!(err.contains("computed at --face-cluster-dist 0.9"), "{err}");
    assert_eq!(faces(&many), before);

    // All three: the clusters of one machine, to the bit.
    let out = run(
        &many,
        &with(&["cluster", "--graphs", parts_arg, "--json"]),
        0,
    );
    let many_report = &common::lines(&out)[0];
    for key in [
        "new_clusters",
        "new_cluster_faces",
        "matched_people",
        "joined_clusters",
        "unassigned",
        "dbscan_faces",
    ] {
        assert_eq!(many_report[key], one_report[key], "{key}");
    }
    assert_eq!(faces(&many), faces(&one));
    assert_eq!(clusters(&many), clusters(&one));

    // The library changes (a face DBSCAN clustered is named): the parts are of its old state,
    // and are refused.
    let auto = common::lines(&run(&many, &["clusters", "--json"], 0))
        .into_iter()
        .find(|c| c["kind"] == "auto")
        .unwrap();
    let face = common::lines(&run(
        &many,
        &["faces", "--json", "--cluster", auto["id"].as_str().unwrap()],
        0,
    ))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    run(&many, &["name", &face, "Someone Else"], 0);
    let named = faces(&many);
    let err = stderr(&run(&many, &with(&["cluster", "--graphs", parts_arg]), 2));
    assert!(err.contains("another set of faces"), "{err}");
    assert!(err.contains("part-0000-of-0003.edges"), "{err}");
    assert_eq!(faces(&many), named);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parts_run_at_once_share_one_partition_and_give_one_machines_clusters() {
    // The approximate graph (an IVF partition), which parts share through a file beside them.
    const APPROXIMATE: [&str; 6] = [
        "--face-cluster-dist",
        "0.9",
        "--face-cluster-core",
        "3",
        "--graph",
        "approximate",
    ];
    fn approximate<'a>(args: &[&'a str]) -> Vec<&'a str> {
        args.iter().copied().chain(APPROXIMATE).collect()
    }
    let (dir, db) = named_library("recluster-shared");
    let one = dir.join("one.db");
    copy(&db, &one);
    let out = run(&one, &approximate(&["cluster", "--recluster", "--json"]), 0);
    assert!(common::lines(&out)[0]["new_clusters"].as_u64().unwrap() >= 2);

    // Three parts started at once, each its own process: one builds the partition and saves it,
    // the others wait for it and read it.
    let many = dir.join("many.db");
    copy(&db, &many);
    let parts = dir.join("graph");
    let parts_arg = parts.to_str().unwrap();
    let reports: Vec<serde_json::Value> = std::thread::scope(|s| {
        let runs: Vec<_> = ["0/3", "1/3", "2/3"]
            .into_iter()
            .map(|shard| {
                let args: Vec<&str> = ["cluster", "--graph-shard", shard, "--graphs", parts_arg]
                    .into_iter()
                    .chain(["--json"])
                    .chain(APPROXIMATE)
                    .collect();
                let many = &many;
                s.spawn(move || common::lines(&run(many, &args, 0)).remove(0))
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let mut origins: Vec<&str> = reports
        .iter()
        .map(|r| {
            assert_eq!(r["method"], "cpu_approximate", "{r}");
            r["partition"].as_str().unwrap()
        })
        .collect();
    origins.sort_unstable();
    assert_eq!(origins, ["built", "read", "read"], "{reports:?}");
    assert!(parts.join("ivf-partition.bin").is_file());

    // A part run again finds itself done; one computed again (its file gone) reads the partition.
    std::fs::remove_file(parts.join("part-0001-of-0003.edges")).unwrap();
    let out = run(
        &many,
        &approximate(&[
            "cluster",
            "--graph-shard",
            "1/3",
            "--graphs",
            parts_arg,
            "--json",
        ]),
        0,
    );
    assert_eq!(common::lines(&out)[0]["partition"], "read");

    // The parts give the clusters of one machine, to the bit.
    run(&many, &approximate(&["cluster", "--graphs", parts_arg]), 0);
    assert_eq!(faces(&many), faces(&one));
    assert_eq!(clusters(&many), clusters(&one));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every face's whole state: cluster, person, DBSCAN count, member, seen, assigned, ambiguous.
type States = Vec<(
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    Option<String>,
    i64,
)>;

fn states(db: &Path) -> States {
    query(
        db,
        "SELECT id, cluster, person, neighbours, member, seen, assigned, ambiguous
         FROM faces ORDER BY id",
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        },
    )
}

/// Cluster ids numbered by first appearance in face order.
fn renumbered(states: &States) -> States {
    let mut ids = std::collections::HashMap::new();
    states
        .iter()
        .map(|f| {
            let mut f = f.clone();
            f.1 = f.1.map(|c| {
                let next = ids.len() as i64;
                *ids.entry(c).or_insert(next)
            });
            f
        })
        .collect()
}

#[test]
fn a_recluster_leaves_every_face_as_a_reset_then_a_first_run_would() {
    // A full run writes a face's DBSCAN state only where it changed, and clears it where DBSCAN
    // no longer runs over the face (too small for it now): the same state, bit for bit, as
    // clearing everything first.
    let (dir, db) = named_library("recluster-state");
    let before = states(&db);

    let direct = dir.join("direct.db");
    copy(&db, &direct);
    let larger = with(&["cluster", "--recluster", "--face-cluster-size", "120"]);
    run(&direct, &larger, 0);
    let reset = dir.join("reset.db");
    copy(&db, &reset);
    run(&reset, &["reset"], 0);
    run(&reset, &larger, 0);

    let got = states(&direct);
    // Counted by the last run, not by this one (too small for DBSCAN at the size asked now):
    // what the re-cluster must clear.
    let cleared = before
        .iter()
        .zip(&got)
        .filter(|(b, g)| b.3.is_some() && g.3.is_none())
        .count();
    assert!(cleared > 0, "{before:?}\n{got:?}");
    // The same, but for the clusters' ids (a reset numbers them on from its own drop).
    assert_eq!(renumbered(&got), renumbered(&states(&reset)));
    let content = |db: &Path| {
        let mut c: Vec<_> = clusters(db)
            .into_iter()
            .map(|c| (c.1, c.2, c.3, c.5))
            .collect();
        c.sort();
        c
    };
    assert_eq!(content(&direct), content(&reset));
    assert!(
        got.iter()
            .all(|f| f.2.is_none() || (f.3.is_none() && f.4 == 0)),
        "{got:?}"
    );
    // Counted faces are DBSCAN's, and a second re-cluster changes nothing.
    assert!(got.iter().any(|f| f.3.is_some() && f.1.is_some()));
    run(&direct, &larger, 0);
    assert_eq!(renumbered(&states(&direct)), renumbered(&got));
    run(&direct, &["audit"], 0);
}
