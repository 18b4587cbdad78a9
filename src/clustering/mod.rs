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
    let mut sums = Summing::new(clusters, dim);
    let mut v = vec![0f32; dim];
    for (j, label) in labels.iter().enumerate() {
        if let Some(l) = label {
            row(j, &mut v);
            sums.add(*l, &v);
        }
    }
    let mut out = sums.centroids();
    for (j, label) in labels.iter().enumerate() {
        if let Some(l) = label {
            row(j, &mut v);
            widen(&mut out[*l as usize], &v);
        }
    }
    out
}

/// Summaries built from rows handed over in two passes, for rows that are not all in memory:
/// every member [`Summing::add`]ed (in the members' order, for the same sums bit for bit), then
/// each summary [`widen`]ed by every member again. Memory: `dim` f64 a cluster.
pub struct Summing {
    dim: usize,
    sums: Vec<f64>,
    sizes: Vec<usize>,
}

impl Summing {
    pub fn new(clusters: usize, dim: usize) -> Self {
        Summing {
            dim,
            sums: vec![0f64; clusters * dim],
            sizes: vec![0; clusters],
        }
    }

    /// Row `v` is a member of cluster `label`.
    pub fn add(&mut self, label: u32, v: &[f32]) {
        let l = label as usize;
        self.sizes[l] += 1;
        for (s, x) in self.sums[l * self.dim..(l + 1) * self.dim]
            .iter_mut()
            .zip(v)
        {
            *s += *x as f64;
        }
    }

    /// Each cluster's centroid and size; radius 0 until [`widen`]ed.
    pub fn centroids(self) -> Vec<ClusterSummary> {
        let dim = self.dim;
        self.sizes
            .iter()
            .enumerate()
            .map(|(l, &size)| ClusterSummary {
                centroid: self.sums[l * dim..(l + 1) * dim]
                    .iter()
                    .map(|s| (s / size.max(1) as f64) as f32)
                    .collect(),
                radius: 0.0,
                size,
            })
            .collect()
    }
}

/// The summary reaches member `v`.
pub fn widen(c: &mut ClusterSummary, v: &[f32]) {
    c.radius = c.radius.max(distance(&c.centroid, v));
}
