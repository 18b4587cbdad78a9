//! The CPU twin of `shaders/pico_scan.wgsl`: the same integer sample positions, the same tree walk,
//! the same early rejection, on all cores with rayon. It is the reference the GPU is tested against.
//!
//! The windows of a band of rows walk the cascade together, tree by tree: all of them through tree
//! `t`, then those still alive through `t + 1`, packed to the front of their list, eight walks
//! interleaved. Every window meets the same tree at once, so that tree's offsets stay in the
//! first-level cache, and a window's death is a count, not a branch the CPU mispredicts. The
//! samples are read from a copy of the image padded as far as the windows reach past it (up to
//! `MAX_MARGIN`), with each level's sample offsets tabulated once, so a sample is one load.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::{Hit, ScanInput, sort_hits};
use crate::detection::pico::cascade::{Cascade, unpack_code};
use crate::detection::pico::windows::Level;

/// Samples out of the image are read from a copy of it padded on each side by as many pixels as
/// the plan's windows reach past it, up to this many (filled as the plan's padding says), so those
/// windows take the fast path; the few larger ones that reach farther go through [`classify`].
/// (At the default border, 25% of a window's side, the largest windows on a 12 MP photo's
/// detection image reach some 480 px past it: a margin that wide would cost more to fill than
/// their few windows cost.)
const MAX_MARGIN: u32 = 256;

/// The luminance image with `margin` pixels around it, filled by the plan's padding: the same
/// values [`classify`] would read there.
struct Padded {
    pixels: Vec<u8>,
    width: u32,
    height: u32,
    margin: u32,
}

impl Padded {
    /// The margin the plan's windows need: how far their samples reach past the image, at most
    /// [`MAX_MARGIN`].
    fn margin(input: &ScanInput) -> u32 {
        let (w, h) = (input.width as i32, input.height as i32);
        let past = |level: &Level| {
            let (rows, cols) = reach(level);
            // The first and the last window centre.
            let (row1, col1) = level.centre(0, 0);
            let (row2, col2) = level.centre(level.rows - 1, level.cols - 1);
            [
                -(row1 as i32 + rows.0),
                row2 as i32 + rows.1 - (h - 1),
                -(col1 as i32 + cols.0),
                col2 as i32 + cols.1 - (w - 1),
            ]
            .into_iter()
            .max()
            .unwrap_or(0)
        };
        let most = input.plan.levels.iter().map(past).max().unwrap_or(0);
        most.clamp(0, MAX_MARGIN as i32) as u32
    }

    fn new(input: &ScanInput) -> Self {
        let margin = Self::margin(input);
        let (w, h) = (input.width, input.height);
        let (pw, ph) = (w + 2 * margin, h + 2 * margin);
        let (m, wu) = (margin as i32, w as usize);
        let padding = input.plan.padding;
        let fill = padding.fill();
        // Rows and columns are mapped each on its own: a padded row is its source row with the
        // margins' columns looked up, or the fill.
        let margins: Vec<Option<i32>> = (-m..0)
            .chain(w as i32..w as i32 + m)
            .map(|c| padding.source(c, w as i32))
            .collect();
        let (left, right) = margins.split_at(margin as usize);
        let mut pixels = Vec::with_capacity(pw as usize * ph as usize);
        for r in -m..h as i32 + m {
            let Some(sr) = padding.source(r, h as i32) else {
                pixels.resize(pixels.len() + pw as usize, fill);
                continue;
            };
            let row = &input.pixels[sr as usize * wu..][..wu];
            let pick = |c: &Option<i32>| c.map_or(fill, |c| row[c as usize]);
            pixels.extend(left.iter().map(pick));
            pixels.extend_from_slice(row);
            pixels.extend(right.iter().map(pick));
        }
        Padded {
            pixels,
            width: pw,
            height: ph,
            margin,
        }
    }
}

/// Rows of windows walked as one list: a few hundred to tens of thousands of windows, so the
/// per-list and per-tree setup is spread thin, and still tens of tasks a photo for the cores.
const ROWS_PER_TASK: u32 = 32;

/// Scan every window of the plan and return the survivors in canonical order.
pub fn scan(cascade: &Cascade, input: &ScanInput) -> Vec<Hit> {
    let padded = Padded::new(input);
    let w = padded.width as i32;
    // Per level, every comparison's two sample positions relative to the window centre, as
    // offsets into the pixel array: (row << 16) + k >> 16 == row + (k >> 16), so the shader's
    // per-sample arithmetic factors out exactly.
    let tables: Vec<Offsets> = input
        .plan
        .levels
        .par_iter()
        .map(|level| Offsets::new(cascade, level, w))
        .collect();
    // One task per (level, band of rows).
    let tasks: Vec<(u32, u32)> = input
        .plan
        .levels
        .iter()
        .enumerate()
        .flat_map(|(l, level)| {
            (0..level.rows)
                .step_by(ROWS_PER_TASK as usize)
                .map(move |i| (l as u32, i))
        })
        .collect();
    let mut hits: Vec<Hit> = tasks
        .par_iter()
        .flat_map_iter(|&(l, i)| {
            let level = &input.plan.levels[l as usize];
            let rows = i..(i + ROWS_PER_TASK).min(level.rows);
            let table = &tables[l as usize];
            scan_rows(cascade, input, &padded, level, table, rows)
                .into_iter()
                .map(move |(row, col, score)| Hit {
                    level: l,
                    row,
                    col,
                    score,
                })
        })
        .collect();
    sort_hits(&mut hits);
    hits
}

/// All windows of rows `rows` of a level: `(row, col, score)` of those that pass. Windows whose
/// samples all lie inside the padded image go through the walk, the others through [`classify`].
fn scan_rows(
    cascade: &Cascade,
    input: &ScanInput,
    padded: &Padded,
    level: &Level,
    table: &Offsets,
    rows: std::ops::Range<u32>,
) -> Vec<(u32, u32, f32)> {
    let m = padded.margin;
    let mut out = Vec::new();
    let mut inside = Vec::with_capacity(rows.len() * level.cols as usize);
    for i in rows {
        for j in 0..level.cols {
            let (row, col) = level.centre(i, j);
            if table.inside(row + m, col + m, padded.width, padded.height) {
                inside.push((row, col));
            } else if let Some(score) = classify(cascade, input, level, row, col) {
                out.push((row, col, score));
            }
        }
    }
    // A window centre's index in the padded image.
    let at = |(row, col): (u32, u32)| ((row + m) * padded.width + col + m) as usize;
    let centres: Vec<usize> = inside.iter().map(|&w| at(w)).collect();
    let passed = walk(cascade, table, &padded.pixels, &centres);
    out.extend(passed.into_iter().map(|(k, score)| {
        let (row, col) = inside[k];
        (row, col, score)
    }));
    out
}

/// Windows walked side by side in [`walk`]: their walks are independent chains of loads, so the
/// CPU overlaps their latencies instead of waiting on one window at a time.
const GROUP: usize = 8;

/// The windows of `centres` (indices into `px` whose samples all lie inside it, as
/// [`Offsets::inside`] checks) that pass every tree, as (index into `centres`, score), in the
/// order of `centres`.
fn walk(cascade: &Cascade, table: &Offsets, px: &[u8], centres: &[usize]) -> Vec<(usize, f32)> {
    let (nodes, nleaves) = (cascade.nodes_per_tree(), cascade.leaves_per_tree());
    let ntrees = cascade.tree_count();
    // The windows still alive, all at tree `t`: their centres, their place in `centres`, their
    // running sums; the first `n` entries are live.
    let mut n = centres.len();
    let mut centre = centres.to_vec();
    let mut id: Vec<u32> = (0..n as u32).collect();
    let mut sum = vec![0.0f32; n];
    for t in 0..ntrees {
        if n == 0 {
            break;
        }
        let offsets = table.tree(cascade, t);
        let leaves = &cascade.leaves[t * nleaves..(t + 1) * nleaves];
        let threshold = cascade.thresholds[t];
        let mut kept = 0;
        let mut i = 0;
        while i < n {
            let g = GROUP.min(n - i);
            // Lanes past the list walk its window `i` again, harmlessly.
            let mut c = [centre[i]; GROUP];
            c[..g].copy_from_slice(&centre[i..i + g]);
            let mut node = [0usize; GROUP];
            for _ in 0..cascade.depth {
                for k in 0..GROUP {
                    // SAFETY: `node[k]` is an inner node, below the tree's `nodes` offsets; every
                    // centre passed `Offsets::inside`, which checked that every sample of its
                    // window, at any code in [-128, 127]^2, lies inside the padded image.
                    let (p1, p2) = unsafe {
                        let [a, b] = *offsets.get_unchecked(node[k]);
                        let i1 = c[k].wrapping_add_signed(a as isize);
                        let i2 = c[k].wrapping_add_signed(b as isize);
                        debug_assert!(i1 < px.len() && i2 < px.len());
                        (*px.get_unchecked(i1), *px.get_unchecked(i2))
                    };
                    node[k] = 2 * node[k] + 1 + (p1 <= p2) as usize;
                }
            }
            // Every window is written back, and the next overwrites it unless it is alive.
            for k in 0..g {
                let s = sum[i + k] + leaves[node[k] - nodes];
                let w = id[i + k];
                (centre[kept], id[kept], sum[kept]) = (c[k], w, s);
                // Rejected when the sum falls to the threshold (leaves are finite: no NaN).
                kept += (s > threshold) as usize;
            }
            i += g;
        }
        n = kept;
    }
    let last = cascade.thresholds[ntrees - 1];
    (0..n).map(|k| (id[k] as usize, sum[k] - last)).collect()
}

/// How far a level's samples reach from the window centre: the least and most row offset, and
/// column offset. Every code is within [-128, 127]^2, so the reach of the whole cascade is that
/// of the square's corners (rotation is linear and the shift is monotonic).
fn reach(level: &Level) -> ((i32, i32), (i32, i32)) {
    let s = level.size as i32;
    let (kc, ks) = (s * level.qcos, s * level.qsin);
    let (mut rows, mut cols) = ((0, 0), (0, 0));
    for (dr, dc) in [(-128, -128), (-128, 127), (127, -128), (127, 127)] {
        let (r, c) = ((kc * dr - ks * dc) >> 16, (ks * dr + kc * dc) >> 16);
        rows = (rows.0.min(r), rows.1.max(r));
        cols = (cols.0.min(c), cols.1.max(c));
    }
    (rows, cols)
}

/// Sample offsets are tabulated per level in blocks of this many trees, each block on first use:
/// nearly every window dies in the first block, while the few that look like faces walk hundreds
/// of trees, so small photos do not pay for tables they never read.
const BLOCK_TREES: usize = 16;

/// A level's sample offsets, and how far they reach from the window centre.
struct Offsets {
    /// Per block of trees, per inner node: the two samples as offsets from the centre's index.
    blocks: Vec<OnceLock<Box<[[i32; 2]]>>>,
    width: i32,
    kc: i32,
    ks: i32,
    rows: (i32, i32),
    cols: (i32, i32),
}

impl Offsets {
    fn new(cascade: &Cascade, level: &Level, width: i32) -> Self {
        let s = level.size as i32;
        let (kc, ks) = (s * level.qcos, s * level.qsin);
        let (rows, cols) = reach(level);
        let blocks = (0..cascade.tree_count().div_ceil(BLOCK_TREES))
            .map(|_| OnceLock::new())
            .collect();
        Offsets {
            blocks,
            width,
            kc,
            ks,
            rows,
            cols,
        }
    }

    /// The offsets of tree `t`'s inner nodes.
    #[inline(always)]
    fn tree(&self, cascade: &Cascade, t: usize) -> &[[i32; 2]] {
        let nodes = cascade.nodes_per_tree();
        let block = self.blocks[t / BLOCK_TREES].get_or_init(|| {
            let first = (t / BLOCK_TREES) * BLOCK_TREES;
            let last = (first + BLOCK_TREES).min(cascade.tree_count());
            let codes = &cascade.codes[first * nodes..last * nodes];
            // Each sample's offset from the centre pixel's index, in a plain loop over copies of
            // the level's constants, which the compiler turns into vector code (tens of
            // thousands of nodes a level, every level of every photo).
            let (kc, ks, width) = (self.kc, self.ks, self.width);
            let at = |dr: i32, dc: i32| {
                ((kc * dr - ks * dc) >> 16) * width + ((ks * dr + kc * dc) >> 16)
            };
            let mut out = vec![[0i32; 2]; codes.len()].into_boxed_slice();
            for (o, &code) in out.iter_mut().zip(codes) {
                let [r1, c1, r2, c2] = unpack_code(code);
                *o = [at(r1, c1), at(r2, c2)];
            }
            out
        });
        let start = (t % BLOCK_TREES) * nodes;
        &block[start..start + nodes]
    }

    /// True if every sample of the window centred at (row, col) lies inside the image, so no
    /// clamping is needed.
    fn inside(&self, row: u32, col: u32, width: u32, height: u32) -> bool {
        let (r, c) = (row as i32, col as i32);
        r + self.rows.0 >= 0
            && r + self.rows.1 < height as i32
            && c + self.cols.0 >= 0
            && c + self.cols.1 < width as i32
    }
}

/// Run the cascade on one window; `Some(confidence)` if it passes every tree. Samples outside the
/// image read the plan's [`Padding`](crate::detection::pico::windows::Padding) (windows that reach past
/// the border, and rotated windows near it, have such samples).
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
    let padding = input.plan.padding;
    let s = level.size as i32;
    // Sample offsets rotated by the level's angle, in 1/65536 pixel, as in PICO's rotated scan.
    let (kc, ks) = (s * level.qcos, s * level.qsin);
    let (r0, c0) = ((row as i32) << 16, (col as i32) << 16);
    let sample = |dr: i32, dc: i32| -> u8 {
        let r = (r0 + kc * dr - ks * dc) >> 16;
        let c = (c0 + ks * dr + kc * dc) >> 16;
        padding.fetch(px, w, h, r, c)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::pico::windows::{Border, Padding, ScanPlan};

    /// Whether every window of the plan passes the scan's own check that all its samples lie
    /// inside the padded image (`Offsets::inside`).
    fn all_inside(input: &ScanInput, padded: &Padded) -> bool {
        let cascade = Cascade::facefinder().unwrap();
        let m = padded.margin;
        input.plan.levels.iter().all(|level| {
            let table = Offsets::new(&cascade, level, padded.width as i32);
            (0..level.rows).all(|i| {
                (0..level.cols).all(|j| {
                    let (row, col) = level.centre(i, j);
                    table.inside(row + m, col + m, padded.width, padded.height)
                })
            })
        })
    }

    #[test]
    fn the_margin_is_what_the_windows_reach_up_to_its_most() {
        let border = Border {
            overhang: 0.25,
            padding: Padding::Replicate,
        };
        // A small photo: every window fits in a margin narrower than the most.
        let (w, h) = (300, 240);
        let pixels = vec![0u8; (w * h) as usize];
        let plan = ScanPlan::with_border(w, h, 20, &[0.0, -20.0, 20.0], border);
        let input = ScanInput {
            pixels: &pixels,
            width: w,
            height: h,
            plan: &plan,
        };
        let padded = Padded::new(&input);
        assert!(padded.margin > 0 && padded.margin < MAX_MARGIN);
        assert!(all_inside(&input, &padded));
        assert_eq!(padded.pixels.len() as u32, padded.width * padded.height);
        // One pixel less and some window reaches past it.
        let narrower = Padded {
            margin: padded.margin - 1,
            width: padded.width - 2,
            height: padded.height - 2,
            pixels: Vec::new(),
        };
        assert!(!all_inside(&input, &narrower));
        // Without overhang, upright windows stay inside the image.
        let plain = ScanPlan::with_border(w, h, 20, &[0.0], Border::NONE);
        let input = ScanInput {
            plan: &plain,
            ..input
        };
        assert_eq!(Padded::margin(&input), 0);
        // A camera photo's largest windows reach farther than the most.
        let (w, h) = (1280, 960);
        let pixels = vec![0u8; (w * h) as usize];
        let plan = ScanPlan::with_border(w, h, 50, &[0.0], border);
        let input = ScanInput {
            pixels: &pixels,
            width: w,
            height: h,
            plan: &plan,
        };
        assert_eq!(Padded::margin(&input), MAX_MARGIN);
    }
}
