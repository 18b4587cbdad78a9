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

/// Squared distances from `a` to four rows at once: four independent chains of additions keep the
/// CPU busy while each chain waits on its own sum. Each result is bit-identical to
/// [`squared_distance`].
#[inline]
fn squared_distance_x4(a: &[f32], b: [&[f32]; 4]) -> [f32; 4] {
    let mut acc = [[0f32; LANES]; 4];
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

/// All pairs `i < j` of the `dim`-float rows of `rows` with squared distance below `max_d2`, in
/// canonical order.
pub fn edges(rows: &[f32], dim: usize, max_d2: f32) -> Vec<Edge> {
    assert!(dim % LANES == 0 && rows.len() % dim == 0);
    let n = rows.len() / dim;
    let row = |k: usize| &rows[k * dim..(k + 1) * dim];
    let mut out: Vec<Edge> = (0..n)
        .into_par_iter()
        .with_min_len(16)
        .flat_map_iter(|i| {
            let a = row(i);
            let mut found = Vec::new();
            let mut keep = |j: usize, d2: f32| {
                if d2 < max_d2 {
                    found.push(Edge {
                        i: i as u32,
                        j: j as u32,
                        d2,
                    });
                }
            };
            let mut j = i + 1;
            while j + 4 <= n {
                let d = squared_distance_x4(a, [row(j), row(j + 1), row(j + 2), row(j + 3)]);
                for (k, d2) in d.into_iter().enumerate() {
                    keep(j + k, d2);
                }
                j += 4;
            }
            for j in j..n {
                keep(j, squared_distance(a, row(j)));
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
    fn four_at_once_is_bit_identical_to_one_at_a_time() {
        let rows = crate::graph::synthetic::embeddings(64, 2, 3, 0.5, 3);
        let row = |k: usize| &rows[k * 64..(k + 1) * 64];
        let four = squared_distance_x4(row(0), [row(1), row(2), row(3), row(4)]);
        for (k, d) in four.into_iter().enumerate() {
            assert_eq!(d.to_bits(), squared_distance(row(0), row(k + 1)).to_bits());
        }
        // And `edges` finds the same pairs as the plain definition.
        let all = edges(&rows, 64, f32::MAX);
        assert_eq!(all.len(), 9 * 8 / 2);
        for e in &all {
            let d: f32 = row(e.i as usize)
                .iter()
                .zip(row(e.j as usize))
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            assert!((d - e.d2).abs() < 1e-5);
        }
    }
}
