//! The CPU twin of `shaders/pico_scan.wgsl`: the same integer sample positions, the same tree walk,
//! the same early rejection, on all cores with rayon. It is the reference the GPU is tested against.

use rayon::prelude::*;

use super::{Hit, ScanInput, sort_hits};
use crate::detection::cascade::{Cascade, unpack_code};
use crate::detection::windows::Level;

/// Scan every window of the plan and return the survivors in canonical order.
pub fn scan(cascade: &Cascade, input: &ScanInput) -> Vec<Hit> {
    // One task per (level, row): enough parallel slack, and each task walks a row of windows.
    let tasks: Vec<(u32, u32)> = input
        .plan
        .levels
        .iter()
        .enumerate()
        .flat_map(|(l, level)| (0..level.rows).map(move |i| (l as u32, i)))
        .collect();
    let mut hits: Vec<Hit> = tasks
        .par_iter()
        .with_min_len(8)
        .flat_map_iter(|&(l, i)| {
            let level = &input.plan.levels[l as usize];
            (0..level.cols).filter_map(move |j| {
                let (row, col) = level.centre(i, j);
                classify(cascade, input, level, row, col).map(|score| Hit {
                    level: l,
                    row,
                    col,
                    score,
                })
            })
        })
        .collect();
    sort_hits(&mut hits);
    hits
}

/// Run the cascade on one window; `Some(confidence)` if it passes every tree.
#[inline]
pub fn classify(
    cascade: &Cascade,
    input: &ScanInput,
    level: &Level,
    row: u32,
    col: u32,
) -> Option<f32> {
    let (w, h) = (input.width as i32, input.height as i32);
    let px = input.pixels;
    let s = level.size as i32;
    // Sample offsets rotated by the level's angle, in 1/65536 pixel, as in PICO's rotated scan.
    let (kc, ks) = (s * level.qcos, s * level.qsin);
    let (r0, c0) = ((row as i32) << 16, (col as i32) << 16);
    let sample = |dr: i32, dc: i32| -> u8 {
        let r = ((r0 + kc * dr - ks * dc) >> 16).clamp(0, h - 1);
        let c = ((c0 + ks * dr + kc * dc) >> 16).clamp(0, w - 1);
        px[(r * w + c) as usize]
    };
    let nodes = cascade.nodes_per_tree();
    let nleaves = cascade.leaves_per_tree();
    let mut sum = 0.0f32;
    for (t, &threshold) in cascade.thresholds.iter().enumerate() {
        let codes = &cascade.codes[t * nodes..(t + 1) * nodes];
        let mut idx = 0usize;
        for _ in 0..cascade.depth {
            let [r1, c1, r2, c2] = unpack_code(codes[idx]);
            idx = 2 * idx + 1 + (sample(r1, c1) <= sample(r2, c2)) as usize;
        }
        sum += cascade.leaves[t * nleaves + idx - nodes];
        if sum <= threshold {
            return None;
        }
    }
    Some(sum - cascade.thresholds[cascade.thresholds.len() - 1])
}
