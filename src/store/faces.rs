//! Face rows: reading them (with their photo's path and their person's name) and the few
//! per-face updates the people commands make. Faces of photos marked gone are never listed.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row};
use serde::Serialize;

use super::{SqlResult, blob_embedding};

/// How a face got its cluster or person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Assigned {
    Auto,
    Manual,
}

/// A stored face. Boxes are in original (oriented) image pixels. Serialised, it is the line
/// `visage faces --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct FaceRow {
    pub id: i64,
    #[serde(skip)]
    pub photo: i64,
    pub path: String,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub size: u32,
    pub score: f32,
    pub probability: f32,
    pub cluster: Option<i64>,
    pub person: Option<String>,
    #[serde(skip)]
    pub person_id: Option<i64>,
    pub assigned: Option<Assigned>,
    pub ambiguous: bool,
    #[serde(skip)]
    pub embedding: Vec<f32>,
}

const SELECT: &str = "SELECT f.id, f.photo, p.path, f.x, f.y, f.w, f.h, f.size, f.score,
        f.probability, f.cluster, f.person, f.assigned, f.ambiguous, pe.name, f.embedding
    FROM faces f JOIN photos p ON p.id = f.photo LEFT JOIN people pe ON pe.id = f.person";

/// Which faces to list, and whether to load their embeddings (2 KiB each; listings need none).
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    pub person: Option<i64>,
    pub cluster: Option<i64>,
    pub embeddings: bool,
}

/// The faces of photos still present that pass `filter`, in photo path then face id order.
/// Without embeddings, `FaceRow::embedding` is empty.
pub fn list(conn: &Connection, filter: Filter) -> SqlResult<Vec<FaceRow>> {
    let select = if filter.embeddings {
        SELECT.to_string()
    } else {
        SELECT.replace("f.embedding", "NULL")
    };
    let mut stmt = conn.prepare(&format!(
        "{select} WHERE p.gone = 0 AND (?1 IS NULL OR f.person = ?1)
             AND (?2 IS NULL OR f.cluster = ?2)
         ORDER BY p.path, f.id"
    ))?;
    stmt.query_map(rusqlite::params![filter.person, filter.cluster], from_row)?
        .collect()
}

fn from_row(r: &Row) -> SqlResult<FaceRow> {
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
        embedding: r
            .get::<_, Option<Vec<u8>>>(15)?
            .map(|b| blob_embedding(&b))
            .unwrap_or_default(),
    })
}

/// Every face of every photo still present, with embeddings.
pub fn all(conn: &Connection) -> SqlResult<Vec<FaceRow>> {
    list(
        conn,
        Filter {
            embeddings: true,
            ..Filter::default()
        },
    )
}

/// One face by id (gone or not).
pub fn get(conn: &Connection, id: i64) -> SqlResult<Option<FaceRow>> {
    conn.query_row(&format!("{SELECT} WHERE f.id = ?1"), [id], from_row)
        .optional()
}

/// The faces of a cluster (of photos still present).
pub fn in_cluster(conn: &Connection, cluster: i64) -> SqlResult<Vec<FaceRow>> {
    let mut stmt = conn.prepare(&format!(
        "{SELECT} WHERE f.cluster = ?1 AND p.gone = 0 ORDER BY f.id"
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
