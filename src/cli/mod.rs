//! The command line: argument parsing and one module per command. Commands turn settings and
//! paths into calls on the library and print results; they hold no algorithm of their own.

pub mod detect;

use clap::{Parser, Subcommand};

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
}

/// Exit code when some inputs failed but the run went on.
pub const EXIT_SOME_FAILED: i32 = 1;
/// Exit code when the command could not run at all.
pub const EXIT_FATAL: i32 = 2;

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Detect(args) => detect::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("visage: {e:#}");
            EXIT_FATAL
        }
    }
}
