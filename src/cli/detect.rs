//! `visage detect`: decode photos in parallel, detect faces in batches on the chosen device, and
//! print one line per photo (JSON with `--json`). Unreadable files are reported and skipped.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::config::Settings;
use crate::detection::{Detector, Face};
use crate::photo::Photo;

/// Photos decoded and detected together (one GPU submission).
const BATCH: usize = 16;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// One JSON object per photo and line
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub settings: Settings,
    /// Photo files or folders (searched recursively)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Serialize)]
struct PhotoFaces<'a> {
    path: &'a str,
    width: u32,
    height: u32,
    faces: &'a [Face],
}

pub fn run(args: DetectArgs) -> anyhow::Result<i32> {
    let detector = Detector::new(&args.settings).context("cannot start the face detector")?;
    let started = Instant::now();
    let mut failed = 0usize;
    let (mut photos, mut faces) = (0usize, 0usize);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (files, walk_failed) = super::photo_files(&args.paths);
    failed += walk_failed;
    for chunk in files.chunks(BATCH) {
        let (ok, decode_failed) = super::decode(chunk);
        failed += decode_failed;
        let refs: Vec<&Photo> = ok.iter().map(|(_, p)| p).collect();
        let found = detector
            .detect_batch(&refs)
            .context("face detection failed")?;
        for ((path, photo), found) in ok.iter().zip(found) {
            photos += 1;
            faces += found.len();
            let path = path.to_string_lossy();
            if args.json {
                let line = PhotoFaces {
                    path: &path,
                    width: photo.original_width,
                    height: photo.original_height,
                    faces: &found,
                };
                writeln!(out, "{}", serde_json::to_string(&line)?)?;
            } else {
                let boxes: Vec<String> = found
                    .iter()
                    .map(|f| format!("{}x{}+{}+{}", f.w, f.h, f.x, f.y))
                    .collect();
                writeln!(out, "{path}: {} face(s) {}", found.len(), boxes.join(" "))?;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if !args.json {
        writeln!(
            out,
            "{photos} photo(s), {faces} face(s), {failed} failed, {secs:.2} s ({:.1} photos/s) on {}",
            photos as f64 / secs.max(1e-9),
            detector.device()
        )?;
    }
    Ok(super::exit_code(failed))
}
