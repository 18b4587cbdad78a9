//! Views of the people and clusters in the store: the people with their counts, one person's
//! photos, statistics, and the audit that finds (and with `fix`, repairs) inconsistencies.
//! Reading only, except [`audit`] with `fix`, which writes in one transaction.

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::assign;
use crate::embedding::distance;
use crate::store::clusters::ClusterKind;
use crate::store::faces;
use crate::store::{ClusterId, FaceId, SqlResult, Store, StoreError};

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
pub fn covers(conn: &Connection) -> SqlResult<std::collections::HashMap<String, FaceId>> {
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

/// An automatic cluster nobody has named or ignored yet.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewCluster {
    pub id: ClusterId,
    /// Its faces (of photos still present).
    pub faces: i64,
}

/// Clusters in one page of the review (the page asks for this many at a time).
pub const REVIEW_PAGE: usize = 20;

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

/// One photo of a person.
#[derive(Debug, Clone, Serialize)]
pub struct PersonPhoto {
    pub path: String,
    /// The person's faces in it.
    pub faces: Vec<FaceId>,
}

/// The photos of `name`, by path. `None` if there is no such person.
pub fn person_photos(conn: &Connection, name: &str) -> SqlResult<Option<Vec<PersonPhoto>>> {
    let Some(p) = super::person_id(conn, name)? else {
        return Ok(None);
    };
    let mut out: Vec<PersonPhoto> = Vec::new();
    let filter = faces::Filter {
        person: Some(p),
        ..faces::Filter::default()
    };
    for f in faces::list(conn, filter)?
        .into_iter()
        .filter(|f| f.person_id == Some(p))
    {
        match out.last_mut() {
            Some(last) if last.path == f.path => last.faces.push(f.id),
            _ => out.push(PersonPhoto {
                path: f.path,
                faces: vec![f.id],
            }),
        }
    }
    Ok(Some(out))
}

/// Counts and distance statistics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
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
    /// Distance from clustered faces to their cluster's centroid (an even sample of at most
    /// [`STATS_SAMPLE`] faces).
    pub member_distance: Quantiles,
    /// Clusters' sample radii.
    pub cluster_radius: Quantiles,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Quantiles {
    pub count: usize,
    pub mean: f32,
    pub median: f32,
    pub p95: f32,
    pub max: f32,
}

impl Quantiles {
    pub fn of(mut v: Vec<f32>) -> Self {
        if v.is_empty() {
            return Quantiles::default();
        }
        v.sort_by(f32::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Quantiles {
            count: v.len(),
            mean: v.iter().sum::<f32>() / v.len() as f32,
            median: at(0.5),
            p95: at(0.95),
            max: v[v.len() - 1],
        }
    }
}

/// Faces whose distance to their cluster's centroid [`stats`] measures at most: a sample spread
/// evenly over the library keeps `visage stats` quick on a million faces.
pub const STATS_SAMPLE: i64 = 5_000;

/// Clustered faces (id, cluster) at evenly spaced ids, about [`STATS_SAMPLE`] of them: point
/// lookups by id, so the sample costs the same on a million faces as on a thousand.
fn clustered_sample(conn: &Connection, faces: i64, clustered: i64) -> SqlResult<Vec<(i64, i64)>> {
    if clustered == 0 {
        return Ok(Vec::new());
    }
    let (lo, hi): (i64, i64) = conn.query_row("SELECT min(id), max(id) FROM faces", [], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    // Enough probes that about STATS_SAMPLE of them land on a clustered face, at most one per id.
    let span = hi - lo + 1;
    let probes = (STATS_SAMPLE * faces.max(1) / clustered)
        .min(STATS_SAMPLE * 20)
        .min(span);
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

pub fn stats(conn: &Connection) -> SqlResult<Stats> {
    let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
    // The faces in one pass over an index that holds every column asked (`faces_cluster`).
    let faces: [i64; 6] = conn.query_row(
        "SELECT count(*), COALESCE(sum(cluster IS NOT NULL), 0),
                COALESCE(sum(assigned = 'manual'), 0), COALESCE(sum(assigned = 'auto'), 0),
                COALESCE(sum(ambiguous = 1), 0), COALESCE(sum(cluster IS NULL AND person IS NULL), 0)
         FROM faces WHERE gone = 0",
        [],
        |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?]),
    )?;
    let [all_faces, clustered, manual, auto, ambiguous, unassigned] = faces;
    // Member distances from an even sample of the clustered faces, each against its cluster's
    // centroid (read for the sampled clusters only).
    let sample = clustered_sample(conn, all_faces, clustered)?;
    let ids: Vec<i64> = sample.iter().map(|s| s.0).collect();
    let vectors = crate::store::embeddings::get_many(conn, &ids)?;
    let mut centroids: std::collections::HashMap<i64, Vec<f32>> = Default::default();
    let mut centroid_of = conn.prepare_cached("SELECT centroid FROM clusters WHERE id = ?1")?;
    let mut member_distance = Vec::with_capacity(sample.len());
    for ((_, c), v) in sample.iter().zip(&vectors) {
        if !centroids.contains_key(c) {
            let centroid = centroid_of
                .query_row([c], |r| r.get::<_, Option<Vec<u8>>>(0))
                .optional()?
                .flatten()
                .map(|b| crate::store::blob_embedding(&b))
                .unwrap_or_default();
            centroids.insert(*c, centroid);
        }
        let centroid = &centroids[c];
        if !centroid.is_empty() && !v.is_empty() {
            member_distance.push(distance(v, centroid));
        }
    }
    // Kinds and radii in one pass over the clusters.
    let mut kinds: std::collections::HashMap<String, i64> = Default::default();
    let mut radii: Vec<f32> = Vec::new();
    let mut rows = conn.prepare("SELECT kind, radius FROM clusters")?;
    let mut rows = rows.query([])?;
    while let Some(r) = rows.next()? {
        *kinds.entry(r.get(0)?).or_default() += 1;
        radii.push(r.get(1)?);
    }
    let kind = |k: ClusterKind| kinds.get(k.as_str()).copied().unwrap_or(0);
    let [photos, photos_failed, photos_gone]: [i64; 3] = conn.query_row(
        "SELECT COALESCE(sum(gone = 0), 0), COALESCE(sum(gone = 0 AND error IS NOT NULL), 0),
                COALESCE(sum(gone = 1), 0)
         FROM photos",
        [],
        |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?]),
    )?;
    Ok(Stats {
        photos,
        photos_failed,
        photos_gone,
        faces: all_faces,
        faces_clustered: clustered,
        faces_manual: manual,
        faces_auto: auto,
        faces_ambiguous: ambiguous,
        faces_unassigned: unassigned,
        clusters_auto: kind(ClusterKind::Auto),
        clusters_manual: kind(ClusterKind::Manual),
        clusters_ignored: kind(ClusterKind::Ignored),
        people: count("SELECT count(*) FROM people")?,
        rejections: count("SELECT count(*) FROM rejections")?,
        member_distance: Quantiles::of(member_distance),
        cluster_radius: Quantiles::of(radii),
    })
}

/// One kind of inconsistency and how many rows show it.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub problem: &'static str,
    pub count: i64,
    pub fixed: bool,
}

/// Each check: what it finds, the query counting it, and the statements that repair it.
const CHECKS: &[(&str, &str, &[&str])] = &[
    (
        "faces of removed photos still in a cluster",
        "SELECT count(*) FROM faces WHERE cluster IS NOT NULL
             AND photo IN (SELECT id FROM photos WHERE gone = 1)",
        &["UPDATE faces SET cluster = NULL,
               person = CASE WHEN assigned = 'manual' THEN person END,
               assigned = CASE WHEN assigned = 'manual' THEN 'manual' END
           WHERE cluster IS NOT NULL AND photo IN (SELECT id FROM photos WHERE gone = 1)"],
    ),
    (
        "faces matched automatically to a person they were rejected for",
        "SELECT count(*) FROM faces f JOIN rejections r ON r.face = f.id AND r.person = f.person
             WHERE f.assigned IS NOT 'manual'",
        &["UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL
           WHERE assigned IS NOT 'manual'
             AND EXISTS (SELECT 1 FROM rejections r WHERE r.face = faces.id
                         AND r.person = faces.person)"],
    ),
    (
        "faces named by hand as a person they were also rejected for (the name is kept)",
        "SELECT count(*) FROM faces f JOIN rejections r ON r.face = f.id AND r.person = f.person
             WHERE f.assigned = 'manual'",
        &["DELETE FROM rejections WHERE EXISTS (SELECT 1 FROM faces f
               WHERE f.id = rejections.face AND f.person = rejections.person
                 AND f.assigned = 'manual')"],
    ),
    (
        "faces whose person differs from their named cluster's person",
        "SELECT count(*) FROM faces f JOIN clusters c ON c.id = f.cluster
             WHERE c.kind = 'manual' AND f.person IS NOT c.person",
        &["UPDATE faces SET person = (SELECT c.person FROM clusters c WHERE c.id = faces.cluster)
           WHERE cluster IN (SELECT id FROM clusters WHERE kind = 'manual')
             AND person IS NOT (SELECT c.person FROM clusters c WHERE c.id = faces.cluster)"],
    ),
    (
        "faces with a person in an automatic or ignored cluster",
        "SELECT count(*) FROM faces f JOIN clusters c ON c.id = f.cluster
             WHERE c.kind != 'manual' AND f.person IS NOT NULL",
        &["UPDATE faces SET person = NULL WHERE person IS NOT NULL
             AND cluster IN (SELECT id FROM clusters WHERE kind != 'manual')"],
    ),
    (
        "faces with a person but no record of how it was assigned",
        "SELECT count(*) FROM faces WHERE person IS NOT NULL AND assigned IS NULL",
        &["UPDATE faces SET assigned = 'manual' WHERE person IS NOT NULL AND assigned IS NULL"],
    ),
    (
        "automatic clusters without faces",
        "SELECT count(*) FROM clusters c WHERE kind = 'auto'
             AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.cluster = c.id)",
        &["DELETE FROM clusters WHERE kind = 'auto'
             AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.cluster = clusters.id)"],
    ),
    (
        "named clusters without a person",
        "SELECT count(*) FROM clusters WHERE kind = 'manual' AND person IS NULL",
        &[
            "UPDATE faces SET person = NULL, assigned = NULL, cluster = NULL
             WHERE cluster IN (SELECT id FROM clusters WHERE kind = 'manual' AND person IS NULL)",
            "DELETE FROM clusters WHERE kind = 'manual' AND person IS NULL",
        ],
    ),
    (
        "clusters whose face count differs from their faces",
        "SELECT count(*) FROM clusters c
             WHERE faces != (SELECT count(*) FROM faces f WHERE f.cluster = c.id)",
        &["UPDATE clusters SET faces = (SELECT count(*) FROM faces f WHERE f.cluster = clusters.id)
             WHERE faces != (SELECT count(*) FROM faces f WHERE f.cluster = clusters.id)"],
    ),
    (
        "faces whose copy of their photo's gone flag is wrong",
        "SELECT count(*) FROM faces f JOIN photos p ON p.id = f.photo WHERE f.gone != p.gone",
        &["UPDATE faces SET gone = (SELECT p.gone FROM photos p WHERE p.id = faces.photo)
             WHERE gone != (SELECT p.gone FROM photos p WHERE p.id = faces.photo)"],
    ),
    (
        "faces without an embedding",
        "SELECT count(*) FROM faces f WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.face = f.id)",
        &[],
    ),
    (
        "people without faces or clusters",
        "SELECT count(*) FROM people pe WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.person = pe.id)
             AND NOT EXISTS (SELECT 1 FROM clusters c WHERE c.person = pe.id)",
        &["DELETE FROM people WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.person = people.id)
             AND NOT EXISTS (SELECT 1 FROM clusters c WHERE c.person = people.id)"],
    ),
];

/// Find inconsistencies; with `fix`, repair them all in one transaction (named clusters are
/// re-summarised from their faces as part of the repair).
pub fn audit(store: &mut Store, fix: bool) -> Result<Vec<Finding>, StoreError> {
    let mut findings: Vec<Finding> = store.read(|c| {
        CHECKS
            .iter()
            .map(|(problem, query, _)| {
                Ok(Finding {
                    problem,
                    count: c.query_row(query, [], |r| r.get(0))?,
                    fixed: false,
                })
            })
            .collect()
    })?;
    let stale = store.read(stale_summaries)?;
    findings.push(Finding {
        problem: "named clusters whose summary does not match their faces",
        count: stale,
        fixed: false,
    });
    if fix && findings.iter().any(|f| f.count > 0) {
        store.write(|tx| -> Result<(), StoreError> {
            for (_, _, repairs) in CHECKS {
                for sql in *repairs {
                    tx.execute(sql, [])?;
                }
            }
            assign::refresh_manual(tx)?;
            Ok(())
        })?;
        for f in findings.iter_mut().filter(|f| f.count > 0) {
            f.fixed = true;
        }
    }
    Ok(findings)
}

/// Named clusters whose sample count differs from their manual faces.
fn stale_summaries(conn: &Connection) -> SqlResult<i64> {
    conn.query_row(
        "SELECT count(*) FROM clusters c WHERE kind = 'manual' AND samples !=
             (SELECT count(*) FROM faces f JOIN photos p ON p.id = f.photo
              WHERE f.cluster = c.id AND f.assigned = 'manual' AND p.gone = 0)",
        [],
        |r| r.get(0),
    )
}
