//! Clustering: DBSCAN over the neighbour graph ([`dbscan`]), as PhotoPrism clusters faces, and
//! each cluster's summary (centroid, sample radius, size) for matching new faces later.
//!
//! Input is a neighbour graph and the embeddings it was built from; output is a label per face.
//! It does not decide which faces take part (the caller builds the graph over eligible faces
//! only) and stores nothing.

pub mod dbscan;
pub mod incremental;
pub mod matching;

pub use dbscan::dbscan;

use crate::embedding::distance;

/// A cluster's shape: where its centre is and how far its members reach.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSummary {
    /// Mean of the members' embeddings.
    pub centroid: Vec<f32>,
    /// Largest distance from the centroid to a member.
    pub radius: f32,
    pub size: usize,
}

/// One summary per cluster label `0..clusters`, from the labels DBSCAN gave.
pub fn summarise(labels: &[Option<u32>], embeddings: &[Vec<f32>]) -> Vec<ClusterSummary> {
    let clusters = labels
        .iter()
        .flatten()
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(0);
    let dim = embeddings.first().map_or(0, Vec::len);
    let mut sums = vec![vec![0f64; dim]; clusters];
    let mut sizes = vec![0usize; clusters];
    for (label, e) in labels.iter().zip(embeddings) {
        if let Some(l) = label {
            sizes[*l as usize] += 1;
            for (s, v) in sums[*l as usize].iter_mut().zip(e) {
                *s += *v as f64;
            }
        }
    }
    let mut out: Vec<ClusterSummary> = sums
        .into_iter()
        .zip(&sizes)
        .map(|(sum, &size)| ClusterSummary {
            centroid: sum
                .iter()
                .map(|s| (s / size.max(1) as f64) as f32)
                .collect(),
            radius: 0.0,
            size,
        })
        .collect();
    for (label, e) in labels.iter().zip(embeddings) {
        if let Some(l) = label {
            let c = &mut out[*l as usize];
            c.radius = c.radius.max(distance(&c.centroid, e));
        }
    }
    out
}
