//! Views of the people and clusters in the store: the people with their counts, each person's
//! clearest face, the clusters to review, one person's photos, how far the naming is, and
//! statistics. The queries are `store::report`'s; here they are put together (a person's faces
//! grouped by photo, distances to a cluster's centroid summed up). Reading only.

use std::collections::HashMap;

use serde::Serialize;

use crate::embedding::distance;
use crate::store::clusters;
pub use crate::store::report::{
    PersonSummary, Progress, ReviewCluster, Tally, covers, ignored_clusters, people, progress,
    review_clusters, tally,
};
use crate::store::{ClusterId, FaceId, SqlResult, embeddings, faces, report};

/// Clusters in one page of the review (the page asks for this many at a time).
pub const REVIEW_PAGE: usize = 20;

/// One photo of a person.
#[derive(Debug, Clone, Serialize)]
pub struct PersonPhoto {
    pub path: String,
    /// The person's faces in it.
    pub faces: Vec<FaceId>,
}

/// The photos of `name`, by path. `None` if there is no such person.
pub fn person_photos(
    conn: &rusqlite::Connection,
    name: &str,
) -> SqlResult<Option<Vec<PersonPhoto>>> {
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
    #[serde(flatten)]
    pub counts: report::Tally,
    /// Distance from clustered faces to their cluster's centroid (a sample of at most
    /// [`STATS_SAMPLE`] faces, in runs of neighbouring ids spread evenly over the library).
    pub member_distance: Quantiles,
    /// Clusters' sample radii (of at most [`STATS_SAMPLE`] clusters spread evenly over them).
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

/// Faces whose distance to their cluster's centroid [`stats`] measures at most, and clusters
/// whose radius it reads at most: samples spread evenly over the library keep `visage stats` as
/// quick on ten million faces as on a thousand (the counts are the store's tally).
pub const STATS_SAMPLE: i64 = 500;

pub fn stats(conn: &rusqlite::Connection) -> SqlResult<Stats> {
    let counts = report::tally(conn)?;
    // Member distances from a sample of the clustered faces, each against its cluster's
    // centroid (read for the sampled clusters only).
    let sample =
        report::clustered_sample(conn, STATS_SAMPLE, counts.faces, counts.faces_clustered)?;
    let ids: Vec<i64> = sample.iter().map(|s| s.0).collect();
    let vectors = embeddings::get_many(conn, &ids)?;
    let mut centroids: HashMap<ClusterId, Vec<f32>> = HashMap::new();
    let mut member_distance = Vec::with_capacity(sample.len());
    for ((_, c), v) in sample.iter().zip(&vectors) {
        if !centroids.contains_key(c) {
            centroids.insert(*c, clusters::centroid(conn, *c)?.unwrap_or_default());
        }
        let centroid = &centroids[c];
        if !centroid.is_empty() && !v.is_empty() {
            member_distance.push(distance(v, centroid));
        }
    }
    Ok(Stats {
        counts,
        member_distance: Quantiles::of(member_distance),
        cluster_radius: Quantiles::of(report::radius_sample(conn, STATS_SAMPLE)?),
    })
}
