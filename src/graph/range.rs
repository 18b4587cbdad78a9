//! Range queries: which stored rows lie within a distance of a few query rows. The incremental
//! side of clustering asks this of every face in the library for the handful of faces an index
//! run adds, a chunk of half-float rows at a time (see `store::embeddings::scan`), so it works on
//! one chunk, allocates per chunk, not per row, and gives the same pairs as the exact sum.
//!
//! Dot products of the queries with the chunk's rows come from `gemm`; every pair the product
//! form puts near the threshold is recomputed with the exact sum ([`super::cpu::squared_distance`]),
//! as [`super::product`] does.

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use super::cpu::squared_distance;

/// See `product::SLACK`.
const SLACK: f32 = 1e-3;
/// Rows converted and multiplied at a time by one thread.
const TILE: usize = 1024;

/// A pair within range: query `q` and row `row` of the chunk, at squared distance `d2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub q: u32,
    pub row: u32,
    pub d2: f32,
}

/// Query rows in f32 with their squared norms, ready to meet many chunks.
pub struct Queries {
    rows: Vec<f32>,
    norms: Vec<f32>,
    /// Squared reach of each query.
    reach2: Vec<f32>,
    dim: usize,
}

impl Queries {
    /// `rows` holds `reach.len()` queries of `dim` floats; query `k` finds rows within
    /// `reach[k]` (a distance, not squared).
    pub fn new(rows: Vec<f32>, dim: usize, reach: &[f32]) -> Self {
        assert!(dim > 0 && rows.len() == reach.len() * dim);
        let norms = rows
            .chunks_exact(dim)
            .map(|r| r.iter().map(|x| x * x).sum())
            .collect();
        Queries {
            rows,
            norms,
            reach2: reach.iter().map(|r| r * r).collect(),
            dim,
        }
    }

    pub fn len(&self) -> usize {
        self.norms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    pub fn row(&self, k: usize) -> &[f32] {
        &self.rows[k * self.dim..(k + 1) * self.dim]
    }

    /// Every (query, row) pair of this chunk of half-float rows within the query's reach, by
    /// row then query.
    pub fn within(&self, chunk: &[f16]) -> Vec<Hit> {
        let dim = self.dim;
        assert!(chunk.len().is_multiple_of(dim));
        if self.is_empty() {
            return Vec::new();
        }
        let n = chunk.len() / dim;
        let max_reach2 = self.reach2.iter().copied().fold(0f32, f32::max);
        let tiles: Vec<usize> = (0..n.div_ceil(TILE)).collect();
        tiles
            .into_par_iter()
            .map(|t| {
                let (r0, r1) = (t * TILE, ((t + 1) * TILE).min(n));
                let w = r1 - r0;
                let mut rows = vec![0f32; w * dim];
                chunk[r0 * dim..r1 * dim].convert_to_f32_slice(&mut rows);
                let q = self.len();
                let mut dots = vec![0f32; q * w];
                // dots[k * w + c] = query(k) . row(r0 + c)
                // SAFETY: lhs is q rows of `dim` floats, rhs reads w rows of `dim` as a dim x w
                // matrix, dst is q x w with row stride w: every access stays inside its buffer.
                unsafe {
                    gemm::gemm(
                        q,
                        w,
                        dim,
                        dots.as_mut_ptr(),
                        1,
                        w as isize,
                        false,
                        self.rows.as_ptr(),
                        1,
                        dim as isize,
                        rows.as_ptr(),
                        dim as isize,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                let mut hits = Vec::new();
                for c in 0..w {
                    let row = &rows[c * dim..(c + 1) * dim];
                    let norm: f32 = row.iter().map(|x| x * x).sum();
                    for k in 0..q {
                        let sum = self.norms[k] + norm;
                        let approx = sum - 2.0 * dots[k * w + c];
                        if approx < max_reach2 + SLACK * sum
                            && approx < self.reach2[k] + SLACK * sum
                        {
                            let d2 = squared_distance(self.row(k), row);
                            if d2 < self.reach2[k] {
                                hits.push(Hit {
                                    q: k as u32,
                                    row: (r0 + c) as u32,
                                    d2,
                                });
                            }
                        }
                    }
                }
                hits
            })
            .flatten_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_pairs_the_exact_sum_finds() {
        let dim = 64;
        let rows = crate::graph::synthetic::embeddings(dim, 30, 20, 0.5, 400);
        let n = rows.len() / dim;
        let chosen = [3usize, 40, 41, 500, n - 1];
        let queries: Vec<f32> = chosen
            .iter()
            .flat_map(|&i| rows[i * dim..(i + 1) * dim].to_vec())
            .collect();
        let reach = [0.6, 0.8, 0.7, 1.0, 0.9];
        let q = Queries::new(queries, dim, &reach);
        let mut halves = vec![f16::ZERO; rows.len()];
        halves.convert_from_f32_slice(&rows);
        let got = q.within(&halves);
        let back: Vec<f32> = halves.iter().map(|h| h.to_f32()).collect();
        let mut want = Vec::new();
        for r in 0..n {
            for (k, reach) in reach.iter().enumerate() {
                let d2 = squared_distance(q.row(k), &back[r * dim..(r + 1) * dim]);
                if d2 < reach * reach {
                    want.push(Hit {
                        q: k as u32,
                        row: r as u32,
                        d2,
                    });
                }
            }
        }
        assert!(!want.is_empty());
        assert_eq!(got, want);
    }
}
