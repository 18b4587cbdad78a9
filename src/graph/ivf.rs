//! The approximate neighbour graph for large N on the CPU: an inverted-file (IVF) partition, as
//! FAISS's `IndexIVF` partitions vectors, used for a range self-join instead of k-NN queries.
//!
//! 1. Spherical k-means (Lloyd, seeded, unit centroids) on a sample puts `cells` centroids where
//!    the faces are; cells left with a handful of sample rows are dropped.
//! 2. Every face's home is its nearest centroid. If faces `a` and `b` are less than `e` apart and
//!    `b` lives in cell `j`, then `|a - mu_j|^2 - |a - mu_home(a)|^2 <= 2 e |mu_home(a) - mu_j|`
//!    (the two faces' differences to the two centroids differ by at most that). A face probes the
//!    cells within `probe_ratio` of that bound, closest share first, `max_probes` at most.
//!    With ratio 1 and no cap the search is exact; on real embeddings (clusters with shape) a
//!    half of the bound finds every edge, on synthetic people (no shape between a person and its
//!    neighbours) the cap decides.
//! 3. Each cell compares its home faces with each other and with the faces that probe it, in gemm
//!    tiles ([`super::product::close_pairs`]), with the exact recheck of every candidate.
//! 4. Two hops: a face with few neighbours is measured against its neighbours' neighbours; pairs
//!    of small groups that sit in no one cell are found there.
//!
//! So every edge returned is an edge of the exact graph with the exact graph's `d2` (bit for
//! bit); an edge is missed only when neither face probes the other's home and no short path joins
//! them. A pair found from both sides is kept once (from the lower-numbered cell). Deterministic
//! for a given input and seed: the sample, the k-means sums and the output order do not depend on
//! thread timing.
//!
//! Memory, beyond the caller's rows: the probes of each face (4 bytes x `max_probes`), the cell
//! lists, per-thread tiles, and the edges. Rows are read as f32 or f16 ([`Rows`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use super::product::{Scratch, TILE, close_pairs, products};
use super::random::SplitMix;
use super::rows::{Rows, squared_norms};
use super::{Edge, sort_edges};

/// How the partition is built and searched.
#[derive(Debug, Clone, PartialEq)]
pub struct IvfParams {
    /// Coarse cells; 0 chooses from the number of rows ([`IvfParams::cells_for`]).
    pub cells: usize,
    /// A face probes the cells within this share of the bound that guarantees all its
    /// neighbours (1 with `max_probes` at least the cells is an exact search).
    pub probe_ratio: f32,
    /// Most cells a face probes, its home included.
    pub max_probes: usize,
    /// Lloyd iterations on the sample.
    pub iterations: usize,
    /// Sample rows per cell for k-means.
    pub sample_per_cell: usize,
    /// Cells left with fewer sample rows than this after k-means are dropped (their rows go to
    /// the next nearest) and the rest refined once more: a centroid of two or three faces sits
    /// on those faces, far from the rest of their person, whose edges to them would be missed.
    pub min_cell_sample: usize,
    /// After the search, faces with at most this many neighbours are joined to their
    /// neighbours' neighbours where those are close enough (0: no second pass).
    pub refine_degree: usize,
    pub seed: u64,
}

impl Default for IvfParams {
    fn default() -> Self {
        IvfParams {
            cells: 0,
            max_probes: 12,
            probe_ratio: 0.5,
            iterations: 8,
            sample_per_cell: 32,
            min_cell_sample: 8,
            refine_degree: 64,
            seed: 0x5eed,
        }
    }
}

impl IvfParams {
    /// Cells for `n` rows: about sqrt(2 n) (cells of about sqrt(n / 2) faces), which balances the
    /// assignment (n x cells products) against the search (n x probes x n / cells).
    pub fn cells_for(n: usize) -> usize {
        (((2 * n) as f64).sqrt().round() as usize).clamp(1, n.max(1))
    }
}

/// What a run did, for benchmarks.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IvfStats {
    pub cells: usize,
    pub sample: usize,
    /// Mean cells probed per face, the home cell included.
    pub mean_probes: f64,
    /// Faces in the largest cell.
    pub largest_cell: usize,
    /// Row pairs whose product was computed, as a share of n (n - 1) / 2.
    pub pair_share: f64,
    pub kmeans_seconds: f64,
    pub assign_seconds: f64,
    pub search_seconds: f64,
    /// Edges added by the two-hop pass.
    pub two_hop_edges: usize,
    pub two_hop_seconds: f64,
}

/// Pairs `i < j` closer than `max_d2` (squared), found through the partition; canonical order.
pub fn edges(
    rows: Rows,
    dim: usize,
    max_d2: f32,
    params: &IvfParams,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> (Vec<Edge>, IvfStats) {
    assert!(dim.is_multiple_of(super::LANES) && rows.values().is_multiple_of(dim));
    assert!(params.max_probes >= 1);
    let n = rows.count(dim);
    let mut stats = IvfStats::default();
    if n < 2 {
        return (Vec::new(), stats);
    }
    let cells = if params.cells == 0 {
        IvfParams::cells_for(n)
    } else {
        params.cells.min(n)
    };
    let started = Instant::now();
    let (centroids, sample) = kmeans(rows, dim, cells, params);
    let cells = centroids.len() / dim;
    stats.sample = sample;
    stats.cells = cells;
    stats.kmeans_seconds = started.elapsed().as_secs_f64();

    // Progress: rows assigned, then home rows searched.
    let done = AtomicUsize::new(0);
    let total = 2 * n;
    let step = |k: usize| progress(done.fetch_add(k, Ordering::Relaxed) + k, total);

    let started = Instant::now();
    let probes = assign(rows, dim, &centroids, params, max_d2, &step);
    stats.assign_seconds = started.elapsed().as_secs_f64();
    let p = params.max_probes;
    let home = |i: usize| probes[i * p];
    let probes_of = |i: usize| {
        probes[i * p..(i + 1) * p]
            .iter()
            .take_while(|&&c| c != NONE)
    };

    // Cell lists, faces ascending: home members, and visitors (faces probing a cell not theirs).
    let members = Lists::build(cells, n, |i, add| add(home(i)));
    let visitors = Lists::build(cells, n, |i, add| {
        for &c in probes_of(i).skip(1) {
            add(c)
        }
    });
    stats.mean_probes = 1.0 + visitors.items.len() as f64 / n as f64;
    stats.largest_cell = (0..cells).map(|c| members.of(c).len()).max().unwrap_or(0);
    let cost = |c: usize| {
        let (m, v) = (members.of(c).len(), visitors.of(c).len());
        m * (m.saturating_sub(1)) / 2 + m * v
    };
    stats.pair_share =
        (0..cells).map(cost).sum::<usize>() as f64 / (n as f64 * (n - 1) as f64 / 2.0);

    let started = Instant::now();
    // Largest cells first, so no thread is left with a big one at the end.
    let mut order: Vec<usize> = (0..cells).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(cost(c)), c));
    let mut out: Vec<Edge> = order
        .into_par_iter()
        .map_init(
            || (Scratch::default(), Scratch::default(), Vec::new()),
            |(sm, sv, dots), c| {
                let mut found = Vec::new();
                let home_rows = members.of(c);
                if home_rows.is_empty() {
                    return found;
                }
                let m = sm.gather(rows, dim, home_rows);
                let c32 = c as u32;
                close_pairs(m, m, dim, max_d2, true, dots, &mut |r, k, d2| {
                    found.push(edge(home_rows[r], home_rows[k], d2))
                });
                for tile in visitors.of(c).chunks(TILE) {
                    let v = sv.gather(rows, dim, tile);
                    close_pairs(v, m, dim, max_d2, false, dots, &mut |r, k, d2| {
                        let (visitor, member) = (tile[r], home_rows[k]);
                        let visitor_home = home(visitor as usize);
                        // Also found from the visitor's home cell when the member probes it:
                        // keep the pair from the lower-numbered cell only.
                        let twice = probes_of(member as usize).any(|&x| x == visitor_home);
                        if !twice || c32 < visitor_home {
                            found.push(edge(visitor, member, d2));
                        }
                    });
                }
                step(home_rows.len());
                found
            },
        )
        .flatten_iter()
        .collect();
    sort_edges(&mut out);
    stats.search_seconds = started.elapsed().as_secs_f64();
    if params.refine_degree > 0 {
        let started = Instant::now();
        let added = two_hop(rows, dim, max_d2, &out, params.refine_degree);
        stats.two_hop_edges = added.len();
        if !added.is_empty() {
            out.extend(added);
            sort_edges(&mut out);
        }
        stats.two_hop_seconds = started.elapsed().as_secs_f64();
    }
    (out, stats)
}

/// Edges between faces two hops apart that the partition missed: for each face with at most
/// `max_degree` neighbours, every neighbour's neighbour (also of degree at most `max_degree`) that
/// is not yet its neighbour is measured exactly. The faces the partition misses pairs of are those
/// of small groups far from every centroid, whose pairs sit in no one cell; when a group of three
/// or more has most of its pairs found, the rest are two hops away. Large groups are left out:
/// their pairs share a cell and are found there, and their degree would make this quadratic.
fn two_hop(rows: Rows, dim: usize, max_d2: f32, edges: &[Edge], max_degree: usize) -> Vec<Edge> {
    let n = rows.count(dim);
    let mut degree = vec![0u32; n];
    for e in edges {
        degree[e.i as usize] += 1;
        degree[e.j as usize] += 1;
    }
    let low = |i: u32| (1..=max_degree as u32).contains(&degree[i as usize]);
    // Neighbour lists of the low-degree faces, through low-degree faces only (ascending: the
    // edges are in canonical order).
    let lists = Lists::build_pairs(
        n,
        edges
            .iter()
            .filter(|e| low(e.i) && low(e.j))
            .map(|e| (e.i, e.j)),
    );
    let mut found: Vec<Edge> = (0..n as u32)
        .into_par_iter()
        .filter(|&a| !lists.of(a as usize).is_empty())
        .map_init(
            || (vec![0f32; dim], vec![0f32; dim], Vec::new()),
            |(ra, rb, candidates), a| {
                let near = lists.of(a as usize);
                candidates.clear();
                for &c in near {
                    candidates.extend(
                        lists
                            .of(c as usize)
                            .iter()
                            .copied()
                            .filter(|&b| b > a && near.binary_search(&b).is_err()),
                    );
                }
                candidates.sort_unstable();
                candidates.dedup();
                let mut out = Vec::new();
                if candidates.is_empty() {
                    return out;
                }
                rows.copy_to(dim, a as usize, ra);
                for &b in candidates.iter() {
                    rows.copy_to(dim, b as usize, rb);
                    let d2 = super::cpu::squared_distance(ra, rb);
                    if d2 < max_d2 {
                        out.push(edge(a, b, d2));
                    }
                }
                out
            },
        )
        .flatten_iter()
        .collect();
    // Only the low-degree lists were searched, and a pair's two ends see each other's
    // neighbours alike: each new pair came from its lower end alone.
    sort_edges(&mut found);
    found
}

/// Marks unused probe slots.
const NONE: u32 = u32::MAX;

fn edge(a: u32, b: u32, d2: f32) -> Edge {
    Edge {
        i: a.min(b),
        j: a.max(b),
        d2,
    }
}

/// Items grouped by cell, each group ascending: `items[offsets[c]..offsets[c + 1]]`.
struct Lists {
    offsets: Vec<usize>,
    items: Vec<u32>,
}

impl Lists {
    /// `cells_of(i, add)` calls `add(cell)` for each cell row `i` belongs to (a counting sort).
    fn build(cells: usize, n: usize, cells_of: impl Fn(usize, &mut dyn FnMut(u32))) -> Self {
        let mut counts = vec![0usize; cells + 1];
        for i in 0..n {
            cells_of(i, &mut |c| counts[c as usize + 1] += 1);
        }
        for c in 0..cells {
            counts[c + 1] += counts[c];
        }
        let mut fill = counts.clone();
        let mut items = vec![0u32; counts[cells]];
        for i in 0..n {
            cells_of(i, &mut |c| {
                items[fill[c as usize]] = i as u32;
                fill[c as usize] += 1;
            });
        }
        Lists {
            offsets: counts,
            items,
        }
    }

    /// Undirected pairs `(i, j)` as lists of both ends' neighbours, each list in the order the
    /// pairs come (ascending when they come in canonical order).
    fn build_pairs(n: usize, pairs: impl Iterator<Item = (u32, u32)> + Clone) -> Self {
        let mut counts = vec![0usize; n + 1];
        for (i, j) in pairs.clone() {
            counts[i as usize + 1] += 1;
            counts[j as usize + 1] += 1;
        }
        for k in 0..n {
            counts[k + 1] += counts[k];
        }
        let mut fill = counts.clone();
        let mut items = vec![0u32; counts[n]];
        for (i, j) in pairs {
            for (from, to) in [(i, j), (j, i)] {
                items[fill[from as usize]] = to;
                fill[from as usize] += 1;
            }
        }
        Lists {
            offsets: counts,
            items,
        }
    }

    fn of(&self, c: usize) -> &[u32] {
        &self.items[self.offsets[c]..self.offsets[c + 1]]
    }
}

/// At most `cells` centroids (`cells x dim`, f32) from Lloyd's iterations on a seeded sample, and
/// the sample's size. The first centroids are distinct sample rows.
fn kmeans(rows: Rows, dim: usize, cells: usize, params: &IvfParams) -> (Vec<f32>, usize) {
    let n = rows.count(dim);
    let size = (cells * params.sample_per_cell.max(1)).clamp(cells, n);
    // A partial Fisher-Yates shuffle: the first `size` indices are the sample, in random order.
    let mut index: Vec<u32> = (0..n as u32).collect();
    let mut rng = SplitMix::new(params.seed, 1, 0);
    for k in 0..size {
        let j = k + rng.below((n - k) as u64) as usize;
        index.swap(k, j);
    }
    index.truncate(size);
    let mut sample = vec![0f32; size * dim];
    rows.gather(dim, &index, &mut sample);
    drop(index);
    let mut centroids = sample[..cells * dim].to_vec();
    let mut nearest = vec![0u32; size];
    for _ in 0..params.iterations {
        lloyd(&sample, dim, &mut centroids, &mut nearest);
    }
    // Drop the cells with too few rows, then refine the rest once.
    if params.min_cell_sample > 1 && params.iterations > 0 {
        let mut counts = vec![0usize; centroids.len() / dim];
        for &c in &nearest {
            counts[c as usize] += 1;
        }
        let kept: Vec<f32> = centroids
            .chunks_exact(dim)
            .zip(&counts)
            .filter(|&(_, &k)| k >= params.min_cell_sample)
            .flat_map(|(c, _)| c.iter().copied())
            .collect();
        if !kept.is_empty() && kept.len() < centroids.len() {
            centroids = kept;
            lloyd(&sample, dim, &mut centroids, &mut nearest);
        }
    }
    (centroids, size)
}

/// One Lloyd iteration: each sample row to its nearest centroid, each centroid to the mean of its
/// rows (an empty cell keeps its centroid). Sums in sample order, so the same bits on any number
/// of threads.
fn lloyd(sample: &[f32], dim: usize, centroids: &mut [f32], nearest: &mut [u32]) {
    let cells = centroids.len() / dim;
    nearest_cells(sample, dim, centroids, nearest);
    let mut sums = vec![0f64; cells * dim];
    let mut counts = vec![0usize; cells];
    for (row, &c) in sample.chunks_exact(dim).zip(nearest.iter()) {
        let c = c as usize;
        counts[c] += 1;
        for (s, &v) in sums[c * dim..(c + 1) * dim].iter_mut().zip(row) {
            *s += v as f64;
        }
    }
    for (c, &count) in counts.iter().enumerate() {
        if count > 0 {
            for (x, s) in centroids[c * dim..(c + 1) * dim]
                .iter_mut()
                .zip(&sums[c * dim..(c + 1) * dim])
            {
                *x = (s / count as f64) as f32;
            }
            let c = &mut centroids[c * dim..(c + 1) * dim];
            let norm = c.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                c.iter_mut().for_each(|x| *x /= norm);
            }
        }
    }
}

/// The nearest centroid of each `dim`-float row of `rows` (ties: the lower cell).
fn nearest_cells(rows: &[f32], dim: usize, centroids: &[f32], out: &mut [u32]) {
    let cells = centroids.len() / dim;
    let mut cn = Vec::new();
    squared_norms(centroids, dim, &mut cn);
    rows.par_chunks(TILE * dim)
        .zip(out.par_chunks_mut(TILE))
        .for_each_init(Vec::new, |dots, (tile, out)| {
            let m = tile.len() / dim;
            products(tile, m, centroids, cells, dim, dots);
            for (r, o) in out.iter_mut().enumerate() {
                let line = &dots[r * cells..(r + 1) * cells];
                let mut best = (f32::INFINITY, 0u32);
                for (c, (&d, &n2)) in line.iter().zip(&cn).enumerate() {
                    let v = n2 - 2.0 * d;
                    if v < best.0 {
                        best = (v, c as u32);
                    }
                }
                *o = best.1;
            }
        });
}

/// Each row's probes, `max_probes` slots per row, nearest first (the first is its home), unused
/// slots [`NONE`].
fn assign(
    rows: Rows,
    dim: usize,
    centroids: &[f32],
    params: &IvfParams,
    max_d2: f32,
    step: &(dyn Fn(usize) + Sync),
) -> Vec<u32> {
    let n = rows.count(dim);
    let cells = centroids.len() / dim;
    let p = params.max_probes;
    let mut cn = Vec::new();
    squared_norms(centroids, dim, &mut cn);
    // Distances between centroids, for the bound below.
    let mut apart = Vec::new();
    products(centroids, cells, centroids, cells, dim, &mut apart);
    for h in 0..cells {
        for j in 0..cells {
            let g = &mut apart[h * cells + j];
            *g = (cn[h] + cn[j] - 2.0 * *g).max(0.0).sqrt();
        }
    }
    let reach = 2.0 * max_d2.sqrt() * params.probe_ratio;
    let mut probes = vec![NONE; n * p];
    probes.par_chunks_mut(TILE * p).enumerate().for_each_init(
        || (Vec::new(), Vec::new(), Vec::new()),
        |(scratch, dots, near), (t, out)| {
            let start = t * TILE;
            let m = out.len() / p;
            let tile = rows.f32_rows(dim, start, m, scratch);
            products(tile, m, centroids, cells, dim, dots);
            for r in 0..m {
                // Squared distance less |x|^2, which is the same for every cell.
                let line = &mut dots[r * cells..(r + 1) * cells];
                for (d, &n2) in line.iter_mut().zip(&cn) {
                    *d = n2 - 2.0 * *d;
                }
                let (home, best) =
                    line.iter()
                        .enumerate()
                        .fold(
                            (0, f32::INFINITY),
                            |b, (c, &x)| if x < b.1 { (c, x) } else { b },
                        );
                // A face at distance e from one in cell j is at most 2 e |mu_home - mu_j| farther
                // (squared) from mu_j than from mu_home: cells within that bound may hold its
                // neighbours. Ranked by the share of the bound used; the home first.
                let bounds = &apart[home * cells..(home + 1) * cells];
                near.clear();
                near.push((f32::NEG_INFINITY, home as u32));
                for (c, (&score, &apart)) in line.iter().zip(bounds).enumerate() {
                    let (gap, bound) = (score - best, reach * apart);
                    if gap <= bound && c != home {
                        near.push((gap / bound.max(f32::MIN_POSITIVE), c as u32));
                    }
                }
                // The `p` best, in order (on synthetic data most cells are within the bound).
                let order =
                    |x: &(f32, u32), y: &(f32, u32)| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1));
                if near.len() > p {
                    near.select_nth_unstable_by(p - 1, order);
                    near.truncate(p);
                }
                near.sort_by(order);
                for (slot, &(_, c)) in out[r * p..(r + 1) * p].iter_mut().zip(near.iter()) {
                    *slot = c;
                }
            }
            step(m);
        },
    );
    probes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::synthetic::{DIM, People};

    #[test]
    fn lists_group_rows_by_cell_in_order() {
        let homes = [2u32, 0, 2, 1, 0];
        let l = Lists::build(3, 5, |i, add| add(homes[i]));
        assert_eq!(l.of(0), &[1, 4]);
        assert_eq!(l.of(1), &[3]);
        assert_eq!(l.of(2), &[0, 2]);
    }

    #[test]
    fn every_edge_is_exact_and_few_are_missed() {
        let people = People::new(4000, 3);
        let rows = people.rows_f32();
        let max_d2 = 0.64f32 * 0.64;
        let exact = crate::graph::product::edges(Rows::F32(&rows), DIM, max_d2);
        let (approx, stats) = edges(
            Rows::F32(&rows),
            DIM,
            max_d2,
            &IvfParams::default(),
            &|_, _| {},
        );
        assert!(exact.len() > 10_000, "{} edges", exact.len());
        // A subset of the exact edges, each with the same bits.
        let mut k = 0;
        for e in &approx {
            while k < exact.len() && (exact[k].i, exact[k].j) < (e.i, e.j) {
                k += 1;
            }
            assert_eq!(exact.get(k), Some(e), "not an exact edge");
        }
        let recall = approx.len() as f64 / exact.len() as f64;
        assert!(recall >= 0.999, "recall {recall} ({stats:?})");
        assert!(stats.pair_share < 0.5, "{stats:?}");
    }
}
