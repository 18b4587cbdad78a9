//! The library's counts kept by triggers (issue 27: `visage stats`, the review page's progress and
//! its totals at ten million faces read one row) equal a recount from the tables after every kind
//! of change, on the real indexed celebrity set: indexing, a photo gone and back, clustering and
//! re-clustering, decisions and their undo; `visage audit` finds a wrong count and repairs it.
//! `visage clusters` lists a page of the largest clusters, every one once across pages.

use std::collections::HashSet;

use serde_json::Value;

use crate::common::{assert_tally, lines};
use crate::server;

#[test]
fn the_counts_kept_equal_a_recount_through_a_library_life() {
    let lib = server::library("tally");
    let db = &lib.db;
    let t = assert_tally(db, "indexed and clustered");
    let faces = lib.faces();
    assert_eq!(t.faces as usize, faces.len());
    assert!(t.faces_clustered > 0 && t.clusters_open >= 4, "{t:?}");
    let stats = &lib.visage_json(&["stats", "--json"])[0];
    for (key, kept) in [
        ("photos", t.photos),
        ("faces", t.faces),
        ("faces_clustered", t.faces_clustered),
        ("faces_unassigned", t.faces_unassigned),
        ("clusters_auto", t.clusters_auto),
    ] {
        assert_eq!(stats[key].as_i64(), Some(kept), "stats' {key}: {stats}");
    }
    // The sampled parts: every clustered face and every cluster, in a library this small.
    assert_eq!(
        stats["cluster_radius"]["count"].as_i64(),
        Some(t.clusters()),
        "{stats}"
    );
    assert!(stats["member_distance"]["count"].as_i64().unwrap() > 0);

    // A photo removed from the folder, then put back.
    let photo = faces[0]["path"].as_str().unwrap().to_string();
    let kept = lib.dir.join("kept.jpg");
    std::fs::rename(&photo, &kept).unwrap();
    lib.run(&["index", lib.photos.to_str().unwrap()], 0);
    let gone = assert_tally(db, "a photo gone");
    assert_eq!(gone.photos_gone, 1);
    assert!(gone.faces < t.faces);
    std::fs::rename(&kept, &photo).unwrap();
    lib.run(&["index", lib.photos.to_str().unwrap()], 0);
    let back = assert_tally(db, "the photo back");
    assert_eq!((back.photos, back.faces), (t.photos, t.faces));

    // Decisions from the command line, clustering again, and their undo.
    let clusters = lib.visage_json(&["clusters", "--json"]);
    let cid = |k: usize| clusters[k]["id"].as_str().unwrap().to_string();
    lib.run(&["name", &cid(0), "Ann"], 0);
    assert_tally(db, "a cluster named");
    lib.run(&["ignore", &cid(1)], 0);
    assert_tally(db, "a cluster ignored");
    let open: Vec<Value> = lib.visage_json(&["faces", "--json", "--unassigned"]);
    if let Some(f) = open.first() {
        lib.run(
            &["mark", f["id"].as_str().unwrap(), "--as", "not-a-face"],
            0,
        );
        assert_tally(db, "a face marked");
    }
    let ann: Vec<Value> = lib.visage_json(&["faces", "--json", "--person", "Ann"]);
    lib.run(&["reject", ann[0]["id"].as_str().unwrap()], 0);
    assert_tally(db, "a face rejected");
    lib.run(&["split", ann[1]["id"].as_str().unwrap(), "--to", "Bo"], 0);
    assert_tally(db, "a face split off");
    lib.run(&["merge-person", "Bo", "Ann"], 0);
    assert_tally(db, "people merged");
    lib.run(&["cluster", "--recluster", "--face-cluster-dist", "0.9"], 0);
    let reclustered = assert_tally(db, "re-clustered");
    assert!(reclustered.people >= 1 && reclustered.rejections >= 1);
    lib.run(&["undo", "3"], 0);
    assert_tally(db, "three actions undone");
    lib.run(&["reset", "--all", "--force"], 0);
    let reset = assert_tally(db, "reset");
    assert_eq!((reset.people, reset.faces_named), (0, 0));

    // A count made wrong behind visage's back: `audit` finds it, `audit --fix` repairs it.
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute("UPDATE tally SET faces = faces + 7, clusters_open = 0", [])
        .unwrap();
    drop(conn);
    let out = lib.run(&["audit"], 1);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("tally"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    lib.run(&["audit", "--fix"], 0);
    assert_tally(db, "repaired");
}

#[test]
fn clusters_lists_a_page_of_the_largest_and_every_one_across_pages() {
    let lib = server::library("tally-clusters");
    let t = assert_tally(&lib.db, "indexed");
    let all = lib.visage_json(&["clusters", "--json", "--all"]);
    assert_eq!(all.len() as i64, t.clusters());
    let size = |c: &Value| c["faces"].as_u64().unwrap();
    assert!(
        all.windows(2).all(|w| size(&w[0]) >= size(&w[1])),
        "{all:?}"
    );
    // Two at a time: the same clusters in the same order, each once; a note on stderr says
    // where the page is (stdout stays one JSON object per line).
    let mut paged = Vec::new();
    loop {
        let offset = paged.len().to_string();
        let out = lib.run(
            &["clusters", "--json", "--limit", "2", "--offset", &offset],
            0,
        );
        let page = lines(&out);
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&format!("of {}", all.len())),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        paged.extend(page);
    }
    assert_eq!(paged, all);
    let ids: HashSet<&str> = all.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), all.len());
    // Each line: the cluster's own count of faces and one photo of it.
    let faces = lib.faces();
    for c in &all {
        let n = faces.iter().filter(|f| f["cluster"] == c["id"]).count() as u64;
        assert_eq!(size(c), n, "{c}");
        assert!(c["example"].as_str().is_some(), "{c}");
    }
    // The default page holds them all here, with nothing said.
    let out = lib.run(&["clusters", "--json"], 0);
    assert_eq!(lines(&out), all);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
