//! The queries behind the views of the library (`people::report`): people with their counts,
//! each person's clearest face, the clusters to review, the ignored ones, how far the naming is,
//! and the counts and samples of `visage stats`. Reading only. At a million faces each reads an
//! index rather than the tables where it can (see the comments on each query).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::clusters::ClusterKind;
use super::{ClusterId, FaceId, SqlResult};

/// A person with their counts (photos still present only).
#[derive(Debug, Clone, Serialize)]
pub struct PersonSummary {
    pub name: String,
    pub faces: i64,
    pub photos: i64,
    pub manual: i64,
    pub auto: i64,
    pub clusters: i64,
    pub hidden: bool,
}

/// The people (hidden ones only with `include_hidden`), most faces first.
pub fn people(conn: &Connection, include_hidden: bool) -> SqlResult<Vec<PersonSummary>> {
    let mut stmt = conn.prepare(
        "SELECT pe.name, pe.hidden,
            count(f.id), count(DISTINCT f.photo),
            count(CASE WHEN f.assigned = 'manual' THEN 1 END),
            count(CASE WHEN f.assigned = 'auto' THEN 1 END),
            (SELECT count(*) FROM clusters c WHERE c.person = pe.id)
         FROM people pe
         LEFT JOIN faces f ON f.person = pe.id AND f.gone = 0
         WHERE ?1 OR pe.hidden = 0
         GROUP BY pe.id ORDER BY count(f.id) DESC, pe.name",
    )?;
    stmt.query_map([include_hidden], |r| {
        Ok(PersonSummary {
            name: r.get(0)?,
            hidden: r.get(1)?,
            faces: r.get(2)?,
            photos: r.get(3)?,
            manual: r.get(4)?,
            auto: r.get(5)?,
            clusters: r.get(6)?,
        })
    })?
    .collect()
}

/// Each person's clearest face (the largest, then the most probable), by the person's name: the
/// face that stands for them in a list of people.
pub fn covers(conn: &Connection) -> SqlResult<HashMap<String, FaceId>> {
    let mut stmt = conn.prepare(
        "SELECT name, face FROM (
             SELECT pe.name, f.id AS face, row_number() OVER (
                 PARTITION BY f.person ORDER BY f.w * f.h DESC, f.probability DESC, f.id) AS k
             FROM faces f JOIN people pe ON pe.id = f.person
             WHERE f.gone = 0)
         WHERE k = 1",
    )?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// A cluster to review (an automatic one nobody has named yet, or an ignored one).
#[derive(Debug, Clone, Serialize)]
pub struct ReviewCluster {
    pub id: ClusterId,
    /// Its faces (of photos still present).
    pub faces: i64,
}

/// The automatic clusters still to be named, largest first: how many there are, and those from
/// `offset` on, at most `limit`.
pub fn review_clusters(
    conn: &Connection,
    offset: usize,
    limit: usize,
) -> SqlResult<(usize, Vec<ReviewCluster>)> {
    // `clusters.faces` is kept by triggers, and `clusters_open` indexes exactly this order (named,
    // as `clusters_kind` would otherwise be taken for `kind = 'auto'`, then every row sorted).
    const OPEN: &str = "FROM clusters INDEXED BY clusters_open
        WHERE kind = 'auto' AND person IS NULL AND faces > 0";
    let total: i64 = conn.query_row(&format!("SELECT count(*) {OPEN}"), [], |r| r.get(0))?;
    let mut stmt = conn.prepare(&format!(
        "SELECT id, faces {OPEN} ORDER BY faces DESC, id LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt
        .query_map([limit as i64, offset as i64], |r| {
            Ok(ReviewCluster {
                id: r.get(0)?,
                faces: r.get(1)?,
            })
        })?
        .collect::<SqlResult<_>>()?;
    Ok((total as usize, rows))
}

/// The ignored clusters, largest first.
pub fn ignored_clusters(conn: &Connection) -> SqlResult<Vec<ReviewCluster>> {
    let mut stmt = conn.prepare(
        "SELECT c.id, count(f.id) FROM clusters c
         LEFT JOIN faces f ON f.cluster = c.id
             AND f.photo IN (SELECT id FROM photos WHERE gone = 0)
         WHERE c.kind = 'ignored' GROUP BY c.id ORDER BY count(f.id) DESC, c.id",
    )?;
    stmt.query_map([], |r| {
        Ok(ReviewCluster {
            id: r.get(0)?,
            faces: r.get(1)?,
        })
    })?
    .collect()
}

/// How far the naming is (faces of photos still present).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    pub faces: i64,
    /// Named by hand (suggestions accepted included).
    pub named: i64,
    /// Matched to a person automatically.
    pub matched: i64,
    /// Offered as suggestions now (filled in by the caller: see `people::suggest::count`).
    pub suggested: usize,
    /// Marked "not a face" or "stranger".
    pub marked: i64,
    /// In ignored clusters.
    pub ignored: i64,
    /// Faces with no person, no mark, not ignored: what is left to name.
    pub left: i64,
}

pub fn progress(conn: &Connection) -> SqlResult<Progress> {
    // The faces in one pass over an index that holds every column asked (`faces_cluster`;
    // `faces.gone` is the photo's), then the few in ignored clusters.
    let [faces, named, matched, marked, open]: [i64; 5] = conn.query_row(
        "SELECT count(*),
            count(CASE WHEN person IS NOT NULL AND assigned = 'manual' THEN 1 END),
            count(CASE WHEN person IS NOT NULL AND assigned = 'auto' THEN 1 END),
            count(CASE WHEN verdict IS NOT NULL THEN 1 END),
            count(CASE WHEN person IS NULL AND verdict IS NULL THEN 1 END)
         FROM faces WHERE gone = 0",
        [],
        |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]),
    )?;
    let [ignored, ignored_open]: [i64; 2] = conn.query_row(
        "SELECT count(*), count(CASE WHEN f.person IS NULL AND f.verdict IS NULL THEN 1 END)
         FROM clusters c JOIN faces f ON f.cluster = c.id
         WHERE c.kind = 'ignored' AND f.gone = 0",
        [],
        |r| Ok([r.get(0)?, r.get(1)?]),
    )?;
    Ok(Progress {
        faces,
        named,
        matched,
        suggested: 0,
        marked,
        ignored,
        left: open - ignored_open,
    })
}

/// The counts of `visage stats`: photos, faces, clusters by kind, people and rejections (and every
/// cluster's sample radius, not serialised).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub photos: i64,
    pub photos_failed: i64,
    pub photos_gone: i64,
    pub faces: i64,
    pub faces_clustered: i64,
    pub faces_manual: i64,
    pub faces_auto: i64,
    pub faces_ambiguous: i64,
    pub faces_unassigned: i64,
    pub clusters_auto: i64,
    pub clusters_manual: i64,
    pub clusters_ignored: i64,
    pub people: i64,
    pub rejections: i64,
    #[serde(skip)]
    pub radii: Vec<f32>,
}

pub fn counts(conn: &Connection) -> SqlResult<Counts> {
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
    let mut c = Counts::default();
    // The faces in one pass over an index that holds every column asked (`faces_cluster`).
    [
        c.faces,
        c.faces_clustered,
        c.faces_manual,
        c.faces_auto,
        c.faces_ambiguous,
        c.faces_unassigned,
    ] = conn.query_row(
        "SELECT count(*), COALESCE(sum(cluster IS NOT NULL), 0),
                COALESCE(sum(assigned = 'manual'), 0), COALESCE(sum(assigned = 'auto'), 0),
                COALESCE(sum(ambiguous = 1), 0), COALESCE(sum(cluster IS NULL AND person IS NULL), 0)
         FROM faces WHERE gone = 0",
        [],
        |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?]),
    )?;
    // Kinds and radii in one pass over the clusters (`clusters_kind` holds both).
    let mut rows = conn.prepare("SELECT kind, radius FROM clusters")?;
    let mut rows = rows.query([])?;
    while let Some(r) = rows.next()? {
        *match ClusterKind::parse(&r.get::<_, String>(0)?) {
            ClusterKind::Auto => &mut c.clusters_auto,
            ClusterKind::Manual => &mut c.clusters_manual,
            ClusterKind::Ignored => &mut c.clusters_ignored,
        } += 1;
        c.radii.push(r.get(1)?);
    }
    [c.photos, c.photos_failed, c.photos_gone] = conn.query_row(
        "SELECT COALESCE(sum(gone = 0), 0), COALESCE(sum(gone = 0 AND error IS NOT NULL), 0),
                COALESCE(sum(gone = 1), 0)
         FROM photos",
        [],
        |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?]),
    )?;
    c.people = count("SELECT count(*) FROM people")?;
    c.rejections = count("SELECT count(*) FROM rejections")?;
    Ok(c)
}

/// About `size` clustered faces (id, cluster) at evenly spaced ids, out of `faces` faces of which
/// `clustered` are in a cluster: point lookups by id, so the sample costs the same on a million
/// faces as on a thousand.
pub fn clustered_sample(
    conn: &Connection,
    size: i64,
    faces: i64,
    clustered: i64,
) -> SqlResult<Vec<(i64, ClusterId)>> {
    if clustered == 0 {
        return Ok(Vec::new());
    }
    let (lo, hi): (i64, i64) = conn.query_row("SELECT min(id), max(id) FROM faces", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    // Enough probes that about `size` of them land on a clustered face, at most one per id.
    let span = hi - lo + 1;
    let probes = (size * faces.max(1) / clustered).min(size * 20).min(span);
    let mut at = conn.prepare_cached(
        "SELECT cluster FROM faces WHERE id = ?1 AND cluster IS NOT NULL AND gone = 0",
    )?;
    let mut out = Vec::new();
    for k in 0..probes {
        let id = lo + (k as i128 * span as i128 / probes as i128) as i64;
        if let Some(c) = at.query_row([id], |r| r.get(0)).optional()? {
            out.push((id, c));
        }
    }
    Ok(out)
}
