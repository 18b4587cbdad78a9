//! The command line: argument parsing and one module per command. Commands turn settings and
//! paths into calls on the library and print results; they hold no algorithm of their own.

pub mod bench;
pub mod detect;
pub mod embed;
pub mod eval;
pub mod index;
pub mod merge;
pub mod models;
pub mod people;
pub mod serve;
pub mod words;
pub mod xmp;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use rayon::prelude::*;

use crate::photo::{Photo, Reader};
use crate::store::{Store, StoreError};
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
    /// Index folders of photos into the database, then cluster and match the faces (or one
    /// shard of them: --shard I/N)
    Index(index::IndexArgs),
    /// Merge shard databases (`index --shard`) into the library; then run `visage cluster`
    Merge(merge::MergeArgs),
    /// Cluster unassigned faces and match them to known clusters
    Cluster(index::ClusterArgs),
    /// List people with their face and photo counts
    People(people::PeopleArgs),
    /// List a person's photos
    Person(people::PersonArgs),
    /// List faces, one per line: box in original pixels, score, cluster, person
    #[command(long_about = people::FACES_HELP)]
    Faces(people::FacesArgs),
    /// List clusters (automatic, named, ignored), the largest first: 100 unless --limit or --all
    Clusters(people::ClustersArgs),
    /// Name clusters (c12) and faces (f345) as one person, then match
    Name(people::NameArgs),
    /// Rename a person
    Rename(people::RenameArgs),
    /// Merge one person into another
    MergePerson(people::MergePersonArgs),
    /// Move chosen faces to another or a new person
    Split(people::SplitArgs),
    /// Say a face is not a person; it is never matched to them again
    Reject(people::RejectArgs),
    /// Mark a cluster as not a person of interest
    Ignore(people::IgnoreArgs),
    /// Bring an ignored cluster back for review
    Unignore(people::IgnoreArgs),
    /// Mark faces "not a face" or "stranger" (never clustered, matched or suggested again)
    Mark(people::MarkArgs),
    /// The unnamed faces that are probably a person, one group per person, best first
    Suggestions(people::SuggestionsArgs),
    /// The decisions made, newest first
    History(people::HistoryArgs),
    /// Take back the last decision (or the N last, or one by --action)
    Undo(people::UndoArgs),
    /// Hide a person from `visage people`
    Hide(people::HideArgs),
    /// Show a hidden person again
    Unhide(people::HideArgs),
    /// Counts and distance statistics
    Stats(people::ReadArgs),
    /// Find (and with --fix repair) inconsistencies in the database
    Audit(people::AuditArgs),
    /// Drop automatic clusters and matches (--all --force: every cluster, person and decision)
    Reset(people::ResetArgs),
    /// Start the review page: see faces and name people in the browser (prints the URL to open)
    Serve(serve::ServeArgs),
    /// Write the names given in visage into photo metadata (XMP sidecars)
    Export(xmp::ExportArgs),
    /// Read names other programs wrote into photo metadata (XMP) onto visage's faces
    Import(xmp::ImportArgs),
}

/// Where the database is.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Database file [default: $XDG_DATA_HOME/visage/visage.db]
    #[arg(long, env = "VISAGE_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
}

impl StoreArgs {
    /// `--db`, `VISAGE_DB`, or the default path.
    pub fn path(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(Store::default_path)
    }

    /// The library this command reads or changes. A path with no database is refused, and
    /// nothing is created there: a mistyped `--db` must not look like an empty library.
    pub fn open(&self) -> anyhow::Result<Store> {
        let path = self.path();
        Store::open(&path).map_err(|e| match e {
            StoreError::NoDatabase { .. } if self.db.is_none() => anyhow::anyhow!(
                "no library yet at {} (the default database): make one with `visage index DIR`, \
                 or name another with --db PATH",
                path.display()
            ),
            e => e.into(),
        })
    }

    /// The library, made if there is none: for the commands that fill one (`index`, `import`,
    /// merging shards).
    pub fn open_or_create(&self) -> anyhow::Result<Store> {
        Ok(Store::open_or_create(&self.path())?)
    }
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
/// Exit code when Ctrl-C stopped the command (as a shell reports a process ended by SIGINT).
pub const EXIT_STOPPED: i32 = 130;

/// A flag the first Ctrl-C (SIGINT) sets, for a long command to stop at its next check and leave
/// everything as it was; a second Ctrl-C ends the process at once (nothing is committed midway
/// either way: the command's writes are one transaction).
pub(crate) fn stop_on_ctrl_c() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    // SAFETY: the handler only swaps an atomic and may call `_exit`, both async-signal-safe.
    unsafe {
        signal_hook_registry::register(libc::SIGINT, move || {
            if set.swap(true, Ordering::SeqCst) {
                libc::_exit(EXIT_STOPPED);
            }
        })
    }
    .map_err(|e| anyhow::anyhow!("listening for Ctrl-C: {e}"))?;
    Ok(flag)
}

/// After Ctrl-C, interrupt the SQL statement `store` is running, if any: a long query (sorting
/// ten million faces) then stops within a moment too, not at the next check after it.
pub(crate) fn interrupt_on_stop(
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
    store: &crate::store::Store,
) {
    let (stop, handle) = (stop.clone(), store.interrupt_handle());
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        handle.interrupt();
    });
}

/// Run a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Detect(args) => detect::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Models(args) => models::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Index(args) => index::run_index(args),
        Command::Merge(args) => merge::run(args),
        Command::Cluster(args) => index::run_cluster(args),
        Command::People(args) => people::people(args),
        Command::Person(args) => people::person(args),
        Command::Faces(args) => people::faces(args),
        Command::Clusters(args) => people::clusters(args),
        Command::Name(args) => people::name(args),
        Command::Rename(args) => people::rename(args),
        Command::MergePerson(args) => people::merge_person(args),
        Command::Split(args) => people::split(args),
        Command::Reject(args) => people::reject(args),
        Command::Ignore(args) => people::ignore(args),
        Command::Unignore(args) => people::unignore(args),
        Command::Mark(args) => people::mark(args),
        Command::Suggestions(args) => people::suggestions(args),
        Command::History(args) => people::history(args),
        Command::Undo(args) => people::undo(args),
        Command::Hide(args) => people::hide(args, true),
        Command::Unhide(args) => people::hide(args, false),
        Command::Stats(args) => people::stats(args),
        Command::Audit(args) => people::audit(args),
        Command::Reset(args) => people::reset(args),
        Command::Serve(args) => serve::run(args),
        Command::Export(args) => xmp::run_export(args),
        Command::Import(args) => xmp::run_import(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // An id or name that is not there says where the real ones are listed.
            let hint = e.chain().find_map(|c| {
                let store = c.downcast_ref::<StoreError>().or_else(|| {
                    match c.downcast_ref::<crate::people::PeopleError>() {
                        Some(crate::people::PeopleError::Store(s)) => Some(s),
                        _ => None,
                    }
                });
                match store {
                    Some(StoreError::NotFound(item)) => Some(item.listed_by()),
                    _ => None,
                }
            });
            match hint {
                Some(list) => eprintln!("visage: {e:#} (see `{list}`)"),
                None => eprintln!("visage: {e:#}"),
            }
            EXIT_FATAL
        }
    }
}

/// Refuse, before any work, paths that do not exist: a typo must not look like an empty folder.
/// Names every missing path.
pub(crate) fn require_paths(paths: &[PathBuf]) -> anyhow::Result<()> {
    let missing: Vec<String> = walk::missing(paths)
        .map(|p| p.display().to_string())
        .collect();
    match missing.as_slice() {
        [] => Ok(()),
        [one] => anyhow::bail!("{one}: no such file or folder (nothing was done)"),
        many => anyhow::bail!(
            "no such files or folders: {} (nothing was done)",
            many.join(", ")
        ),
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
pub(crate) fn decode<'a>(reader: &Reader, paths: &'a [PathBuf]) -> (Vec<(&'a Path, Photo)>, usize) {
    let decoded: Vec<_> = paths.par_iter().map(|p| reader.open(p)).collect();
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
