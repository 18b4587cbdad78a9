//! `visage embed`: detect, verify, align and embed the faces of photos and print them, one line per
//! photo (JSON with `--json`, embeddings included). With `--aligned`, each image is taken as an
//! already cut face and embedded whole.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::words::plural;
use crate::alignment;
use crate::config::Settings;
use crate::detection::FoundFace;
use crate::device::Device;
use crate::embedding::{Embedder, Embedding, INPUT_SIDE};
use crate::models::{self, Models};
use crate::photo::Reader;
use crate::pipeline::Pipeline;

/// Photos decoded and processed together.
const BATCH: usize = 16;

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// One JSON object per photo and line, with the embeddings
    #[arg(long)]
    pub json: bool,
    /// Each image is one face, already cut: resize it to 160x160 and embed it
    #[arg(long)]
    pub aligned: bool,
    #[command(flatten)]
    pub networks: super::NetworkArgs,
    #[command(flatten)]
    pub settings: Settings,
    /// Photo files or folders (searched recursively)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Serialize)]
struct PhotoLine<'a> {
    path: &'a str,
    width: u32,
    height: u32,
    faces: &'a [FoundFace],
}

#[derive(Serialize)]
struct AlignedLine<'a> {
    path: &'a str,
    embedding: &'a Embedding,
}

pub fn run(args: EmbedArgs) -> anyhow::Result<i32> {
    super::require_paths(&args.paths)?;
    if args.aligned {
        return run_aligned(args);
    }
    let mut pipeline = Pipeline::new(&args.settings, !args.networks.no_onet)
        .context("cannot load the face pipeline")?;
    pipeline.embedder.standardisation = args.networks.standardisation;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (files, mut failed) = super::photo_files(&args.paths);
    let reader = Reader::for_settings(&args.settings);
    for chunk in files.chunks(BATCH) {
        let (ok, decode_failed) = super::decode(&reader, chunk);
        failed += decode_failed;
        let photos: Vec<_> = ok.iter().map(|(_, p)| p).collect();
        let found = pipeline.run(&photos).context("face pipeline failed")?;
        for ((path, photo), faces) in ok.iter().zip(found) {
            let path = path.to_string_lossy();
            if args.json {
                let line = PhotoLine {
                    path: &path,
                    width: photo.original_width,
                    height: photo.original_height,
                    faces: &faces,
                };
                writeln!(out, "{}", serde_json::to_string(&line)?)?;
            } else {
                let boxes: Vec<String> = faces
                    .iter()
                    .map(|f| {
                        let (r, p) = (&f.detection.rect, f.detection.probability);
                        format!("{:.0}x{:.0}+{:.0}+{:.0} (p={p:.2})", r.w, r.h, r.x, r.y)
                    })
                    .collect();
                writeln!(
                    out,
                    "{path}: {} {}",
                    plural(faces.len(), "face"),
                    boxes.join(" ")
                )?;
            }
        }
    }
    Ok(super::exit_code(failed))
}

fn run_aligned(args: EmbedArgs) -> anyhow::Result<i32> {
    let models = Models::new(args.settings.models.clone());
    let device = Device::choose(args.settings.device)?.networks;
    let graph = models.get(&models::FACENET)?;
    let mut embedder = Embedder::load_with(&graph, &device, args.settings.facenet_precision)
        .context("cannot load FaceNet")?;
    embedder.standardisation = args.networks.standardisation;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (files, mut failed) = super::photo_files(&args.paths);
    let reader = Reader::for_settings(&args.settings);
    for chunk in files.chunks(BATCH) {
        let (ok, decode_failed) = super::decode(&reader, chunk);
        failed += decode_failed;
        let side = INPUT_SIDE as u32;
        let crops: Vec<Vec<u8>> = ok
            .iter()
            .map(|(_, p)| alignment::whole(&p.rgb, side))
            .collect();
        let embeddings = embedder.embed(&crops);
        for ((path, _), embedding) in ok.iter().zip(&embeddings) {
            let path = path.to_string_lossy();
            if args.json {
                let line = AlignedLine {
                    path: &path,
                    embedding,
                };
                writeln!(out, "{}", serde_json::to_string(&line)?)?;
            } else {
                writeln!(out, "{path}: embedded ({} floats)", embedding.len())?;
            }
        }
    }
    Ok(super::exit_code(failed))
}
