//! `visage detect`: decode photos in parallel, find faces in batches (PICO on the chosen device,
//! MTCNN's proposals, O-Net's verdict: the faces `visage index` would store, without embedding
//! them; or with `--scan-only` PICO's merged windows alone), and print one line per photo (JSON
//! with `--json`). Unreadable files are reported and skipped.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::words::plural;
use crate::config::Settings;
use crate::detection::pico::{Face, Pico};
use crate::detection::{Detection, Detector};
use crate::device::Device;
use crate::geometry::Rect;
use crate::models::Models;
use crate::photo::{Photo, Reader};

/// Photos decoded and detected together (one GPU submission).
const BATCH: usize = 16;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// One JSON object per photo and line
    #[arg(long)]
    pub json: bool,
    /// PICO's scan alone (the GPU kernel or its CPU twin): no MTCNN proposals, no O-Net
    #[arg(long)]
    pub scan_only: bool,
    #[command(flatten)]
    pub settings: Settings,
    /// Photo files or folders (searched recursively)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Serialize)]
struct PhotoFaces<'a, F> {
    path: &'a str,
    width: u32,
    height: u32,
    faces: &'a [F],
}

/// What finds the faces.
enum Stage {
    Scan(Box<Pico>),
    Find(Box<Detector>),
}

/// A face as the text output shows it.
trait Boxed: Serialize {
    fn rect(&self) -> Rect;
}

impl Boxed for Face {
    fn rect(&self) -> Rect {
        Face::rect(self)
    }
}

impl Boxed for Detection {
    fn rect(&self) -> Rect {
        self.rect
    }
}

fn print<F: Boxed>(
    out: &mut impl Write,
    json: bool,
    path: &str,
    photo: &Photo,
    faces: &[F],
) -> anyhow::Result<()> {
    if json {
        let line = PhotoFaces {
            path,
            width: photo.original_width,
            height: photo.original_height,
            faces,
        };
        writeln!(out, "{}", serde_json::to_string(&line)?)?;
    } else {
        let boxes: Vec<String> = faces
            .iter()
            .map(|f| {
                let r = f.rect();
                format!("{:.0}x{:.0}+{:.0}+{:.0}", r.w, r.h, r.x, r.y)
            })
            .collect();
        writeln!(
            out,
            "{path}: {} {}",
            plural(faces.len(), "face"),
            boxes.join(" ")
        )?;
    }
    Ok(())
}

pub fn run(args: DetectArgs) -> anyhow::Result<i32> {
    super::require_paths(&args.paths)?;
    let device = Device::choose(args.settings.device).context("cannot start the face detector")?;
    let stage = if args.scan_only {
        Stage::Scan(Box::new(
            Pico::new(&args.settings, &device).context("cannot start the face detector")?,
        ))
    } else {
        let models = Models::new(args.settings.models.clone());
        Stage::Find(Box::new(
            Detector::new(&args.settings, true, &models, &device)
                .context("cannot start the face detector")?,
        ))
    };
    let started = Instant::now();
    let mut failed = 0usize;
    let (mut photos, mut faces) = (0usize, 0usize);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (files, walk_failed) = super::photo_files(&args.paths);
    let reader = Reader::for_settings(&args.settings);
    failed += walk_failed;
    for chunk in files.chunks(BATCH) {
        let (ok, decode_failed) = super::decode(&reader, chunk);
        failed += decode_failed;
        let refs: Vec<&Photo> = ok.iter().map(|(_, p)| p).collect();
        photos += ok.len();
        match &stage {
            Stage::Scan(pico) => {
                let found = pico.detect_batch(&refs).context("face detection failed")?;
                for ((path, photo), found) in ok.iter().zip(found) {
                    faces += found.len();
                    print(&mut out, args.json, &path.to_string_lossy(), photo, &found)?;
                }
            }
            Stage::Find(detector) => {
                let found = detector.detect(&refs).context("face detection failed")?;
                for ((path, photo), found) in ok.iter().zip(found) {
                    faces += found.len();
                    print(&mut out, args.json, &path.to_string_lossy(), photo, &found)?;
                }
            }
        }
    }
    let device = match &stage {
        Stage::Scan(pico) => pico.device(),
        Stage::Find(detector) => detector.pico.device(),
    };
    let secs = started.elapsed().as_secs_f64();
    if !args.json {
        writeln!(
            out,
            "{}, {}, {failed} failed, {secs:.2} s ({:.1} photos/s) on {}",
            plural(photos, "photo"),
            plural(faces, "face"),
            photos as f64 / secs.max(1e-9),
            device
        )?;
    }
    Ok(super::exit_code(failed))
}
