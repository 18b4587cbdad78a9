//! The CPU's fast path to the same edges as the twin ([`super::cpu`]): squared distances in the
//! matrix-product form `|a|^2 + |b|^2 - 2 a.b`, with the dot products of 512 x 512 tiles of rows
//! done by `gemm` (blocked, vectorised), the upper triangle only. Every pair that the product
//! form puts within a small slack of the threshold is recomputed with the twin's exact order of
//! additions, so the edges (and their `d2`) are bit-identical to the twin's.
//!
//! Memory: one tile of products per thread; never N x N.

use rayon::prelude::*;

use super::cpu::squared_distance;
use super::{Edge, sort_edges};

/// Rows per tile side.
const TILE: usize = 512;
/// Candidates are pairs whose product-form distance is below the threshold plus this much per
/// unit of `|a|^2 + |b|^2`. The product form's rounding error is at most about
/// `dim * 2^-24 * (|a|^2 + |b|^2)` (3e-5 for 512-d), so this is a wide margin.
const SLACK: f32 = 1e-3;

/// All pairs `i < j` with squared distance below `max_d2`, in canonical order; the same edges as
/// [`super::cpu::edges`].
pub fn edges(rows: &[f32], dim: usize, max_d2: f32) -> Vec<Edge> {
    assert!(dim.is_multiple_of(super::LANES) && rows.len().is_multiple_of(dim));
    let n = rows.len() / dim;
    let norms: Vec<f32> = rows
        .chunks_exact(dim)
        .map(|r| r.iter().map(|x| x * x).sum())
        .collect();
    let tiles = n.div_ceil(TILE);
    let pairs: Vec<(usize, usize)> = (0..tiles)
        .flat_map(|a| (a..tiles).map(move |b| (a, b)))
        .collect();
    let mut out: Vec<Edge> = pairs
        .into_par_iter()
        .map_init(
            || vec![0f32; TILE * TILE],
            |dots, (a, b)| tile_edges(rows, dim, &norms, a, b, max_d2, dots),
        )
        .flatten_iter()
        .collect();
    sort_edges(&mut out);
    out
}

fn tile_edges(
    rows: &[f32],
    dim: usize,
    norms: &[f32],
    a: usize,
    b: usize,
    max_d2: f32,
    dots: &mut [f32],
) -> Vec<Edge> {
    let n = norms.len();
    let (i0, i1) = (a * TILE, ((a + 1) * TILE).min(n));
    let (j0, j1) = (b * TILE, ((b + 1) * TILE).min(n));
    let (m, w) = (i1 - i0, j1 - j0);
    // dots[r * w + c] = row(i0 + r) . row(j0 + c)
    // SAFETY: every pointer and stride stays inside `rows` and `dots`: lhs is m rows of `dim`
    // floats from row i0, rhs reads w rows of `dim` from row j0 as a dim x w matrix, and dst is
    // m x w with row stride w <= TILE.
    unsafe {
        gemm::gemm(
            m,
            w,
            dim,
            dots.as_mut_ptr(),
            1,
            w as isize,
            false,
            rows[i0 * dim..].as_ptr(),
            1,
            dim as isize,
            rows[j0 * dim..].as_ptr(),
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
    let row = |k: usize| &rows[k * dim..(k + 1) * dim];
    let mut found = Vec::new();
    for r in 0..m {
        let i = i0 + r;
        let first = if a == b { r + 1 } else { 0 };
        for c in first..w {
            let j = j0 + c;
            let sum = norms[i] + norms[j];
            let approx = sum - 2.0 * dots[r * w + c];
            if approx < max_d2 + SLACK * sum {
                let d2 = squared_distance(row(i), row(j));
                if d2 < max_d2 {
                    found.push(Edge {
                        i: i as u32,
                        j: j as u32,
                        d2,
                    });
                }
            }
        }
    }
    found
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
            let fast = edges(&rows, 64, max_d * max_d);
            assert_eq!(twin, fast, "max distance {max_d}");
        }
    }
}
