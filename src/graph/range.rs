//! Exact range queries for the incremental path: a few query rows (the new faces of an index run)
//! against stored rows streamed in chunks (f16 or f32), returning every pair closer than the
//! threshold with the twin's exact distance. The same gemm-tile kernel as the exact graph
//! ([`super::product::close_pairs`]): products of the queries with a converted tile of rows, then
//! the exact recheck of every pair near or under the threshold.
//!
//! A [`RangeQuery`] keeps its scratch (one converted tile and one tile of products per thread)
//! from chunk to chunk: scanning allocates nothing per row, only the hits it appends.

use rayon::prelude::*;

use super::product::{Block, Scratch, close_pairs};

/// Rows converted and compared at a time: 256 x 512-d f32 is 512 KB, which stays in a core's L2
/// cache from conversion to products.
pub const SCAN_ROWS: usize = 256;
use super::rows::{Rows, squared_norms};

/// A stored row within the threshold of a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Index of the query row.
    pub query: u32,
    /// Index of the stored row: the chunk's `base` plus its place in the chunk.
    pub row: u32,
    /// Exact squared distance (the twin's order of additions).
    pub d2: f32,
}

/// Queries of `dim` floats and the distance they search within (one for all, or one each).
pub struct RangeQuery {
    dim: usize,
    max_d2: f32,
    /// Each query's own squared reach, when they differ (a cluster's reach is its radius plus
    /// the match distance).
    reach2: Option<Vec<f32>>,
    queries: Vec<f32>,
    norms: Vec<f32>,
    workers: Vec<Worker>,
}

#[derive(Default)]
struct Worker {
    tile: Scratch,
    dots: Vec<f32>,
    hits: Vec<Hit>,
}

/// The same queries with scratch of their own (for a second thread).
impl Clone for RangeQuery {
    fn clone(&self) -> Self {
        RangeQuery {
            dim: self.dim,
            max_d2: self.max_d2,
            reach2: self.reach2.clone(),
            queries: self.queries.clone(),
            norms: self.norms.clone(),
            workers: (0..self.workers.len()).map(|_| Worker::default()).collect(),
        }
    }
}

impl RangeQuery {
    /// `queries`: rows of `dim` floats; pairs strictly closer than `max_distance` are hits.
    pub fn new(queries: &[f32], dim: usize, max_distance: f32) -> Self {
        assert!(dim.is_multiple_of(super::LANES) && queries.len().is_multiple_of(dim));
        let mut norms = Vec::new();
        squared_norms(queries, dim, &mut norms);
        RangeQuery {
            dim,
            max_d2: max_distance * max_distance,
            reach2: None,
            queries: queries.to_vec(),
            norms,
            workers: (0..rayon::current_num_threads())
                .map(|_| Worker::default())
                .collect(),
        }
    }

    /// Each query `k` finds the rows strictly closer than `reach[k]`.
    pub fn with_reach(queries: &[f32], dim: usize, reach: &[f32]) -> Self {
        assert_eq!(queries.len(), reach.len() * dim, "one reach per query");
        let max = reach.iter().copied().fold(0f32, f32::max);
        RangeQuery {
            reach2: Some(reach.iter().map(|r| r * r).collect()),
            ..RangeQuery::new(queries, dim, max)
        }
    }

    /// The same queries reaching `margin` further each: what a scan of approximate rows (each
    /// within `margin` of the exact one) must find so that no exact hit is missed.
    pub fn widened(&self, margin: f32) -> Self {
        let wider = |d2: f32| (d2.sqrt() + margin).powi(2);
        let mut out = self.clone();
        out.max_d2 = wider(self.max_d2);
        if let Some(r) = out.reach2.as_mut() {
            r.iter_mut().for_each(|d2| *d2 = wider(*d2));
        }
        out
    }

    /// Every hit of the queries in `chunk` (rows numbered from 0), by row then query.
    pub fn within(&mut self, chunk: Rows) -> Vec<Hit> {
        let mut out = Vec::new();
        self.scan(chunk, 0, &mut out);
        out
    }

    /// The queries' rows (`len() x dim` floats).
    pub fn rows(&self) -> &[f32] {
        &self.queries
    }

    /// How far query `k` reaches.
    pub fn reach(&self, k: usize) -> f32 {
        self.reach2.as_ref().map_or(self.max_d2, |r| r[k]).sqrt()
    }

    /// Query rows.
    pub fn len(&self) -> usize {
        self.norms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// Appends to `out` every hit between the queries and the rows of `chunk`, whose first row is
    /// stored row `base`; ordered by row, then query.
    pub fn scan(&mut self, chunk: Rows, base: u32, out: &mut Vec<Hit>) {
        let dim = self.dim;
        let rows = chunk.count(dim);
        assert_eq!(chunk.values(), rows * dim, "chunk of whole rows");
        if rows == 0 || self.is_empty() {
            return;
        }
        let queries = Block {
            rows: &self.queries,
            norms: &self.norms,
        };
        let max_d2 = self.max_d2;
        // Contiguous parts, one per worker, in tiles.
        let per = rows.div_ceil(self.workers.len()).div_ceil(SCAN_ROWS) * SCAN_ROWS;
        self.workers
            .par_iter_mut()
            .enumerate()
            .for_each(|(w, worker)| {
                worker.hits.clear();
                let (start, end) = ((w * per).min(rows), ((w + 1) * per).min(rows));
                for t0 in (start..end).step_by(SCAN_ROWS) {
                    let count = SCAN_ROWS.min(end - t0);
                    let tile = worker.tile.load(chunk, dim, t0, count);
                    let first = worker.hits.len();
                    let hits = &mut worker.hits;
                    close_pairs(
                        queries,
                        tile,
                        dim,
                        max_d2,
                        false,
                        &mut worker.dots,
                        &mut |q, r, d2| {
                            hits.push(Hit {
                                query: q as u32,
                                row: base + (t0 + r) as u32,
                                d2,
                            })
                        },
                    );
                    hits[first..].sort_unstable_by_key(|h| (h.row, h.query));
                }
            });
        for worker in &self.workers {
            match &self.reach2 {
                // The distances are exact: each query's own reach is a plain filter.
                Some(reach2) => out.extend(
                    worker
                        .hits
                        .iter()
                        .filter(|h| h.d2 < reach2[h.query as usize]),
                ),
                None => out.extend_from_slice(&worker.hits),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::cpu::squared_distance;
    use half::f16;

    #[test]
    fn hits_are_the_brute_force_pairs_with_their_exact_distances() {
        let rows = crate::graph::synthetic::embeddings(64, 40, 30, 0.5, 200);
        let half: Vec<f16> = rows.iter().map(|&v| f16::from_f32(v)).collect();
        let widened: Vec<f32> = half.iter().map(|h| h.to_f32()).collect();
        let queries: Vec<f32> = rows[64 * 100..64 * 131].to_vec();
        let mut range = RangeQuery::new(&queries, 64, 0.9);
        // Streamed in uneven chunks.
        let mut got = Vec::new();
        let n = rows.len() / 64;
        let mut start = 0;
        for size in [1, 700, 333, 1000] {
            let end = (start + size).min(n);
            let chunk = Rows::F16(&half[start * 64..end * 64]);
            range.scan(chunk, start as u32, &mut got);
            start = end;
        }
        assert_eq!(start, n);
        let mut want = Vec::new();
        for r in 0..n {
            for q in 0..31 {
                let d2 = squared_distance(
                    &queries[q * 64..(q + 1) * 64],
                    &widened[r * 64..(r + 1) * 64],
                );
                if d2 < 0.81 {
                    want.push(Hit {
                        query: q as u32,
                        row: r as u32,
                        d2,
                    });
                }
            }
        }
        assert!(want.len() > 500, "{}", want.len());
        assert_eq!(got, want);

        // Each query with its own reach: the pairs within it, and no others.
        let reach: Vec<f32> = (0..31).map(|q| 0.6 + 0.01 * q as f32).collect();
        let mut range = RangeQuery::with_reach(&queries, 64, &reach);
        let got = range.within(Rows::F16(&half));
        let want: Vec<Hit> = want
            .into_iter()
            .filter(|h| h.d2 < reach[h.query as usize] * reach[h.query as usize])
            .collect();
        assert!(!want.is_empty());
        assert_eq!(got, want);
    }
}
