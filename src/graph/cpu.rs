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

/// All pairs `i < j` of the `dim`-float rows of `rows` with squared distance below `max_d2`, in
/// canonical order.
pub fn edges(rows: &[f32], dim: usize, max_d2: f32) -> Vec<Edge> {
    assert!(dim % LANES == 0 && rows.len() % dim == 0);
    let n = rows.len() / dim;
    let mut out: Vec<Edge> = (0..n)
        .into_par_iter()
        .with_min_len(16)
        .flat_map_iter(|i| {
            let a = &rows[i * dim..(i + 1) * dim];
            (i + 1..n).filter_map(move |j| {
                let d2 = squared_distance(a, &rows[j * dim..(j + 1) * dim]);
                (d2 < max_d2).then_some(Edge {
                    i: i as u32,
                    j: j as u32,
                    d2,
                })
            })
        })
        .collect();
    sort_edges(&mut out);
    out
}
