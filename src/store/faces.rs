//! Face rows: reading them (with their photo's path and their person's name) and the few
//! per-face updates the people commands make. Faces of photos marked gone are never listed.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{ClusterId, FaceId, PhotoId, SqlResult};
use crate::detection::{Detection, FoundFace, Source};
use crate::geometry::Rect;

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
    #[serde(serialize_with = "face_ref")]
    pub id: i64,
    #[serde(serialize_with = "photo_ref")]
    pub photo: i64,
    pub path: String,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub size: u32,
    pub score: f32,
    pub probability: f32,
    #[serde(serialize_with = "cluster_ref")]
    pub cluster: Option<i64>,
    pub person: Option<String>,
    #[serde(skip)]
    pub person_id: Option<i64>,
    pub assigned: Option<Assigned>,
    pub ambiguous: bool,
    /// "not_a_face" or "stranger": a person said it is nobody to name.
    pub verdict: Option<String>,
}

/// A stored face with all it was stored with (its embedding and landmarks), as a merge reads it
/// to store it again elsewhere.
#[derive(Debug, Clone)]
pub struct StoredFace {
    /// Its photo's id.
    pub photo: i64,
    /// The face as `photos::store_indexed` takes it. The detector that found it is not stored;
    /// it reads as PICO.
    pub face: FoundFace,
}

fn face_ref<S: serde::Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&FaceId(*id))
}

fn photo_ref<S: serde::Serializer>(id: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&PhotoId(*id))
}

fn cluster_ref<S: serde::Serializer>(id: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(c) => s.collect_str(&ClusterId(*c)),
        None => s.serialize_none(),
    }
}

const SELECT: &str = "SELECT f.id, f.photo, p.path, f.x, f.y, f.w, f.h, f.size, f.score,
        f.probability, f.cluster, f.person, f.assigned, f.ambiguous, pe.name, f.verdict
    FROM faces f JOIN photos p ON p.id = f.photo LEFT JOIN people pe ON pe.id = f.person";

/// What a [`StoredFace`] reads: the detection, its landmarks and the embedding (half floats).
pub(super) const SELECT_STORED: &str = "SELECT f.photo, f.x, f.y, f.w, f.h, f.size, f.score,
        f.probability, f.landmarks, e.vector
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
        rusqlite::types::ValueRef::Blob(b) => super::embeddings::from_blob(b),
        _ => Vec::new(),
    };
    Ok(StoredFace {
        photo: r.get(0)?,
        face: FoundFace {
            detection,
            embedding,
        },
    })
}

/// Which faces to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    pub person: Option<i64>,
    pub cluster: Option<i64>,
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
    })
}

/// Which faces to page through, in the order people review them.
#[derive(Debug, Clone, Copy)]
pub enum Selection {
    /// A person's faces, newest photos first (file modification time), then by face id.
    Person(i64),
    /// A cluster's faces, largest first.
    Cluster(i64),
    /// Faces in no cluster and of no person, with no verdict ("not a face", "stranger"), largest
    /// first.
    Unassigned,
    /// The faces of one photo, in id order.
    Photo(i64),
}

/// One page of the faces (of photos still present) in `selection`: how many there are in all,
/// and those from `offset` on, at most `limit`, without embeddings.
pub fn page(
    conn: &Connection,
    selection: Selection,
    offset: usize,
    limit: usize,
) -> SqlResult<(usize, Vec<FaceRow>)> {
    let (filter, order, key) = match selection {
        Selection::Person(p) => ("f.person = ?1", "p.mtime_ns DESC, p.path, f.id", p),
        Selection::Cluster(c) => ("f.cluster = ?1", "f.size DESC, f.id", c),
        Selection::Unassigned => (
            "f.cluster IS NULL AND f.person IS NULL AND f.gone = 0 AND f.verdict IS NULL AND ?1 = 0",
            "f.size DESC, f.id",
            0,
        ),
        Selection::Photo(p) => ("f.photo = ?1", "f.id", p),
    };
    let gone = match selection {
        Selection::Photo(_) => "1",
        _ => "f.gone = 0",
    };
    // Faces in no cluster are counted from their partial index alone (the planner would
    // otherwise take a cluster index and read every face row for its verdict).
    let index = match selection {
        Selection::Unassigned => "INDEXED BY faces_open",
        _ => "",
    };
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM faces f {index} WHERE {gone} AND {filter}"),
        [key],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "{SELECT} WHERE {gone} AND {filter} ORDER BY {order} LIMIT ?2 OFFSET ?3"
    ))?;
    let rows = stmt
        .query_map(
            rusqlite::params![key, limit.min(i64::MAX as usize) as i64, offset as i64],
            from_row,
        )?
        .collect::<SqlResult<_>>()?;
    Ok((total as usize, rows))
}

/// One face by id (gone or not).
pub fn get(conn: &Connection, id: i64) -> SqlResult<Option<FaceRow>> {
    conn.query_row(&format!("{SELECT} WHERE f.id = ?1"), [id], from_row)
        .optional()
}

/// The faces of a cluster (of photos still present).
pub fn in_cluster(conn: &Connection, cluster: i64) -> SqlResult<Vec<FaceRow>> {
    let mut stmt = conn.prepare(&format!(
        "{SELECT} WHERE f.cluster = ?1 AND f.gone = 0 ORDER BY f.id"
    ))?;
    stmt.query_map([cluster], from_row)?.collect()
}

/// The people each face was rejected for.
pub fn rejections(conn: &Connection) -> SqlResult<HashMap<i64, Vec<i64>>> {
    let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut stmt = conn.prepare("SELECT face, person FROM rejections")?;
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (face, person) = row?;
        out.entry(face).or_default().push(person);
    }
    Ok(out)
}

/// One face's embedding (empty if there is no such face).
pub fn embedding(conn: &Connection, id: i64) -> SqlResult<Vec<f32>> {
    Ok(super::embeddings::get(conn, id)?.unwrap_or_default())
}

/// A face named by hand: what person matching and suggestions compare with.
#[derive(Debug, Clone)]
pub struct NamedFace {
    pub face: i64,
    pub person: i64,
    pub cluster: i64,
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
            embedding: super::embeddings::from_blob(r.get_ref(3)?.as_blob()?),
        })
    })?
    .collect()
}
