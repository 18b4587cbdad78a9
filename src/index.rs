//! `visage index`: brings the store up to date with folders of photos. Walks them, skips files
//! whose size and time (or, if those moved, content hash) are unchanged, reads and decodes the
//! rest in parallel while the previous batch runs through the pipeline, and stores each batch in
//! one transaction. Files that fail are recorded with the reason and the run goes on; files no
//! longer on disk are marked gone. A run may take one [`shard`] of the photos only (part I of N,
//! for many machines); the shards' databases are merged into one library by `store::merge`.
//!
//! It does not cluster (see `people::assign`) and holds no algorithm of a pipeline stage.

pub mod shard;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

use crate::photo::{Photo, Reader};
use crate::pipeline::{Pipeline, PipelineError};
use crate::store::photos::{self, FileInfo, PhotoInfo, PhotoState};
use crate::store::{PhotoId, Store, StoreError};
use crate::walk;
pub use shard::{Shard, ShardCount, ShardError};

/// Photos decoded and stored per batch (and per transaction).
pub const BATCH: usize = 32;

/// What stops a run that puts the faces of photos into the library: `index`, and `import` when a
/// region needs a face of its own (the store, or the networks of the pipeline). A photo that cannot
/// be read is not one: it is reported and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// What one run did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IndexReport {
    /// Photo files found.
    pub files: usize,
    /// Unchanged since the last run (size and time, or content).
    pub unchanged: usize,
    pub indexed: usize,
    pub failed: usize,
    pub faces: usize,
    /// Files in the store that are no longer under the folders walked.
    pub gone: usize,
    /// The part of the photos this run took (`None`: all of them).
    pub shard: Option<Shard>,
    /// Photo files found that belong to other shards (not counted in `files`).
    pub other_shards: usize,
    pub seconds: f64,
    /// Where the time went.
    pub stages: Stages,
}

/// Seconds per stage of an index run. Reading and decoding run on all cores beside the networks
/// (the next batch is decoded while this one is embedded), so they are summed per photo across
/// threads (CPU seconds); the network stages and the store are wall time.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Stages {
    /// Reading the file and its SHA-256, CPU seconds.
    pub read_cpu: f64,
    /// Decoding, orienting and downscaling, CPU seconds.
    pub decode_cpu: f64,
    /// PICO's scan.
    pub detect: f64,
    /// MTCNN's proposals.
    pub propose: f64,
    pub onet: f64,
    pub facenet: f64,
    /// Of `facenet`: reading finer parts of photos for faces too small in the detection image
    /// (wall time; a cost of decoding).
    pub detail: f64,
    /// Writing the batches (one transaction each).
    pub store: f64,
}

/// One file's way through a batch.
enum Outcome {
    /// Same content as stored: only size and time move.
    Unchanged(FileInfo),
    Failed(FileInfo, String),
    Decoded(FileInfo, Photo),
}

/// A batch read and decoded, with the CPU seconds that took (read + hash, decode).
struct ReadBatch {
    outcomes: Vec<Outcome>,
    read_cpu: f64,
    decode_cpu: f64,
}

/// Index the photos under `roots` (all of them, or those of one `shard`). The pipeline is
/// loaded by `load` only when a file changed (re-indexing an unchanged library loads no network),
/// beside reading the first batch. Photos are read by `reader`. Each file that fails is passed to
/// `on_error` (path and reason); the run goes on. A pipeline or database error stops it, with
/// every batch before it stored.
pub fn index(
    store: &mut Store,
    load: impl FnOnce() -> Result<Pipeline, PipelineError> + Send,
    reader: &Reader,
    roots: &[PathBuf],
    shard: Option<Shard>,
    mut on_error: impl FnMut(&Path, &str),
) -> Result<IndexReport, IndexError> {
    let started = Instant::now();
    let mut report = IndexReport {
        shard,
        ..IndexReport::default()
    };
    // What the library holds under the folders walked (a file given itself, and a file reached
    // through a link from elsewhere, are looked up on their own below).
    let mut known: HashMap<String, PhotoState> = HashMap::new();
    for root in roots.iter().filter_map(|r| std::fs::canonicalize(r).ok()) {
        if root.is_dir() {
            let folder = format!("{}/", root.to_string_lossy().trim_end_matches('/'));
            known.extend(store.read(|c| photos::states_under(c, &folder))?);
        }
    }

    // Walk, and keep what changed (of this shard's photos).
    let mut seen = HashSet::new();
    let mut todo: Vec<(FileInfo, Option<PhotoState>)> = Vec::new();
    let found = roots.iter().flat_map(|root| {
        walk::photos(std::slice::from_ref(root))
            .into_iter()
            .map(move |e| (root, e))
    });
    for (root, entry) in found {
        let path = match entry {
            Ok(p) => p,
            Err((p, why)) => {
                on_error(&p, &why);
                report.failed += 1;
                continue;
            }
        };
        if let Some(shard) = shard
            && !shard.takes(&relative(root, &path))
        {
            report.other_shards += 1;
            continue;
        }
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        let key = path.to_string_lossy().into_owned();
        if !seen.insert(key.clone()) {
            continue; // the same file reached twice (a symlink, or two overlapping roots)
        }
        report.files += 1;
        let (size, mtime_ns) = match std::fs::metadata(&path) {
            Ok(m) => (m.len(), m.mtime() * 1_000_000_000 + m.mtime_nsec()),
            Err(e) => {
                on_error(&path, &format!("cannot read: {e}"));
                report.failed += 1;
                continue;
            }
        };
        let file = FileInfo {
            path: key,
            size,
            mtime_ns,
            hash: None,
        };
        let state = match known.get(&file.path) {
            Some(s) => Some(s.clone()),
            None => store.read(|c| photos::state(c, &file.path))?,
        };
        match state {
            Some(s) if !s.failed && !s.gone && s.size == size && s.mtime_ns == mtime_ns => {
                report.unchanged += 1
            }
            _ => todo.push((file, state)),
        }
    }

    // Files, faces, rate, ETA (log lines instead off a terminal).
    let bar = crate::progress::bar(
        todo.len() as u64,
        "{elapsed_precise} [{bar:30}] {pos}/{len} files, {msg}, {per_sec}, ETA {eta}",
    );
    let mut last_log = Instant::now();
    let batches: Vec<_> = todo.chunks(BATCH).collect();
    // The networks load while the first batch is read and decoded (an unchanged library has no
    // batch, and loads nothing).
    let (mut next, loaded) = match batches.first() {
        Some(first) => {
            let (read, loaded) = rayon::join(|| read_batch(reader, first), || bar.suspend(load));
            (Some(read), Some(loaded))
        }
        None => (None, None),
    };
    let pipeline: Option<Pipeline> = loaded.transpose()?;
    for k in 0..batches.len() {
        let batch = next.take().expect("a batch read for every k");
        report.stages.read_cpu += batch.read_cpu;
        report.stages.decode_cpu += batch.decode_cpu;
        let outcomes = batch.outcomes;
        let decoded: Vec<&Photo> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Decoded(_, p) => Some(p),
                _ => None,
            })
            .collect();
        // Decode the next batch while this one runs through the networks.
        let (found, following) = rayon::join(
            || match &pipeline {
                Some(p) if !decoded.is_empty() => p.run_timed(&decoded),
                _ => Ok((Vec::new(), Default::default())),
            },
            || batches.get(k + 1).map(|b| read_batch(reader, b)),
        );
        next = following;
        let (found, times) = found?;
        report.stages.detect += times.detect;
        report.stages.propose += times.propose;
        report.stages.onet += times.onet;
        report.stages.facenet += times.facenet;
        report.stages.detail += times.detail;
        let mut found = found.into_iter();
        let clock = Instant::now();
        store.write(|tx| -> Result<(), StoreError> {
            for outcome in &outcomes {
                match outcome {
                    Outcome::Unchanged(file) => {
                        photos::touch(tx, file)?;
                        report.unchanged += 1;
                    }
                    Outcome::Failed(file, why) => {
                        photos::record_failure(tx, file, why)?;
                        report.failed += 1;
                    }
                    Outcome::Decoded(file, photo) => {
                        let faces = found.next().unwrap_or_default();
                        let info = PhotoInfo {
                            width: photo.original_width,
                            height: photo.original_height,
                            orientation: photo.orientation,
                        };
                        photos::store_indexed(tx, file, info, &faces, crate::store::now())?;
                        report.indexed += 1;
                        report.faces += faces.len();
                    }
                }
            }
            Ok(())
        })?;
        report.stages.store += clock.elapsed().as_secs_f64();
        for outcome in &outcomes {
            if let Outcome::Failed(file, why) = outcome {
                bar.suspend(|| on_error(Path::new(&file.path), why));
            }
        }
        bar.inc(outcomes.len() as u64);
        bar.set_message(format!("{} faces", report.faces));
        if bar.is_hidden()
            && (last_log.elapsed() > Duration::from_secs(10) || k + 1 == batches.len())
        {
            last_log = Instant::now();
            let done = bar.position();
            let rate = done as f64 / started.elapsed().as_secs_f64();
            log::info!(
                "indexed {done}/{} files, {} faces, {rate:.1} files/s, about {:.0} s left",
                todo.len(),
                report.faces,
                (todo.len() as u64 - done) as f64 / rate.max(1e-9)
            );
        }
    }
    bar.finish_and_clear();

    // Files under a walked folder that were not found are gone (of a shard: those that belong to
    // it). A folder that is missing altogether (an unmounted disk) marks nothing.
    let mut gone: Vec<PhotoId> = roots
        .iter()
        .filter(|r| r.is_dir())
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .flat_map(|root| {
            let prefix = format!("{}/", root.to_string_lossy().trim_end_matches('/'));
            known
                .iter()
                .filter(|(path, s)| {
                    !s.gone
                        && !seen.contains(*path)
                        && path.strip_prefix(&prefix).is_some_and(|rel| {
                            shard.is_none_or(|shard| shard.takes(Path::new(rel)))
                        })
                })
                .map(|(_, s)| s.id)
                .collect::<Vec<_>>()
        })
        .collect();
    // Overlapping roots (a folder and one inside it) find the same file twice.
    gone.sort_unstable();
    gone.dedup();
    if !gone.is_empty() {
        store.write(|tx| -> Result<(), StoreError> { Ok(photos::mark_gone(tx, &gone)?) })?;
    }
    report.gone = gone.len();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A photo's path relative to the folder it was found under (a file given itself: its name), as
/// [`Shard`] hashes it.
fn relative(root: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_path_buf(),
        _ => path.file_name().map(PathBuf::from).unwrap_or_default(),
    }
}

/// Read, hash and decode a batch in parallel.
fn read_batch(reader: &Reader, batch: &[(FileInfo, Option<PhotoState>)]) -> ReadBatch {
    let timed: Vec<(Outcome, f64, f64)> = batch
        .par_iter()
        .map(|(file, state)| {
            let clock = Instant::now();
            let mut file = file.clone();
            let bytes = match std::fs::read(&file.path) {
                Ok(b) => b,
                Err(e) => return (Outcome::Failed(file, format!("cannot read: {e}")), 0.0, 0.0),
            };
            let hash = crate::models::sha256_hex(&bytes);
            let read = clock.elapsed().as_secs_f64();
            let same = state
                .as_ref()
                .is_some_and(|s| !s.failed && !s.gone && s.hash.as_ref() == Some(&hash));
            file.hash = Some(hash);
            if same {
                return (Outcome::Unchanged(file), read, 0.0);
            }
            let clock = Instant::now();
            let outcome = match reader.read(Path::new(&file.path), &bytes) {
                Ok(photo) => Outcome::Decoded(file, photo),
                Err(e) => Outcome::Failed(file, e.to_string()),
            };
            (outcome, read, clock.elapsed().as_secs_f64())
        })
        .collect();
    let (read_cpu, decode_cpu) = timed.iter().fold((0.0, 0.0), |a, t| (a.0 + t.1, a.1 + t.2));
    ReadBatch {
        outcomes: timed.into_iter().map(|t| t.0).collect(),
        read_cpu,
        decode_cpu,
    }
}
