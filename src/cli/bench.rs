//! `visage bench embed`: FaceNet throughput on the chosen device, on a folder of 160x160 face
//! crops, as one JSON line (the same fields as `benches/peers/facenet_opencv.py`, so the two can be
//! compared side by side). Threads: `RAYON_NUM_THREADS`.

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
    },
}

#[derive(Serialize)]
struct Line {
    tool: &'static str,
    device: String,
    threads: usize,
    batch: usize,
    faces_per_s: f64,
    ms_per_batch: f64,
    batches: usize,
}

pub fn run(args: BenchArgs) -> anyhow::Result<i32> {
    let BenchWhat::Embed {
        batch,
        seconds,
        device,
        models: dir,
        faces,
    } = args.what;
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
    let embedder = Embedder::load(&Models::new(dir).get(&models::FACENET)?, &device)
        .context("cannot load FaceNet")?;
    for _ in 0..2 {
        embedder.embed(&input);
    }
    let started = Instant::now();
    let mut batches = 0;
    while started.elapsed() < Duration::from_secs_f64(seconds) || batches == 0 {
        embedder.embed(&input);
        batches += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let line = Line {
        tool: "visage",
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
