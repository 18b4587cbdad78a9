//! `visage export xmp` and `visage import xmp`: the names people gave, out to and in from the
//! XMP face regions other photo programs use. Output only; the work is in [`crate::exchange`].

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::words::{plural, say_empty};
use super::{StoreArgs, exit_code};
use crate::config::Settings;
use crate::exchange::SidecarName;
use crate::exchange::export::{self, ExportOptions};
use crate::exchange::import::{self, ImportOptions, Prefer};
use crate::pipeline::Pipeline;

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub format: ExportFormat,
}

#[derive(Debug, Subcommand)]
pub enum ExportFormat {
    /// Write named faces into XMP sidecars (MWG and Microsoft regions, people keywords)
    Xmp(ExportXmpArgs),
}

#[derive(Debug, Args)]
pub struct ExportXmpArgs {
    /// Only photos under these files or folders [default: every photo with a named face]
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Say what would change; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace a face region that names the same face differently (else it is kept and reported)
    #[arg(long)]
    pub overwrite: bool,
    /// How sidecars are named
    #[arg(long, value_enum, default_value_t)]
    pub sidecar_name: SidecarName,
    /// Faces matched automatically to a named person too, not only faces named by hand
    #[arg(long)]
    pub include_matched: bool,
    /// One JSON line per sidecar, then the summary
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub format: ImportFormat,
}

#[derive(Debug, Subcommand)]
pub enum ImportFormat {
    /// Read MWG and Microsoft face regions from sidecars and from XMP inside the photos
    Xmp(ImportXmpArgs),
}

#[derive(Debug, Args)]
pub struct ImportXmpArgs {
    /// Photos (files or folders, recursively) whose XMP is read
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Whose name a face keeps when visage and the file disagree
    #[arg(long, value_enum, default_value_t)]
    pub prefer: Prefer,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub settings: Settings,
}

pub fn run_export(args: ExportArgs) -> anyhow::Result<i32> {
    let ExportFormat::Xmp(args) = args.format;
    super::require_paths(&args.paths)?;
    let store = args.store.open()?;
    let opts = ExportOptions {
        paths: args.paths.clone(),
        sidecar: args.sidecar_name,
        include_matched: args.include_matched,
        overwrite: args.overwrite,
        dry_run: args.dry_run,
    };
    let report = export::export(&store, &opts, |r| {
        if let Some(e) = &r.error {
            eprintln!("visage: {}: {e}", r.sidecar);
        }
        for (file, visage) in &r.changes.conflicts {
            eprintln!(
                "visage: {}: a face is {file:?} there and {visage:?} in visage; kept {file:?} \
                 (--overwrite writes visage's)",
                r.sidecar
            );
        }
        if args.json {
            println!("{}", serde_json::to_string(r).expect("serialisable"));
        } else if r.outcome != "unchanged" && r.error.is_none() {
            let c = &r.changes;
            let mut what = vec![format!("{} added", plural(c.added, "face"))];
            if c.replaced > 0 {
                what.push(format!("{} replaced", c.replaced));
            }
            if c.kept > 0 {
                what.push(format!("{} kept", plural(c.kept, "other region")));
            }
            if !c.keywords_added.is_empty() {
                what.push(format!("keywords + {}", c.keywords_added.join(", ")));
            }
            println!("{} {}: {}", r.outcome, r.sidecar, what.join(", "));
        }
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} with {}: {} {}, {} unchanged, {} failed, {}, in {:.2} s",
            plural(report.photos, "photo"),
            plural(report.faces, "named face"),
            plural(report.written, "sidecar"),
            if args.dry_run {
                "would be written"
            } else {
                "written"
            },
            report.unchanged,
            report.failed,
            plural(report.conflicts, "conflict"),
            report.seconds
        );
    }
    if report.photos == 0 {
        let named = if args.include_matched {
            "named or matched"
        } else {
            "named by hand"
        };
        let note = if args.paths.is_empty() {
            format!("nothing to export: no face is {named} yet (`visage name` names one)")
        } else {
            let paths: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
            format!(
                "nothing to export: no photo under {} has a face {named}",
                paths.join(", ")
            )
        };
        say_empty(args.json, &note);
    }
    Ok(exit_code(report.failed))
}

pub fn run_import(args: ImportArgs) -> anyhow::Result<i32> {
    let ImportFormat::Xmp(args) = args.format;
    super::require_paths(&args.paths)?;
    let mut store = args.store.open_or_create()?;
    let opts = ImportOptions {
        paths: args.paths.clone(),
        prefer: args.prefer,
    };
    let load = || Pipeline::new(&args.settings, true);
    let report = import::import(&mut store, &args.settings, &opts, load, |path, why| {
        eprintln!("visage: {}: {why}", path.display())
    })?;
    for c in &report.conflicts {
        eprintln!(
            "visage: {}: {} is {:?} in visage and {:?} in {}; kept {}'s",
            c.photo,
            c.face,
            c.visage,
            c.file,
            c.source.trim_start_matches("xmp:"),
            if c.kept == Prefer::File {
                "the file"
            } else {
                "visage"
            }
        );
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}, {} with named face regions: {}, {} named on detected faces, {} already so, \
             {}, {}, {} not indexed, {} failed, in {:.2} s",
            plural(report.photos, "photo"),
            report.with_regions,
            plural(report.regions, "region"),
            report.matched,
            report.already,
            plural(report.created, "new face"),
            plural(report.conflicts.len(), "conflict"),
            plural(report.not_indexed, "photo"),
            report.failed,
            report.seconds
        );
        if report.matched + report.created > 0 {
            println!("`visage cluster` now matches the rest of these people's faces");
        }
    }
    Ok(exit_code(report.failed + report.not_indexed))
}
