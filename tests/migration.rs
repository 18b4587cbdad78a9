//! A library made by the release before the million-faces schema (`tests/data/release-0.1.0.db`:
//! 15 photos indexed by that release's `visage index`, one of them since removed and one file
//! that failed; clusters named, ignored, a face rejected, a person hidden) opens and migrates in
//! place with nothing lost, and clustering runs on it without touching a decision.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;
use visage::store::{FaceId, Store, embeddings, report, schema};

use crate::common::{run, tempdir};

/// Every row of a table as text, by its first column (embeddings left out: compared apart).
fn rows(conn: &Connection, sql: &str) -> BTreeMap<String, Vec<String>> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        let cells: Vec<String> = (0..n)
            .map(|k| match r.get_ref(k).unwrap() {
                rusqlite::types::ValueRef::Null => "NULL".into(),
                rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                rusqlite::types::ValueRef::Real(f) => format!("{f:.6}"),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                rusqlite::types::ValueRef::Blob(b) => format!("blob {}", b.len()),
            })
            .collect();
        Ok((cells[0].clone(), cells))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

const PHOTOS: &str = "SELECT * FROM photos ORDER BY id";
const FACES: &str = "SELECT id, photo, rel_x, rel_y, rel_w, rel_h, x, y, w, h, size, score,
    probability, landmarks, cluster, person, assigned, ambiguous, name_source FROM faces ORDER BY id";
const CLUSTERS: &str =
    "SELECT id, kind, person, centroid, radius, samples FROM clusters ORDER BY id";
const PEOPLE: &str = "SELECT * FROM people ORDER BY id";
const REJECTIONS: &str = "SELECT face || ',' || person, * FROM rejections ORDER BY face, person";
const DECISIONS: &str = "SELECT id, cluster, person, assigned FROM faces
    WHERE assigned = 'manual' ORDER BY id";

fn old_embeddings(conn: &Connection) -> BTreeMap<FaceId, Vec<f32>> {
    let mut stmt = conn.prepare("SELECT id, embedding FROM faces").unwrap();
    stmt.query_map([], |r| {
        let b: Vec<u8> = r.get(1)?;
        Ok((r.get(0)?, visage::store::blob_embedding(&b)))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Faces of photos marked gone.
fn gone_faces(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT count(*) FROM faces WHERE gone = 1", [], |r| {
        r.get(0)
    })
}

#[test]
fn a_library_of_the_last_release_migrates_in_place_with_nothing_lost() {
    let dir = tempdir("migration");
    let db = dir.join("visage.db");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/release-0.1.0.db");
    std::fs::copy(&fixture, &db).unwrap();

    let (photos, faces, clusters, people, rejections, decisions, vectors) = {
        let old = Connection::open(&db).unwrap();
        let v: i64 = old
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2, "the fixture is a database of the last release");
        (
            rows(&old, PHOTOS),
            rows(&old, FACES),
            rows(&old, CLUSTERS),
            rows(&old, PEOPLE),
            rows(&old, REJECTIONS),
            rows(&old, DECISIONS),
            old_embeddings(&old),
        )
    };
    assert!(faces.len() >= 19 && !decisions.is_empty() && !rejections.is_empty());
    assert!(clusters.values().any(|c| c[1] == "ignored"));
    assert!(photos.values().any(|p| p[10] == "1"), "a photo is gone");

    let store = Store::open(&db).unwrap();
    assert_eq!(store.version().unwrap(), schema::MIGRATIONS.len());
    assert_eq!(store.integrity_check().unwrap(), "ok");
    store
        .read(|c| {
            assert_eq!(rows(c, PHOTOS), photos);
            assert_eq!(rows(c, FACES), faces);
            assert_eq!(rows(c, CLUSTERS), clusters);
            assert_eq!(rows(c, PEOPLE), people);
            assert_eq!(rows(c, REJECTIONS), rejections);
            // Every embedding, as half floats.
            for (id, old) in &vectors {
                let now = embeddings::get(c, id.0)?.expect("an embedding for every face");
                // Half floats keep 11 significant bits: relative error at most 2^-11.
                for (a, b) in old.iter().zip(&now) {
                    assert!((a - b).abs() <= a.abs() / 2048.0 + 1e-7, "{id}: {a} {b}");
                }
            }
            // The embedding column is gone from the face rows, and the space came back.
            let cols: Vec<String> = c
                .prepare("SELECT name FROM pragma_table_info('faces')")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            assert!(!cols.contains(&"embedding".to_string()), "{cols:?}");
            // Cluster face counts are right from the start.
            let wrong: i64 = c.query_row(
                "SELECT count(*) FROM clusters c
                 WHERE faces != (SELECT count(*) FROM faces f WHERE f.cluster = c.id)",
                [],
                |r| r.get(0),
            )?;
            assert_eq!(wrong, 0);
            // The library's counts are filled from its rows.
            let t = report::tally(c)?;
            assert_eq!(t, report::recount(c)?);
            assert_eq!(t.faces + gone_faces(c)?, faces.len() as i64);
            assert_eq!(t.rejections, rejections.len() as i64);
            assert!(t.photos_gone >= 1 && t.clusters_ignored >= 1, "{t:?}");
            Ok(())
        })
        .unwrap();
    drop(store);

    // Clustering over the migrated library (its first run rebuilds DBSCAN's state) and an audit
    // leave every decision as it was.
    run(&db, &["cluster"], 0);
    run(&db, &["cluster", "--face-cluster-dist", "1.0"], 0);
    run(&db, &["audit"], 0); // exit 0: no inconsistency, integrity_check ok
    crate::common::assert_tally(&db, "clustered after the migration");
    let store = Store::open(&db).unwrap();
    store
        .read(|c| {
            assert_eq!(rows(c, DECISIONS), decisions);
            assert_eq!(rows(c, PEOPLE), people);
            assert_eq!(rows(c, REJECTIONS), rejections);
            Ok(())
        })
        .unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
