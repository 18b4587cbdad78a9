//! The CPU's fast path to the same edges as the twin ([`super::cpu`]): squared distances in the
//! matrix-product form `|a|^2 + |b|^2 - 2 a.b`, with the dot products of 512 x 512 tiles of rows
//! done by `gemm` (blocked, vectorised). Every pair that the product form puts within a small
//! slack of the threshold is recomputed with the twin's exact order of additions, so the edges
//! (and their `d2`) are bit-identical to the twin's.
//!
//! [`close_pairs`] is that kernel on any two blocks of rows; [`edges`] runs it over the upper
//! triangle of all tile pairs (the exact graph), and the approximate graph ([`super::ivf`]) and
//! the range queries ([`super::range`]) run it on the blocks they choose.
//!
//! Memory: one tile of products (and, for f16 input, two tiles of converted rows) per thread;
//! never N x N.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::cpu::squared_distance;
use super::rows::{Rows, squared_norms};
use super::{Edge, sort_edges};
use crate::matmul::{self, Matrix};

/// Rows per tile side.
pub const TILE: usize = 512;
/// Candidates are pairs whose product-form distance is below the threshold plus this much per
/// unit of `|a|^2 + |b|^2`. The product form's rounding error is at most about
/// `dim * 2^-24 * (|a|^2 + |b|^2)` (3e-5 for 512-d), so this is a wide margin.
const SLACK: f32 = 1e-3;

/// All pairs `i < j` with squared distance below `max_d2`, in canonical order; the same edges as
/// [`super::cpu::edges`] on the rows as f32.
pub fn edges(rows: Rows, dim: usize, max_d2: f32) -> Vec<Edge> {
    edges_with_progress(rows, dim, max_d2, &|_, _| {})
}

/// [`edges`], calling `progress(tile pairs done, tile pairs)` as it goes.
pub fn edges_with_progress(
    rows: Rows,
    dim: usize,
    max_d2: f32,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Edge> {
    let mut out = Vec::new();
    tile_pairs(
        rows,
        dim,
        max_d2,
        &|_| true,
        &mut |e| {
            out.extend_from_slice(e);
            true
        },
        progress,
    );
    sort_edges(&mut out);
    out
}

/// The pairs of [`edges`] found in the tile pairs `take` chooses (by their number, in the order
/// `(0, 0), (0, 1), .., (1, 1), ..`), handed to `sink` a batch at a time (canonical order within a
/// tile pair, none across): a part of the exact graph ([`super::parts`]). It stops after a batch
/// when `sink` returns `false`.
pub fn tile_pairs(
    rows: Rows,
    dim: usize,
    max_d2: f32,
    take: &(dyn Fn(usize) -> bool + Sync),
    sink: &mut dyn FnMut(&[Edge]) -> bool,
    progress: &(dyn Fn(usize, usize) + Sync),
) {
    assert!(dim.is_multiple_of(super::LANES) && rows.values().is_multiple_of(dim));
    let n = rows.count(dim);
    let tiles = n.div_ceil(TILE);
    let pairs: Vec<(usize, usize)> = (0..tiles)
        .flat_map(|a| (a..tiles).map(move |b| (a, b)))
        .enumerate()
        .filter(|&(k, _)| take(k))
        .map(|(_, p)| p)
        .collect();
    let total = pairs.len();
    let done = AtomicUsize::new(0);
    // Batches of tile pairs, so that memory holds one batch's edges.
    for batch in pairs.chunks(256) {
        let found: Vec<Vec<Edge>> = batch
            .par_iter()
            .map_init(
                || (Scratch::default(), Scratch::default(), Vec::new()),
                |(sa, sb, dots), &(a, b)| {
                    let (i0, j0) = (a * TILE, b * TILE);
                    let (m, w) = (TILE.min(n - i0), TILE.min(n - j0));
                    let mut found = Vec::new();
                    let mut keep = |r: usize, c: usize, d2: f32| {
                        found.push(Edge {
                            i: (i0 + r) as u32,
                            j: (j0 + c) as u32,
                            d2,
                        })
                    };
                    let ta = sa.load(rows, dim, i0, m);
                    if a == b {
                        close_pairs(ta, ta, dim, max_d2, true, dots, &mut keep);
                    } else {
                        let tb = sb.load(rows, dim, j0, w);
                        close_pairs(ta, tb, dim, max_d2, false, dots, &mut keep);
                    }
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                    found
                },
            )
            .collect();
        for edges in &found {
            if !sink(edges) {
                return;
            }
        }
    }
}

/// Rows as f32 with their squared norms, reused from tile to tile.
#[derive(Default)]
pub struct Scratch {
    rows: Vec<f32>,
    norms: Vec<f32>,
}

impl Scratch {
    /// Rows `start..start + count` of `rows`, converted when they are f16.
    pub fn load<'s>(
        &'s mut self,
        rows: Rows<'s>,
        dim: usize,
        start: usize,
        count: usize,
    ) -> Block<'s> {
        let r = rows.f32_rows(dim, start, count, &mut self.rows);
        squared_norms(r, dim, &mut self.norms);
        Block {
            rows: r,
            norms: &self.norms,
        }
    }

    /// The rows at `indices`, converted, in that order.
    pub fn gather(&mut self, rows: Rows, dim: usize, indices: &[u32]) -> Block<'_> {
        self.rows.resize(indices.len() * dim, 0.0);
        rows.gather(dim, indices, &mut self.rows);
        self.adopt(dim, indices.len())
    }

    /// `values` as a block (copied).
    pub fn copy(&mut self, values: &[f32], dim: usize) -> Block<'_> {
        self.rows.clear();
        self.rows.extend_from_slice(values);
        self.adopt(dim, values.len() / dim)
    }

    fn adopt(&mut self, dim: usize, count: usize) -> Block<'_> {
        let r = &self.rows[..count * dim];
        squared_norms(r, dim, &mut self.norms);
        Block {
            rows: r,
            norms: &self.norms,
        }
    }
}

/// Rows of f32 and their squared norms.
#[derive(Clone, Copy)]
pub struct Block<'a> {
    pub rows: &'a [f32],
    pub norms: &'a [f32],
}

impl Block<'_> {
    pub fn len(&self) -> usize {
        self.norms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }
}

/// Every pair (row `r` of `a`, row `c` of `b`) with squared distance below `max_d2`, passed to
/// `emit(r, c, d2)` with the twin's exact `d2`. With `upper`, `a` and `b` are the same rows and
/// only `c > r` is visited. Blocks of any length, taken `TILE x TILE` at a time; `dots` is scratch.
pub fn close_pairs(
    a: Block,
    b: Block,
    dim: usize,
    max_d2: f32,
    upper: bool,
    dots: &mut Vec<f32>,
    emit: &mut dyn FnMut(usize, usize, f32),
) {
    for i0 in (0..a.len()).step_by(TILE) {
        let m = TILE.min(a.len() - i0);
        let first_j = if upper { i0 } else { 0 };
        for j0 in (first_j..b.len()).step_by(TILE) {
            let w = TILE.min(b.len() - j0);
            let diagonal = upper && i0 == j0;
            let mut check = |i: usize, j: usize, dot: f32| {
                let sum = a.norms[i] + b.norms[j];
                if sum - 2.0 * dot < max_d2 + SLACK * sum {
                    let d2 = squared_distance(
                        &a.rows[i * dim..(i + 1) * dim],
                        &b.rows[j * dim..(j + 1) * dim],
                    );
                    if d2 < max_d2 {
                        emit(i, j, d2);
                    }
                }
            };
            // The longer side as gemm's left operand: with a few query rows against a tile,
            // packing the short side is 4x faster than the other way round.
            if m >= w {
                products(&a.rows[i0 * dim..], m, &b.rows[j0 * dim..], w, dim, dots);
                for r in 0..m {
                    let first = if diagonal { r + 1 } else { 0 };
                    let line = &dots[r * w + first..(r + 1) * w];
                    for (c, &dot) in line.iter().enumerate() {
                        check(i0 + r, j0 + first + c, dot);
                    }
                }
            } else {
                products(&b.rows[j0 * dim..], w, &a.rows[i0 * dim..], m, dim, dots);
                for c in 0..w {
                    let end = if diagonal { c } else { m };
                    for (r, &dot) in dots[c * m..c * m + end].iter().enumerate() {
                        check(i0 + r, j0 + c, dot);
                    }
                }
            }
        }
    }
}

/// `dots[r * w + c] = a_r . b_c` for the first `m` rows of `a` and `w` rows of `b` (`dim` floats
/// each, rows contiguous).
pub fn products(a: &[f32], m: usize, b: &[f32], w: usize, dim: usize, dots: &mut Vec<f32>) {
    if dots.len() < m * w {
        dots.resize(m * w, 0.0);
    }
    matmul::product(
        Matrix::row_major(a, m, dim),
        Matrix::transposed(b, w, dim),
        dots,
        w,
        false,
        1.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_edges_as_the_twin_across_tiles_and_thresholds() {
        // 1100 rows: three tiles, a partial one last; clusters put many pairs near each threshold.
        let rows = crate::graph::synthetic::embeddings(64, 40, 20, 0.5, 300);
        for max_d in [0.3f32, 0.6, 0.9, 1.2, 1.5] {
            let twin = super::super::cpu::edges(&rows, 64, max_d * max_d);
            let fast = edges(Rows::F32(&rows), 64, max_d * max_d);
            assert_eq!(twin, fast, "max distance {max_d}");
        }
    }

    #[test]
    fn f16_rows_give_the_twins_edges_on_their_f32_values() {
        let rows = crate::graph::synthetic::embeddings(64, 30, 20, 0.5, 100);
        let half: Vec<half::f16> = rows.iter().map(|&v| half::f16::from_f32(v)).collect();
        let widened: Vec<f32> = half.iter().map(|h| h.to_f32()).collect();
        let twin = super::super::cpu::edges(&widened, 64, 0.81);
        assert!(twin.len() > 1000);
        assert_eq!(edges(Rows::F16(&half), 64, 0.81), twin);
    }

    #[test]
    fn blocks_of_any_length_match_the_definition() {
        // 700 x 600 rows (partial tiles on both sides; they overlap, so clusters are shared), and
        // 700 with itself.
        let rows = crate::graph::synthetic::embeddings(64, 50, 26, 0.5, 0);
        let (a, b) = (&rows[..700 * 64], &rows[400 * 64..1000 * 64]);
        let (mut sa, mut sb, mut dots) = (Scratch::default(), Scratch::default(), Vec::new());
        let (ba, bb) = (sa.copy(a, 64), sb.copy(b, 64));
        let mut got = Vec::new();
        close_pairs(ba, bb, 64, 0.8, false, &mut dots, &mut |r, c, d2| {
            got.push((r, c, d2))
        });
        let mut want = Vec::new();
        for r in 0..700 {
            for c in 0..600 {
                let d2 = squared_distance(&a[r * 64..(r + 1) * 64], &b[c * 64..(c + 1) * 64]);
                if d2 < 0.8 {
                    want.push((r, c, d2));
                }
            }
        }
        got.sort_by_key(|p| (p.0, p.1));
        assert!(want.len() > 100);
        assert_eq!(got, want);
        let mut upper = Vec::new();
        close_pairs(ba, ba, 64, 0.8, true, &mut dots, &mut |r, c, _| {
            upper.push((r, c))
        });
        upper.sort();
        let twin: Vec<(usize, usize)> = super::super::cpu::edges(a, 64, 0.8)
            .iter()
            .map(|e| (e.i as usize, e.j as usize))
            .collect();
        assert_eq!(upper, twin);
    }
}
