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
//!    neighbours) the cap decides. Steps 1 and 2 make the [`Partition`].
//! 3. Each cell compares its home faces with each other and with the faces that probe it, in gemm
//!    tiles ([`super::product::close_pairs`]), with the exact recheck of every candidate
//!    ([`search`]).
//! 4. Two hops: a face with few neighbours is measured against its neighbours' neighbours; pairs
//!    of small groups that sit in no one cell are found there ([`two_hop`]).
//!
//! So every edge returned is an edge of the exact graph with the exact graph's `d2` (bit for
//! bit); an edge is missed only when neither face probes the other's home and no short path joins
//! them. A pair found from both sides is kept once (from the lower-numbered cell), so the cells
//! can be searched apart (by several machines: [`super::parts`]) and their edges put together.
//! Deterministic for a given input and seed: the sample, the k-means sums and the set of edges do
//! not depend on thread timing or on the order a source reads its rows in (the order the edges
//! reach a sink does).
//!
//! Rows come from a [`RowSource`]. In memory, cells read their rows in place. A source that
//! streams (the store's vector file, 8 bits a component) is read once per group of cells: the
//! rows of the group's cells (each face once per cell it is home to or probes) are copied into a
//! buffer of bounded size, the group's cells are searched at the distance widened by the rows'
//! rounding, and every pair found is measured again with its exact rows. Memory, beyond the
//! source: the probes of each face (2 bytes x `max_probes`), one group's rows, per-thread tiles,
//! a sample for k-means and a few chunks of edges on their way to the sink; never all the rows,
//! and never all of a group's edges (a cell of one person's thousand copies has millions).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use rayon::prelude::*;

use super::int8::{self, Q8};
use super::product::{Block, Scratch, TILE, close_pairs, products};
use super::quantised::{self, QuantisedRows};
use super::random::SplitMix;
use super::rows::{Rows, squared_norms};
use super::source::{Control, GraphError, InMemory, RowSource};
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

/// The most cells a partition has (a probe is a `u16`).
pub const MAX_CELLS: usize = u16::MAX as usize - 1;

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
    /// The same steps in CPU time of the whole process (user and system, all threads): what a
    /// machine shared with other work does not inflate.
    pub kmeans_cpu_seconds: f64,
    pub assign_cpu_seconds: f64,
    pub search_cpu_seconds: f64,
    /// Groups of cells searched one after another (1 when the rows are in memory), and the
    /// rows copied into their buffers (a face once per cell it belongs to or probes).
    pub groups: usize,
    pub group_rows: usize,
    /// Pairs measured again with their exact rows (the rows searched were rounded), and the
    /// exact rows read for that.
    pub rechecked: usize,
    pub exact_rows: usize,
    /// Edges added by the two-hop pass.
    pub two_hop_edges: usize,
    pub two_hop_seconds: f64,
}

/// Pairs `i < j` closer than `max_d2` (squared), found through the partition; canonical order.
/// The rows are in memory; [`Partition::build`], [`search`] and [`two_hop`] do the same over
/// any [`RowSource`].
pub fn edges(
    rows: Rows,
    dim: usize,
    max_d2: f32,
    params: &IvfParams,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> (Vec<Edge>, IvfStats) {
    assert!(dim.is_multiple_of(super::LANES) && rows.values().is_multiple_of(dim));
    let source = InMemory { rows, dim };
    let ctl = Control {
        progress,
        ..Control::quiet()
    };
    let mut stats = IvfStats::default();
    let mut out = Vec::new();
    let found = (|| -> Result<(), GraphError> {
        let part = Partition::build(&source, max_d2, params, &ctl, &mut stats)?;
        search(
            &source,
            &part,
            max_d2,
            &part.all_cells(),
            usize::MAX,
            &mut |edges| {
                out.extend_from_slice(edges);
                Ok(())
            },
            &ctl,
            &mut stats,
        )
    })();
    // Rows in memory are never unreadable, and nobody asks this search to stop.
    found.expect("an in-memory search cannot fail");
    sort_edges(&mut out);
    if params.refine_degree > 0 {
        let started = Instant::now();
        let degree = degrees(rows.count(dim), out.iter().map(|e| (e.i, e.j)));
        let lists = low_degree_lists(&degree, params.refine_degree, &mut |each| {
            for e in &out {
                each(e.i, e.j);
            }
            Ok(())
        })
        .expect("in memory");
        let added = two_hop(&source, &lists, max_d2, &ctl).expect("in memory");
        stats.two_hop_edges = added.len();
        if !added.is_empty() {
            out.extend(added);
            sort_edges(&mut out);
        }
        stats.two_hop_seconds = started.elapsed().as_secs_f64();
    }
    (out, stats)
}

/// Marks unused probe slots.
pub const NONE: u16 = u16::MAX;

/// The cells and, for every row, the cells it probes (its home first).
pub struct Partition {
    dim: usize,
    centroids: Vec<f32>,
    /// Slots per row.
    p: usize,
    /// `p` per row, nearest first, unused slots [`NONE`].
    probes: Vec<u16>,
}

impl Partition {
    /// k-means on a sample of the rows, then every row's probes (one pass over the source).
    /// Progress: rows assigned, of `2 n` (the search counts the other half).
    pub fn build(
        source: &dyn RowSource,
        max_d2: f32,
        params: &IvfParams,
        ctl: &Control,
        stats: &mut IvfStats,
    ) -> Result<Partition, GraphError> {
        assert!(params.max_probes >= 1);
        let (n, dim) = (source.len(), source.dim());
        let cells = if params.cells == 0 {
            IvfParams::cells_for(n)
        } else {
            params.cells.min(n)
        }
        .clamp(1, MAX_CELLS);
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let (centroids, sample) = kmeans(source, cells, params, ctl)?;
        stats.sample = sample;
        stats.kmeans_seconds = started.elapsed().as_secs_f64();
        stats.kmeans_cpu_seconds = cpu_seconds() - cpu;
        let (started, cpu) = (Instant::now(), cpu_seconds());
        let probes = assign(source, &centroids, params, max_d2, ctl)?;
        stats.assign_seconds = started.elapsed().as_secs_f64();
        stats.assign_cpu_seconds = cpu_seconds() - cpu;
        let part = Partition {
            dim,
            centroids,
            p: params.max_probes,
            probes,
        };
        part.describe(stats);
        Ok(part)
    }

    /// The partition's figures into `stats`: cells, mean probes, largest cell, pair share.
    pub fn describe(&self, stats: &mut IvfStats) {
        let n = self.len();
        let (members, visitors) = self.counts();
        stats.cells = self.cells();
        stats.mean_probes = 1.0 + visitors.iter().sum::<usize>() as f64 / n.max(1) as f64;
        stats.largest_cell = members.iter().copied().max().unwrap_or(0);
        let pairs = (0..self.cells())
            .map(|c| cost(members[c], visitors[c]))
            .sum::<usize>();
        stats.pair_share = pairs as f64 / (n as f64 * (n.max(2) - 1) as f64 / 2.0);
    }

    /// The partition as bytes, to be read back by [`Partition::read`]: `dim`, cells, probe slots
    /// and rows (little-endian `u32`, `u32`, `u32`, `u64`), the centroids (`f32`), the probes
    /// (`u16`).
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(&(self.dim as u32).to_le_bytes())?;
        out.write_all(&(self.cells() as u32).to_le_bytes())?;
        out.write_all(&(self.p as u32).to_le_bytes())?;
        out.write_all(&(self.len() as u64).to_le_bytes())?;
        let mut bytes = Vec::with_capacity(1 << 16);
        for chunk in self.centroids.chunks(1 << 14) {
            bytes.clear();
            bytes.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            out.write_all(&bytes)?;
        }
        for chunk in self.probes.chunks(1 << 15) {
            bytes.clear();
            bytes.extend(chunk.iter().flat_map(|v| v.to_le_bytes()));
            out.write_all(&bytes)?;
        }
        Ok(())
    }

    /// A partition [`Partition::write`] wrote, for `rows` rows of `dim`; `Ok(None)` when it is
    /// of another shape or holds a probe outside its cells.
    pub fn read(input: &mut dyn Read, rows: usize, dim: usize) -> std::io::Result<Option<Self>> {
        let mut head = [0u8; 20];
        input.read_exact(&mut head)?;
        let word = |k: usize| u32::from_le_bytes(head[k..k + 4].try_into().expect("4 bytes"));
        let (d, cells, p) = (word(0) as usize, word(4) as usize, word(8) as usize);
        let n = u64::from_le_bytes(head[12..].try_into().expect("8 bytes"));
        if d != dim || n != rows as u64 || p == 0 || p > MAX_CELLS || cells > MAX_CELLS {
            return Ok(None);
        }
        let centroids = read_values(input, cells * dim, f32::from_le_bytes)?;
        let probes = read_values(input, rows * p, u16::from_le_bytes)?;
        if probes.iter().any(|&c| c != NONE && c as usize >= cells) {
            return Ok(None);
        }
        Ok(Some(Partition {
            dim,
            centroids,
            p,
            probes,
        }))
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.probes.len() / self.p
    }

    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }

    pub fn cells(&self) -> usize {
        self.centroids.len() / self.dim
    }

    /// The cells' centres, `cells x dim`.
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// Row `i`'s home cell.
    pub fn home_of(&self, i: usize) -> usize {
        self.home(i) as usize
    }

    /// Every cell, in order.
    pub fn all_cells(&self) -> Vec<u32> {
        (0..self.cells() as u32).collect()
    }

    fn home(&self, i: usize) -> u16 {
        self.probes[i * self.p]
    }

    fn probes_of(&self, i: usize) -> impl Iterator<Item = &u16> {
        self.probes[i * self.p..(i + 1) * self.p]
            .iter()
            .take_while(|&&c| c != NONE)
    }

    /// Faces at home in each cell, and faces probing it from another.
    fn counts(&self) -> (Vec<usize>, Vec<usize>) {
        let (mut members, mut visitors) = (vec![0usize; self.cells()], vec![0usize; self.cells()]);
        for i in 0..self.len() {
            let mut probes = self.probes_of(i);
            if let Some(&h) = probes.next() {
                members[h as usize] += 1;
            }
            for &c in probes {
                visitors[c as usize] += 1;
            }
        }
        (members, visitors)
    }

    /// What searching each cell costs: its pairs of home faces, and home faces times visitors.
    pub fn costs(&self) -> Vec<usize> {
        let (members, visitors) = self.counts();
        members
            .iter()
            .zip(&visitors)
            .map(|(&m, &v)| cost(m, v))
            .collect()
    }
}

/// `count` little-endian values of `N` bytes each, read a block at a time (memory taken as they
/// come: a damaged count runs into the end of the input, not into an allocation of its size).
fn read_values<T, const N: usize>(
    input: &mut dyn Read,
    count: usize,
    from: fn([u8; N]) -> T,
) -> std::io::Result<Vec<T>> {
    let mut bytes = vec![0u8; 1 << 16];
    let mut out = Vec::with_capacity(count.min(1 << 20));
    while out.len() < count {
        let take = (count - out.len()).min(bytes.len() / N);
        input.read_exact(&mut bytes[..take * N])?;
        out.extend(
            bytes[..take * N]
                .chunks_exact(N)
                .map(|b| from(b.try_into().expect("N bytes"))),
        );
    }
    Ok(out)
}

fn cost(members: usize, visitors: usize) -> usize {
    members * members.saturating_sub(1) / 2 + members * visitors
}

/// The home faces and the visitors of some cells (numbered `0..` in the order given), each list
/// ascending.
struct CellLists {
    members: Lists,
    visitors: Lists,
}

impl CellLists {
    fn of(part: &Partition, cells: &[u32]) -> Self {
        let mut local = vec![u32::MAX; part.cells()];
        for (k, &c) in cells.iter().enumerate() {
            local[c as usize] = k as u32;
        }
        let n = part.len();
        let members = Lists::build(cells.len(), n, |i, add| {
            let l = local[part.home(i) as usize];
            if l != u32::MAX {
                add(l)
            }
        });
        let visitors = Lists::build(cells.len(), n, |i, add| {
            for &c in part.probes_of(i).skip(1) {
                let l = local[c as usize];
                if l != u32::MAX {
                    add(l)
                }
            }
        });
        CellLists { members, visitors }
    }
}

/// Where the rows of a group's cells are read: in place, or from the group's buffer, where cell
/// `k` holds its home rows then its visitors from `start[k]`.
enum GroupRows<'a> {
    InPlace(Rows<'a>),
    Buffer {
        rows: &'a QuantisedRows,
        start: &'a [usize],
    },
}

impl<'a> GroupRows<'a> {
    /// Cell `k`'s home rows (`members`).
    fn members<'s>(
        &self,
        k: usize,
        members: &[u32],
        dim: usize,
        scratch: &'s mut Scratch,
    ) -> Block<'s>
    where
        'a: 's,
    {
        match self {
            GroupRows::InPlace(rows) => scratch.gather(*rows, dim, members),
            GroupRows::Buffer { rows, start } => {
                scratch.load(rows.rows(), dim, start[k], members.len())
            }
        }
    }

    /// Cell `k`'s visitors `from..from + tile.len()` (`tile`).
    fn visitors<'s>(
        &self,
        k: usize,
        members: usize,
        from: usize,
        tile: &[u32],
        dim: usize,
        scratch: &'s mut Scratch,
    ) -> Block<'s>
    where
        'a: 's,
    {
        match self {
            GroupRows::InPlace(rows) => scratch.gather(*rows, dim, tile),
            GroupRows::Buffer { rows, start } => {
                scratch.load(rows.rows(), dim, start[k] + members + from, tile.len())
            }
        }
    }
}

/// Search `cells` of the partition (all of them, or one part's) for the pairs closer than
/// `max_d2`, handing them to `sink` as they are found, a chunk of at most [`FLUSH`] at a time (in
/// no set order; each pair of the whole graph comes from exactly one cell). The sink is called on
/// this thread while the pool searches, so `search` is not to be called from the pool itself.
/// Rows in memory are read in place; a source that streams is read once per group of cells
/// whose rows fit in `memory` bytes. Progress: home rows
/// searched, after the `n` rows [`Partition::build`] assigned, of `2 n`.
#[allow(clippy::too_many_arguments)]
pub fn search(
    source: &dyn RowSource,
    part: &Partition,
    max_d2: f32,
    cells: &[u32],
    memory: usize,
    sink: &mut dyn FnMut(&[Edge]) -> Result<(), GraphError>,
    ctl: &Control,
    stats: &mut IvfStats,
) -> Result<(), GraphError> {
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let (n, dim) = (part.len(), part.dim);
    let (members, visitors) = part.counts();
    // Largest cells first, so no thread is left with a big one at the end.
    let mut order = cells.to_vec();
    order.sort_by_key(|&c| {
        let c = c as usize;
        (std::cmp::Reverse(cost(members[c], visitors[c])), c)
    });
    let done = AtomicUsize::new(n);
    let step = |k: usize| (ctl.progress)(done.fetch_add(k, Ordering::Relaxed) + k, 2 * n);
    let in_memory = source.in_memory();
    // Groups of cells whose rows fit in the buffer (one group for rows in memory).
    let row_bytes = dim + 4;
    let per_group = if in_memory.is_some() {
        usize::MAX
    } else {
        (memory / row_bytes).max(1)
    };
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut rows_in = 0usize;
    for &c in &order {
        let rows = members[c as usize] + visitors[c as usize];
        if groups.is_empty() || (rows_in > 0 && rows_in.saturating_add(rows) > per_group) {
            groups.push(Vec::new());
            rows_in = 0;
        }
        groups.last_mut().expect("a group").push(c);
        rows_in += rows;
    }
    let mut buffer = QuantisedRows::new(dim);
    for group in &groups {
        ctl.check()?;
        stats.groups += 1;
        let lists = CellLists::of(part, group);
        let (start, margin) = match in_memory {
            Some(_) => (Vec::new(), 0.0),
            None => {
                let filled = fill(source, &lists, &mut buffer, ctl)?;
                stats.group_rows += buffer.len();
                filled
            }
        };
        let rows = match in_memory {
            Some(rows) => GroupRows::InPlace(rows),
            None => GroupRows::Buffer {
                rows: &buffer,
                start: &start,
            },
        };
        // Pairs within the distance widened by the rounding of both rows, measured again exactly.
        let wide = (max_d2.sqrt() + 2.0 * margin).powi(2);
        let rechecked = AtomicUsize::new(0);
        let exact_rows = AtomicUsize::new(0);
        // The cells are searched on the pool while this thread hands their edges to the sink as
        // they come, through a channel of a few chunks: however many edges a cell has, memory
        // holds at most [`FLUSH`] of them a thread and the chunks in the channel.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Edge>>(2);
        let cell = Cell {
            source,
            part,
            group,
            lists: &lists,
            rows: &rows,
            dim,
            max_d2,
            wide,
            margin,
            rechecked: &rechecked,
            exact_rows: &exact_rows,
            ctl,
            step: &step,
        };
        std::thread::scope(|scope| -> Result<(), GraphError> {
            let cell = &cell;
            let searched = scope.spawn(move || {
                (0..group.len()).into_par_iter().try_for_each_init(
                    || (CellScratch::default(), tx.clone()),
                    |(scratch, tx), k| cell.search(k, scratch, tx),
                )
            });
            let mut failed = None;
            for edges in rx.iter() {
                if let Err(e) = sink(&edges) {
                    failed = Some(e);
                    break;
                }
            }
            // A failed sink stops the search: the workers' next hand-over finds no receiver.
            drop(rx);
            let searched = searched.join().expect("the search thread does not panic");
            failed.map_or(searched, Err)
        })?;
        stats.rechecked += rechecked.into_inner();
        stats.exact_rows += exact_rows.into_inner();
    }
    stats.search_seconds += started.elapsed().as_secs_f64();
    stats.search_cpu_seconds += cpu_seconds() - cpu;
    Ok(())
}

/// CPU time this process has used so far (user and system, every thread), seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given, for this process.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Edges a thread holds before it hands them over: 12 MiB.
const FLUSH: usize = 1 << 20;

/// What every cell of a group is searched with.
struct Cell<'a> {
    source: &'a dyn RowSource,
    part: &'a Partition,
    group: &'a [u32],
    lists: &'a CellLists,
    rows: &'a GroupRows<'a>,
    dim: usize,
    max_d2: f32,
    /// `max_d2` widened by the rounding of the rows searched.
    wide: f32,
    margin: f32,
    rechecked: &'a AtomicUsize,
    exact_rows: &'a AtomicUsize,
    ctl: &'a Control<'a>,
    step: &'a (dyn Fn(usize) + Sync),
}

impl Cell<'_> {
    /// Search the group's cell `k`, handing its edges to `tx` [`FLUSH`] at most at a time.
    fn search(
        &self,
        k: usize,
        scratch: &mut CellScratch,
        tx: &SyncSender<Vec<Edge>>,
    ) -> Result<(), GraphError> {
        if self.ctl.stop.load(Ordering::Relaxed) {
            return Err(GraphError::Stopped);
        }
        let (part, dim, wide) = (self.part, self.dim, self.wide);
        let c = self.group[k];
        let home_rows = self.lists.members.of(k);
        if home_rows.is_empty() {
            return Ok(());
        }
        let guests = self.lists.visitors.of(k);
        let CellScratch {
            members: sm,
            visitors: sv,
            dots,
            int8: q8,
            exact,
        } = scratch;
        let mut out = CellOut {
            cell: self,
            found: Vec::new(),
            exact,
            tx,
            failed: None,
        };
        // A visitor-member pair also found from the visitor's home cell (when the member probes
        // it) is kept from the lower-numbered cell only.
        let visit = |out: &mut CellOut, visitor: u32, member: u32, d2: f32| {
            let visitor_home = part.home(visitor as usize);
            let twice = part.probes_of(member as usize).any(|&x| x == visitor_home);
            if !twice || (c as u16) < visitor_home {
                out.push(edge(visitor, member, d2));
            }
        };
        match self.rows {
            GroupRows::InPlace(_) => {
                let m = self.rows.members(k, home_rows, dim, sm);
                close_pairs(m, m, dim, wide, true, dots, &mut |r, s, d2| {
                    out.push(edge(home_rows[r], home_rows[s], d2))
                });
                for (t, tile) in guests.chunks(TILE).enumerate() {
                    let v = self
                        .rows
                        .visitors(k, home_rows.len(), t * TILE, tile, dim, sv);
                    close_pairs(v, m, dim, wide, false, dots, &mut |r, s, d2| {
                        visit(&mut out, tile[r], home_rows[s], d2)
                    });
                }
            }
            GroupRows::Buffer {
                rows: buffer,
                start,
            } => {
                // 8-bit rows: integer products.
                let view = |from: usize, count: usize| Q8 {
                    steps: &buffer.steps[from..from + count],
                    values: &buffer.values[from * dim..(from + count) * dim],
                };
                let m = view(start[k], home_rows.len());
                let v = view(start[k] + home_rows.len(), guests.len());
                int8::close_pairs(m, m, dim, wide, true, q8, &mut |r, s, d2| {
                    out.push(edge(home_rows[r], home_rows[s], d2))
                });
                int8::close_pairs(v, m, dim, wide, false, q8, &mut |r, s, d2| {
                    visit(&mut out, guests[r], home_rows[s], d2)
                });
            }
        }
        out.flush()?;
        (self.step)(home_rows.len());
        Ok(())
    }
}

/// A cell's edges on their way out: measured again exactly (rows searched rounded) and handed
/// over a chunk at a time.
struct CellOut<'a, 's> {
    cell: &'a Cell<'a>,
    found: Vec<Edge>,
    exact: &'s mut Vec<f32>,
    tx: &'s SyncSender<Vec<Edge>>,
    /// The first failure; later edges are dropped.
    failed: Option<GraphError>,
}

impl CellOut<'_, '_> {
    fn push(&mut self, e: Edge) {
        if self.failed.is_some() {
            return;
        }
        self.found.push(e);
        if self.found.len() >= FLUSH
            && let Err(e) = self.hand_over()
        {
            self.failed = Some(e);
        }
    }

    fn hand_over(&mut self) -> Result<(), GraphError> {
        self.cell.ctl.check()?;
        let cell = self.cell;
        if cell.margin > 0.0 && !self.found.is_empty() {
            cell.rechecked
                .fetch_add(self.found.len(), Ordering::Relaxed);
            let read = recheck(cell.source, &mut self.found, cell.max_d2, self.exact)?;
            cell.exact_rows.fetch_add(read, Ordering::Relaxed);
        }
        if !self.found.is_empty() {
            // No receiver: the sink failed, and the search stops.
            self.tx
                .send(std::mem::take(&mut self.found))
                .map_err(|_| GraphError::Stopped)?;
        }
        Ok(())
    }

    /// The rest of the cell's edges, or its first failure.
    fn flush(mut self) -> Result<(), GraphError> {
        match self.failed.take() {
            Some(e) => Err(e),
            None => self.hand_over(),
        }
    }
}

/// What one thread keeps from cell to cell.
#[derive(Default)]
struct CellScratch {
    members: Scratch,
    visitors: Scratch,
    dots: Vec<f32>,
    int8: int8::Scratch,
    exact: Vec<f32>,
}

/// Keep the pairs of `found` (measured on rounded rows) that the exact rows put within `max_d2`,
/// with their exact `d2`; returns the exact rows read.
fn recheck(
    source: &dyn RowSource,
    found: &mut Vec<Edge>,
    max_d2: f32,
    exact: &mut Vec<f32>,
) -> Result<usize, GraphError> {
    let dim = source.dim();
    let mut faces: Vec<u32> = found.iter().flat_map(|e| [e.i, e.j]).collect();
    faces.sort_unstable();
    faces.dedup();
    source.exact(&faces, exact)?;
    let row = |i: u32| {
        let k = faces.binary_search(&i).expect("a face of a pair");
        &exact[k * dim..(k + 1) * dim]
    };
    found.retain_mut(|e| {
        e.d2 = super::cpu::squared_distance(row(e.i), row(e.j));
        e.d2 < max_d2
    });
    Ok(faces.len())
}

/// Copy the rows of the group's cells into `buffer` (cell `k`'s home rows then its visitors,
/// from `start[k]`) in one pass over the source; the starts, and how far a buffered row may lie
/// from its exact row.
fn fill(
    source: &dyn RowSource,
    lists: &CellLists,
    buffer: &mut QuantisedRows,
    ctl: &Control,
) -> Result<(Vec<usize>, f32), GraphError> {
    let (n, dim) = (source.len(), source.dim());
    let cells = lists.members.offsets.len() - 1;
    let mut total = 0;
    let start: Vec<usize> = (0..cells)
        .map(|k| {
            let at = total;
            total += lists.members.of(k).len() + lists.visitors.of(k).len();
            at
        })
        .collect();
    // The slots of each face (a counting sort by face).
    let slots = Lists::build_pairs_directed(n, |add| {
        for (k, &first) in start.iter().enumerate() {
            let (m, v) = (lists.members.of(k), lists.visitors.of(k));
            for (s, &i) in m.iter().chain(v).enumerate() {
                add(i, (first + s) as u32);
            }
        }
    });
    buffer.clear();
    buffer.steps.resize(total, 0.0);
    buffer.values.resize(total * dim, 0);
    let mut requantised = 0f32;
    let mut row = vec![0f32; dim];
    let mut rounded = vec![0i8; dim];
    source.scan(&mut |indices, rows| {
        ctl.check()?;
        for (r, &i) in indices.iter().enumerate() {
            let to = slots.of(i as usize);
            if to.is_empty() {
                continue;
            }
            let (step, values): (f32, &[i8]) = match rows {
                Rows::Q8 { steps, values } => (steps[r], &values[r * dim..(r + 1) * dim]),
                other => {
                    // Exact rows from a source that streams: rounded here.
                    other.copy_to(dim, r, &mut row);
                    let s = quantised::quantise(&row, &mut rounded);
                    requantised = requantised.max(s);
                    (s, &rounded)
                }
            };
            for &slot in to {
                let slot = slot as usize;
                buffer.steps[slot] = step;
                buffer.values[slot * dim..(slot + 1) * dim].copy_from_slice(values);
            }
        }
        Ok(())
    })?;
    let margin = source.margin()
        + if requantised > 0.0 {
            quantised::margin(dim, requantised)
        } else {
            0.0
        };
    Ok((start, margin))
}

fn edge(a: u32, b: u32, d2: f32) -> Edge {
    Edge {
        i: a.min(b),
        j: a.max(b),
        d2,
    }
}

/// Each row's degree in these undirected pairs.
pub fn degrees(n: usize, pairs: impl Iterator<Item = (u32, u32)>) -> Vec<u32> {
    let mut degree = vec![0u32; n];
    for (i, j) in pairs {
        degree[i as usize] += 1;
        degree[j as usize] += 1;
    }
    degree
}

/// Pairs handed over one at a time: a call hands every pair `(i, j)` to `each`.
pub type EachPair<'a> = dyn FnMut(&mut dyn FnMut(u32, u32)) -> Result<(), GraphError> + 'a;

/// The neighbour lists of the faces with 1 to `max_degree` neighbours, through such faces only:
/// what [`two_hop`] walks. `pairs(each)` calls `each(i, j)` for every pair, and is called twice.
pub fn low_degree_lists(
    degree: &[u32],
    max_degree: usize,
    pairs: &mut EachPair,
) -> Result<Lists, GraphError> {
    let low = |i: u32| (1..=max_degree as u32).contains(&degree[i as usize]);
    let n = degree.len();
    let mut counts = vec![0usize; n + 1];
    pairs(&mut |i, j| {
        if low(i) && low(j) {
            counts[i as usize + 1] += 1;
            counts[j as usize + 1] += 1;
        }
    })?;
    for k in 0..n {
        counts[k + 1] += counts[k];
    }
    let mut fill = counts.clone();
    let mut items = vec![0u32; counts[n]];
    pairs(&mut |i, j| {
        if low(i) && low(j) {
            for (from, to) in [(i, j), (j, i)] {
                items[fill[from as usize]] = to;
                fill[from as usize] += 1;
            }
        }
    })?;
    drop(fill);
    let mut lists = Lists {
        offsets: counts,
        items,
    };
    // Ascending, whatever order the pairs came in.
    lists.sort_each();
    Ok(lists)
}

/// Edges between faces two hops apart that the partition missed: for each face of `lists` (the
/// faces with few neighbours, [`low_degree_lists`]), every neighbour's neighbour that is not yet
/// its neighbour is measured exactly. The faces the partition misses pairs of are those of small
/// groups far from every centroid, whose pairs sit in no one cell; when a group of three or more
/// has most of its pairs found, the rest are two hops away. Large groups are left out: their
/// pairs share a cell and are found there, and their degree would make this quadratic.
/// Canonical order.
pub fn two_hop(
    source: &dyn RowSource,
    lists: &Lists,
    max_d2: f32,
    ctl: &Control,
) -> Result<Vec<Edge>, GraphError> {
    let n = lists.offsets.len() - 1;
    let dim = source.dim();
    let found: Result<Vec<Vec<Edge>>, GraphError> = (0..n as u32)
        .into_par_iter()
        .filter(|&a| !lists.of(a as usize).is_empty())
        .map_init(
            || (Vec::new(), Vec::new()),
            |(candidates, rows), a| {
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
                    return Ok(out);
                }
                ctl.check()?;
                candidates.push(a);
                source.exact(candidates, rows)?;
                candidates.pop();
                let ra = &rows[candidates.len() * dim..];
                for (k, &b) in candidates.iter().enumerate() {
                    let d2 = super::cpu::squared_distance(ra, &rows[k * dim..(k + 1) * dim]);
                    if d2 < max_d2 {
                        out.push(edge(a, b, d2));
                    }
                }
                Ok(out)
            },
        )
        .collect();
    // Only the low-degree lists were searched, and a pair's two ends see each other's
    // neighbours alike: each new pair came from its lower end alone.
    let mut found: Vec<Edge> = found?.into_iter().flatten().collect();
    sort_edges(&mut found);
    Ok(found)
}

/// Items grouped by key, each group ascending: `items[offsets[c]..offsets[c + 1]]`.
pub struct Lists {
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

    /// `(key, item)` pairs as lists by key (keys below `n`), each in the order they come;
    /// `pairs(add)` calls `add(key, item)` for each, and is called twice.
    fn build_pairs_directed(n: usize, pairs: impl Fn(&mut dyn FnMut(u32, u32))) -> Self {
        let mut counts = vec![0usize; n + 1];
        pairs(&mut |key, _| counts[key as usize + 1] += 1);
        for k in 0..n {
            counts[k + 1] += counts[k];
        }
        let mut fill = counts.clone();
        let mut items = vec![0u32; counts[n]];
        pairs(&mut |key, item| {
            items[fill[key as usize]] = item;
            fill[key as usize] += 1;
        });
        Lists {
            offsets: counts,
            items,
        }
    }

    fn sort_each(&mut self) {
        for k in 0..self.offsets.len() - 1 {
            self.items[self.offsets[k]..self.offsets[k + 1]].sort_unstable();
        }
    }

    fn of(&self, c: usize) -> &[u32] {
        &self.items[self.offsets[c]..self.offsets[c + 1]]
    }
}

/// At most `cells` centroids (`cells x dim`, f32) from Lloyd's iterations on a seeded sample, and
/// the sample's size. The first centroids are distinct sample rows.
fn kmeans(
    source: &dyn RowSource,
    cells: usize,
    params: &IvfParams,
    ctl: &Control,
) -> Result<(Vec<f32>, usize), GraphError> {
    let (n, dim) = (source.len(), source.dim());
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
    gather(source, &index, &mut sample, ctl)?;
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
    Ok((centroids, size))
}

/// The rows at `indices` (no repeats), as f32 in that order, into `out`: copied from memory, or
/// picked out of one pass over the source.
fn gather(
    source: &dyn RowSource,
    indices: &[u32],
    out: &mut [f32],
    ctl: &Control,
) -> Result<(), GraphError> {
    let dim = source.dim();
    if let Some(rows) = source.in_memory() {
        rows.gather(dim, indices, out);
        return Ok(());
    }
    let mut at: Vec<(u32, u32)> = indices
        .iter()
        .enumerate()
        .map(|(k, &i)| (i, k as u32))
        .collect();
    at.sort_unstable();
    source.scan(&mut |ids, rows| {
        ctl.check()?;
        for (r, &i) in ids.iter().enumerate() {
            if let Ok(p) = at.binary_search_by_key(&i, |x| x.0) {
                let k = at[p].1 as usize;
                rows.copy_to(dim, r, &mut out[k * dim..(k + 1) * dim]);
            }
        }
        Ok(())
    })
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
pub fn nearest_cells(rows: &[f32], dim: usize, centroids: &[f32], out: &mut [u32]) {
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
/// slots [`NONE`]; one pass over the source.
fn assign(
    source: &dyn RowSource,
    centroids: &[f32],
    params: &IvfParams,
    max_d2: f32,
    ctl: &Control,
) -> Result<Vec<u16>, GraphError> {
    let (n, dim) = (source.len(), source.dim());
    let cells = centroids.len() / dim;
    let p = params.max_probes;
    let (cn, apart) = cell_distances(centroids, dim);
    let reach = 2.0 * max_d2.sqrt() * params.probe_ratio;
    // 8-bit rows meet 8-bit centroids in integer products (the probes are a heuristic: the
    // rounding moves a product by a few thousandths at most).
    let mut rounded = QuantisedRows::new(dim);
    for c in centroids.chunks_exact(dim) {
        rounded.push_f32(c);
    }
    let mut panels = int8::Panels::default();
    panels.pack(&rounded.values, cells, dim);
    let mut rounded_cn = Vec::new();
    squared_norms(
        &{
            let mut back = vec![0f32; cells * dim];
            rounded.rows().copy_to(dim, 0, &mut back);
            back
        },
        dim,
        &mut rounded_cn,
    );
    let mut probes = vec![NONE; n * p];
    let mut assigned = 0;
    source.scan(&mut |ids, rows| {
        ctl.check()?;
        let m = ids.len();
        let tiles: Vec<Vec<u16>> = (0..m.div_ceil(TILE))
            .into_par_iter()
            .map_init(
                || (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new()),
                |(scratch, dots, near, sums, whole), t| {
                    let start = t * TILE;
                    let count = TILE.min(m - start);
                    let norms = match rows.slice(dim, start, count) {
                        Rows::Q8 { steps, values } => {
                            int8::row_sums(values, dim, sums);
                            int8::products(values, count, sums, &panels, whole);
                            dots.clear();
                            for (r, &sa) in steps.iter().enumerate() {
                                let line = &whole[r * cells..(r + 1) * cells];
                                dots.extend(
                                    line.iter()
                                        .zip(&rounded.steps)
                                        .map(|(&d, &sc)| sa * sc * d as f32),
                                );
                            }
                            &rounded_cn
                        }
                        _ => {
                            let tile = rows.f32_rows(dim, start, count, scratch);
                            products(tile, count, centroids, cells, dim, dots);
                            &cn
                        }
                    };
                    let mut out = vec![NONE; count * p];
                    for r in 0..count {
                        probe(
                            &mut dots[r * cells..(r + 1) * cells],
                            norms,
                            &apart,
                            reach,
                            near,
                            &mut out[r * p..(r + 1) * p],
                        );
                    }
                    out
                },
            )
            .collect();
        for (t, out) in tiles.iter().enumerate() {
            for (r, slots) in out.chunks_exact(p).enumerate() {
                let i = ids[t * TILE + r] as usize;
                probes[i * p..(i + 1) * p].copy_from_slice(slots);
            }
        }
        assigned += m;
        (ctl.progress)(assigned, 2 * n);
        Ok(())
    })?;
    Ok(probes)
}

/// The centroids' squared norms, and the distance between every two centroids (`cells x cells`),
/// for the bound [`probe`] ranks cells by.
pub(super) fn cell_distances(centroids: &[f32], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let cells = centroids.len() / dim;
    let mut cn = Vec::new();
    squared_norms(centroids, dim, &mut cn);
    let mut apart = Vec::new();
    products(centroids, cells, centroids, cells, dim, &mut apart);
    for h in 0..cells {
        for j in 0..cells {
            let g = &mut apart[h * cells + j];
            *g = (cn[h] + cn[j] - 2.0 * *g).max(0.0).sqrt();
        }
    }
    (cn, apart)
}

/// The distance from centre `home` to every centre (`centroids`: `cells x dim`; `cn`: their
/// squared norms): one row of [`cell_distances`]'s `apart`.
pub fn home_distances(centroids: &[f32], cn: &[f32], dim: usize, home: usize) -> Vec<f32> {
    let h = &centroids[home * dim..(home + 1) * dim];
    centroids
        .chunks_exact(dim)
        .zip(cn)
        .map(|(c, &n2)| {
            let dot: f32 = c.iter().zip(h).map(|(a, b)| a * b).sum();
            (cn[home] + n2 - 2.0 * dot).max(0.0).sqrt()
        })
        .collect()
}

/// One row's probes into `out`, from `line`, its products with every centroid (overwritten):
/// its home (nearest centroid) first, then the cells within `reach` times the bound, closest
/// share first; unused slots [`NONE`].
pub(super) fn probe(
    line: &mut [f32],
    cn: &[f32],
    apart: &[f32],
    reach: f32,
    near: &mut Vec<(f32, u16)>,
    out: &mut [u16],
) {
    let cells = line.len();
    probe_by(
        line,
        cn,
        |home| &apart[home * cells..(home + 1) * cells],
        reach,
        near,
        out,
    );
}

/// [`probe`], with the home's distances to every centre (its row of `apart`) from `bounds_of`:
/// a query that probes a partition once need not hold every pair of centres
/// ([`home_distances`]).
pub fn probe_by<B: AsRef<[f32]>>(
    line: &mut [f32],
    cn: &[f32],
    bounds_of: impl FnOnce(usize) -> B,
    reach: f32,
    near: &mut Vec<(f32, u16)>,
    out: &mut [u16],
) {
    let p = out.len();
    // Squared distance less |x|^2, which is the same for every cell.
    for (d, &n2) in line.iter_mut().zip(cn) {
        *d = n2 - 2.0 * *d;
    }
    let (home, best) =
        line.iter().enumerate().fold(
            (0, f32::INFINITY),
            |b, (c, &x)| {
                if x < b.1 { (c, x) } else { b }
            },
        );
    // A face at distance e from one in cell j is at most 2 e |mu_home - mu_j| farther (squared)
    // from mu_j than from mu_home: cells within that bound may hold its neighbours. Ranked by the
    // share of the bound used; the home first.
    let bounds = bounds_of(home);
    let bounds = bounds.as_ref();
    // Each cell's share of the bound (infinite: beyond it), in one pass the compiler vectorises.
    for (x, &apart) in line.iter_mut().zip(bounds) {
        let (gap, bound) = (*x - best, reach * apart);
        *x = if gap <= bound {
            gap / bound.max(f32::MIN_POSITIVE)
        } else {
            f32::INFINITY
        };
    }
    line[home] = f32::INFINITY;
    // The `p - 1` smallest shares in order (ties: the lower cell), kept sorted as the cells go
    // by: after the first few, a cell costs one comparison (on synthetic data most cells are
    // within the bound).
    near.clear();
    let keep = p - 1;
    if keep > 0 {
        for (c, &r) in line.iter().enumerate() {
            let worst = if near.len() == keep {
                near[keep - 1].0
            } else {
                f32::INFINITY
            };
            if r < worst {
                if near.len() == keep {
                    near.pop();
                }
                let at = near.partition_point(|x| x.0 <= r);
                near.insert(at, (r, c as u16));
            }
        }
    }
    out[0] = home as u16;
    for (slot, &(_, c)) in out[1..].iter_mut().zip(near.iter()) {
        *slot = c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::synthetic::{DIM, People};
    use half::f16;

    #[test]
    fn lists_group_rows_by_cell_in_order() {
        let homes = [2u32, 0, 2, 1, 0];
        let l = Lists::build(3, 5, |i, add| add(homes[i]));
        assert_eq!(l.of(0), &[1, 4]);
        assert_eq!(l.of(1), &[3]);
        assert_eq!(l.of(2), &[0, 2]);
    }

    /// A subset of `exact`, each edge with the same bits; the share of `exact` found.
    fn recall_of(approx: &[Edge], exact: &[Edge]) -> f64 {
        let mut k = 0;
        for e in approx {
            while k < exact.len() && (exact[k].i, exact[k].j) < (e.i, e.j) {
                k += 1;
            }
            assert_eq!(exact.get(k), Some(e), "not an exact edge");
        }
        approx.len() as f64 / exact.len() as f64
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
        let recall = recall_of(&approx, &exact);
        assert!(recall >= 0.999, "recall {recall} ({stats:?})");
        assert!(stats.pair_share < 0.5, "{stats:?}");
    }

    /// Rows as a store streams them: 8-bit rows in a shuffled order, exact f16 rows on demand.
    struct Streamed {
        rounded: QuantisedRows,
        exact: Vec<f16>,
        /// The order rows are read in.
        order: Vec<u32>,
        exact_reads: AtomicUsize,
    }

    impl Streamed {
        fn new(people: &People) -> Self {
            let exact = people.rows_f16();
            let mut rounded = QuantisedRows::new(DIM);
            let mut row = vec![0f32; DIM];
            for i in 0..people.len() {
                Rows::F16(&exact).copy_to(DIM, i, &mut row);
                rounded.push_f32(&row);
            }
            // Read in an order of their own (as a file in id order holds faces in path order).
            let mut order: Vec<u32> = (0..people.len() as u32).collect();
            let mut rng = SplitMix::new(7, 1, 0);
            for k in (1..order.len()).rev() {
                order.swap(k, rng.below(k as u64 + 1) as usize);
            }
            Streamed {
                rounded,
                exact,
                order,
                exact_reads: AtomicUsize::new(0),
            }
        }
    }

    impl RowSource for Streamed {
        fn dim(&self) -> usize {
            DIM
        }

        fn len(&self) -> usize {
            self.order.len()
        }

        fn margin(&self) -> f32 {
            quantised::margin(DIM, self.rounded.largest_step())
        }

        fn scan(&self, each: &mut crate::graph::source::Chunks) -> Result<(), GraphError> {
            let mut chunk = QuantisedRows::new(DIM);
            for ids in self.order.chunks(1000) {
                chunk.clear();
                for &i in ids {
                    let i = i as usize;
                    chunk.push(
                        self.rounded.steps[i],
                        &self.rounded.values[i * DIM..(i + 1) * DIM],
                    );
                }
                each(ids, chunk.rows())?;
            }
            Ok(())
        }

        fn exact(&self, indices: &[u32], out: &mut Vec<f32>) -> Result<(), GraphError> {
            self.exact_reads.fetch_add(indices.len(), Ordering::Relaxed);
            out.resize(indices.len() * DIM, 0.0);
            Rows::F16(&self.exact).gather(DIM, indices, out);
            Ok(())
        }
    }

    /// The streamed search of some cells, sorted.
    fn streamed_edges(
        source: &Streamed,
        part: &Partition,
        max_d2: f32,
        cells: &[u32],
        memory: usize,
        stats: &mut IvfStats,
    ) -> Vec<Edge> {
        let mut out = Vec::new();
        search(
            source,
            part,
            max_d2,
            cells,
            memory,
            &mut |e| {
                out.extend_from_slice(e);
                Ok(())
            },
            &Control::quiet(),
            stats,
        )
        .unwrap();
        sort_edges(&mut out);
        out
    }

    #[test]
    fn streamed_rows_give_exact_edges_in_any_grouping_and_any_split() {
        let people = People::new(6000, 11);
        let source = Streamed::new(&people);
        let max_d2 = 0.64f32 * 0.64;
        let exact = crate::graph::product::edges(Rows::F16(&source.exact), DIM, max_d2);
        let params = IvfParams::default();
        let ctl = Control::quiet();
        let mut stats = IvfStats::default();
        let part = Partition::build(&source, max_d2, &params, &ctl, &mut stats).unwrap();
        assert!(part.cells() > 50, "{} cells", part.cells());
        // One group, or many small ones: the same edges, exact to the bit.
        let whole = streamed_edges(
            &source,
            &part,
            max_d2,
            &part.all_cells(),
            1 << 40,
            &mut stats,
        );
        assert_eq!(stats.groups, 1);
        let mut small = IvfStats::default();
        let grouped = streamed_edges(
            &source,
            &part,
            max_d2,
            &part.all_cells(),
            2 << 20,
            &mut small,
        );
        assert!(small.groups > 5, "{small:?}");
        assert_eq!(whole, grouped);
        assert!(small.rechecked >= whole.len() && small.exact_rows > 0);
        let recall = recall_of(&whole, &exact);
        assert!(recall >= 0.995, "recall {recall} ({stats:?})");
        // Cells split over three parts, searched apart: together, each edge once.
        let mut parts = Vec::new();
        for p in 0..3u32 {
            let cells: Vec<u32> = part
                .all_cells()
                .into_iter()
                .filter(|c| c % 3 == p)
                .collect();
            parts.extend(streamed_edges(
                &source,
                &part,
                max_d2,
                &cells,
                1 << 22,
                &mut stats,
            ));
        }
        sort_edges(&mut parts);
        assert_eq!(parts, whole);
        // Two hops over the streamed edges, through the source's exact rows.
        let degree = degrees(people.len(), whole.iter().map(|e| (e.i, e.j)));
        let lists = low_degree_lists(&degree, params.refine_degree, &mut |each| {
            for e in &whole {
                each(e.i, e.j);
            }
            Ok(())
        })
        .unwrap();
        let added = two_hop(&source, &lists, max_d2, &ctl).unwrap();
        let mut all = whole.clone();
        all.extend(added);
        sort_edges(&mut all);
        assert!(recall_of(&all, &exact) >= recall);
    }

    #[test]
    fn a_cell_of_many_edges_reaches_the_sink_in_bounded_chunks() {
        // 1,500 copies of one face and 1,500 of another: over a million pairs in each of two
        // cells, more than a thread holds at a time.
        let dim = 16;
        let mut rows = Vec::new();
        for k in 0..3000 {
            let mut v = vec![0f32; dim];
            v[k % 2] = 1.0;
            v[2] = (k / 2) as f32 * 1e-6;
            rows.extend(v);
        }
        let source = InMemory {
            rows: Rows::F32(&rows),
            dim,
        };
        let ctl = Control::quiet();
        let mut stats = IvfStats::default();
        let params = IvfParams {
            cells: 2,
            ..IvfParams::default()
        };
        let part = Partition::build(&source, 0.01, &params, &ctl, &mut stats).unwrap();
        let (mut chunks, mut got) = (0, Vec::new());
        search(
            &source,
            &part,
            0.01,
            &part.all_cells(),
            usize::MAX,
            &mut |e| {
                assert!(e.len() <= FLUSH);
                chunks += 1;
                got.extend_from_slice(e);
                Ok(())
            },
            &ctl,
            &mut stats,
        )
        .unwrap();
        sort_edges(&mut got);
        let want: Vec<(u32, u32)> = (0..3000u32)
            .flat_map(|i| ((i + 2)..3000).step_by(2).map(move |j| (i, j)))
            .collect();
        assert_eq!(got.len(), want.len());
        assert!(got.iter().map(|e| (e.i, e.j)).eq(want.iter().copied()));
        assert!(chunks >= 4, "{chunks} chunks");

        // A sink that fails stops the search with its error.
        let mut calls = 0;
        let err = search(
            &source,
            &part,
            0.01,
            &part.all_cells(),
            usize::MAX,
            &mut |_| {
                calls += 1;
                Err(GraphError::Source("the disk is full".into()))
            },
            &ctl,
            &mut IvfStats::default(),
        )
        .unwrap_err();
        assert_eq!(calls, 1);
        assert!(err.to_string().contains("the disk is full"), "{err}");
    }

    #[test]
    fn a_stop_request_ends_the_search() {
        let people = People::new(3000, 2);
        let source = Streamed::new(&people);
        let stop = std::sync::atomic::AtomicBool::new(true);
        let ctl = Control {
            progress: &|_, _| {},
            stop: &stop,
        };
        let got = Partition::build(
            &source,
            0.4,
            &IvfParams::default(),
            &ctl,
            &mut Default::default(),
        );
        assert!(matches!(got, Err(GraphError::Stopped)));
    }
}
