//! `visage index` (folders into the database, then clustering; or one shard of them into a shard
//! database) and `visage cluster`.

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::Context;
use clap::Args;

use super::words::{plural, say_empty};
use super::{StoreArgs, exit_code};
use crate::config::Settings;
use crate::device::Device;
use crate::gpu::GpuError;
use crate::graph::Control;
use crate::graph::GraphBackend;
use crate::graph::partition_file::Origin;
use crate::graph::parts::Split;
use crate::index::{self, IndexOptions, IndexReport, Shard, ShardCount};
use crate::people::assign::{self, ClusterReport};
use crate::photo::Reader;
use crate::pipeline::Pipeline;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Folders (or files) of photos
    #[arg(required = true, value_name = "DIR")]
    pub paths: Vec<PathBuf>,
    /// Only index; do not cluster and match afterwards
    #[arg(long)]
    pub no_cluster: bool,
    /// Index part I of N of the photos only (counted from 0), into this database; merge the N
    /// shard databases with `visage merge`, then cluster once. Implies --no-cluster
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    pub shard: Option<Shard>,
    /// Index one of N shards, I from the scheduler: JOB_COMPLETION_INDEX (Kubernetes Indexed
    /// Job) or SLURM_ARRAY_TASK_ID; `auto`: N and I from the Slurm job array. Implies --no-cluster
    #[arg(long, value_name = "N|auto")]
    pub shards: Option<ShardCount>,
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
    /// Compute part I of N (counted from 0) of a re-cluster's neighbour graph into --graphs DIR,
    /// reading the library only; once all N parts are there, `visage cluster --graphs DIR`
    /// re-clusters from them
    #[arg(
        long,
        value_name = "I/N",
        requires = "graphs",
        conflicts_with = "graph_shards"
    )]
    pub graph_shard: Option<Shard>,
    /// Compute one of N parts of the graph, I from the scheduler: JOB_COMPLETION_INDEX
    /// (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID; `auto`: N and I from the Slurm job array
    #[arg(long, value_name = "N|auto", requires = "graphs")]
    pub graph_shards: Option<ShardCount>,
    /// The folder of a graph's parts: where --graph-shard writes its part; alone, re-cluster
    /// (as --recluster) from every part there, refusing if one is missing or out of date
    #[arg(long, value_name = "DIR")]
    pub graphs: Option<PathBuf>,
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
    let shard = match (args.shard, args.shards) {
        (Some(shard), _) => Some(shard),
        (None, Some(count)) => Some(Shard::from_scheduler(count, |name| {
            std::env::var(name).ok()
        })?),
        (None, None) => None,
    };
    let mut store = args.store.open_or_create()?;
    // One device for the pipeline (loaded only when there is a photo to index) and the
    // clustering, chosen when the first of them needs it.
    let device = OnceLock::new();
    let load = || Pipeline::on(&args.settings, true, chosen(&device, &args.settings)?);
    let reader = Reader::for_settings(&args.settings);
    let opts = IndexOptions::new(&args.settings, shard);
    let report = index::index(
        &mut store,
        load,
        &reader,
        &args.paths,
        &opts,
        |path, why| eprintln!("visage: {}: {why}", path.display()),
    )
    .with_context(|| format!("indexing into {}", store.path().display()))?;
    // Clustering looks at what changed since its last run only (new faces, faces that left,
    // names given), so a run that changed nothing costs next to nothing. A shard is clustered
    // with the others, once, after `visage merge`.
    let clustered = if args.no_cluster || shard.is_some() {
        None
    } else {
        let device = chosen(&device, &args.settings)?;
        Some(cluster(&mut store, &args.settings, device, false)?)
    };
    if report.files == 0 && report.failed == 0 {
        let paths: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        say_empty(
            args.json,
            &format!(
                "no photo files under {} (visage reads JPEG, PNG, WebP, TIFF, BMP, GIF, HEIC and \
                 AVIF photos, camera RAWs and videos)",
                paths.join(", "),
            ),
        );
    }
    if args.json {
        let out = serde_json::json!({ "index": report, "cluster": clustered });
        println!("{out}");
    } else {
        if let Some(shard) = shard {
            print!(
                "shard {shard} ({} files are other shards'): ",
                report.other_shards
            );
        }
        println!(
            "{}: {} indexed, {} unchanged, {} failed, {} not read, {} gone; {} found in {:.1} s",
            plural(report.files, "file"),
            report.indexed,
            report.unchanged,
            report.failed,
            report.not_read,
            report.gone,
            plural(report.faces, "face"),
            report.seconds
        );
        print_not_read(&report);
        if let Some(c) = &clustered {
            print_cluster(c);
        }
    }
    Ok(exit_code(report.failed))
}

pub fn run_cluster(args: ClusterArgs) -> anyhow::Result<i32> {
    let shard = match (args.graph_shard, args.graph_shards) {
        (Some(shard), _) => Some(shard),
        (None, Some(count)) => Some(
            Shard::from_scheduler(count, |name| std::env::var(name).ok())
                .context("--graph-shards reads the scheduler's task as `index --shards` does")?,
        ),
        (None, None) => None,
    };
    let mut store = args.store.open()?;
    let stop = super::stop_on_ctrl_c()?;
    super::interrupt_on_stop(&stop, &store);
    let device = Device::choose(args.settings.device)?;
    let backend = GraphBackend::on(&device);
    log::info!("neighbour graph on {}", backend.describe());
    if let (Some(shard), Some(dir)) = (shard, &args.graphs) {
        let split = Split {
            index: shard.index,
            count: shard.count,
        };
        let progress = |_: usize, _: usize| {};
        let ctl = Control {
            progress: &progress,
            stop: &stop,
        };
        let db = store.path().to_path_buf();
        let part = store.read_with(|conn| {
            assign::graph::compute_part(conn, &db, &args.settings, &backend, split, dir, &ctl)
        });
        let part = match part {
            Err(e) if e.is_stopped() => {
                eprintln!("visage: {STOPPED} (the part was not written)");
                return Ok(super::EXIT_STOPPED);
            }
            found => found.with_context(|| {
                format!("computing part {shard} of the graph of {}", db.display())
            })?,
        };
        if args.json {
            println!("{}", serde_json::to_string(&part)?);
        } else if part.already {
            println!(
                "graph part {}: already computed for the library as it is ({})",
                part.part,
                part.path.display()
            );
        } else {
            let partition = match part.partition {
                Some(Origin::Built) => ", the IVF partition built and saved for the other parts",
                Some(Origin::Read) => ", the IVF partition read from the one another part saved",
                None => "",
            };
            println!(
                "graph part {}: {} of {} faces ({:?}) in {:.1} s{partition}, {}",
                part.part,
                plural(part.edges as usize, "edge"),
                part.faces,
                part.method,
                part.seconds,
                part.path.display()
            );
        }
        return Ok(0);
    }
    let plan = match &args.graphs {
        Some(dir) => assign::Plan::Parts(dir.clone()),
        None => assign::Plan::Here,
    };
    let how = assign::Full {
        plan: &plan,
        stop: &stop,
    };
    let recluster = args.recluster || args.graphs.is_some();
    let report = match assign::run_with(&mut store, &args.settings, &backend, recluster, how) {
        Err(e) if e.is_stopped() => {
            eprintln!("visage: {STOPPED}");
            return Ok(super::EXIT_STOPPED);
        }
        found => {
            found.with_context(|| format!("clustering the faces in {}", store.path().display()))?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_cluster(&report);
    }
    Ok(0)
}

/// What a command stopped by Ctrl-C says.
const STOPPED: &str = "stopped (Ctrl-C) before the end: the library is as it was";

fn cluster(
    store: &mut Store,
    settings: &Settings,
    device: &Device,
    recluster: bool,
) -> anyhow::Result<ClusterReport> {
    let backend = GraphBackend::on(device);
    log::info!("neighbour graph on {}", backend.describe());
    assign::run(store, settings, &backend, recluster)
        .with_context(|| format!("clustering the faces in {}", store.path().display()))
}

/// The files not read, by kind and reason ("3 .psd: not a kind visage reads"), most first.
fn print_not_read(report: &IndexReport) {
    if report.not_read == 0 {
        return;
    }
    println!("not read:");
    for kind in &report.not_read_kinds {
        let ext = match kind.extension.as_str() {
            "" => "without an extension".to_string(),
            e => format!(".{e}"),
        };
        println!("  {} {ext}: {}", thousands(kind.files), kind.reason);
    }
}

/// `1204` as "1,204".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The device `settings` ask for, chosen on first use.
fn chosen<'a>(cell: &'a OnceLock<Device>, settings: &Settings) -> Result<&'a Device, GpuError> {
    if let Some(device) = cell.get() {
        return Ok(device);
    }
    let device = Device::choose(settings.device)?;
    Ok(cell.get_or_init(|| device))
}

fn print_cluster(c: &ClusterReport) {
    let quiet = c.considered == 0 && c.matched_people == 0 && c.new_clusters == 0;
    if quiet && !c.full {
        println!("clustering: nothing new to cluster ({:.1} s)", c.seconds);
        return;
    }
    if quiet {
        println!("clustering: no faces to cluster yet ({:.1} s)", c.seconds);
        return;
    }
    let mut parts = Vec::new();
    if c.full {
        parts.push(format!(
            "rebuilt every automatic cluster from {} ({}; {} dropped first)",
            plural(c.considered, "face"),
            c.rebuilt.as_deref().unwrap_or("--recluster"),
            plural(c.dropped_clusters, "cluster")
        ));
    }
    parts.push(format!(
        "{} matched to named people",
        plural(c.matched_people, "face")
    ));
    parts.push(format!(
        "{} joined existing clusters",
        plural(c.joined_clusters, "face")
    ));
    parts.push(format!(
        "{} with {}",
        plural(c.new_clusters, "new cluster"),
        plural(c.new_cluster_faces, "face")
    ));
    if c.merged_clusters > 0 {
        parts.push(format!(
            "{} merged into others",
            plural(c.merged_clusters, "cluster")
        ));
    }
    if c.ambiguous > 0 {
        parts.push(format!("{} ambiguous", plural(c.ambiguous, "face")));
    }
    parts.push(format!("{} left unassigned", plural(c.unassigned, "face")));
    println!("clustering: {} ({:.1} s)", parts.join(", "), c.seconds);
}
