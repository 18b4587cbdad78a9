//! CPU twin of `shaders/distance_graph.wgsl`: the same pairs, the same order of additions (eight
//! interleaved partial sums, combined pairwise), on all cores. The reference the GPU path is tested
//! against.

use rayon::prelude::*;

use super::{Edge, LANES, sort_edges};

/// Squared distance with the shader's order of additions.
#[inline]
pub fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    for (ca, cb) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for k in 0..LANES {
            let d = ca[k] - cb[k];
            acc[k] += d * d;
        }
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

/// Squared distances from `a` to `R` rows at once: independent chains of additions keep the CPU
/// busy while each chain waits on its own sum. Each result is bit-identical to
/// [`squared_distance`].
#[inline]
fn squared_distance_many<const R: usize>(a: &[f32], b: [&[f32]; R]) -> [f32; R] {
    let mut acc = [[0f32; LANES]; R];
    for (c, ca) in a.chunks_exact(LANES).enumerate() {
        for (r, row) in b.iter().enumerate() {
            let cb = &row[c * LANES..(c + 1) * LANES];
            for k in 0..LANES {
                let d = ca[k] - cb[k];
                acc[r][k] += d * d;
            }
        }
    }
    acc.map(|s| ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])))
}

/// Rows compared against every later row together: they stay in cache while the later rows stream
/// past once per block (a row at a time would stream them once per row).
const BLOCK: usize = 32;
/// Rows of a block compared with one later row at a time (independent sums in flight).
const GROUP: usize = 8;

/// All pairs `i < j` of the `dim`-float rows of `rows` with squared distance below `max_d2`, in
/// canonical order.
pub fn edges(rows: &[f32], dim: usize, max_d2: f32) -> Vec<Edge> {
    assert!(dim.is_multiple_of(LANES) && rows.len().is_multiple_of(dim));
    let n = rows.len() / dim;
    let row = |k: usize| &rows[k * dim..(k + 1) * dim];
    let mut out: Vec<Edge> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .flat_map_iter(|block| {
            let (i0, i1) = (block * BLOCK, ((block + 1) * BLOCK).min(n));
            let mut found = Vec::new();
            let mut keep = |i: usize, j: usize, d2: f32| {
                if d2 < max_d2 {
                    found.push(Edge {
                        i: i as u32,
                        j: j as u32,
                        d2,
                    });
                }
            };
            for j in i0 + 1..n {
                let b = row(j);
                let end = i1.min(j);
                let mut i = i0;
                // (b - a)^2 has the same bits as (a - b)^2: the order of the pair does not matter.
                while i + GROUP <= end {
                    let d = squared_distance_many(
                        b,
                        std::array::from_fn::<_, GROUP, _>(|k| row(i + k)),
                    );
                    for (k, d2) in d.into_iter().enumerate() {
                        keep(i + k, j, d2);
                    }
                    i += GROUP;
                }
                for i in i..end {
                    keep(i, j, squared_distance(row(i), b));
                }
            }
            found
        })
        .collect();
    sort_edges(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_at_once_are_bit_identical_to_one_at_a_time() {
        let rows = crate::graph::synthetic::embeddings(64, 2, 3, 0.5, 3);
        let row = |k: usize| &rows[k * 64..(k + 1) * 64];
        let four = squared_distance_many(row(0), [row(1), row(2), row(3), row(4)]);
        for (k, d) in four.into_iter().enumerate() {
            assert_eq!(d.to_bits(), squared_distance(row(0), row(k + 1)).to_bits());
        }
        // And `edges` finds the same pairs as the plain definition, across blocks.
        let rows = crate::graph::synthetic::embeddings(64, 10, 7, 0.5, 9);
        let row = |k: usize| &rows[k * 64..(k + 1) * 64];
        let all = edges(&rows, 64, f32::MAX);
        assert_eq!(all.len(), 79 * 78 / 2);
        for e in &all {
            let d = crate::embedding::distance(row(e.i as usize), row(e.j as usize)).powi(2);
            assert!((d - e.d2).abs() < 1e-5);
        }
    }
}
