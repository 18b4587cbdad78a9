//! Cluster rows: a centroid, a sample radius and a sample count per cluster, with its kind
//! (found automatically, confirmed or named by hand, or ignored) and its person; a cluster named,
//! ignored or deleted as a decision or the automatic side's refresh asks.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::Serialize;

use super::{ClusterId, SqlResult, blob_embedding, embedding_blob, embeddings};

/// Where a cluster came from and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterKind {
    /// Found by DBSCAN; dropped by `cluster --recluster` and `reset`.
    Auto,
    /// Named or built by hand; never dropped automatically.
    Manual,
    /// Not a person of interest: its faces are never matched to a person.
    Ignored,
}

impl ClusterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterKind::Auto => "auto",
            ClusterKind::Manual => "manual",
            ClusterKind::Ignored => "ignored",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "manual" => ClusterKind::Manual,
            "ignored" => ClusterKind::Ignored,
            _ => ClusterKind::Auto,
        }
    }
}

/// Serialised (`visage clusters --json`), the id is the one commands take: `"id": "c3"`.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterRow {
    pub id: ClusterId,
    pub kind: ClusterKind,
    #[serde(skip)]
    pub person_id: Option<i64>,
    pub person: Option<String>,
    #[serde(skip)]
    pub centroid: Vec<f32>,
    pub radius: f32,
    pub samples: u32,
}

fn from_row(r: &Row) -> SqlResult<ClusterRow> {
    Ok(ClusterRow {
        id: r.get(0)?,
        kind: ClusterKind::parse(&r.get::<_, String>(1)?),
        person_id: r.get(2)?,
        person: r.get(3)?,
        centroid: r
            .get::<_, Option<Vec<u8>>>(4)?
            .map(|b| blob_embedding(&b))
            .unwrap_or_default(),
        radius: r.get(5)?,
        samples: r.get(6)?,
    })
}

const SELECT: &str = "SELECT c.id, c.kind, c.person, pe.name, c.centroid, c.radius, c.samples
    FROM clusters c LEFT JOIN people pe ON pe.id = c.person";

pub fn all(conn: &Connection) -> SqlResult<Vec<ClusterRow>> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY c.id"))?;
    stmt.query_map([], from_row)?.collect()
}

/// The partition the clusters' cells are numbered for (`None`: none yet).
pub fn cells_partition(conn: &Connection) -> SqlResult<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = 'cells'", [], |r| {
        r.get(0)
    })
    .optional()
}

/// The clusters' cells are to be numbered for partition `partition`: every cell is unknown.
pub fn renumber_cells(tx: &Transaction, partition: &str) -> SqlResult<()> {
    tx.execute("UPDATE clusters SET cell = NULL WHERE cell IS NOT NULL", [])?;
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('cells', ?1)",
        [partition],
    )?;
    Ok(())
}

/// The clusters with a centroid whose cell is not known, with their centroids, by id.
pub fn without_cell(conn: &Connection) -> SqlResult<Vec<(i64, Vec<f32>)>> {
    conn.prepare_cached(
        "SELECT id, centroid FROM clusters WHERE cell IS NULL AND centroid IS NOT NULL ORDER BY id",
    )?
    .query_map([], |r| {
        Ok((r.get(0)?, blob_embedding(&r.get::<_, Vec<u8>>(1)?)))
    })?
    .collect()
}

/// A cluster's cell.
pub fn set_cell(tx: &Transaction, id: i64, cell: u16) -> SqlResult<()> {
    tx.prepare_cached("UPDATE clusters SET cell = ?2 WHERE id = ?1")?
        .execute(params![id, cell])?;
    Ok(())
}

/// The clusters at home in these cells, by cell then id.
pub fn in_cells(conn: &Connection, cells: &[u16]) -> SqlResult<Vec<ClusterRow>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE c.cell = ?1 ORDER BY c.id"))?;
    let mut out = Vec::new();
    for &c in cells {
        for row in stmt.query_map([c], from_row)? {
            out.push(row?);
        }
    }
    Ok(out)
}

/// The clusters of one kind, by id.
pub fn of_kind(conn: &Connection, kind: ClusterKind) -> SqlResult<Vec<ClusterRow>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE c.kind = ?1 ORDER BY c.id"))?;
    stmt.query_map([kind.as_str()], from_row)?.collect()
}

pub fn get(conn: &Connection, id: ClusterId) -> SqlResult<Option<ClusterRow>> {
    conn.query_row(&format!("{SELECT} WHERE c.id = ?1"), [id], from_row)
        .optional()
}

/// A new cluster with this summary (centroid, sample radius, sample count); returns its id.
pub fn insert(
    conn: &Connection,
    kind: ClusterKind,
    person: Option<i64>,
    centroid: &[f32],
    radius: f32,
    samples: usize,
) -> SqlResult<ClusterId> {
    conn.query_row(
        "INSERT INTO clusters (kind, person, centroid, radius, samples)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        params![
            kind.as_str(),
            person,
            embedding_blob(centroid),
            radius,
            samples as i64
        ],
        |r| r.get(0),
    )
}

/// A cluster's summary, computed from its faces now (it is no longer stale).
pub fn set_summary(
    conn: &Connection,
    id: ClusterId,
    centroid: &[f32],
    radius: f32,
    samples: usize,
) -> SqlResult<()> {
    conn.execute(
        "UPDATE clusters SET centroid = ?2, radius = ?3, samples = ?4, stale = 0 WHERE id = ?1",
        params![id, embedding_blob(centroid), radius, samples as i64],
    )?;
    Ok(())
}

/// A cluster's kind (`None` if there is no such cluster).
pub fn kind(conn: &Connection, id: ClusterId) -> SqlResult<Option<ClusterKind>> {
    conn.prepare_cached("SELECT kind FROM clusters WHERE id = ?1")?
        .query_row([id], |r| r.get::<_, String>(0))
        .optional()
        .map(|k| k.as_deref().map(ClusterKind::parse))
}

/// A cluster's centroid (`None` if there is no such cluster or it has none yet).
pub fn centroid(conn: &Connection, id: ClusterId) -> SqlResult<Option<Vec<f32>>> {
    Ok(conn
        .prepare_cached("SELECT centroid FROM clusters WHERE id = ?1")?
        .query_row([id], |r| r.get::<_, Option<Vec<u8>>>(0))
        .optional()?
        .flatten()
        .map(|b| blob_embedding(&b)))
}

/// Cluster `id` is person `person`'s, named by hand.
pub fn name(tx: &Transaction, id: ClusterId, person: i64) -> SqlResult<()> {
    tx.execute(
        "UPDATE clusters SET kind = 'manual', person = ?2 WHERE id = ?1",
        params![id, person],
    )?;
    Ok(())
}

/// Cluster `id` is ignored: nobody's.
pub fn ignore(tx: &Transaction, id: ClusterId) -> SqlResult<()> {
    tx.execute(
        "UPDATE clusters SET kind = 'ignored', person = NULL WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

/// Cluster `id` goes (its faces are left in no cluster).
pub fn delete(tx: &Transaction, id: ClusterId) -> SqlResult<()> {
    tx.execute("DELETE FROM clusters WHERE id = ?1", [id])?;
    Ok(())
}

/// The clusters named by hand: all of them, or (`stale_only`) those whose faces changed since
/// their summary was computed.
pub fn manual(tx: &Transaction, stale_only: bool) -> SqlResult<Vec<ClusterId>> {
    tx.prepare(if stale_only {
        "SELECT id FROM clusters WHERE kind = 'manual' AND stale = 1"
    } else {
        "SELECT id FROM clusters WHERE kind = 'manual'"
    })?
    .query_map([], |r| r.get(0))?
    .collect()
}

/// The faces named by hand in cluster `id` (of photos still present), by row id.
pub fn named_members(tx: &Transaction, id: ClusterId) -> SqlResult<Vec<i64>> {
    tx.prepare_cached(
        "SELECT id FROM faces WHERE cluster = ?1 AND assigned = 'manual' AND gone = 0",
    )?
    .query_map([id], |r| r.get(0))?
    .collect()
}

/// A named cluster left without faces named by hand goes: the faces matched to it automatically
/// lose the match, the others their cluster.
pub fn delete_manual(tx: &Transaction, id: ClusterId) -> SqlResult<()> {
    tx.execute(
        "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL
         WHERE cluster = ?1 AND assigned IS NOT 'manual'",
        [id],
    )?;
    tx.execute("UPDATE faces SET cluster = NULL WHERE cluster = ?1", [id])?;
    delete(tx, id)
}

/// The stored embeddings of the faces named by hand in cluster `id`, for its summary.
pub fn named_vectors(tx: &Transaction, id: ClusterId) -> SqlResult<Vec<Vec<f32>>> {
    embeddings::get_many(tx, &named_members(tx, id)?)
}

/// A cluster as `visage clusters` lists it: its row (without its centroid), how many faces it
/// holds, and one of its photos' paths.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    #[serde(flatten)]
    pub row: ClusterRow,
    pub faces: i64,
    pub example: Option<String>,
}

/// The clusters of every kind, most faces first (then by id), from `offset` on, at most `limit`
/// (all with `None`): a walk down `clusters_size` and, per cluster listed, one face's photo from
/// `faces_cluster`, so a page costs the same however many clusters there are. The face count is
/// the one triggers keep (`clusters.faces`).
pub fn largest(conn: &Connection, offset: usize, limit: Option<usize>) -> SqlResult<Vec<Listed>> {
    let limit = limit.map_or(-1, |n| n.min(i64::MAX as usize) as i64);
    let mut stmt = conn.prepare(
        "SELECT c.id, c.kind, c.person, pe.name, NULL, c.radius, c.samples, c.faces,
                (SELECT p.path FROM faces f JOIN photos p ON p.id = f.photo
                 WHERE f.cluster = c.id AND f.gone = 0 LIMIT 1)
         FROM clusters c INDEXED BY clusters_size LEFT JOIN people pe ON pe.id = c.person
         ORDER BY c.faces DESC, c.id LIMIT ?1 OFFSET ?2",
    )?;
    stmt.query_map(params![limit, offset.min(i64::MAX as usize) as i64], |r| {
        let example: Option<String> = r.get(8)?;
        Ok(Listed {
            row: from_row(r)?,
            // A cluster whose photos are all gone holds no face to show.
            faces: if example.is_some() { r.get(7)? } else { 0 },
            example,
        })
    })?
    .collect()
}
