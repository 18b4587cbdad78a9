//! `visage bench`: the measuring commands, each printing its figures as JSON lines. Threads:
//! `RAYON_NUM_THREADS`.
//!
//! - `index`: a whole index of folders into a temporary database: photos/s, faces/s and the
//!   seconds per stage.
//! - `embed`: FaceNet throughput on the chosen device, on a folder of 160x160 face crops (the same
//!   fields as `benches/peers/facenet_opencv.py`, so the two compare side by side).
//! - `graph` ([`graph`]): the neighbour graph and DBSCAN on N synthetic 512-d embeddings, with peak
//!   memory, or the incremental path's range queries.
//! - `merge`: shard databases of real face rows merged into a new library by a `visage merge`
//!   process, its time and peak memory.
//! - `library` ([`library`]): a library of N faces and what every command costs on it.
//! - `review` ([`review`]): the simulated review of a folder with one subfolder per person.
//! - `suggest` ([`suggest`]): suggestions for one person over a synthetic library.

mod graph;
mod library;
mod review;
mod suggest;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::alignment;
use crate::config::DeviceChoice;
use crate::device::Device;
use crate::embedding::{Embedder, INPUT_SIDE};
use crate::models::{self, Models};

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// FaceNet faces per second at a batch size
    Embed {
        /// Faces per forward pass
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// How long to measure, after two warm-up batches
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, env = "VISAGE_DEVICE", value_enum, default_value_t = DeviceChoice::Cpu)]
        device: DeviceChoice,
        #[arg(long, env = "VISAGE_MODELS", value_name = "DIR")]
        models: Option<PathBuf>,
        /// Folder of face crops (each resized to 160x160), used in turn to fill the batches
        #[arg(long, value_name = "DIR")]
        faces: PathBuf,
        /// Random weights instead of the real ones (speed only, where the weights cannot be had)
        #[arg(long)]
        untrained: bool,
        /// FaceNet's arithmetic on the CPU (the real weights)
        #[arg(long, env = "VISAGE_FACENET_PRECISION", value_enum, default_value_t)]
        facenet_precision: crate::config::Precision,
    },
    /// Index folders into a new, temporary database: photos/s, faces/s and seconds per stage
    Index {
        /// Folders (or files) of photos
        #[arg(required = true, value_name = "DIR")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        settings: crate::config::Settings,
    },
    /// A library of N faces (real photos, then synthetic people) and what each command costs on it
    Library {
        /// Faces in the library in all (the real photos' faces, then synthetic people)
        #[arg(long, default_value_t = 100_000)]
        faces: usize,
        /// Real photos: the library's, and the last --new-photos of them indexed into it at the end
        #[arg(value_name = "PHOTOS")]
        photos: Vec<PathBuf>,
        /// How many of the real photos are indexed into the full library at the end
        #[arg(long, default_value_t = 10)]
        new_photos: usize,
        /// Build the library in this (empty) folder and leave it there
        #[arg(long, value_name = "DIR", conflicts_with = "on")]
        keep: Option<PathBuf>,
        /// Measure a library left by --keep instead of building one: no build, no full re-cluster;
        /// the new photos are copied into a folder of their own there and indexed, then the
        /// commands are timed as on a new library
        #[arg(long, value_name = "DIR")]
        on: Option<PathBuf>,
        /// Seed of the synthetic people
        #[arg(long, default_value_t = 17)]
        seed: u64,
        /// Drop the OS page cache before timing the review page's first page (needs root)
        #[arg(long)]
        drop_caches: bool,
    },
    /// The simulated review: how many actions name every face of a folder with one subfolder per
    /// person (one JSON line)
    Review(review::ReviewArgs),
    /// Suggestions for one person over a synthetic library of unnamed faces (one JSON line)
    Suggest {
        /// Unnamed faces in the library
        #[arg(long, default_value_t = 100_000)]
        faces: usize,
        /// Faces named by hand as the person
        #[arg(long, default_value_t = 20)]
        named: usize,
    },
    /// Neighbour graph (exact or approximate) and DBSCAN on synthetic embeddings, or range queries
    Graph(graph::GraphArgs),
    /// Merge speed: shard databases of real face rows (the photos and faces of an indexed
    /// library, copied under new paths through the store) merged into a new library by a `visage
    /// merge` process (wall time, peak memory), then merged again (nothing to change)
    Merge {
        /// An indexed library whose photos and faces are copied
        #[arg(long, value_name = "DB")]
        from: PathBuf,
        /// Faces in all the shards together
        #[arg(long, default_value_t = 1_000_000)]
        faces: usize,
        #[arg(long, default_value_t = 10)]
        shards: usize,
        /// Folder for the shard databases and the library (emptied of them first; kept after,
        /// so `visage merge` can be rerun by hand, e.g. under /usr/bin/time -v)
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

/// A temporary database file for one bench run (`visage-bench-WHAT-PID-TIME.db` in the temporary
/// folder), removed with its WAL files when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new(what: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "visage-bench-{what}-{}-{}.db",
            std::process::id(),
            crate::store::now()
        ));
        let db = TempDb(path);
        db.remove();
        db
    }

    fn remove(&self) {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", self.0.display()));
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

#[derive(Serialize)]
struct IndexLine {
    tool: &'static str,
    threads: usize,
    photos: usize,
    /// Of `photos`: videos, and the stills looked at in them.
    videos: usize,
    stills: usize,
    failed: usize,
    /// Files found and not read (see `visage index`).
    not_read: usize,
    faces: usize,
    /// The whole run, the networks' loading included.
    seconds: f64,
    photos_per_s: f64,
    faces_per_s: f64,
    stages: crate::index::Stages,
    /// The libjpeg that decoded the JPEGs (the system's libjpeg-turbo, or the built-in one).
    libjpeg: String,
}

#[derive(Serialize)]
struct Line {
    tool: &'static str,
    /// `real`, or `untrained` (random weights: the speed is the same, the vectors mean nothing).
    weights: &'static str,
    /// What FaceNet's products ran in.
    precision: crate::config::Precision,
    device: String,
    threads: usize,
    batch: usize,
    faces_per_s: f64,
    ms_per_batch: f64,
    batches: usize,
}

/// `visage index --no-cluster` into a temporary database, reported as one JSON line.
fn run_index(paths: &[PathBuf], settings: &crate::config::Settings) -> anyhow::Result<i32> {
    let db = TempDb::new("index");
    let mut store = crate::store::Store::open_or_create(&db.0)?;
    let load = || crate::pipeline::Pipeline::new(settings, true);
    let reader = crate::photo::Reader::for_settings(settings);
    let opts = crate::index::IndexOptions::new(settings, None);
    let report = crate::index::index(&mut store, load, &reader, paths, &opts, |path, why| {
        eprintln!("visage: {}: {why}", path.display())
    });
    drop(store);
    drop(db);
    let report = report?;
    let line = IndexLine {
        tool: "visage",
        threads: rayon::current_num_threads(),
        photos: report.indexed,
        videos: report.videos,
        stills: report.stills,
        failed: report.failed,
        not_read: report.not_read,
        faces: report.faces,
        seconds: report.seconds,
        photos_per_s: report.indexed as f64 / report.seconds,
        faces_per_s: report.faces as f64 / report.seconds,
        stages: report.stages,
        libjpeg: reader.libjpeg().to_string(),
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(super::exit_code(report.failed))
}

#[derive(Serialize)]
struct MergeLine {
    tool: &'static str,
    shards: usize,
    photos: usize,
    faces: usize,
    /// Writing the shard databases (not part of the merge).
    build_seconds: f64,
    /// `visage merge` into a new library: the whole process.
    merge_seconds: f64,
    merge_peak_rss_mib: f64,
    /// The same merge again: every photo found unchanged.
    again_seconds: f64,
    again_peak_rss_mib: f64,
    shards_mib: f64,
    library_mib: f64,
}

/// Build `shards` shard databases holding `faces` faces copied from `from`, then time `visage merge`.
fn run_merge(from: &Path, faces: usize, shards: usize, dir: &Path) -> anyhow::Result<i32> {
    use crate::store::photos::{self, StoredPhoto};
    use crate::store::{Store, StoreError};
    if !from.is_file() {
        bail!(
            "{}: no such database (index a folder into it first)",
            from.display()
        );
    }
    if shards == 0 || faces == 0 {
        bail!("--shards and --faces must be at least 1");
    }
    let source = Store::open(from)?;
    let mut real: Vec<StoredPhoto> = Vec::new();
    source.read(|c| {
        photos::each_stored(c, |p| {
            if p.error.is_none() && !p.gone && p.info.is_some() {
                real.push(p);
            }
            Ok::<_, rusqlite::Error>(())
        })
    })?;
    let per_copy: usize = real.iter().map(|p| p.faces.len()).sum();
    if per_copy == 0 {
        bail!("{}: no faces to copy", from.display());
    }
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let shard_paths: Vec<PathBuf> = (0..shards)
        .map(|i| dir.join(format!("shard-{i}.db")))
        .collect();
    let library = dir.join("library.db");
    for db in shard_paths.iter().chain([&library]) {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
    }

    // Copy k of the library goes to shard k % shards, its photos under /bench/copy-k/.
    let clock = Instant::now();
    let mut stores = shard_paths
        .iter()
        .map(|p| Store::open_or_create(p))
        .collect::<Result<Vec<_>, _>>()?;
    let (mut written, mut photos_written) = (0, 0);
    let mut copy = 0;
    while written < faces {
        stores[copy % shards].write(|tx| -> Result<(), StoreError> {
            for p in &real {
                if written >= faces {
                    break;
                }
                let mut file = p.file.clone();
                file.path = format!("/bench/copy-{copy:07}{}", p.file.path);
                let found: Vec<_> = p
                    .faces
                    .iter()
                    .take(faces - written)
                    .map(|stored| stored.face.clone())
                    .collect();
                let info = p.info.expect("kept above");
                photos::store_indexed(tx, &file, info, &found, p.indexed_at)?;
                written += found.len();
                photos_written += 1;
            }
            Ok(())
        })?;
        copy += 1;
    }
    drop(stores);
    let build_seconds = clock.elapsed().as_secs_f64();

    let merge = |what: &str| -> anyhow::Result<(f64, f64)> {
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.arg("merge").arg("--json").arg("--db").arg(&library);
        cmd.args(&shard_paths).stdout(std::process::Stdio::null());
        let clock = Instant::now();
        let (status, peak) = run_measured(cmd)?;
        let seconds = clock.elapsed().as_secs_f64();
        if !status.success() {
            bail!("{what}: visage merge failed ({status})");
        }
        Ok((seconds, peak))
    };
    let (merge_seconds, merge_peak_rss_mib) = merge("the merge")?;
    let (again_seconds, again_peak_rss_mib) = merge("the merge again")?;
    let mib = |paths: &[&PathBuf]| -> f64 {
        let bytes: u64 = paths
            .iter()
            .flat_map(|p| ["", "-wal"].map(|ext| format!("{}{ext}", p.display())))
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        bytes as f64 / (1024.0 * 1024.0)
    };
    let line = MergeLine {
        tool: "visage",
        shards,
        photos: photos_written,
        faces: written,
        build_seconds,
        merge_seconds,
        merge_peak_rss_mib,
        again_seconds,
        again_peak_rss_mib,
        shards_mib: mib(&shard_paths.iter().collect::<Vec<_>>()),
        library_mib: mib(&[&library]),
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(0)
}

/// Run a command to its end; its exit status and its peak resident memory in MiB: the process's
/// own high-water mark (`VmHWM`), read every 10 ms while it runs. (`wait4`'s `ru_maxrss` would
/// count this process's memory too: a child inherits its parent's mark across `exec`.)
fn run_measured(mut cmd: std::process::Command) -> anyhow::Result<(std::process::ExitStatus, f64)> {
    let mut child = cmd.spawn()?;
    let pid = child.id().to_string();
    let mut peak = 0f64;
    loop {
        if let Some(hwm) = peak_kib(&pid) {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait()? {
            return Ok((status, peak / 1024.0));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The peak resident memory (`VmHWM`) of process `pid` (`self`: this one) so far, in KiB, as
/// Linux reports it; `None` where it does not (the process has ended, another system).
pub fn peak_kib(pid: &str) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
}

pub fn run(args: BenchArgs) -> anyhow::Result<i32> {
    let (batch, seconds, device, dir, faces, untrained, precision) = match args.what {
        BenchWhat::Graph(args) => return graph::run(args),
        BenchWhat::Library {
            faces,
            photos,
            new_photos,
            keep,
            on,
            seed,
            drop_caches,
        } => {
            super::require_paths(&photos)?;
            return library::run(library::LibraryBench {
                faces,
                photos,
                new_photos,
                keep,
                on,
                seed,
                drop_caches,
            });
        }
        BenchWhat::Index { paths, settings } => {
            super::require_paths(&paths)?;
            return run_index(&paths, &settings);
        }
        BenchWhat::Review(args) => return review::run(args),
        BenchWhat::Suggest { faces, named } => return suggest::run(faces, named),
        BenchWhat::Merge {
            from,
            faces,
            shards,
            dir,
        } => return run_merge(&from, faces, shards, &dir),
        BenchWhat::Embed {
            batch,
            seconds,
            device,
            models,
            faces,
            untrained,
            facenet_precision,
        } => (
            batch,
            seconds,
            device,
            models,
            faces,
            untrained,
            facenet_precision,
        ),
    };
    super::require_paths(std::slice::from_ref(&faces))?;
    let (files, _) = super::photo_files(std::slice::from_ref(&faces));
    let reader = crate::photo::Reader::new(Models::new(dir.clone()));
    let (decoded, _) = super::decode(&reader, &files);
    if decoded.is_empty() || batch == 0 {
        bail!("{}: no face crops to embed", faces.display());
    }
    let side = INPUT_SIDE as u32;
    let crops: Vec<Vec<u8>> = decoded
        .iter()
        .map(|(_, p)| alignment::whole(&p.rgb, side))
        .collect();
    let input: Vec<Vec<u8>> = crops.iter().cycle().take(batch).cloned().collect();
    let device = Device::choose(device)?.networks;
    let embedder = if untrained {
        Embedder::untrained(&device)
    } else {
        Embedder::load_with(&Models::new(dir).get(&models::FACENET)?, &device, precision)
            .context("cannot load FaceNet")?
    };
    for _ in 0..2 {
        embedder.embed_in_batches(&input, batch);
    }
    let started = Instant::now();
    let mut batches = 0;
    while started.elapsed() < Duration::from_secs_f64(seconds) || batches == 0 {
        embedder.embed_in_batches(&input, batch);
        batches += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let line = Line {
        tool: "visage",
        weights: if untrained { "untrained" } else { "real" },
        precision: embedder.precision(),
        device: device.description.clone(),
        threads: rayon::current_num_threads(),
        batch,
        faces_per_s: (batches * batch) as f64 / secs,
        ms_per_batch: secs * 1e3 / batches as f64,
        batches,
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(0)
}
