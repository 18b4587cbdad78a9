//! `visage bench graph`: the neighbour graph and DBSCAN on N synthetic 512-d embeddings, as one
//! JSON line with time and peak memory. Two data models: equal clusters plus loose vectors (the
//! default, compare `benches/peers/pairwise_numpy.py`), or issue 17's synthetic people
//! (`--people`, stored as f16 as the library stores them). The graph is exact or approximate by
//! the backend's rule (`--exact`, `--approx` force one); `--recall` also computes the exact graph
//! and counts the share of its edges found. `--queries Q` times the incremental path's range
//! queries instead: Q new faces against the N stored rows, streamed in chunks. `--stream` runs the
//! graph as a full re-cluster of a library too large for memory runs it: the faces' 8-bit rows
//! streamed from a file, the exact rows computed again for the pairs found, the edges (in
//! `--parts`, computed one after another) written to files and DBSCAN run over them.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use half::f16;
use serde::Serialize;

use crate::config::DeviceChoice;
use crate::graph::ivf::{IvfParams, IvfStats};
use crate::graph::range::RangeQuery;
use crate::graph::synthetic::{self, People};
use crate::graph::{Edge, GraphBackend, Method, NeighbourGraph, Rows, Search, cpu, ivf, product};

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Embeddings: clusters of 20 (members about 0.7 apart) and 10% loose ones, or with
    /// `--people`, faces of synthetic people
    #[arg(long, default_value_t = 20_000)]
    n: usize,
    /// Keep pairs closer than this [default: 1.0, with --people 0.64]
    #[arg(long)]
    distance: Option<f32>,
    /// DBSCAN core size
    #[arg(long, default_value_t = 4)]
    core: usize,
    #[arg(long, env = "VISAGE_DEVICE", value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    /// On the CPU, time the exact twin of the shader instead of the matrix-product path
    #[arg(long)]
    twin: bool,
    /// Synthetic people (issue 17: faces per person by a rank-size law, half of them clustering at
    /// 0.64), stored as f16
    #[arg(long)]
    people: bool,
    /// Seed of the synthetic people
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Embeddings from a file of little-endian f32 rows of 512 (as `--save` writes them, or
    /// real ones) instead of synthetic ones; --n is ignored
    #[arg(long, value_name = "FILE", conflicts_with = "people")]
    load: Option<PathBuf>,
    /// Round the clusters' or the loaded embeddings to f16 (as the store keeps them)
    #[arg(long)]
    f16: bool,
    /// Every pair, whatever N
    #[arg(long, conflicts_with = "approx")]
    exact: bool,
    /// The CPU's approximate graph (IVF partition), whatever N
    #[arg(long)]
    approx: bool,
    /// Also compute the exact graph and report the share of its edges the graph found
    #[arg(long)]
    recall: bool,
    /// With --people: the recall against the exact pairs within each synthetic person only
    /// (the whole exact graph when no two people come within the distance, as they do not at
    /// 0.64: `--recall` at 100,000 checks it), cheap at any N
    #[arg(long, conflicts_with = "recall")]
    recall_within_people: bool,
    /// IVF: coarse cells [default: about sqrt(2 N)]
    #[arg(long)]
    cells: Option<usize>,
    /// IVF: probe the cells within this share of the exact bound
    #[arg(long)]
    probe_ratio: Option<f32>,
    /// IVF: most cells a face probes
    #[arg(long)]
    max_probes: Option<usize>,
    /// IVF: sample rows per cell for k-means
    #[arg(long)]
    sample_per_cell: Option<usize>,
    /// IVF: drop k-means cells with fewer sample rows than this
    #[arg(long)]
    min_cell_sample: Option<usize>,
    /// IVF: two-hop pass over faces with at most this many neighbours
    #[arg(long)]
    refine_degree: Option<usize>,
    /// IVF: seed of the k-means sample
    #[arg(long)]
    ivf_seed: Option<u64>,
    /// Instead of the graph: range queries of this many new faces against the N rows
    #[arg(long, value_name = "Q")]
    queries: Option<usize>,
    /// Rows per chunk streamed to the range queries
    #[arg(long, default_value_t = 65_536)]
    chunk: usize,
    /// Write the embeddings to PREFIX.f32 and DBSCAN's labels to PREFIX.labels.i32 (-1 is
    /// noise), for `benches/peers/dbscan_sklearn.py`
    #[arg(long, value_name = "PREFIX")]
    save: Option<PathBuf>,
    /// With --people: stream the faces' 8-bit rows from a file (as a re-cluster streams the vector
    /// file beside the database) instead of holding them, and the edges through files
    #[arg(long, requires = "people")]
    stream: bool,
    /// With --stream: the rows of one group of cells held at a time, MiB
    #[arg(long, default_value_t = 1024, requires = "stream")]
    memory: usize,
    /// With --stream: compute the graph in this many parts, one after another (as separate
    /// machines would), then put them together
    #[arg(long, default_value_t = 1, requires = "stream")]
    parts: u32,
    /// With --stream: where the row file and the edge files go [default: the system's temporary
    /// folder]
    #[arg(long, value_name = "DIR", requires = "stream")]
    scratch: Option<PathBuf>,
    /// Compute part I of N of the graph only (its tile pairs, block pairs or cells, as one machine
    /// of N would), count its edges and project the whole graph's time from it: a graph too large
    /// for one run (every pair of ten million faces on a GPU)
    #[arg(long, value_name = "I/N", conflicts_with_all = ["stream", "recall", "save"])]
    part: Option<crate::index::Shard>,
}

#[derive(Serialize)]
struct PartLine {
    tool: &'static str,
    data: &'static str,
    device: String,
    method: Method,
    n: usize,
    distance: f32,
    part: String,
    edges: u64,
    seconds: f64,
    cpu_seconds: f64,
    /// The whole graph's time if every part took as long (the parts are dealt to be even).
    projected_seconds: f64,
    peak_rss_mib: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ivf: Option<IvfStats>,
}

#[derive(Serialize)]
struct GraphLine {
    tool: &'static str,
    /// "clusters", "people" or "loaded".
    data: &'static str,
    /// Whether the rows were searched as f16.
    f16: bool,
    device: String,
    method: Method,
    threads: usize,
    n: usize,
    dim: usize,
    distance: f32,
    edges: usize,
    /// Bytes of the neighbour graph (CSR: offsets, neighbours, distances).
    graph_mib: f64,
    clusters: usize,
    graph_seconds: f64,
    csr_seconds: f64,
    dbscan_seconds: f64,
    /// Distinct pairs (i < j) per second of graph time (as if all were measured).
    pairs_per_s: f64,
    /// The same work counted as a matrix product would be (2 * n * n * dim flops).
    sgemm_equivalent_gflops: f64,
    /// Peak resident memory when the graph and DBSCAN were done (before any recall check).
    peak_rss_mib: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ivf: Option<IvfStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall: Option<Recall>,
}

#[derive(Serialize)]
struct Recall {
    /// "all pairs", or "pairs within each person".
    against: &'static str,
    exact_edges: usize,
    exact_seconds: f64,
    found: usize,
    /// Edges returned that are not in the exact graph, or whose distance differs (must be 0).
    false_edges: usize,
    recall: f64,
    /// Of the exact graph's edges, those closer than 0.9 x the distance, and the share found.
    inner_edges: usize,
    inner_recall: f64,
    peak_rss_mib: f64,
    /// DBSCAN's clusters over the exact edges, and the adjusted Rand index of the clusters over
    /// the graph's edges against them (noise counts as clusters of one).
    exact_clusters: usize,
    dbscan_ari_vs_exact: f64,
    /// Exact edges missed, by the faces of their person (buckets by upper bound).
    #[serde(skip_serializing_if = "Option::is_none")]
    missed_by_person_size: Option<std::collections::BTreeMap<String, usize>>,
}

#[derive(Serialize)]
struct RangeLine {
    tool: &'static str,
    data: &'static str,
    threads: usize,
    queries: usize,
    rows: usize,
    chunk: usize,
    distance: f32,
    hits: usize,
    /// Each pass over all rows, in order (the first reads the rows into cache).
    seconds: Vec<f64>,
    rows_per_s: f64,
    peak_rss_mib: f64,
}

/// Peak resident memory of this process (Linux), in MiB.
pub fn peak_rss_mib() -> f64 {
    super::peak_kib("self").map_or(0.0, |kib| kib / 1024.0)
}

/// The embeddings of a run: f32 rows (clusters) or f16 rows (people).
enum Data {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

impl Data {
    fn rows(&self) -> Rows<'_> {
        match self {
            Data::F32(r) => Rows::F32(r),
            Data::F16(r) => Rows::F16(r),
        }
    }
}

pub fn run(args: GraphArgs) -> anyhow::Result<i32> {
    let dim = synthetic::DIM;
    let distance = args
        .distance
        .unwrap_or(if args.people { 0.64 } else { 1.0 });
    if let Some(q) = args.queries {
        return run_range(&args, q, distance);
    }
    if args.stream {
        return run_stream(&args, distance);
    }
    if args.load.is_none() && args.n < 2 {
        bail!("--n {}: at least 2 embeddings", args.n);
    }
    let data = if args.people {
        Data::F16(People::new(args.n, args.seed).rows_f16())
    } else {
        let rows = match &args.load {
            Some(path) => load(path, dim)?,
            None => {
                let n = args.n;
                let loose = n / 10;
                let clusters = (n - loose) / 20;
                synthetic::embeddings(dim, clusters, 20, 0.55, n - clusters * 20)
            }
        };
        if args.f16 {
            Data::F16(rows.iter().map(|&v| f16::from_f32(v)).collect())
        } else {
            Data::F32(rows)
        }
    };
    let rows = data.rows();
    let n = rows.count(dim);
    let backend = GraphBackend::choose(args.device)?;
    let search = if args.exact {
        Search::Exact
    } else {
        Search::Auto
    };
    let method = if args.approx {
        if !matches!(backend, GraphBackend::Cpu) {
            bail!("--approx runs on the CPU: add --device cpu");
        }
        Method::CpuApproximate
    } else {
        backend.method(n, search)
    };
    let max_d2 = distance * distance;
    let bar = crate::progress::bar(1, "{elapsed_precise} {wide_bar} {percent}% eta {eta}");
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    if let Some(part) = args.part {
        let split = crate::graph::parts::Split {
            index: part.index,
            count: part.count,
        };
        let (started, cpu) = (Instant::now(), ivf::cpu_seconds());
        let mut edges = 0u64;
        let report = crate::graph::parts::compute(
            &backend,
            &crate::graph::InMemory { rows, dim },
            max_d2,
            method,
            &ivf_params(&args),
            split,
            None,
            usize::MAX,
            &mut |e| {
                edges += e.len() as u64;
                Ok(())
            },
            &crate::graph::Control {
                progress: &progress,
                ..crate::graph::Control::quiet()
            },
        )?;
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        let line = PartLine {
            tool: "visage",
            data: if args.people { "people" } else { "clusters" },
            device: backend.describe(),
            method,
            n,
            distance,
            part: part.to_string(),
            edges,
            seconds,
            cpu_seconds: ivf::cpu_seconds() - cpu,
            projected_seconds: seconds * part.count as f64,
            peak_rss_mib: peak_rss_mib(),
            ivf: report.ivf,
        };
        println!("{}", serde_json::to_string(&line)?);
        return Ok(0);
    }
    let started = Instant::now();
    let mut ivf_stats = None;
    let edges = match method {
        Method::CpuExact if args.twin => match &data {
            Data::F32(r) => cpu::edges(r, dim, max_d2),
            Data::F16(_) => bail!("--twin reads f32 rows: leave out --people"),
        },
        Method::CpuApproximate => {
            let params = ivf_params(&args);
            let (edges, stats) = ivf::edges(rows, dim, max_d2, &params, &progress);
            ivf_stats = Some(stats);
            edges
        }
        _ => backend.search(rows, dim, distance, Search::Exact, &progress)?,
    };
    let graph_seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let started = Instant::now();
    let graph = NeighbourGraph::from_edges(n, &edges);
    let csr_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let labels = crate::clustering::dbscan(&graph, args.core);
    let dbscan_seconds = started.elapsed().as_secs_f64();
    let graph_mib = (graph.offsets.len() * size_of::<usize>()
        + graph.neighbours.len() * 4
        + graph.distances.len() * 4) as f64
        / (1 << 20) as f64;
    drop(graph);
    let peak = peak_rss_mib();
    if let Some(prefix) = &args.save {
        save(prefix, rows, dim, &labels)?;
    }
    let recall = if args.recall {
        let (exact, seconds) =
            timed_with_bar(|progress| product::edges_with_progress(rows, dim, max_d2, progress));
        let mut r = recall(&exact, seconds, "all pairs", max_d2, &edges);
        r.compare_clusters(&exact, &labels, args.core);
        Some(r)
    } else if args.recall_within_people {
        if !args.people {
            bail!("--recall-within-people needs --people");
        }
        let people = People::new(n, args.seed);
        let started = Instant::now();
        let exact = within_people(rows, dim, max_d2, people.labels());
        let mut r = recall(
            &exact,
            started.elapsed().as_secs_f64(),
            "pairs within each person",
            max_d2,
            &edges,
        );
        r.missed_by_person_size = Some(missed_by_size(&exact, &edges, &people));
        r.compare_clusters(&exact, &labels, args.core);
        Some(r)
    } else {
        None
    };
    let pairs = n as f64 * (n as f64 - 1.0) / 2.0;
    let line = GraphLine {
        tool: "visage",
        data: match (&args.load, args.people) {
            (Some(_), _) => "loaded",
            (None, true) => "people",
            (None, false) => "clusters",
        },
        device: match (method, args.twin) {
            (Method::CpuExact, true) => format!("{} (exact twin)", backend.describe()),
            (Method::CpuExact, false) => format!("{} (matrix products)", backend.describe()),
            (Method::CpuApproximate, _) => format!("{} (IVF partition)", backend.describe()),
            _ => backend.describe(),
        },
        method,
        f16: matches!(data, Data::F16(_)),
        threads: rayon::current_num_threads(),
        n,
        dim,
        distance,
        edges: edges.len(),
        graph_mib,
        clusters: labels
            .iter()
            .flatten()
            .map(|&l| l as usize + 1)
            .max()
            .unwrap_or(0),
        graph_seconds,
        csr_seconds,
        dbscan_seconds,
        pairs_per_s: pairs / graph_seconds,
        sgemm_equivalent_gflops: 2.0 * pairs * 2.0 * dim as f64 / graph_seconds / 1e9,
        peak_rss_mib: peak,
        ivf: ivf_stats,
        recall,
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(0)
}

/// The IVF settings the arguments ask for.
fn ivf_params(args: &GraphArgs) -> IvfParams {
    let defaults = IvfParams::default();
    IvfParams {
        cells: args.cells.unwrap_or(defaults.cells),
        max_probes: args.max_probes.unwrap_or(defaults.max_probes),
        probe_ratio: args.probe_ratio.unwrap_or(defaults.probe_ratio),
        sample_per_cell: args.sample_per_cell.unwrap_or(defaults.sample_per_cell),
        min_cell_sample: args.min_cell_sample.unwrap_or(defaults.min_cell_sample),
        seed: args.ivf_seed.unwrap_or(defaults.seed),
        refine_degree: args.refine_degree.unwrap_or(defaults.refine_degree),
        ..defaults
    }
}

/// Rows of `dim` little-endian f32 values from `path`.
fn load(path: &std::path::Path, dim: usize) -> anyhow::Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    if bytes.is_empty() || !bytes.len().is_multiple_of(dim * 4) {
        bail!(
            "{}: {} bytes is not a whole number of {dim}-float rows",
            path.display(),
            bytes.len()
        );
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// `work(progress)` under a progress bar, and the seconds it took.
fn timed_with_bar<T>(work: impl FnOnce(&(dyn Fn(usize, usize) + Sync)) -> T) -> (T, f64) {
    let bar = crate::progress::bar(1, "{elapsed_precise} {wide_bar} {percent}% eta {eta}");
    let started = Instant::now();
    let out = work(&|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    (out, seconds)
}

/// The exact edges between faces of the same person (`labels`), in canonical order.
fn within_people(rows: Rows, dim: usize, max_d2: f32, labels: &[u32]) -> Vec<Edge> {
    use rayon::prelude::*;
    let people = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut faces: Vec<Vec<u32>> = vec![Vec::new(); people];
    for (i, &l) in labels.iter().enumerate() {
        faces[l as usize].push(i as u32);
    }
    let mut out: Vec<Edge> = faces
        .par_iter()
        .filter(|f| f.len() > 1)
        .map_init(
            || (product::Scratch::default(), Vec::new()),
            |(scratch, dots), f| {
                let block = scratch.gather(rows, dim, f);
                let mut found = Vec::new();
                product::close_pairs(block, block, dim, max_d2, true, dots, &mut |r, c, d2| {
                    let (a, b) = (f[r], f[c]);
                    found.push(Edge {
                        i: a.min(b),
                        j: a.max(b),
                        d2,
                    })
                });
                found
            },
        )
        .flatten_iter()
        .collect();
    crate::graph::sort_edges(&mut out);
    out
}

/// How much of `exact` the graph's edges `found` hold (`found` must be a subset, with the same
/// distances).
fn recall(
    exact: &[Edge],
    exact_seconds: f64,
    against: &'static str,
    max_d2: f32,
    found: &[Edge],
) -> Recall {
    // Both in canonical order: one merge.
    let (mut k, mut matched, mut false_edges) = (0, 0, 0);
    let mut matched_inner = 0;
    let inner = 0.81 * max_d2;
    for e in found {
        while k < exact.len() && (exact[k].i, exact[k].j) < (e.i, e.j) {
            k += 1;
        }
        if exact.get(k) == Some(e) {
            matched += 1;
            if e.d2 < inner {
                matched_inner += 1;
            }
        } else {
            false_edges += 1;
        }
    }
    let inner_edges = exact.iter().filter(|e| e.d2 < inner).count();
    Recall {
        against,
        exact_edges: exact.len(),
        exact_seconds,
        found: matched,
        false_edges,
        recall: matched as f64 / exact.len().max(1) as f64,
        inner_edges,
        inner_recall: matched_inner as f64 / inner_edges.max(1) as f64,
        peak_rss_mib: peak_rss_mib(),
        missed_by_person_size: None,
        exact_clusters: 0,
        dbscan_ari_vs_exact: 0.0,
    }
}

impl Recall {
    /// DBSCAN over `exact` against `labels` (DBSCAN over the graph's edges).
    fn compare_clusters(&mut self, exact: &[Edge], labels: &[Option<u32>], core: usize) {
        let graph = NeighbourGraph::from_edges(labels.len(), exact);
        let truth = crate::clustering::dbscan(&graph, core);
        drop(graph);
        self.exact_clusters = truth
            .iter()
            .flatten()
            .map(|&l| l as usize + 1)
            .max()
            .unwrap_or(0);
        let truth: Vec<usize> = truth
            .iter()
            .enumerate()
            .map(|(i, l)| l.map_or(self.exact_clusters + i, |l| l as usize))
            .collect();
        self.dbscan_ari_vs_exact =
            crate::evaluation::cluster_scores(&truth, labels).adjusted_rand_index;
    }
}

/// The edges of `exact` missing from `found`, counted by the size of their person.
fn missed_by_size(
    exact: &[Edge],
    found: &[Edge],
    people: &People,
) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    let mut k = 0;
    for e in exact {
        while k < found.len() && (found[k].i, found[k].j) < (e.i, e.j) {
            k += 1;
        }
        if found.get(k).is_some_and(|f| (f.i, f.j) == (e.i, e.j)) {
            continue;
        }
        let size = people.sizes()[people.labels()[e.i as usize] as usize];
        let bucket = [2u32, 5, 10, 20, 50, 100, 1000, u32::MAX]
            .into_iter()
            .find(|&b| size <= b)
            .unwrap_or(u32::MAX);
        *out.entry(format!("<={bucket:>10}")).or_insert(0) += 1;
    }
    out
}

/// Range queries: `q` new faces of the same people against `args.n` stored f16 faces, streamed
/// in chunks, three passes.
fn run_range(args: &GraphArgs, q: usize, distance: f32) -> anyhow::Result<i32> {
    let dim = synthetic::DIM;
    if !args.people {
        bail!("--queries needs --people (new faces of the same synthetic people)");
    }
    if q == 0 || args.chunk == 0 {
        bail!("--queries and --chunk must be at least 1");
    }
    let n = args.n;
    let people = People::new(n + q, args.seed);
    let mut stored = vec![f16::ZERO; n * dim];
    people.write_f16(0, &mut stored);
    let mut queries = vec![0f32; q * dim];
    people.write_f32(n, &mut queries);
    let mut range = RangeQuery::new(&queries, dim, distance);
    let mut hits = Vec::new();
    let mut seconds = Vec::new();
    for _ in 0..3 {
        hits.clear();
        let started = Instant::now();
        for start in (0..n).step_by(args.chunk) {
            let count = args.chunk.min(n - start);
            let chunk = Rows::F16(&stored[start * dim..(start + count) * dim]);
            range.scan(chunk, start as u32, &mut hits);
        }
        seconds.push(started.elapsed().as_secs_f64());
    }
    let best = seconds.iter().copied().fold(f64::INFINITY, f64::min);
    let line = RangeLine {
        tool: "visage",
        data: "people",
        threads: rayon::current_num_threads(),
        queries: q,
        rows: n,
        chunk: args.chunk,
        distance,
        hits: hits.len(),
        seconds,
        rows_per_s: n as f64 / best,
        peak_rss_mib: peak_rss_mib(),
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(0)
}

/// Streams the rows (as f32) and DBSCAN's labels next to `prefix`, for the scikit-learn peer.
fn save(
    prefix: &std::path::Path,
    rows: Rows,
    dim: usize,
    labels: &[Option<u32>],
) -> anyhow::Result<()> {
    let with = |ext: &str| {
        let mut p = prefix.to_path_buf().into_os_string();
        p.push(ext);
        PathBuf::from(p)
    };
    let create = |ext: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        let path = with(ext);
        Ok(std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("{}", path.display()))?,
        ))
    };
    // Streamed a row at a time, so saving does not add a second copy of the embeddings.
    let mut out = create(".f32")?;
    let mut row = vec![0f32; dim];
    for i in 0..rows.count(dim) {
        rows.copy_to(dim, i, &mut row);
        for v in &row {
            out.write_all(&v.to_le_bytes())?;
        }
    }
    out.flush()?;
    let mut out = create(".labels.i32")?;
    for l in labels {
        out.write_all(&l.map_or(-1, |l| l as i32).to_le_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// The faces of synthetic people as a re-cluster reads a library too large for memory: their 8-bit
/// rows in a file, read a chunk at a time, and their exact (f16) rows computed again on demand.
struct SyntheticRows<'a> {
    people: &'a People,
    file: std::fs::File,
    margin: f32,
}

/// Bytes of one row of a [`SyntheticRows`] file: the step and the components.
const SYNTHETIC_ROW: usize = 4 + synthetic::DIM;

impl<'a> SyntheticRows<'a> {
    /// Write every face's 8-bit row into an unnamed file in `dir`.
    fn write(people: &'a People, dir: &std::path::Path) -> anyhow::Result<Self> {
        use crate::graph::quantised::QuantisedRows;
        let dim = synthetic::DIM;
        let file = tempfile::tempfile_in(dir).with_context(|| format!("{}", dir.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 22, &file);
        let mut largest = 0f32;
        let chunk = 16 * 1024;
        let mut rows = vec![f16::ZERO; chunk * dim];
        let mut exact = vec![0f32; dim];
        for start in (0..people.len()).step_by(chunk) {
            let count = chunk.min(people.len() - start);
            people.write_f16(start, &mut rows[..count * dim]);
            let mut q = QuantisedRows::new(dim);
            for r in 0..count {
                Rows::F16(&rows).copy_to(dim, r, &mut exact);
                q.push_f32(&exact);
            }
            largest = largest.max(q.largest_step());
            for r in 0..count {
                out.write_all(&q.steps[r].to_le_bytes())?;
                out.write_all(bytemuck::cast_slice(&q.values[r * dim..(r + 1) * dim]))?;
            }
        }
        out.flush()?;
        drop(out);
        Ok(SyntheticRows {
            people,
            file,
            margin: crate::graph::quantised::margin(dim, largest),
        })
    }
}

impl crate::graph::RowSource for SyntheticRows<'_> {
    fn dim(&self) -> usize {
        synthetic::DIM
    }

    fn len(&self) -> usize {
        self.people.len()
    }

    fn margin(&self) -> f32 {
        self.margin
    }

    fn scan(
        &self,
        each: &mut crate::graph::source::Chunks,
    ) -> Result<(), crate::graph::GraphError> {
        use std::io::{Read, Seek};
        let dim = synthetic::DIM;
        let io = |e| crate::graph::GraphError::Source(format!("the row file: {e}"));
        let mut file = &self.file;
        file.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
        let mut reader = std::io::BufReader::with_capacity(1 << 22, file);
        let chunk = 16 * 1024;
        let mut bytes = vec![0u8; chunk * SYNTHETIC_ROW];
        let mut q = crate::graph::quantised::QuantisedRows::new(dim);
        let mut indices = Vec::with_capacity(chunk);
        let n = self.len();
        for start in (0..n).step_by(chunk) {
            let count = chunk.min(n - start);
            reader
                .read_exact(&mut bytes[..count * SYNTHETIC_ROW])
                .map_err(io)?;
            q.clear();
            indices.clear();
            for (r, row) in bytes[..count * SYNTHETIC_ROW]
                .chunks_exact(SYNTHETIC_ROW)
                .enumerate()
            {
                q.push_bytes(row);
                indices.push((start + r) as u32);
            }
            each(&indices, q.rows())?;
        }
        Ok(())
    }

    fn exact(&self, indices: &[u32], out: &mut Vec<f32>) -> Result<(), crate::graph::GraphError> {
        let dim = synthetic::DIM;
        out.resize(indices.len() * dim, 0.0);
        for (&i, o) in indices.iter().zip(out.chunks_exact_mut(dim)) {
            self.people.face(i as usize, o);
            for v in o.iter_mut() {
                *v = f16::from_f32(*v).to_f32();
            }
        }
        Ok(())
    }
}

#[derive(Serialize)]
struct StreamLine {
    tool: &'static str,
    data: &'static str,
    method: Method,
    threads: usize,
    n: usize,
    distance: f32,
    /// MiB of rows one group of cells may hold.
    memory_mib: usize,
    parts: u32,
    rows_file_seconds: f64,
    /// Each part's time (the partition, then its cells), one after another, and its CPU time
    /// (what a machine shared with other work does not inflate).
    part_seconds: Vec<f64>,
    part_cpu_seconds: Vec<f64>,
    edges: u64,
    edge_file_bytes: u64,
    /// Counting the edges of every face (one pass over the files).
    degrees_seconds: f64,
    two_hop_edges: usize,
    two_hop_seconds: f64,
    dbscan_seconds: f64,
    clusters: usize,
    /// The graph and DBSCAN, without writing the row file, and their CPU time.
    total_seconds: f64,
    total_cpu_seconds: f64,
    peak_rss_mib: f64,
    ivf: Option<IvfStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall: Option<StreamRecall>,
}

#[derive(Serialize)]
struct StreamRecall {
    against: &'static str,
    exact_edges: u64,
    found: u64,
    /// Edges found between faces of different people (none come within 0.64: must be 0).
    between_people: u64,
    recall: f64,
    exact_seconds: f64,
}

/// `--stream`: the graph of `args.n` synthetic faces read from a file of 8-bit rows, in
/// `args.parts` parts, then two hops and DBSCAN over the edge files.
fn run_stream(args: &GraphArgs, distance: f32) -> anyhow::Result<i32> {
    use crate::clustering::dbscan::{NOISE, Streamed};
    use crate::graph::partition_file::PartitionFile;
    use crate::graph::parts::{self, PairFile, PairWriter, Split};
    use crate::graph::{Control, GraphError};
    if args.parts == 0 {
        bail!("--parts must be at least 1");
    }
    if args.exact || !matches!(args.device, DeviceChoice::Cpu) {
        bail!("--stream times the CPU's approximate graph: leave out --exact and --device");
    }
    let people = People::new(args.n, args.seed);
    let scratch = args.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&scratch).with_context(|| format!("{}", scratch.display()))?;
    let started = Instant::now();
    let source = SyntheticRows::write(&people, dir.path())?;
    let rows_file_seconds = started.elapsed().as_secs_f64();
    let max_d2 = distance * distance;
    let params = ivf_params(args);
    let bar = crate::progress::bar(1, "{elapsed_precise} {wide_bar} {percent}% eta {eta}");
    let progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let ctl = Control {
        progress: &progress,
        stop: &stop,
    };
    let backend = GraphBackend::Cpu;
    let started = Instant::now();
    let cpu = ivf::cpu_seconds();
    let mut part_seconds = Vec::new();
    let mut part_cpu_seconds = Vec::new();
    let mut files = Vec::new();
    let mut ivf_stats = None;
    let shared = PartitionFile::new(dir.path(), b"bench".to_vec());
    for index in 0..args.parts {
        let split = Split {
            index,
            count: args.parts,
        };
        let part_started = Instant::now();
        let part_cpu = ivf::cpu_seconds();
        let path = dir.path().join(split.file_name());
        let mut out = PairWriter::create(&path, b"bench")?;
        let report = parts::compute(
            &backend,
            &source,
            max_d2,
            Method::CpuApproximate,
            &params,
            split,
            Some(&shared),
            args.memory << 20,
            &mut |e| out.push(e.iter().map(|e| (e.i, e.j))),
            &ctl,
        )?;
        out.finish()?;
        files.push(PairFile::open(&path)?);
        part_seconds.push(part_started.elapsed().as_secs_f64());
        part_cpu_seconds.push(ivf::cpu_seconds() - part_cpu);
        ivf_stats = report.ivf;
    }
    bar.finish_and_clear();
    let edges: u64 = files.iter().map(|f| f.count()).sum();
    let edge_file_bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f.path()).map_or(0, |m| m.len()))
        .sum();
    let mut each_pair = |each: &mut dyn FnMut(u32, u32)| -> Result<(), GraphError> {
        for f in &files {
            f.pairs(&mut |chunk| {
                for &(i, j) in chunk {
                    each(i, j);
                }
                Ok(())
            })?;
        }
        Ok(())
    };
    let t = Instant::now();
    let n = people.len();
    let mut degree = vec![0u32; n];
    each_pair(&mut |i, j| {
        degree[i as usize] += 1;
        degree[j as usize] += 1;
    })?;
    let degrees_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let extra = if params.refine_degree > 0 {
        let lists = ivf::low_degree_lists(&degree, params.refine_degree, &mut each_pair)?;
        ivf::two_hop(&source, &lists, max_d2, &Control::quiet())?
    } else {
        Vec::new()
    };
    for e in &extra {
        degree[e.i as usize] += 1;
        degree[e.j as usize] += 1;
    }
    let two_hop_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let dbscan = Streamed::from_degrees(degree, args.core);
    let extra_pairs: Vec<(u32, u32)> = extra.iter().map(|e| (e.i, e.j)).collect();
    let mut all_pairs = |each: &mut crate::clustering::dbscan::PairSink| {
        for f in &files {
            f.pairs(&mut |chunk| {
                each(chunk);
                Ok(())
            })?;
        }
        each(&extra_pairs);
        Ok::<(), GraphError>(())
    };
    let labels = dbscan.labels(&mut all_pairs)?;
    let dbscan_seconds = t.elapsed().as_secs_f64();
    let total_seconds = started.elapsed().as_secs_f64();
    let total_cpu_seconds = ivf::cpu_seconds() - cpu;
    let clusters = labels
        .iter()
        .filter(|&&l| l != NOISE)
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(0);
    let peak = peak_rss_mib();
    let recall = if args.recall_within_people {
        let t = Instant::now();
        let exact = within_people_count(&people, max_d2);
        let exact_seconds = t.elapsed().as_secs_f64();
        let (mut found, mut between) = (0u64, 0u64);
        let l = people.labels();
        each_pair(&mut |i, j| {
            if l[i as usize] == l[j as usize] {
                found += 1;
            } else {
                between += 1;
            }
        })?;
        for e in &extra {
            if l[e.i as usize] == l[e.j as usize] {
                found += 1;
            } else {
                between += 1;
            }
        }
        Some(StreamRecall {
            against: "pairs within each person",
            exact_edges: exact,
            found,
            between_people: between,
            recall: found as f64 / exact.max(1) as f64,
            exact_seconds,
        })
    } else {
        None
    };
    let line = StreamLine {
        tool: "visage",
        data: "people, streamed",
        method: Method::CpuApproximate,
        threads: rayon::current_num_threads(),
        n,
        distance,
        memory_mib: args.memory,
        parts: args.parts,
        rows_file_seconds,
        part_seconds,
        part_cpu_seconds,
        edges: edges + extra.len() as u64,
        edge_file_bytes,
        degrees_seconds,
        two_hop_edges: extra.len(),
        two_hop_seconds,
        dbscan_seconds,
        clusters,
        total_seconds,
        total_cpu_seconds,
        peak_rss_mib: peak,
        ivf: ivf_stats,
        recall,
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(0)
}

/// The exact pairs within each synthetic person closer than `max_d2`, counted person by person
/// from their f16 rows (computed again), so that no N-sized matrix is held.
fn within_people_count(people: &People, max_d2: f32) -> u64 {
    use rayon::prelude::*;
    let dim = synthetic::DIM;
    let persons = people.sizes().len();
    let mut faces: Vec<Vec<u32>> = vec![Vec::new(); persons];
    for (i, &l) in people.labels().iter().enumerate() {
        faces[l as usize].push(i as u32);
    }
    faces
        .par_iter()
        .filter(|f| f.len() > 1)
        .map_init(
            || (product::Scratch::default(), Vec::new(), Vec::new()),
            |(scratch, dots, rows), f| {
                rows.resize(f.len() * dim, 0f32);
                for (&i, o) in f.iter().zip(rows.chunks_exact_mut(dim)) {
                    people.face(i as usize, o);
                    for v in o.iter_mut() {
                        *v = f16::from_f32(*v).to_f32();
                    }
                }
                let block = scratch.copy(rows, dim);
                let mut count = 0u64;
                product::close_pairs(block, block, dim, max_d2, true, dots, &mut |_, _, _| {
                    count += 1
                });
                count
            },
        )
        .sum()
}
