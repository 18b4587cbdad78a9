//! `visage merge SHARD_DB... --db LIBRARY`: brings the shard databases that `visage index --shard`
//! wrote on many machines into one library, one transaction per shard (see `store::merge`).
//! Clustering is `visage cluster`, run once afterwards.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;

use super::{EXIT_SOME_FAILED, StoreArgs};
use crate::store::Store;
use crate::store::merge::{self, MergeReport, PathMap};

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard databases written by `visage index --shard I/N` (or --shards)
    #[arg(required = true, value_name = "SHARD_DB")]
    pub shards: Vec<PathBuf>,
    /// Photo paths under FROM in the shards are under TO here (where the workers mounted the
    /// photos elsewhere); may be given more than once, the first that matches is used
    #[arg(long, value_name = "FROM=TO")]
    pub path_map: Vec<PathMap>,
    /// One JSON line per shard
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The 16 bytes every SQLite database file begins with.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

pub fn run(args: MergeArgs) -> anyhow::Result<i32> {
    // Every shard is checked before the library is opened (or created): a typo, or the person
    // merge of old (`visage merge Robert Bob`), writes nothing.
    let problems: Vec<String> = args
        .shards
        .iter()
        .filter_map(|p| not_a_database(p).map(|why| format!("{}: {why}", p.display())))
        .collect();
    if !problems.is_empty() {
        // `visage merge A B` was the person merge before shards came.
        let hint = if problems.len() == 2 && args.shards.len() == 2 {
            "; to merge one person into another: visage merge-person FROM INTO"
        } else {
            ""
        };
        bail!(
            "{}\n(`visage merge` takes shard databases, written by `visage index --shard I/N`{hint})",
            problems.join("\n")
        );
    }
    let mut library = args.store.open_or_create()?;
    let mut failed = 0;
    let mut merged = Vec::new();
    for path in &args.shards {
        let outcome = Store::open(path)
            .with_context(|| format!("shard {}", path.display()))
            .and_then(|shard| Ok(merge::merge(&mut library, &shard, &args.path_map)?));
        match outcome {
            Ok(report) => {
                if args.json {
                    println!("{}", serde_json::to_string(&report)?);
                } else {
                    print_report(&report);
                }
                merged.push(report);
            }
            Err(e) => {
                // Nothing of this shard was stored; the others still are.
                eprintln!("visage: {e:#}");
                failed += 1;
            }
        }
    }
    if !args.json {
        let photos: usize = merged.iter().map(|r| r.photos).sum();
        let faces: usize = merged.iter().map(|r| r.faces).sum();
        println!(
            "merged {} of {} shards into {} ({photos} photos, {faces} faces written); cluster \
             them once with `visage cluster`",
            merged.len(),
            args.shards.len(),
            library.path().display(),
        );
    }
    Ok(if failed > 0 { EXIT_SOME_FAILED } else { 0 })
}

/// Why `path` cannot be a shard database, if it cannot.
fn not_a_database(path: &Path) -> Option<String> {
    let mut header = [0u8; 16];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header));
    match read {
        Ok(()) if &header == SQLITE_HEADER => None,
        Ok(()) => Some("not an SQLite database".into()),
        Err(_) if !path.exists() => Some("no such file".into()),
        Err(_) if path.is_dir() => Some("a folder, not a database file".into()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Some("not an SQLite database (too short)".into())
        }
        Err(e) => Some(format!("cannot read: {e}")),
    }
}

fn print_report(r: &MergeReport) {
    println!(
        "{}: {} photos ({} new, {} replaced, {} unchanged, {} failed, {} gone), {} faces, in {:.1} s",
        r.shard.display(),
        r.photos,
        r.added,
        r.replaced,
        r.unchanged,
        r.failed,
        r.gone,
        r.faces,
        r.seconds
    );
}
