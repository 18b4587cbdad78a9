//! The queries behind the views of the library (`people::report`): people with their counts,
//! each person's clearest face, the clusters to review, the ignored ones, how far the naming is,
//! and the counts and samples of `visage stats`. Reading only. At a million faces each reads an
//! index rather than the tables where it can (see the comments on each query).

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

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
    // as `clusters_kind` would otherwise be taken for `kind = 'auto'`, then every row sorted);
    // how many there are is the tally's.
    const OPEN: &str = "FROM clusters INDEXED BY clusters_open
        WHERE kind = 'auto' AND person IS NULL AND faces > 0";
    let total = tally(conn)?.clusters_open;
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
    // The faces from the tally (kept by triggers), then the few in ignored clusters (read from
    // `faces_cluster` for those clusters alone).
    let t = tally(conn)?;
    let [ignored, ignored_open]: [i64; 2] = conn.query_row(
        "SELECT count(*), count(CASE WHEN f.person IS NULL AND f.verdict IS NULL THEN 1 END)
         FROM clusters c JOIN faces f ON f.cluster = c.id
         WHERE c.kind = 'ignored' AND f.gone = 0",
        [],
        |r| Ok([r.get(0)?, r.get(1)?]),
    )?;
    Ok(Progress {
        faces: t.faces,
        named: t.faces_named,
        matched: t.faces_matched,
        suggested: 0,
        marked: t.faces_marked,
        ignored,
        left: t.faces_unnamed - ignored_open,
    })
}

/// The library's counts as the `tally` row keeps them (triggers update it in the transaction of
/// every change; `tally_recount` counts the same from the tables). Faces and photos are those
/// still present unless the name says otherwise. Serialised, the counts `visage stats --json`
/// prints (those of the page alone are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub photos: i64,
    /// Photos that could not be read.
    pub photos_failed: i64,
    pub photos_gone: i64,
    pub faces: i64,
    /// In a cluster.
    pub faces_clustered: i64,
    /// Assigned by hand (named, or kept in an ignored cluster).
    pub faces_manual: i64,
    /// Matched or clustered automatically.
    pub faces_auto: i64,
    pub faces_ambiguous: i64,
    /// In no cluster and of no person.
    pub faces_unassigned: i64,
    /// Of a person, named by hand.
    #[serde(skip)]
    pub faces_named: i64,
    /// Of a person, matched automatically.
    #[serde(skip)]
    pub faces_matched: i64,
    /// Marked "not a face" or "stranger".
    #[serde(skip)]
    pub faces_marked: i64,
    /// Of no person, with no mark.
    #[serde(skip)]
    pub faces_unnamed: i64,
    /// In no cluster, of no person, with no mark (the review page's "Unknown").
    #[serde(skip)]
    pub faces_open: i64,
    pub clusters_auto: i64,
    pub clusters_manual: i64,
    pub clusters_ignored: i64,
    /// Automatic clusters with faces and no person: those the review page offers.
    #[serde(skip)]
    pub clusters_open: i64,
    pub people: i64,
    pub rejections: i64,
}

impl Tally {
    /// Every cluster, of whatever kind.
    pub fn clusters(&self) -> i64 {
        self.clusters_auto + self.clusters_manual + self.clusters_ignored
    }
}

const TALLY_COLUMNS: &str = "photos, photos_failed, photos_gone, faces, faces_clustered,
    faces_manual, faces_auto, faces_ambiguous, faces_unassigned, faces_named, faces_matched,
    faces_marked, faces_unnamed, faces_open, clusters_auto, clusters_manual, clusters_ignored,
    clusters_open, people, rejections";

fn tally_from(conn: &Connection, from: &str) -> SqlResult<Tally> {
    conn.prepare_cached(&format!("SELECT {TALLY_COLUMNS} FROM {from}"))?
        .query_row([], |r| {
            Ok(Tally {
                photos: r.get(0)?,
                photos_failed: r.get(1)?,
                photos_gone: r.get(2)?,
                faces: r.get(3)?,
                faces_clustered: r.get(4)?,
                faces_manual: r.get(5)?,
                faces_auto: r.get(6)?,
                faces_ambiguous: r.get(7)?,
                faces_unassigned: r.get(8)?,
                faces_named: r.get(9)?,
                faces_matched: r.get(10)?,
                faces_marked: r.get(11)?,
                faces_unnamed: r.get(12)?,
                faces_open: r.get(13)?,
                clusters_auto: r.get(14)?,
                clusters_manual: r.get(15)?,
                clusters_ignored: r.get(16)?,
                clusters_open: r.get(17)?,
                people: r.get(18)?,
                rejections: r.get(19)?,
            })
        })
}

/// The counts as kept (one row read, at any size).
pub fn tally(conn: &Connection) -> SqlResult<Tally> {
    tally_from(conn, "tally")
}

/// The same counts from the tables (a pass over every face): what the kept ones must equal.
pub fn recount(conn: &Connection) -> SqlResult<Tally> {
    tally_from(conn, "tally_recount")
}

/// The sample radii of at most `size` clusters at evenly spaced ids (each the first cluster at
/// or after its point, none twice): point lookups, so the sample costs the same however many
/// clusters there are. All of them when there are at most `size`.
pub fn radius_sample(conn: &Connection, size: i64) -> SqlResult<Vec<f32>> {
    let (lo, hi): (Option<i64>, Option<i64>) = conn.query_row(
        "SELECT (SELECT min(id) FROM clusters), (SELECT max(id) FROM clusters)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(Vec::new());
    };
    let span = hi - lo + 1;
    let probes = size.min(span).max(1);
    let mut at =
        conn.prepare_cached("SELECT id, radius FROM clusters WHERE id >= ?1 ORDER BY id LIMIT 1")?;
    let mut out = Vec::new();
    let mut last = lo - 1;
    for k in 0..probes {
        let id = (lo + (k as i128 * span as i128 / probes as i128) as i64).max(last + 1);
        if let Some((found, radius)) = at
            .query_row([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f32>(1)?)))
            .optional()?
        {
            out.push(radius);
            last = found;
        } else {
            break;
        }
    }
    Ok(out)
}

/// About `size` clustered faces (id, cluster), in runs of neighbouring ids at evenly spaced
/// places over all faces (`faces` faces of which `clustered` are in a cluster): a few seeks, each
/// followed by a short scan of neighbouring rows, so the sample reads about the same pages on ten
/// million faces as on a thousand, and few of them when the cache is cold.
pub fn clustered_sample(
    conn: &Connection,
    size: i64,
    faces: i64,
    clustered: i64,
) -> SqlResult<Vec<(i64, ClusterId)>> {
    /// Places the sample is taken at.
    const RUNS: i64 = 25;
    if clustered == 0 || size <= 0 {
        return Ok(Vec::new());
    }
    // Each bound in a query of its own: SQLite reads one end of the table for a lone min() or
    // max(), but every row for both at once.
    let (lo, hi): (i64, i64) = conn.query_row(
        "SELECT (SELECT min(id) FROM faces), (SELECT max(id) FROM faces)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let span = hi - lo + 1;
    let per_run = (size + RUNS - 1) / RUNS;
    // Ids a run looks through at most: four times what holds `per_run` clustered faces at the
    // library's share of them, and never into the next run's place.
    let reach = (per_run * 4 * faces.max(1) / clustered).max(per_run);
    let mut run = conn.prepare_cached(
        "SELECT id, cluster FROM faces
         WHERE id >= ?1 AND id < ?2 AND cluster IS NOT NULL AND gone = 0
         ORDER BY id LIMIT ?3",
    )?;
    let mut out = Vec::new();
    for k in 0..RUNS {
        let start = lo + (k as i128 * span as i128 / RUNS as i128) as i64;
        let next = lo + ((k + 1) as i128 * span as i128 / RUNS as i128) as i64;
        let end = next.min(start.saturating_add(reach));
        let rows = run.query_map(params![start, end, per_run], |r| Ok((r.get(0)?, r.get(1)?)))?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}
