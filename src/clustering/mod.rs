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
    let dim = embeddings.first().map_or(0, Vec::len);
    summarise_rows(labels, dim, |j, out| out.copy_from_slice(&embeddings[j]))
}

/// [`summarise`] from rows read one at a time: `row(j, out)` writes row `j`'s `dim` floats into
/// `out` (so rows stored another way, such as half floats, need no f32 copy of them all).
pub fn summarise_rows(
    labels: &[Option<u32>],
    dim: usize,
    row: impl Fn(usize, &mut [f32]),
) -> Vec<ClusterSummary> {
    let clusters = labels
        .iter()
        .flatten()
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(0);
    let mut sums = vec![vec![0f64; dim]; clusters];
    let mut sizes = vec![0usize; clusters];
    let mut v = vec![0f32; dim];
    for (j, label) in labels.iter().enumerate() {
        if let Some(l) = label {
            row(j, &mut v);
            sizes[*l as usize] += 1;
            for (s, x) in sums[*l as usize].iter_mut().zip(&v) {
                *s += *x as f64;
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
    for (j, label) in labels.iter().enumerate() {
        if let Some(l) = label {
            row(j, &mut v);
            let c = &mut out[*l as usize];
            c.radius = c.radius.max(distance(&c.centroid, &v));
        }
    }
    out
}
