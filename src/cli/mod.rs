//! The command line: argument parsing and one module per command. Commands turn settings and
//! paths into calls on the library and print results; they hold no algorithm of their own.

pub mod bench;
pub mod detect;
pub mod embed;
pub mod eval;
pub mod models;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use rayon::prelude::*;

use crate::photo::Photo;
use crate::walk;

#[derive(Debug, Parser)]
#[command(
    name = "visage",
    version,
    about = "Find, embed, cluster and name the faces in a photo library"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Detect faces in photos (files or folders, recursively)
    Detect(detect::DetectArgs),
    /// Detect, verify, align and embed the faces in photos (512-d FaceNet vectors)
    Embed(embed::EmbedArgs),
    /// Measure how well embeddings separate people, on a folder with one subfolder per person
    Eval(eval::EvalArgs),
    /// List or fetch the model files
    Models(models::ModelsArgs),
    /// Measure throughput (one JSON line, comparable with benches/peers)
    Bench(bench::BenchArgs),
}

/// Choices about the networks that are measured rather than settings (see BENCHMARKS.md).
#[derive(Debug, clap::Args)]
pub struct NetworkArgs {
    /// Skip O-Net: cut the detection box as it is (no landmarks, no verification)
    #[arg(long)]
    pub no_onet: bool,
    /// How crop pixels are scaled for FaceNet
    #[arg(long, value_enum, default_value_t = crate::embedding::Standardisation::Fixed)]
    pub standardisation: crate::embedding::Standardisation,
}

/// Exit code when some inputs failed but the run went on.
pub const EXIT_SOME_FAILED: i32 = 1;
/// Exit code when the command could not run at all.
pub const EXIT_FATAL: i32 = 2;

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Detect(args) => detect::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Models(args) => models::run(args),
        Command::Bench(args) => bench::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("visage: {e:#}");
            EXIT_FATAL
        }
    }
}

/// The photo files under `paths`; each path that cannot be walked is reported on stderr and
/// counted in the second value.
pub(crate) fn photo_files(paths: &[PathBuf]) -> (Vec<PathBuf>, usize) {
    let (mut files, mut failed) = (Vec::new(), 0);
    for entry in walk::photos(paths) {
        match entry {
            Ok(p) => files.push(p),
            Err((path, why)) => {
                eprintln!("visage: {}: {why}", path.display());
                failed += 1;
            }
        }
    }
    (files, failed)
}

/// Decode photos in parallel; each that fails is reported on stderr (file and reason) and
/// counted in the second value.
pub(crate) fn decode(paths: &[PathBuf]) -> (Vec<(&Path, Photo)>, usize) {
    let decoded: Vec<_> = paths.par_iter().map(|p| Photo::open(p)).collect();
    let (mut ok, mut failed) = (Vec::new(), 0);
    for (path, photo) in paths.iter().zip(decoded) {
        match photo {
            Ok(photo) => ok.push((path.as_path(), photo)),
            Err(e) => {
                eprintln!("visage: {}: {e}", path.display());
                failed += 1;
            }
        }
    }
    (ok, failed)
}

/// The exit code for a run in which `failed` inputs failed.
pub(crate) fn exit_code(failed: usize) -> i32 {
    if failed > 0 { EXIT_SOME_FAILED } else { 0 }
}
