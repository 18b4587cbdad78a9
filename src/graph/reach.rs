//! Many queries against many targets that each reach their own distance: every face a full
//! re-cluster leaves over against every cluster's centroid (within its sample radius plus the
//! match distance). Ten million faces against two hundred thousand clusters is 2e12 pairs; the
//! targets' own IVF partition cuts that to a few thousand targets a query.
//!
//! The targets are partitioned by k-means ([`super::ivf::Partition`]) and kept in the order of
//! their cells. A query probes the cells within half of the bound that guarantees a target within
//! its reach (as a face probes cells for its neighbours), at most `probes` of them, and is
//! measured against the targets at home there. Each hit's distance is exact on the rows given; a
//! target is missed only when its cell is not among a query's probes. Below
//! [`TargetIndex::WORTH_IT`] pairs a caller measures every pair instead.

use rayon::prelude::*;

use super::ivf::{self, IvfParams, Partition};
use super::product::{Scratch, TILE, close_pairs, products};
use super::rows::Rows;
use super::source::{Control, InMemory};

/// A query within reach of a target: indices and the exact squared distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub query: u32,
    pub target: u32,
    pub d2: f32,
}

/// Targets indexed by a partition of their own.
pub struct TargetIndex {
    dim: usize,
    centroids: Vec<f32>,
    cn: Vec<f32>,
    apart: Vec<f32>,
    /// The targets' rows in cell order, and each one's index as given.
    rows: Vec<f32>,
    index: Vec<u32>,
    /// Cell `c`'s targets are `starts[c]..starts[c + 1]` of `rows`.
    starts: Vec<usize>,
    /// Each target's squared reach, by index as given.
    reach2: Vec<f32>,
    max_reach: f32,
    probes: usize,
}

impl TargetIndex {
    /// Pairs of queries and targets below which measuring every pair is as quick.
    pub const WORTH_IT: usize = 1 << 30;

    /// Index `targets` (rows of `dim` floats), target `t` reaching `reach[t]`; queries will probe
    /// at most `probes` cells.
    pub fn build(targets: &[f32], dim: usize, reach: &[f32], probes: usize) -> Self {
        let t = targets.len() / dim;
        assert_eq!(reach.len(), t, "a reach per target");
        // Cells to balance the query's products with the cell centres (cells) against those
        // with the targets of its probes (probes x t / cells).
        let cells = ((probes.max(1) * t) as f64).sqrt().round().max(1.0) as usize;
        let max_reach = reach.iter().copied().fold(0f32, f32::max);
        let params = IvfParams {
            cells,
            max_probes: 1,
            refine_degree: 0,
            ..IvfParams::default()
        };
        let source = InMemory {
            rows: Rows::F32(targets),
            dim,
        };
        let mut stats = ivf::IvfStats::default();
        let part = Partition::build(
            &source,
            max_reach * max_reach,
            &params,
            &Control::quiet(),
            &mut stats,
        )
        .expect("an in-memory partition cannot fail");
        let centroids = part.centroids().to_vec();
        let cells = centroids.len() / dim;
        let mut index: Vec<u32> = (0..t as u32).collect();
        index.sort_by_key(|&k| (part.home_of(k as usize), k));
        let mut starts = vec![0usize; cells + 1];
        for &k in &index {
            starts[part.home_of(k as usize) + 1] += 1;
        }
        for c in 0..cells {
            starts[c + 1] += starts[c];
        }
        let mut rows = vec![0f32; t * dim];
        Rows::F32(targets).gather(dim, &index, &mut rows);
        let (cn, apart) = ivf::cell_distances(&centroids, dim);
        TargetIndex {
            dim,
            centroids,
            cn,
            apart,
            rows,
            index,
            starts,
            reach2: reach.iter().map(|r| r * r).collect(),
            max_reach,
            probes: probes.max(1),
        }
    }

    /// Every query of `queries` within reach of a target (each reach widened by `widen`), with
    /// the exact squared distance on the rows given; by query, then target.
    pub fn within(&self, queries: Rows, widen: f32) -> Vec<Hit> {
        let (dim, cells) = (self.dim, self.centroids.len() / self.dim);
        let q = queries.count(dim);
        if q == 0 || self.index.is_empty() {
            return Vec::new();
        }
        // Each query's probes.
        let p = self.probes;
        let bound = 2.0 * (self.max_reach + widen) * IvfParams::default().probe_ratio;
        let probes: Vec<u16> = (0..q.div_ceil(TILE))
            .into_par_iter()
            .map_init(
                || (Vec::new(), Vec::new(), Vec::new()),
                |(scratch, dots, near), t| {
                    let start = t * TILE;
                    let count = TILE.min(q - start);
                    let tile = queries.f32_rows(dim, start, count, scratch);
                    products(tile, count, &self.centroids, cells, dim, dots);
                    let mut out = vec![ivf::NONE; count * p];
                    for r in 0..count {
                        ivf::probe(
                            &mut dots[r * cells..(r + 1) * cells],
                            &self.cn,
                            &self.apart,
                            bound,
                            near,
                            &mut out[r * p..(r + 1) * p],
                        );
                    }
                    out
                },
            )
            .flatten_iter()
            .collect();
        // The queries of each cell, ascending.
        let mut starts = vec![0usize; cells + 1];
        for &c in probes.iter().filter(|&&c| c != ivf::NONE) {
            starts[c as usize + 1] += 1;
        }
        for c in 0..cells {
            starts[c + 1] += starts[c];
        }
        let mut fill = starts.clone();
        let mut members = vec![0u32; starts[cells]];
        for (k, slots) in probes.chunks_exact(p).enumerate() {
            for &c in slots.iter().filter(|&&c| c != ivf::NONE) {
                members[fill[c as usize]] = k as u32;
                fill[c as usize] += 1;
            }
        }
        drop(fill);
        let widest = (self.max_reach + widen).powi(2);
        let mut hits: Vec<Hit> = (0..cells)
            .into_par_iter()
            .filter(|&c| starts[c] < starts[c + 1] && self.starts[c] < self.starts[c + 1])
            .map_init(
                || (Scratch::default(), Scratch::default(), Vec::new()),
                |(sq, st, dots), c| {
                    let (from, to) = (self.starts[c], self.starts[c + 1]);
                    let targets = st.copy(&self.rows[from * dim..to * dim], dim);
                    let mut found = Vec::new();
                    for tile in members[starts[c]..starts[c + 1]].chunks(TILE) {
                        let block = sq.gather(queries, dim, tile);
                        close_pairs(block, targets, dim, widest, false, dots, &mut |r, s, d2| {
                            let target = self.index[from + s];
                            let reach = self.reach2[target as usize].sqrt() + widen;
                            if d2 < reach * reach {
                                found.push(Hit {
                                    query: tile[r],
                                    target,
                                    d2,
                                });
                            }
                        });
                    }
                    found
                },
            )
            .flatten_iter()
            .collect();
        hits.sort_unstable_by_key(|h| (h.query, h.target));
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::cpu::squared_distance;
    use crate::graph::synthetic::{DIM, People};

    #[test]
    fn hits_are_exact_and_almost_all_are_found() {
        // Targets: the centres of 3000 synthetic people's faces (one face each stands in);
        // queries: other faces of the same people, and of none.
        let people = People::new(40_000, 21);
        let rows = people.rows_f32();
        let labels = people.labels();
        let mut first: Vec<Option<usize>> = vec![None; people.sizes().len()];
        let mut targets = Vec::new();
        for (i, &l) in labels.iter().enumerate() {
            if first[l as usize].is_none() && targets.len() < 3000 * DIM {
                first[l as usize] = Some(i);
                targets.extend_from_slice(&rows[i * DIM..(i + 1) * DIM]);
            }
        }
        let t = targets.len() / DIM;
        let reach: Vec<f32> = (0..t).map(|k| 0.6 + 0.2 * (k % 3) as f32).collect();
        let index = TargetIndex::build(&targets, DIM, &reach, 16);
        let queries = &rows[..8_000 * DIM];
        let got = index.within(Rows::F32(queries), 0.0);
        let mut want = Vec::new();
        for qi in 0..8_000 {
            for (k, &r) in reach.iter().enumerate() {
                let d2 = squared_distance(
                    &queries[qi * DIM..(qi + 1) * DIM],
                    &targets[k * DIM..(k + 1) * DIM],
                );
                if d2 < r * r {
                    want.push((qi as u32, k as u32, d2));
                }
            }
        }
        assert!(want.len() > 2000, "{} pairs", want.len());
        // Every hit is a pair within reach, with its exact distance; few are missed.
        let mut k = 0;
        for h in &got {
            while k < want.len() && (want[k].0, want[k].1) < (h.query, h.target) {
                k += 1;
            }
            let w = want[k];
            assert_eq!((w.0, w.1), (h.query, h.target));
            assert!((w.2 - h.d2).abs() < 1e-5);
        }
        let recall = got.len() as f64 / want.len() as f64;
        assert!(recall > 0.99, "recall {recall}");
        // Widened, it finds at least as much.
        assert!(index.within(Rows::F32(queries), 0.05).len() >= got.len());
    }
}
