//! `visage index` (folders into the database, then clustering) and `visage cluster`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::words::{plural, say_empty};
use super::{StoreArgs, exit_code};
use crate::config::Settings;
use crate::graph::GraphBackend;
use crate::index;
use crate::people::assign::{self, ClusterReport};
use crate::pipeline::Pipeline;
use crate::store::{Store, clusters};

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Folders (or files) of photos
    #[arg(required = true, value_name = "DIR")]
    pub paths: Vec<PathBuf>,
    /// Only index; do not cluster and match afterwards
    #[arg(long)]
    pub no_cluster: bool,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Drop automatic clusters and matches first and rebuild them (manual ones stay)
    #[arg(long)]
    pub recluster: bool,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub settings: Settings,
}

pub fn run_index(args: IndexArgs) -> anyhow::Result<i32> {
    super::require_paths(&args.paths)?;
    let mut store = args.store.open_or_create()?;
    let load = || Pipeline::new(&args.settings, true);
    let report = index::index(&mut store, load, &args.paths, |path, why| {
        eprintln!("visage: {}: {why}", path.display())
    })
    .with_context(|| format!("indexing into {}", store.path().display()))?;
    // A run that added and removed no face does not cluster again, unless the library was
    // never clustered (indexed with --no-cluster, or a first run stopped before clustering).
    let changed = report.indexed > 0 || report.gone > 0 || store.read(clusters::none_yet)?;
    let clustered = if args.no_cluster || !changed {
        None
    } else {
        Some(cluster(&mut store, &args.settings, false)?)
    };
    if report.files == 0 && report.failed == 0 {
        let paths: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        say_empty(
            args.json,
            &format!(
                "no photo files under {} (visage reads {})",
                paths.join(", "),
                crate::walk::EXTENSIONS.join(", ")
            ),
        );
    }
    if args.json {
        let out = serde_json::json!({ "index": report, "cluster": clustered });
        println!("{out}");
    } else {
        println!(
            "{}: {} indexed, {} unchanged, {} failed, {} gone; {} found in {:.1} s",
            plural(report.files, "file"),
            report.indexed,
            report.unchanged,
            report.failed,
            report.gone,
            plural(report.faces, "face"),
            report.seconds
        );
        match &clustered {
            Some(c) => print_cluster(c),
            None if !args.no_cluster => println!(
                "clustering skipped: no face was added or removed (`visage cluster` matches \
                 again, e.g. after naming people)"
            ),
            None => {}
        }
    }
    Ok(exit_code(report.failed))
}

pub fn run_cluster(args: ClusterArgs) -> anyhow::Result<i32> {
    let mut store = args.store.open()?;
    let report = cluster(&mut store, &args.settings, args.recluster)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_cluster(&report);
    }
    Ok(0)
}

fn cluster(
    store: &mut Store,
    settings: &Settings,
    recluster: bool,
) -> anyhow::Result<ClusterReport> {
    let backend = GraphBackend::choose(settings.device)?;
    log::info!("neighbour graph on {}", backend.describe());
    assign::run(store, settings, &backend, recluster)
        .with_context(|| format!("clustering the faces in {}", store.path().display()))
}

fn print_cluster(c: &ClusterReport) {
    println!(
        "clustering: {} matched to known clusters, {} new clusters from {} eligible faces ({} placed), \
         {} ambiguous, {} left unassigned, in {:.1} s",
        c.matched,
        c.new_clusters,
        c.eligible,
        c.clustered,
        c.ambiguous,
        c.unassigned_after,
        c.seconds
    );
}
