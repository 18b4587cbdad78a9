//! Clustering as a library grows: several `visage index` runs over a growing folder of real
//! photos, with names, rejections and a removed photo in between, leave the same automatic
//! clusters as `visage cluster --recluster` over the same faces, and exactly the neighbour
//! counts a full run computes.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;
use visage::evaluation::cluster_scores;
use visage::store::FaceId;
use visage::store::embeddings::cells::Cells;
use visage::store::embeddings::file::VectorFile;

use crate::common::{self, run, tempdir};

/// Settings under which the celebrity set forms several clusters with borders and noise.
const SETTINGS: [&str; 4] = ["--face-cluster-dist", "0.9", "--face-cluster-core", "3"];

/// Every face the automatic side decides about (not named by hand, photo present): its group
/// (its person if matched to one, else its cluster, else none) and its DBSCAN neighbour count.
fn automatic(db: &Path) -> BTreeMap<FaceId, (Option<String>, Option<i64>)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT id, CASE WHEN person IS NOT NULL THEN 'p' || person
                             WHEN cluster IS NOT NULL THEN 'c' || cluster END, neighbours
             FROM faces WHERE gone = 0 AND assigned IS NOT 'manual' ORDER BY id",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn with<'a>(args: &[&'a str]) -> Vec<&'a str> {
    args.iter().copied().chain(SETTINGS).collect()
}

#[test]
fn automatic_clusters_after_several_runs_equal_a_full_recluster() {
    grow_then_compare(None);
}

/// The same through the vector file's cells (made after the first run, as a library of 200,000
/// faces gets them): the searches read the cells the new faces probe and the faces added since,
/// and matching reads the clusters at home in the cells those faces probe.
#[test]
fn the_same_through_the_vector_files_cells() {
    grow_then_compare(Some(6));
}

fn grow_then_compare(cells: Option<usize>) {
    common::models();
    let dir = tempdir(if cells.is_some() {
        "incremental-cells"
    } else {
        "incremental"
    });
    let (photos, db) = (dir.join("photos"), dir.join("visage.db"));
    std::fs::create_dir_all(&photos).unwrap();
    let all = common::celebrity_photos();
    let root = common::testdata();
    let quarter = all.len().div_ceil(4);
    let photos_arg = photos.to_str().unwrap().to_string();
    for (k, part) in all.chunks(quarter).enumerate() {
        for (j, name) in part.iter().enumerate() {
            std::fs::copy(root.join(name), photos.join(format!("{k}-{j}.jpg"))).unwrap();
        }
        let out = run(&db, &with(&["index", "--json", &photos_arg]), 0);
        let summary = &common::lines(&out)[0]["cluster"];
        assert_eq!(summary["full"], k == 0, "run {k}: {summary}");
        if let (0, Some(cells)) = (k, cells) {
            let mut file = VectorFile::open(&db).unwrap();
            let made = Cells::make(&db, &mut file, cells).unwrap();
            assert!(made.cells() > 1 && made.len() as usize > 20);
        }
        match k {
            // Name the largest cluster and reject one of its faces for that name.
            1 => {
                let clusters = common::lines(&run(&db, &["clusters", "--json"], 0));
                let c = clusters
                    .iter()
                    .filter(|c| c["kind"] == "auto")
                    .max_by_key(|c| c["faces"].as_u64())
                    .unwrap();
                let id = c["id"].as_str().unwrap();
                run(&db, &["name", id, "Someone"], 0);
                let faces = common::lines(&run(&db, &["faces", "--json", "--cluster", id], 0));
                let f = faces.last().unwrap()["id"].as_str().unwrap().to_string();
                run(&db, &["reject", &f], 0);
            }
            // A photo is removed from the folder.
            2 => std::fs::remove_file(photos.join("0-3.jpg")).unwrap(),
            _ => {}
        }
    }
    run(&db, &with(&["cluster"]), 0);
    let incremental = automatic(&db);
    if cells.is_some() {
        // Every cluster's cell was worked out for the cells made, and is not stale.
        let conn = Connection::open(&db).unwrap();
        let unknown: i64 = conn
            .query_row(
                "SELECT count(*) FROM clusters WHERE cell IS NULL AND centroid IS NOT NULL
                 AND kind != 'manual'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let known: i64 = conn
            .query_row(
                "SELECT count(*) FROM clusters WHERE cell IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            known > 2 && unknown <= 1,
            "{known} known, {unknown} unknown"
        );
    }

    let copy = dir.join("full.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    drop(conn);
    let out = run(&copy, &with(&["cluster", "--recluster", "--json"]), 0);
    assert_eq!(common::lines(&out)[0]["full"], true);
    let full = automatic(&copy);

    assert_eq!(
        incremental.keys().collect::<Vec<_>>(),
        full.keys().collect::<Vec<_>>()
    );
    // DBSCAN's state: the same neighbour count for every face, exactly.
    for (id, (_, n)) in &incremental {
        assert_eq!(*n, full[id].1, "neighbour count of {id}");
    }
    // The same groups (labels differ: compare partitions).
    let label = |m: &BTreeMap<FaceId, (Option<String>, Option<i64>)>| -> Vec<Option<u32>> {
        let mut names: BTreeMap<String, u32> = BTreeMap::new();
        m.values()
            .map(|(g, _)| {
                g.as_ref().map(|g| {
                    let next = names.len() as u32;
                    *names.entry(g.clone()).or_insert(next)
                })
            })
            .collect()
    };
    let (a, b) = (label(&incremental), label(&full));
    let groups = a.iter().flatten().max().map_or(0, |m| *m as usize + 1);
    let truth: Vec<usize> = a
        .iter()
        .enumerate()
        .map(|(k, l)| l.map_or(groups + k, |l| l as usize))
        .collect();
    let scores = cluster_scores(&truth, &b);
    eprintln!(
        "{} faces, {} groups: ARI {:.4}",
        truth.len(),
        groups,
        scores.adjusted_rand_index
    );
    assert!(groups >= 3, "the settings make clusters ({groups})");
    assert!(
        scores.adjusted_rand_index >= 0.99,
        "{scores:?}\nincremental {incremental:?}\nfull {full:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
