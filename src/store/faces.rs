//! Face rows: reading them (with their photo's path and their person's name), and writing what a
//! person decided about them (a name, a mark, a cluster named or ignored, a rejection's
//! consequence), each a plain write that `people` calls when it has decided. Faces of photos
//! marked gone are never listed.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::Serialize;

use super::{ClusterId, FaceId, PhotoId, SqlResult, embeddings};
use crate::detection::{Detection, FoundFace, Source};
use crate::geometry::Rect;

/// What a person says a face is, when it is nobody to name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A false detection: it leaves every list and is never clustered or matched again.
    NotAFace,
    /// A real face nobody needs to name.
    Stranger,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NotAFace => "not_a_face",
            Verdict::Stranger => "stranger",
        }
    }
}

/// How a face got its cluster or person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Assigned {
    Auto,
    Manual,
}

/// A stored face. Boxes are in original (oriented) image pixels. Serialised, it is the line
/// `visage faces --json` prints (and `visage serve`'s API), with the ids every command takes:
/// `"id": "f1"`, `"photo": "p2"`, `"cluster": "c3"`.
#[derive(Debug, Clone, Serialize)]
pub struct FaceRow {
    pub id: FaceId,
    pub photo: PhotoId,
    pub path: String,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub size: u32,
    pub score: f32,
    pub probability: f32,
    pub cluster: Option<ClusterId>,
    pub person: Option<String>,
    #[serde(skip)]
    pub person_id: Option<i64>,
    pub assigned: Option<Assigned>,
    pub ambiguous: bool,
    /// "not_a_face" or "stranger": a person said it is nobody to name.
    pub verdict: Option<String>,
    /// A video's face: seconds from the start of the still it was found in (its box is in that
    /// still's pixels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moment: Option<f64>,
}

/// A stored face with all it was stored with (its embedding and landmarks), as a merge reads it
/// to store it again elsewhere.
#[derive(Debug, Clone)]
pub struct StoredFace {
    /// Its photo's id.
    pub photo: PhotoId,
    /// The face as `photos::store_indexed` takes it. The detector that found it is not stored;
    /// it reads as PICO.
    pub face: FoundFace,
}

const SELECT: &str = "SELECT f.id, f.photo, p.path, f.x, f.y, f.w, f.h, f.size, f.score,
        f.probability, f.cluster, f.person, f.assigned, f.ambiguous, pe.name, f.verdict, f.moment
    FROM faces f JOIN photos p ON p.id = f.photo LEFT JOIN people pe ON pe.id = f.person";

/// What a [`StoredFace`] reads: the detection, its landmarks, the embedding (half floats) and a
/// video's face's moment.
pub(super) const SELECT_STORED: &str = "SELECT f.photo, f.x, f.y, f.w, f.h, f.size, f.score,
        f.probability, f.landmarks, e.vector, f.moment
    FROM faces f JOIN photos p ON p.id = f.photo LEFT JOIN embeddings e ON e.face = f.id";

/// A row of [`SELECT_STORED`].
pub(super) fn stored_from_row(r: &Row) -> SqlResult<StoredFace> {
    let detection = Detection {
        rect: Rect {
            x: r.get(1)?,
            y: r.get(2)?,
            w: r.get(3)?,
            h: r.get(4)?,
        },
        size: r.get(5)?,
        score: r.get(6)?,
        source: Source::Pico,
        probability: r.get(7)?,
        landmarks: r
            .get::<_, Option<String>>(8)?
            .and_then(|l| serde_json::from_str(&l).ok())
            .unwrap_or_default(),
    };
    let embedding = match r.get_ref(9)? {
        rusqlite::types::ValueRef::Blob(b) => embeddings::from_blob(b),
        _ => Vec::new(),
    };
    Ok(StoredFace {
        photo: r.get(0)?,
        face: FoundFace {
            detection,
            embedding,
            moment: r.get(10)?,
        },
    })
}

/// Which faces to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    pub person: Option<i64>,
    pub cluster: Option<ClusterId>,
    /// Only faces in no cluster and of no person (the review page's "Unknown").
    pub unassigned: bool,
}

/// The faces of photos still present that pass `filter`, in photo path then face id order.
/// (Embeddings are read through `store::embeddings`.)
pub fn list(conn: &Connection, filter: Filter) -> SqlResult<Vec<FaceRow>> {
    let mut stmt = conn.prepare(&format!(
        "{SELECT} WHERE f.gone = 0 AND (?1 IS NULL OR f.person = ?1)
             AND (?2 IS NULL OR f.cluster = ?2)
             AND (NOT ?3 OR (f.cluster IS NULL AND f.person IS NULL))
         ORDER BY p.path, f.id"
    ))?;
    let params = rusqlite::params![filter.person, filter.cluster, filter.unassigned];
    stmt.query_map(params, from_row)?.collect()
}

pub(super) fn from_row(r: &Row) -> SqlResult<FaceRow> {
    let assigned: Option<String> = r.get(12)?;
    Ok(FaceRow {
        id: r.get(0)?,
        photo: r.get(1)?,
        path: r.get(2)?,
        x: r.get(3)?,
        y: r.get(4)?,
        w: r.get(5)?,
        h: r.get(6)?,
        size: r.get(7)?,
        score: r.get(8)?,
        probability: r.get(9)?,
        cluster: r.get(10)?,
        person_id: r.get(11)?,
        assigned: match assigned.as_deref() {
            Some("manual") => Some(Assigned::Manual),
            Some("auto") => Some(Assigned::Auto),
            _ => None,
        },
        ambiguous: r.get(13)?,
        person: r.get(14)?,
        verdict: r.get(15)?,
        moment: r.get(16)?,
    })
}

/// Which faces to page through, in the order people review them.
#[derive(Debug, Clone, Copy)]
pub enum Selection {
    /// A person's faces, newest photos first (file modification time), then by face id.
    Person(i64),
    /// A cluster's faces, largest first.
    Cluster(ClusterId),
    /// Faces in no cluster and of no person, with no verdict ("not a face", "stranger"), largest
    /// first.
    Unassigned,
    /// The faces of one photo, in id order.
    Photo(PhotoId),
}

/// Where a page of faces starts in its selection's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After this many faces (a deep offset walks an index that far, no more).
    Offset(usize),
    /// Right after this face, wherever it is now (it may have left the selection since): a
    /// cursor, found in the index at once however deep it is.
    After(FaceId),
}

/// One page of the faces (of photos still present) in `selection`: how many there are in all,
/// and those from `offset` on, at most `limit`, without embeddings.
pub fn page(
    conn: &Connection,
    selection: Selection,
    offset: usize,
    limit: usize,
) -> SqlResult<(usize, Vec<FaceRow>)> {
    Ok((
        total(conn, selection)?,
        rows(conn, selection, Start::Offset(offset), limit)?,
    ))
}

/// How many faces (of photos still present) `selection` holds. The faces in no cluster are the
/// tally's (kept by triggers); the others are counted from an index over their rows alone.
pub fn total(conn: &Connection, selection: Selection) -> SqlResult<usize> {
    let (sql, key) = match selection {
        Selection::Unassigned => return Ok(super::report::tally(conn)?.faces_open as usize),
        Selection::Person(p) => (
            "SELECT count(*) FROM faces WHERE gone = 0 AND person = ?1",
            p,
        ),
        Selection::Cluster(c) => (
            "SELECT count(*) FROM faces WHERE cluster = ?1 AND gone = 0",
            c.0,
        ),
        Selection::Photo(p) => ("SELECT count(*) FROM faces WHERE photo = ?1", p.0),
    };
    let n: i64 = conn.prepare_cached(sql)?.query_row([key], |r| r.get(0))?;
    Ok(n as usize)
}

/// At most `limit` faces (of photos still present) of `selection` from `start` on, in the
/// selection's order, without embeddings. Faces in no cluster and a cluster's faces are read
/// from their index first (`faces_open`, `faces_cluster`, which hold that order), so that the
/// rows skipped over are never read, and a cursor ([`Start::After`]) seeks to its place.
pub fn rows(
    conn: &Connection,
    selection: Selection,
    start: Start,
    limit: usize,
) -> SqlResult<Vec<FaceRow>> {
    let limit = limit.min(i64::MAX as usize) as i64;
    let (offset, after) = match start {
        Start::Offset(n) => (n.min(i64::MAX as usize) as i64, None),
        Start::After(f) => (0, Some(f)),
    };
    // The cursor's face's place in the order: its size, its photo's time and path, its id.
    let cursor: Option<(i64, i64, String, i64)> = match after {
        Some(f) => {
            let place = conn
                .prepare_cached(
                    "SELECT f.size, p.mtime_ns, p.path FROM faces f JOIN photos p ON p.id = f.photo
                     WHERE f.id = ?1",
                )?
                .query_row([f], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            match place {
                Some((size, mtime, path)) => Some((size, mtime, path, f.0)),
                // A face that is no more has no place: the page is empty rather than the first.
                None => return Ok(Vec::new()),
            }
        }
        None => None,
    };
    let (size, mtime, path, id) = cursor.clone().unwrap_or((0, 0, String::new(), 0));
    let after = cursor.is_some();
    // Faces in no cluster and a cluster's faces: ids from the index that holds their order
    // (size DESC, id). A cursor is two seeks in it, the rest of its size then the smaller ones
    // (one condition with OR would walk the index from its start).
    let by_index = |index: &str, filter: &str| {
        let base = format!("SELECT f.id FROM faces f INDEXED BY {index} WHERE {filter}");
        if after {
            format!(
                "f.id IN (SELECT id FROM ({base} AND f.size = ?5 AND f.id > ?8
                                        ORDER BY f.id LIMIT ?2)
                          UNION ALL
                          SELECT id FROM ({base} AND f.size < ?5
                                        ORDER BY f.size DESC, f.id LIMIT ?2))"
            )
        } else {
            format!("f.id IN ({base} ORDER BY f.size DESC, f.id LIMIT ?2 OFFSET ?3)")
        }
    };
    let (filter, order, key) = match selection {
        Selection::Person(p) => (
            "f.gone = 0 AND f.person = ?1 AND (NOT ?4 OR p.mtime_ns < ?6
             OR (p.mtime_ns = ?6 AND (p.path > ?7 OR (p.path = ?7 AND f.id > ?8))))"
                .to_string(),
            "p.mtime_ns DESC, p.path, f.id",
            p,
        ),
        Selection::Cluster(c) => (
            by_index("faces_cluster", "f.cluster = ?1 AND f.gone = 0"),
            "f.size DESC, f.id",
            c.0,
        ),
        Selection::Unassigned => (
            by_index(
                "faces_open",
                "f.cluster IS NULL AND f.person IS NULL AND f.gone = 0 AND f.verdict IS NULL
                 AND ?1 = 0",
            ),
            "f.size DESC, f.id",
            0,
        ),
        Selection::Photo(p) => (
            "f.photo = ?1 AND (NOT ?4 OR f.id > ?8)".to_string(),
            "f.id",
            p.0,
        ),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT} WHERE {filter} ORDER BY {order} LIMIT ?2 OFFSET ?9"
    ))?;
    // The index-first selections have taken their offset inside.
    let outer_offset = match selection {
        Selection::Cluster(_) | Selection::Unassigned => 0,
        _ => offset,
    };
    stmt.query_map(
        params![
            key,
            limit,
            offset,
            after,
            size,
            mtime,
            path,
            id,
            outer_offset
        ],
        from_row,
    )?
    .collect()
}

/// One face by id (gone or not).
pub fn get(conn: &Connection, id: FaceId) -> SqlResult<Option<FaceRow>> {
    conn.query_row(&format!("{SELECT} WHERE f.id = ?1"), [id], from_row)
        .optional()
}

/// The faces of a cluster (of photos still present).
pub fn in_cluster(conn: &Connection, cluster: ClusterId) -> SqlResult<Vec<FaceRow>> {
    let mut stmt = conn.prepare(&format!(
        "{SELECT} WHERE f.cluster = ?1 AND f.gone = 0 ORDER BY f.id"
    ))?;
    stmt.query_map([cluster], from_row)?.collect()
}

/// One face's embedding (empty if there is no such face).
pub fn embedding(conn: &Connection, id: FaceId) -> SqlResult<Vec<f32>> {
    Ok(embeddings::get(conn, id.0)?.unwrap_or_default())
}

/// A face named by hand: what person matching and suggestions compare with.
#[derive(Debug, Clone)]
pub struct NamedFace {
    pub face: FaceId,
    pub person: i64,
    pub cluster: ClusterId,
    pub embedding: Vec<f32>,
}

/// Every face named by hand as a person (of photos still present).
pub fn named(conn: &Connection) -> SqlResult<Vec<NamedFace>> {
    let mut stmt = conn.prepare(
        "SELECT f.id, f.person, f.cluster, e.vector FROM faces f JOIN embeddings e ON e.face = f.id
         WHERE f.person IS NOT NULL AND f.assigned = 'manual' AND f.cluster IS NOT NULL
           AND f.gone = 0",
    )?;
    stmt.query_map([], |r| {
        Ok(NamedFace {
            face: r.get(0)?,
            person: r.get(1)?,
            cluster: r.get(2)?,
            embedding: embeddings::from_blob(r.get_ref(3)?.as_blob()?),
        })
    })?
    .collect()
}

/// The photos still present with faces of a person (named by hand; with `include_matched`,
/// matched automatically too), in path then face order: each face's box (original oriented
/// pixels), its person's name, and its photo's size and orientation.
pub fn named_in_photos(conn: &Connection, include_matched: bool) -> SqlResult<Vec<NamedInPhoto>> {
    let mut stmt = conn.prepare(
        "SELECT p.path, p.width, p.height, p.orientation, f.x, f.y, f.w, f.h, pe.name,
                f.moment IS NOT NULL
         FROM faces f JOIN photos p ON p.id = f.photo JOIN people pe ON pe.id = f.person
         WHERE p.gone = 0 AND p.width > 0 AND p.height > 0
           AND (f.assigned = 'manual' OR (?1 AND f.assigned = 'auto'))
         ORDER BY p.path, f.id",
    )?;
    stmt.query_map([include_matched], |r| {
        Ok(NamedInPhoto {
            path: r.get(0)?,
            width: r.get(1)?,
            height: r.get(2)?,
            orientation: r.get::<_, Option<u8>>(3)?.unwrap_or(1),
            x: r.get(4)?,
            y: r.get(5)?,
            w: r.get(6)?,
            h: r.get(7)?,
            name: r.get(8)?,
            video: r.get(9)?,
        })
    })?
    .collect()
}

/// A named face with its photo's facts, as [`named_in_photos`] reads it.
#[derive(Debug, Clone)]
pub struct NamedInPhoto {
    pub path: String,
    /// The photo's size after EXIF orientation, and the orientation (1-8).
    pub width: u32,
    pub height: u32,
    pub orientation: u8,
    /// The box as stored (original oriented pixels).
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
    pub name: String,
    /// A video's face (found at a moment of it).
    pub video: bool,
}

/// Faces matched automatically to these people.
pub fn count_matched(conn: &Connection, people: &[i64]) -> SqlResult<usize> {
    let mut n = 0;
    let mut stmt =
        conn.prepare_cached("SELECT count(*) FROM faces WHERE person = ?1 AND assigned = 'auto'")?;
    for p in people {
        n += stmt.query_row([p], |r| r.get::<_, i64>(0))? as usize;
    }
    Ok(n)
}

/// Faces with an automatic match or a rival (what `reset` clears).
pub fn count_automatic(conn: &Connection) -> SqlResult<usize> {
    conn.query_row(
        "SELECT count(*) FROM faces WHERE assigned = 'auto' OR ambiguous = 1",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as usize)
}

// What people decide, written onto faces. Each is a plain write; `people` decides when.

/// Face `face` is person `person`'s, named by hand, in cluster `cluster`.
pub fn name(tx: &Transaction, face: FaceId, person: i64, cluster: ClusterId) -> SqlResult<()> {
    tx.execute(
        "UPDATE faces SET person = ?2, cluster = ?3, assigned = 'manual', ambiguous = 0,
             name_source = NULL
         WHERE id = ?1",
        params![face, person, cluster],
    )?;
    Ok(())
}

/// Every face of cluster `cluster` is person `person`'s, named by hand. Returns how many.
pub fn name_cluster(tx: &Transaction, cluster: ClusterId, person: i64) -> SqlResult<usize> {
    tx.execute(
        "UPDATE faces SET person = ?2, assigned = 'manual', ambiguous = 0, name_source = NULL
         WHERE cluster = ?1",
        params![cluster, person],
    )
}

/// The faces of cluster `cluster` rejected for `person` leave it (and any person).
pub fn take_rejected_out(tx: &Transaction, cluster: ClusterId, person: i64) -> SqlResult<()> {
    tx.execute(
        "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL, ambiguous = 0
         WHERE cluster = ?1 AND id IN (SELECT face FROM rejections WHERE person = ?2)",
        params![cluster, person],
    )?;
    Ok(())
}

/// Where face `face`'s name came from (`xmp:PATH`).
pub fn set_name_source(tx: &Transaction, face: FaceId, source: &str) -> SqlResult<()> {
    tx.prepare_cached("UPDATE faces SET name_source = ?2 WHERE id = ?1")?
        .execute(params![face, source])?;
    Ok(())
}

/// Face `face` leaves its cluster and person if that person is `person`.
pub fn leave_person(tx: &Transaction, face: FaceId, person: i64) -> SqlResult<()> {
    tx.execute(
        "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL, ambiguous = 0
         WHERE id = ?1 AND person = ?2",
        params![face, person],
    )?;
    Ok(())
}

/// Faces matched automatically to `person` but rejected for them lose the match.
pub fn drop_rejected_matches(tx: &Transaction, person: i64) -> SqlResult<()> {
    tx.execute(
        "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL
         WHERE person = ?1 AND assigned = 'auto'
           AND id IN (SELECT face FROM rejections WHERE person = ?1)",
        [person],
    )?;
    Ok(())
}

/// The faces of cluster `cluster`, ignored: of no person, kept there by hand. Returns how many.
pub fn ignore_cluster(tx: &Transaction, cluster: ClusterId) -> SqlResult<usize> {
    tx.execute(
        "UPDATE faces SET person = NULL, assigned = 'manual', ambiguous = 0
         WHERE cluster = ?1",
        [cluster],
    )
}

/// The faces of cluster `cluster` with no person are set free, to be clustered again as new
/// faces. Returns how many.
pub fn free_cluster(tx: &Transaction, cluster: ClusterId) -> SqlResult<usize> {
    tx.execute(
        "UPDATE faces SET cluster = NULL, assigned = NULL, ambiguous = 0, seen = 0
         WHERE cluster = ?1 AND person IS NULL",
        [cluster],
    )
}

/// Face `face` is marked `verdict`: it leaves its cluster and person.
pub fn mark(tx: &Transaction, face: FaceId, verdict: Verdict) -> SqlResult<()> {
    tx.execute(
        "UPDATE faces SET verdict = ?2, cluster = NULL, person = NULL,
             assigned = NULL, ambiguous = 0
         WHERE id = ?1",
        params![face, verdict.as_str()],
    )?;
    Ok(())
}

/// Every face's mark goes (a library made to be reviewed again from the start).
pub fn unmark_all(tx: &Transaction) -> SqlResult<()> {
    tx.execute("UPDATE faces SET verdict = NULL", [])?;
    Ok(())
}

/// The first `n` faces by id.
pub fn first(conn: &Connection, n: usize) -> SqlResult<Vec<FaceId>> {
    conn.prepare("SELECT id FROM faces ORDER BY id LIMIT ?1")?
        .query_map([n.min(i64::MAX as usize) as i64], |r| r.get(0))?
        .collect()
}

/// Face `face`'s mark ("not a face", "stranger") goes.
pub fn unmark(tx: &Transaction, face: FaceId) -> SqlResult<()> {
    tx.execute("UPDATE faces SET verdict = NULL WHERE id = ?1", [face])?;
    Ok(())
}

/// The faces a person could still name (no person, no verdict, not decided by hand, photo
/// present; with `open_only`, in no cluster either) within reach of `queries`, each with its
/// cluster as the one extra column ([`embeddings::Found::value`]`(0)`), as
/// [`embeddings::search`] finds them.
pub fn search_unnamed(
    conn: &Connection,
    queries: &mut crate::graph::range::RangeQuery,
    open_only: bool,
    each: impl FnMut(&embeddings::Found),
) -> SqlResult<()> {
    let filter = if open_only {
        "f.person IS NULL AND f.verdict IS NULL AND f.assigned IS NOT 'manual' AND f.gone = 0
         AND f.cluster IS NULL"
    } else {
        "f.person IS NULL AND f.verdict IS NULL AND f.assigned IS NOT 'manual' AND f.gone = 0"
    };
    embeddings::search(conn, queries, &["f.cluster"], filter, each)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreError, report};

    /// A library of 40 faces in 8 photos, many of one size (ties the order breaks by id), half
    /// of them in one cluster.
    fn library(name: &str) -> (std::path::PathBuf, Store, ClusterId) {
        let dir = std::env::temp_dir().join(format!("visage-faces-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = Store::open_or_create(&dir.join("visage.db")).unwrap();
        let cluster = store
            .write(|tx| -> Result<ClusterId, StoreError> {
                let c: ClusterId = tx.query_row(
                    "INSERT INTO clusters (kind) VALUES ('auto') RETURNING id",
                    [],
                    |r| r.get(0),
                )?;
                for p in 0..8 {
                    tx.execute(
                        "INSERT INTO photos (path, size, mtime_ns, indexed_at) VALUES (?1, 1, ?2, 0)",
                        params![format!("/p/{p}.jpg"), p % 3],
                    )?;
                }
                for k in 0..40i64 {
                    tx.execute(
                        "INSERT INTO faces (photo, rel_x, rel_y, rel_w, rel_h, x, y, w, h, size,
                             score, probability, landmarks, cluster)
                         VALUES (?1, 0, 0, 0, 0, 0, 0, 10, 10, ?2, 50, 1, '[]', ?3)",
                        params![1 + k % 8, [40, 60, 60, 60, 80][k as usize % 5], (k % 2 == 0).then_some(c)],
                    )?;
                }
                Ok(c)
            })
            .unwrap();
        (dir, store, cluster)
    }

    /// Every face of `selection`, `limit` at a time by cursor.
    fn by_cursor(store: &Store, selection: Selection, limit: usize) -> Vec<FaceId> {
        let mut out: Vec<FaceId> = Vec::new();
        loop {
            let start = out.last().map_or(Start::Offset(0), |&f| Start::After(f));
            let page = store.read(|c| rows(c, selection, start, limit)).unwrap();
            assert!(page.len() <= limit);
            out.extend(page.iter().map(|f| f.id));
            if page.len() < limit {
                return out;
            }
            assert!(out.len() <= 40, "more pages than faces");
        }
    }

    #[test]
    fn pages_by_offset_and_by_cursor_give_every_face_once_in_order() {
        let (dir, store, cluster) = library("pages");
        for selection in [
            Selection::Unassigned,
            Selection::Cluster(cluster),
            Selection::Photo(PhotoId(3)),
        ] {
            let (total, all) = page(&store.conn, selection, 0, usize::MAX).unwrap();
            assert_eq!(total, all.len(), "{selection:?}");
            assert!(!all.is_empty(), "{selection:?}");
            let ids: Vec<FaceId> = all.iter().map(|f| f.id).collect();
            // The selection's order: largest first, ties by id (a photo's: by id).
            let key = |f: &FaceRow| match selection {
                Selection::Photo(_) => (0, f.id.0),
                _ => (-(f.size as i64), f.id.0),
            };
            assert!(
                all.windows(2).all(|w| key(&w[0]) < key(&w[1])),
                "{selection:?}"
            );
            for limit in [1, 3, 7] {
                assert_eq!(
                    by_cursor(&store, selection, limit),
                    ids,
                    "{selection:?} {limit}"
                );
                let mut by_offset = Vec::new();
                while by_offset.len() < total {
                    let (_, page) = page(&store.conn, selection, by_offset.len(), limit).unwrap();
                    by_offset.extend(page.iter().map(|f| f.id));
                }
                assert_eq!(by_offset, ids, "{selection:?} {limit}");
            }
        }
        // A person's faces: newest photo first, then path, then id, by cursor as by offset.
        let mut store = store;
        store
            .write(|tx| -> Result<(), StoreError> {
                tx.execute("INSERT INTO people (name) VALUES ('Ann')", [])?;
                tx.execute(
                    "UPDATE faces SET person = 1, assigned = 'manual' WHERE id % 3 = 0",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        let (total, all) = page(&store.conn, Selection::Person(1), 0, usize::MAX).unwrap();
        assert_eq!(total, 13);
        let ids: Vec<FaceId> = all.iter().map(|f| f.id).collect();
        assert_eq!(by_cursor(&store, Selection::Person(1), 2), ids);
        // The counts kept are a recount's through it all.
        let (kept, counted) = store
            .read(|c| Ok((report::tally(c)?, report::recount(c)?)))
            .unwrap();
        assert_eq!(kept, counted);
        assert_eq!(
            (kept.faces, kept.faces_named, kept.clusters_open),
            (40, 13, 1)
        );
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
