//! `visage bench index`: a whole index of folders into a temporary database, photos/s, faces/s and
//! the seconds per stage, as one JSON line. `visage bench embed`: FaceNet throughput on the chosen device, on a folder of 160x160 face
//! crops, as one JSON line (the same fields as `benches/peers/facenet_opencv.py`, so the two can be
//! compared side by side). `visage bench graph`: the neighbour graph and DBSCAN on N synthetic
//! 512-d embeddings, with peak memory (compare `benches/peers/pairwise_numpy.py`). Threads:
//! `RAYON_NUM_THREADS`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::alignment;
use crate::config::DeviceChoice;
use crate::embedding::{Embedder, INPUT_SIDE};
use crate::inference::InferenceDevice;
use crate::models::{self, Models};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// FaceNet faces per second at a batch size
    Embed {
        /// Faces per forward pass
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// How long to measure, after two warm-up batches
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, env = "VISAGE_DEVICE", value_enum, default_value_t = DeviceChoice::Cpu)]
        device: DeviceChoice,
        #[arg(long, env = "VISAGE_MODELS", value_name = "DIR")]
        models: Option<PathBuf>,
        /// Folder of face crops (each resized to 160x160), used in turn to fill the batches
        #[arg(long, value_name = "DIR")]
        faces: PathBuf,
        /// Random weights instead of the real ones (speed only, where the weights cannot be had)
        #[arg(long)]
        untrained: bool,
    },
    /// Index folders into a new, temporary database: photos/s, faces/s and seconds per stage
    Index {
        /// Folders (or files) of photos
        #[arg(required = true, value_name = "DIR")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        settings: crate::config::Settings,
    },
    /// A library of N faces (real photos, then synthetic people) and what each command costs on it
    Library {
        /// Faces in the library in all (the real photos' faces, then synthetic people)
        #[arg(long, default_value_t = 100_000)]
        faces: usize,
        /// Real photos: the library's, and the last --new-photos of them indexed into it at the end
        #[arg(value_name = "PHOTOS")]
        photos: Vec<PathBuf>,
        /// How many of the real photos are indexed into the full library at the end
        #[arg(long, default_value_t = 10)]
        new_photos: usize,
        /// Build the library in this (empty) folder and leave it there
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        /// Seed of the synthetic people
        #[arg(long, default_value_t = 17)]
        seed: u64,
        /// Drop the OS page cache before timing the review page's first page (needs root)
        #[arg(long)]
        drop_caches: bool,
    },
    /// The simulated review: how many actions name every face of a folder with one subfolder per
    /// person (one JSON line)
    Review(super::review::ReviewArgs),
    /// Suggestions for one person over a synthetic library of unnamed faces (one JSON line)
    Suggest {
        /// Unnamed faces in the library
        #[arg(long, default_value_t = 100_000)]
        faces: usize,
        /// Faces named by hand as the person
        #[arg(long, default_value_t = 20)]
        named: usize,
    },
    /// Neighbour graph (all pairwise distances, close pairs kept) and DBSCAN on synthetic embeddings
    Graph {
        /// Embeddings: clusters of 20 (members about 0.7 apart) and 10% loose ones
        #[arg(long, default_value_t = 20_000)]
        n: usize,
        /// Keep pairs closer than this
        #[arg(long, default_value_t = 1.0)]
        distance: f32,
        /// DBSCAN core size
        #[arg(long, default_value_t = 4)]
        core: usize,
        #[arg(long, env = "VISAGE_DEVICE", value_enum, default_value_t = DeviceChoice::Cpu)]
        device: DeviceChoice,
        /// On the CPU, time the exact twin of the shader instead of the matrix-product path
        #[arg(long)]
        twin: bool,
        /// Write the embeddings to PREFIX.f32 and DBSCAN's labels to PREFIX.labels.i32 (-1 is
        /// noise), for `benches/peers/dbscan_sklearn.py`
        #[arg(long, value_name = "PREFIX")]
        save: Option<PathBuf>,
    },
}

#[derive(Serialize)]
struct IndexLine {
    tool: &'static str,
    threads: usize,
    photos: usize,
    failed: usize,
    faces: usize,
    /// The whole run, the networks' loading included.
    seconds: f64,
    photos_per_s: f64,
    faces_per_s: f64,
    stages: crate::index::Stages,
}

#[derive(Serialize)]
struct GraphLine {
    tool: &'static str,
    device: String,
    threads: usize,
    n: usize,
    dim: usize,
    edges: usize,
    clusters: usize,
    graph_seconds: f64,
    dbscan_seconds: f64,
    /// Distinct pairs (i < j) measured per second.
    pairs_per_s: f64,
    /// The same work counted as a matrix product would be (2 * n * n * dim flops).
    sgemm_equivalent_gflops: f64,
    peak_rss_mib: f64,
}

/// Peak resident memory of this process (Linux), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

struct GraphBench {
    n: usize,
    distance: f32,
    core: usize,
    device: DeviceChoice,
    twin: bool,
    save: Option<PathBuf>,
}

fn run_graph(b: GraphBench) -> anyhow::Result<i32> {
    let GraphBench {
        n,
        distance,
        core,
        device,
        twin,
        save,
    } = b;
    let dim = crate::embedding::EMBEDDING_DIM;
    let loose = n / 10;
    let clusters = (n - loose) / 20;
    let rows = crate::graph::synthetic::embeddings(dim, clusters, 20, 0.55, n - clusters * 20);
    let backend = crate::graph::GraphBackend::choose(device)?;
    let started = Instant::now();
    let edges = match &backend {
        crate::graph::GraphBackend::Cpu if twin => {
            crate::graph::cpu::edges(&rows, dim, distance * distance)
        }
        _ => backend.edges(&rows, dim, distance)?,
    };
    let graph = crate::graph::NeighbourGraph::from_edges(n, &edges);
    let graph_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let labels = crate::clustering::dbscan(&graph, core);
    let dbscan_seconds = started.elapsed().as_secs_f64();
    if let Some(prefix) = save {
        let with = |ext: &str| {
            let mut p = prefix.clone().into_os_string();
            p.push(ext);
            PathBuf::from(p)
        };
        // Streamed, so saving does not add a second copy of the embeddings to the peak.
        let write = |ext: &str, values: &mut dyn Iterator<Item = [u8; 4]>| -> anyhow::Result<()> {
            let path = with(ext);
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(&path).with_context(|| format!("{}", path.display()))?,
            );
            for v in values {
                out.write_all(&v)?;
            }
            out.flush()?;
            Ok(())
        };
        write(".f32", &mut rows.iter().map(|x| x.to_le_bytes()))?;
        write(
            ".labels.i32",
            &mut labels
                .iter()
                .map(|l| l.map_or(-1, |l| l as i32).to_le_bytes()),
        )?;
    }
    let pairs = n as f64 * (n as f64 - 1.0) / 2.0;
    let line = GraphLine {
        tool: "visage",
        device: match &backend {
            crate::graph::GraphBackend::Cpu if twin => {
                format!("{} (exact twin)", backend.describe())
            }
            crate::graph::GraphBackend::Cpu => format!("{} (matrix products)", backend.describe()),
            _ => backend.describe(),
        },
        threads: rayon::current_num_threads(),
        n,
        dim,
        edges: edges.len(),
        clusters: labels
            .iter()
            .flatten()
            .map(|&l| l as usize + 1)
            .max()
            .unwrap_or(0),
        graph_seconds,
        dbscan_seconds,
        pairs_per_s: pairs / graph_seconds,
        sgemm_equivalent_gflops: 2.0 * (n * n * dim) as f64 / graph_seconds / 1e9,
        peak_rss_mib: peak_rss_mib(),
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(0)
}

#[derive(Serialize)]
struct Line {
    tool: &'static str,
    /// `real`, or `untrained` (random weights: the speed is the same, the vectors mean nothing).
    weights: &'static str,
    device: String,
    threads: usize,
    batch: usize,
    faces_per_s: f64,
    ms_per_batch: f64,
    batches: usize,
}

/// `visage index --no-cluster` into a temporary database, reported as one JSON line.
fn run_index(paths: &[PathBuf], settings: &crate::config::Settings) -> anyhow::Result<i32> {
    let db = std::env::temp_dir().join(format!("visage-bench-index-{}.db", std::process::id()));
    let remove = || {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
    };
    remove();
    let mut store = crate::store::Store::open_or_create(&db)?;
    let load = || crate::pipeline::Pipeline::new(settings, true);
    let report = crate::index::index(&mut store, load, paths, |path, why| {
        eprintln!("visage: {}: {why}", path.display())
    });
    drop(store);
    remove();
    let report = report?;
    let line = IndexLine {
        tool: "visage",
        threads: rayon::current_num_threads(),
        photos: report.indexed,
        failed: report.failed,
        faces: report.faces,
        seconds: report.seconds,
        photos_per_s: report.indexed as f64 / report.seconds,
        faces_per_s: report.faces as f64 / report.seconds,
        stages: report.stages,
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(super::exit_code(report.failed))
}

pub fn run(args: BenchArgs) -> anyhow::Result<i32> {
    let (batch, seconds, device, dir, faces, untrained) = match args.what {
        BenchWhat::Graph {
            n,
            distance,
            core,
            device,
            twin,
            save,
        } => {
            return run_graph(GraphBench {
                n,
                distance,
                core,
                device,
                twin,
                save,
            });
        }
        BenchWhat::Library {
            faces,
            photos,
            new_photos,
            keep,
            seed,
            drop_caches,
        } => {
            super::require_paths(&photos)?;
            let _ = (faces, photos, new_photos, keep, seed, drop_caches);
            anyhow::bail!("TEMP");
        }
        BenchWhat::Index { paths, settings } => {
            super::require_paths(&paths)?;
            return run_index(&paths, &settings);
        }
        BenchWhat::Review(args) => return super::review::run(args),
        BenchWhat::Suggest { faces, named } => return super::review::run_suggest(faces, named),
        BenchWhat::Embed {
            batch,
            seconds,
            device,
            models,
            faces,
            untrained,
        } => (batch, seconds, device, models, faces, untrained),
    };
    super::require_paths(std::slice::from_ref(&faces))?;
    let (files, _) = super::photo_files(std::slice::from_ref(&faces));
    let (decoded, _) = super::decode(&files);
    if decoded.is_empty() || batch == 0 {
        bail!("{}: no face crops to embed", faces.display());
    }
    let side = INPUT_SIDE as u32;
    let crops: Vec<Vec<u8>> = decoded
        .iter()
        .map(|(_, p)| alignment::whole(&p.rgb, side))
        .collect();
    let input: Vec<Vec<u8>> = crops.iter().cycle().take(batch).cloned().collect();
    let device = InferenceDevice::choose(device)?;
    let embedder = if untrained {
        Embedder::untrained(&device)
    } else {
        Embedder::load(&Models::new(dir).get(&models::FACENET)?, &device)
            .context("cannot load FaceNet")?
    };
    for _ in 0..2 {
        embedder.embed_in_batches(&input, batch);
    }
    let started = Instant::now();
    let mut batches = 0;
    while started.elapsed() < Duration::from_secs_f64(seconds) || batches == 0 {
        embedder.embed_in_batches(&input, batch);
        batches += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let line = Line {
        tool: "visage",
        weights: if untrained { "untrained" } else { "real" },
        device: device.description.clone(),
        threads: rayon::current_num_threads(),
        batch,
        faces_per_s: (batches * batch) as f64 / secs,
        ms_per_batch: secs * 1e3 / batches as f64,
        batches,
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(0)
}
