//! `visage index`: brings the store up to date with folders of photos and videos. Walks them
//! (every file: see [`crate::walk`]), skips files whose size and time (or, if those moved,
//! content hash) are unchanged, reads and decodes the rest in parallel while the previous batch
//! runs through the pipeline, and stores each batch in one transaction. A video gives stills at a
//! few moments, and keeps one face per person ([`video`]). Files that fail are recorded with the
//! reason and the run goes on; files it does not read (a kind visage does not read, a reader
//! this machine lacks, the video of a Live Photo, a RAW stacked with its JPEG or HEIF) are counted
//! with the reason, never silently; files no longer on disk are marked gone. A run may take one
//! [`shard`] of the files only (part I of N, for many machines); the shards' databases are merged
//! into one library by `store::merge`.
//!
//! It does not cluster (see `people::assign`) and holds no algorithm of a pipeline stage.

pub mod shard;
pub mod video;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

use crate::config::Settings;
use crate::detection::FoundFace;
use crate::photo::video::Video;
use crate::photo::{self, Kind, Photo, PhotoError, Reader, Unsupported};
use crate::pipeline::{Pipeline, PipelineError};
use crate::store::photos::{self, FileInfo, PhotoInfo, PhotoState};
use crate::store::{PhotoId, Store, StoreError};
use crate::walk::{self, Role};
pub use shard::{Shard, ShardCount, ShardError};

/// Stills decoded and stored per batch (and per transaction): as many photos, or fewer videos
/// (each weighs its most stills, [`crate::photo::video::MAX_STILLS`]), so memory stays bounded.
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

/// How a run reads what it finds.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// The part of the files this run takes (`None`: all of them).
    pub shard: Option<Shard>,
    /// Two faces of one video closer than this are one person, whose clearest face is kept (the
    /// cluster distance).
    pub same_person: f32,
}

impl IndexOptions {
    /// The options `settings` give, for all files or one shard.
    pub fn new(settings: &Settings, shard: Option<Shard>) -> Self {
        IndexOptions {
            shard,
            same_person: settings.face_cluster_dist,
        }
    }
}

/// What one run did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct IndexReport {
    /// Files found (but for hidden files, sidecars and the like: see [`crate::walk`]): each is
    /// indexed, unchanged, failed or not read.
    pub files: usize,
    /// Unchanged since the last run (size and time, or content).
    pub unchanged: usize,
    pub indexed: usize,
    pub failed: usize,
    pub faces: usize,
    /// Of `indexed`: videos, and the stills looked at in them.
    pub videos: usize,
    pub stills: usize,
    /// Files found and not read, for the reasons in `not_read_kinds`.
    pub not_read: usize,
    /// `not_read` by extension and reason, most files first.
    pub not_read_kinds: Vec<NotReadKind>,
    /// Each file not read.
    pub not_read_files: Vec<NotReadFile>,
    /// Files in the store that are no longer under the folders walked.
    pub gone: usize,
    /// The part of the files this run took (`None`: all of them).
    pub shard: Option<Shard>,
    /// Files found that belong to other shards (not counted in `files`).
    pub other_shards: usize,
    pub seconds: f64,
    /// Where the time went.
    pub stages: Stages,
}

/// Why a file found was not read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "why", content = "detail")]
pub enum NotRead {
    /// A kind visage does not read (by its name and its content).
    Unsupported,
    /// A reader this machine lacks, and what to install.
    Missing(String),
    /// The video of a Live Photo: its still is read.
    LivePhoto,
    /// A RAW stacked with the JPEG or HEIF of the same shot (which it names): that one is read.
    Stacked(&'static str),
}

impl fmt::Display for NotRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotRead::Unsupported => write!(f, "not a kind visage reads"),
            NotRead::Missing(why) => write!(f, "{why}"),
            NotRead::LivePhoto => write!(f, "part of a Live Photo (its still is read)"),
            NotRead::Stacked(kind) => write!(f, "stacked with its {kind} (the {kind} is read)"),
        }
    }
}

/// What a stacked RAW's twin is, by its name: a HEIF (`.heic`, `.heif`, `.hif`) or a JPEG.
fn twin_kind(twin: Option<&std::path::Path>) -> &'static str {
    let ext = twin
        .and_then(|p| p.extension())
        .map(|e| e.to_string_lossy().to_lowercase());
    match ext.as_deref() {
        Some("heic" | "heif" | "hif") => "HEIF",
        _ => "JPEG",
    }
}

/// Files not read, of one extension, for one reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotReadKind {
    /// Lower case, without the dot ("" for a name without one).
    pub extension: String,
    pub reason: String,
    pub files: usize,
}

/// One file not read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotReadFile {
    pub path: String,
    pub reason: String,
    #[serde(flatten)]
    pub why: NotRead,
    /// The still of a Live Photo's video, the JPEG or HEIF a RAW is stacked with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
}

/// Seconds per stage of an index run. Reading and decoding run on all cores beside the networks
/// (the next batch is decoded while this one is embedded), so they are summed per file across
/// threads (CPU seconds); the network stages and the store are wall time.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Stages {
    /// Reading the file and its SHA-256, CPU seconds.
    pub read_cpu: f64,
    /// Decoding, orienting and downscaling (for a video: ffmpeg's run, waited for), CPU seconds.
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

/// What a file found is read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Still,
    Video,
}

/// A file to read: as found on disk, what the store knew of it, and how it is read.
struct Todo {
    file: FileInfo,
    state: Option<PhotoState>,
    reading: Reading,
}

impl Todo {
    /// Its share of a batch: a photo is one still, a video its most stills.
    fn weight(&self) -> usize {
        match self.reading {
            Reading::Still => 1,
            Reading::Video => crate::photo::video::MAX_STILLS,
        }
    }
}

/// One file's way through a batch.
enum Outcome {
    /// Same content as stored: only size and time move.
    Unchanged(FileInfo),
    Failed(FileInfo, String),
    Decoded(FileInfo, Photo),
    Video(FileInfo, Video),
    /// A kind this machine lacks the reader for (libheif, ffmpeg, a codec): counted, not stored.
    NotRead(FileInfo, NotRead),
}

impl Outcome {
    /// The stills it gives the pipeline.
    fn stills(&self) -> Vec<&Photo> {
        match self {
            Outcome::Decoded(_, p) => vec![p],
            Outcome::Video(_, v) => v.stills.iter().map(|(_, p)| p).collect(),
            _ => Vec::new(),
        }
    }
}

/// A batch read and decoded, with the CPU seconds that took (read + hash, decode).
struct ReadBatch {
    outcomes: Vec<Outcome>,
    read_cpu: f64,
    decode_cpu: f64,
}

/// Index the files under `roots` (all of them, or those of `opts.shard`). The pipeline is
/// loaded by `load` only when a file changed (re-indexing an unchanged library loads no network),
/// beside reading the first batch. Photos are read by `reader`. Each file that fails is passed to
/// `on_error` (path and reason); the run goes on. A pipeline or database error stops it, with
/// every batch before it stored.
pub fn index(
    store: &mut Store,
    load: impl FnOnce() -> Result<Pipeline, PipelineError> + Send,
    reader: &Reader,
    roots: &[PathBuf],
    opts: &IndexOptions,
    mut on_error: impl FnMut(&Path, &str),
) -> Result<IndexReport, IndexError> {
    let started = Instant::now();
    let shard = opts.shard;
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

    // Walk, and keep what changed (of this shard's files). `seen`: every file counted once (a
    // symlink or two overlapping roots reach one twice); `present`: files whose rows stay (a
    // stacked RAW or a Live Photo's video indexed before is one photo now: its row goes).
    let mut seen = HashSet::new();
    let mut present = HashSet::new();
    let mut not_read: Vec<NotReadFile> = Vec::new();
    let mut todo: Vec<Todo> = Vec::new();
    // A folder is walked from its canonical path, so the paths found are canonical (walkdir
    // follows no link) and only a file named itself is looked up; a file's shard is decided by
    // its name as given.
    let found = roots.iter().flat_map(|given| {
        let root = match std::fs::canonicalize(given) {
            Ok(c) if c.is_dir() => c,
            _ => given.clone(),
        };
        walk::files(std::slice::from_ref(&root))
            .into_iter()
            .map(move |e| (root.clone(), e))
    });
    for (root, entry) in found {
        let found = match entry {
            Ok(f) => f,
            Err((p, why)) => {
                on_error(&p, &why);
                report.failed += 1;
                continue;
            }
        };
        if let Some(shard) = shard
            && !shard.takes(&relative(&root, &found.path))
        {
            report.other_shards += 1;
            continue;
        }
        let path = if found.link {
            std::fs::canonicalize(&found.path).unwrap_or(found.path.clone())
        } else {
            found.path.clone()
        };
        let key = path.to_string_lossy().into_owned();
        if !seen.insert(key.clone()) {
            continue;
        }
        report.files += 1;
        let reading = match found.role {
            Role::Photo | Role::Raw => Ok(Reading::Still),
            Role::Video => Ok(Reading::Video),
            Role::LivePhotoVideo => Err(NotRead::LivePhoto),
            Role::StackedRaw => Err(NotRead::Stacked(twin_kind(found.partner.as_deref()))),
            // A name visage does not know may still hold a photo or a video.
            Role::Other => sniff(&path).ok_or(NotRead::Unsupported),
            Role::Unread => Err(NotRead::Unsupported),
        };
        let reading = match reading {
            Ok(r) => r,
            Err(why) => {
                if !matches!(why, NotRead::LivePhoto | NotRead::Stacked(_)) {
                    present.insert(key.clone());
                }
                not_read.push(NotReadFile {
                    path: key,
                    reason: why.to_string(),
                    why,
                    partner: found.partner.map(|p| {
                        std::fs::canonicalize(&p)
                            .unwrap_or(p)
                            .to_string_lossy()
                            .into_owned()
                    }),
                });
                continue;
            }
        };
        present.insert(key.clone());
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
            _ => todo.push(Todo {
                file,
                state,
                reading,
            }),
        }
    }

    // Videos need ffmpeg: found (or fetched) once, when a video is to be read. Without it they
    // are counted, never hashed.
    if todo.iter().any(|t| t.reading == Reading::Video)
        && let Err(reason) = reader.ffmpeg()
    {
        let why = NotRead::Missing(reason.to_string());
        todo.retain(|t| {
            if t.reading != Reading::Video {
                return true;
            }
            not_read.push(NotReadFile {
                path: t.file.path.clone(),
                reason: why.to_string(),
                why: why.clone(),
                partner: None,
            });
            false
        });
    }

    // Files, faces, rate, ETA (log lines instead off a terminal).
    let bar = crate::progress::bar(
        todo.len() as u64,
        "{elapsed_precise} [{bar:30}] {pos}/{len} files, {msg}, {per_sec}, ETA {eta}",
    );
    let mut last_log = Instant::now();
    let batches = batches(&todo);
    let read = |batch: &[Todo]| read_batch(reader, batch);
    // The networks load while the first batch is read and decoded (an unchanged library has no
    // batch, and loads nothing).
    let (mut next, loaded) = match batches.first() {
        Some(first) => {
            let (read, loaded) = rayon::join(|| read(first), || bar.suspend(load));
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
        let stills: Vec<&Photo> = outcomes.iter().flat_map(Outcome::stills).collect();
        // Decode the next batch while this one runs through the networks.
        let (found, following) = rayon::join(
            || match &pipeline {
                Some(p) if !stills.is_empty() => p.run_timed(&stills),
                _ => Ok((Vec::new(), Default::default())),
            },
            || batches.get(k + 1).map(|b| read(b)),
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
                let (file, info, faces) = match outcome {
                    Outcome::Unchanged(file) => {
                        photos::touch(tx, file)?;
                        report.unchanged += 1;
                        continue;
                    }
                    Outcome::Failed(file, why) => {
                        photos::record_failure(tx, file, why)?;
                        report.failed += 1;
                        continue;
                    }
                    Outcome::NotRead(file, why) => {
                        not_read.push(NotReadFile {
                            path: file.path.clone(),
                            reason: why.to_string(),
                            why: why.clone(),
                            partner: None,
                        });
                        continue;
                    }
                    Outcome::Decoded(file, photo) => {
                        let info = PhotoInfo {
                            width: photo.original_width,
                            height: photo.original_height,
                            orientation: photo.orientation,
                        };
                        (file, info, found.next().unwrap_or_default())
                    }
                    Outcome::Video(file, v) => {
                        let mut faces: Vec<FoundFace> = Vec::new();
                        for (at, _) in &v.stills {
                            let at = *at;
                            faces.extend(found.next().unwrap_or_default().into_iter().map(|f| {
                                FoundFace {
                                    moment: Some(at),
                                    ..f
                                }
                            }));
                        }
                        report.videos += 1;
                        report.stills += v.stills.len();
                        let info = PhotoInfo {
                            width: v.width,
                            height: v.height,
                            orientation: 1,
                        };
                        (file, info, video::one_per_person(faces, opts.same_person))
                    }
                };
                photos::store_indexed(tx, file, info, &faces, crate::store::now())?;
                report.indexed += 1;
                report.faces += faces.len();
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
    // it), and so are a stacked RAW's and a Live Photo's video's rows. A folder that is missing
    // altogether (an unmounted disk) marks nothing.
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
                        && !present.contains(*path)
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
    summarise(&mut report, not_read);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The files not read into the report: each, and their count by extension and reason.
fn summarise(report: &mut IndexReport, mut files: Vec<NotReadFile>) {
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let mut kinds: BTreeMap<(String, String), usize> = BTreeMap::new();
    for f in &files {
        let ext = walk::extension(Path::new(&f.path));
        *kinds.entry((ext, f.reason.clone())).or_default() += 1;
    }
    let mut kinds: Vec<NotReadKind> = kinds
        .into_iter()
        .map(|((extension, reason), files)| NotReadKind {
            extension,
            reason,
            files,
        })
        .collect();
    kinds.sort_by_key(|k| std::cmp::Reverse(k.files));
    report.not_read = files.len();
    report.not_read_kinds = kinds;
    report.not_read_files = files;
}

/// What a file of a name visage does not know holds, by its first bytes: a photo, a video, or
/// neither (`None`).
fn sniff(path: &Path) -> Option<Reading> {
    match photo::kind::sniff_file(path).ok()? {
        Kind::Unknown => None,
        Kind::Video(_) => Some(Reading::Video),
        _ => Some(Reading::Still),
    }
}

/// The files to read cut into batches of at most [`BATCH`] stills (a batch holds one file at
/// least).
fn batches(todo: &[Todo]) -> Vec<&[Todo]> {
    let mut out = Vec::new();
    let (mut start, mut weight) = (0, 0);
    for (i, t) in todo.iter().enumerate() {
        if i > start && weight + t.weight() > BATCH {
            out.push(&todo[start..i]);
            (start, weight) = (i, 0);
        }
        weight += t.weight();
    }
    if start < todo.len() {
        out.push(&todo[start..]);
    }
    out
}

/// A photo's path relative to the folder it was found under (a file given itself: its name), as
/// [`Shard`] hashes it.
fn relative(root: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_path_buf(),
        _ => path.file_name().map(PathBuf::from).unwrap_or_default(),
    }
}

/// Read, hash and decode a batch in parallel, each file as its content says (a video named
/// `.jpg` is read as a video, a photo named `.mov` as a photo): a photo by `reader`, a video
/// hashed as it is read (never held) and its stills taken by the reader's ffmpeg. A kind this
/// machine has no reader for (no libheif, no ffmpeg) is not read, with the reason.
fn read_batch(reader: &Reader, batch: &[Todo]) -> ReadBatch {
    let timed: Vec<(Outcome, f64, f64)> = batch
        .par_iter()
        .map(|todo| {
            let clock = Instant::now();
            let mut file = todo.file.clone();
            let path = Path::new(&todo.file.path);
            // A file named as a video is one unless its first bytes are a photo's (ffmpeg reads
            // containers the sniffer does not know).
            let video = todo.reading == Reading::Video
                && !photo::kind::sniff_file(path)
                    .is_ok_and(|k| !matches!(k, Kind::Video(_) | Kind::Unknown));
            let bytes = match video {
                true => None,
                false => match std::fs::read(path) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        return (Outcome::Failed(file, format!("cannot read: {e}")), 0.0, 0.0);
                    }
                },
            };
            let hash = match &bytes {
                Some(b) => crate::models::sha256_hex(b),
                None => match crate::models::sha256_file(path) {
                    Ok(h) => h,
                    Err(e) => return (Outcome::Failed(file, e.to_string()), 0.0, 0.0),
                },
            };
            let read = clock.elapsed().as_secs_f64();
            let same = todo
                .state
                .as_ref()
                .is_some_and(|s| !s.failed && !s.gone && s.hash.as_ref() == Some(&hash));
            file.hash = Some(hash);
            if same {
                return (Outcome::Unchanged(file), read, 0.0);
            }
            let clock = Instant::now();
            let not_read = |file, reason: &Unsupported| {
                Outcome::NotRead(file, NotRead::Missing(reason.to_string()))
            };
            let outcome = match bytes {
                Some(bytes) if !matches!(photo::sniff(&bytes), Kind::Video(_)) => {
                    match reader.read(path, &bytes) {
                        Ok(photo) => Outcome::Decoded(file, photo),
                        // No libheif (or ffmpeg) here: every file of the kind is not read. A
                        // codec libheif lacks is this file's failure.
                        Err(PhotoError::Unsupported {
                            reason:
                                reason @ (Unsupported::NoLibheif(_) | Unsupported::NoFfmpeg { .. }),
                            ..
                        }) => not_read(file, &reason),
                        Err(e) => Outcome::Failed(file, e.to_string()),
                    }
                }
                _ => match reader.ffmpeg() {
                    Ok(ffmpeg) => match ffmpeg.video(path) {
                        Ok(v) => Outcome::Video(file, v),
                        Err(e) => Outcome::Failed(file, e.to_string()),
                    },
                    Err(reason) => not_read(file, &reason),
                },
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
