//! `visage bench library --faces N [PHOTOS...]`: a library of N faces on the real schema — a real
//! photo folder indexed by `visage index`, then synthetic people (`graph::synthetic::People`) up to
//! N faces — and what each command costs on it, as one JSON line: the full `visage cluster
//! --recluster`, `visage index` of a few new real photos (the photo work and the clustering apart),
//! `clusters`, `people` and `stats`, the review page's API (warm 95th percentile, and the first
//! page after a start with a cold OS cache), and the bytes on disk per face.
//!
//! Every command is the real binary run as a child process, so its wall time and peak memory
//! (`getrusage` of the child) are what a user sees. `--keep DIR` leaves the library there for
//! `visage serve --db DIR/visage.db` and the other commands; `--on DIR` measures such a library
//! again (a new build of visage on the same ten million faces) without building or re-clustering
//! it: the new photos go into a folder of their own there, so they are new to the library.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;

use crate::detection::{Detection, FoundFace, Source};
use crate::geometry::Rect;
use crate::graph::synthetic::{DIM, People};
use crate::store::Store;
use crate::store::photos::{self, FileInfo, PhotoInfo};

/// Synthetic faces per synthetic photo.
const FACES_PER_PHOTO: usize = 2;
/// Synthetic photos written per transaction.
const PHOTOS_PER_TX: usize = 5_000;

pub struct LibraryBench {
    pub faces: usize,
    pub photos: Vec<PathBuf>,
    pub new_photos: usize,
    pub keep: Option<PathBuf>,
    pub on: Option<PathBuf>,
    pub seed: u64,
    pub drop_caches: bool,
}

/// What one command cost.
#[derive(Debug, Default, Serialize)]
struct Cost {
    seconds: f64,
    peak_rss_mib: f64,
}

#[derive(Debug, Default, Serialize)]
struct Api {
    requests: usize,
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
    /// The slowest kind of request, and its time.
    slowest: String,
    /// From starting `visage serve` (caches dropped first if asked) to the first page's data: its
    /// HTML, the first clusters and their thumbnails.
    first_page_s: f64,
    /// Then the faces offered with the first page's clusters (`/api/also`), computed once: they
    /// fill in after the rows show.
    first_also_s: f64,
    caches_dropped: bool,
}

#[derive(Debug, Default, Serialize)]
struct LibraryLine {
    tool: &'static str,
    faces: usize,
    real_photos: usize,
    synthetic_faces: usize,
    build_seconds: f64,
    /// None when the library was measured again (`--on`).
    recluster: Option<Cost>,
    recluster_report: Value,
    new_photos: usize,
    /// `visage index` of the new photos: the whole run, its photo work and its clustering.
    index: Cost,
    index_photo_seconds: f64,
    index_cluster_seconds: f64,
    index_cluster_report: Value,
    clusters: Cost,
    people: Cost,
    stats: Cost,
    api: Api,
    db_bytes: u64,
    bytes_per_face: f64,
    vector_file_bytes: u64,
    /// The database and its vector file.
    disk_bytes_per_face: f64,
    dir: String,
}

pub fn run(b: LibraryBench) -> anyhow::Result<i32> {
    if let Some(dir) = &b.on {
        return again(&b, dir);
    }
    let started = Instant::now();
    let (dir, _guard) = match &b.keep {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("{}", d.display()))?;
            (d.clone(), None)
        }
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let db = dir.join("visage.db");
    if db.exists() {
        bail!(
            "{} exists: --keep wants an empty folder (a library is built there)",
            db.display()
        );
    }
    let real = real_photos(&b.photos)?;
    let (old, new) = real.split_at(real.len() - b.new_photos.min(real.len()));
    let (library_photos, new_photos) = (dir.join("photos"), dir.join("new"));
    copy_into(old, &library_photos)?;
    copy_into(new, &new_photos)?;
    let mut line = LibraryLine {
        tool: "visage",
        new_photos: new.len(),
        real_photos: old.len(),
        dir: dir.display().to_string(),
        ..LibraryLine::default()
    };
    let db_arg = db.to_str().context("a UTF-8 path")?.to_string();
    if !old.is_empty() {
        let (out, _) = visage(&[
            "index",
            "--no-cluster",
            "--json",
            "--db",
            &db_arg,
            path_arg(&library_photos)?,
        ])?;
        let report: Value = serde_json::from_str(out.trim())?;
        line.faces = report["index"]["faces"].as_u64().unwrap_or(0) as usize;
    } else {
        Store::open_or_create(&db)?;
    }
    line.synthetic_faces = b.faces.saturating_sub(line.faces);
    add_synthetic(&db, line.synthetic_faces, b.seed)?;
    line.faces += line.synthetic_faces;
    line.build_seconds = started.elapsed().as_secs_f64();
    log::info!(
        "{} faces in {:.0} s; clustering them all",
        line.faces,
        line.build_seconds
    );

    let (out, cost) = visage(&["cluster", "--recluster", "--json", "--db", &db_arg])?;
    line.recluster = Some(cost);
    line.recluster_report = serde_json::from_str(out.trim())?;
    measure(&b, &db, &new_photos, line)
}

/// `--on DIR`: the commands on a library an earlier `--keep DIR` left, with this build.
fn again(b: &LibraryBench, dir: &Path) -> anyhow::Result<i32> {
    let db = dir.join("visage.db");
    if !db.is_file() {
        bail!(
            "{}: no library there (--on wants a folder that `visage bench library --keep` filled)",
            db.display()
        );
    }
    let real = real_photos(&b.photos)?;
    let new = &real[real.len() - b.new_photos.min(real.len())..];
    // Paths the library has not seen: the same photos are new files to it.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let new_photos = dir.join(format!("new-{stamp}"));
    copy_into(new, &new_photos)?;
    let line = LibraryLine {
        tool: "visage",
        new_photos: new.len(),
        dir: dir.display().to_string(),
        ..LibraryLine::default()
    };
    measure(b, &db, &new_photos, line)
}

/// `index` of the new photos, then every read command and the review page, and the disk used.
fn measure(
    b: &LibraryBench,
    db: &Path,
    new_photos: &Path,
    mut line: LibraryLine,
) -> anyhow::Result<i32> {
    let db_arg = db.to_str().context("a UTF-8 path")?.to_string();
    if line.new_photos > 0 {
        let (out, cost) = visage(&["index", "--json", "--db", &db_arg, path_arg(new_photos)?])?;
        line.index = cost;
        let report: Value = serde_json::from_str(out.trim())?;
        line.index_photo_seconds = report["index"]["seconds"].as_f64().unwrap_or(0.0);
        line.index_cluster_seconds = report["cluster"]["seconds"].as_f64().unwrap_or(0.0);
        line.index_cluster_report = report["cluster"].clone();
    }
    line.clusters = visage(&["clusters", "--db", &db_arg])?.1;
    line.people = visage(&["people", "--db", &db_arg])?.1;
    line.stats = visage(&["stats", "--db", &db_arg])?.1;
    if b.on.is_some() {
        let (out, _) = visage(&["stats", "--json", "--db", &db_arg])?;
        let stats: Value = serde_json::from_str(out.trim())?;
        line.faces = stats["faces"].as_u64().unwrap_or(0) as usize;
    }
    line.api = api(&db_arg, b.drop_caches)?;
    checkpoint(db)?;
    line.db_bytes = ["", "-wal"]
        .iter()
        .filter_map(|ext| std::fs::metadata(format!("{}{ext}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    // The vector file beside it (a cache of the embeddings) is disk the library takes too.
    line.vector_file_bytes =
        std::fs::metadata(crate::store::embeddings::file::path_of(db)).map_or(0, |m| m.len());
    line.bytes_per_face = line.db_bytes as f64 / line.faces.max(1) as f64;
    line.disk_bytes_per_face =
        (line.db_bytes + line.vector_file_bytes) as f64 / line.faces.max(1) as f64;
    println!("{}", serde_json::to_string(&line)?);
    if b.keep.is_some() {
        eprintln!(
            "the library stays in {}: visage serve --db {}",
            line.dir,
            db.display()
        );
    }
    Ok(0)
}

/// The real photos under `paths`, sorted: all but the last `--new-photos` are the library's, those
/// are the new ones indexed into it at the end.
fn real_photos(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut real: Vec<PathBuf> = Vec::new();
    for entry in crate::walk::photos(paths) {
        real.push(entry.map_err(|(p, why)| anyhow::anyhow!("{}: {why}", p.display()))?);
    }
    real.sort();
    Ok(real)
}

fn path_arg(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("a UTF-8 path")
}

fn copy_into(files: &[PathBuf], to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for (k, f) in files.iter().enumerate() {
        let name = f.file_name().context("a file name")?.to_string_lossy();
        std::fs::copy(f, to.join(format!("{k:05}-{name}")))
            .with_context(|| format!("{}", f.display()))?;
    }
    Ok(())
}

/// `n` synthetic faces, two per synthetic photo (a path under `/synthetic/`, which no walk
/// reaches, so `index` never marks them gone), through the store's own write path.
fn add_synthetic(db: &Path, n: usize, seed: u64) -> anyhow::Result<()> {
    if n == 0 {
        return Ok(());
    }
    let people = People::new(n, seed);
    let mut store = Store::open_or_create(db)?;
    let info = PhotoInfo {
        width: 1600,
        height: 1200,
        orientation: 1,
    };
    let photos = n.div_ceil(FACES_PER_PHOTO);
    let mut rows = vec![0f32; PHOTOS_PER_TX * FACES_PER_PHOTO * DIM];
    for first in (0..photos).step_by(PHOTOS_PER_TX) {
        let last = (first + PHOTOS_PER_TX).min(photos);
        let faces_from = first * FACES_PER_PHOTO;
        let faces_to = (last * FACES_PER_PHOTO).min(n);
        let rows = &mut rows[..(faces_to - faces_from) * DIM];
        people.write_f32(faces_from, rows);
        store.write(|tx| -> anyhow::Result<()> {
            for p in first..last {
                let file = FileInfo {
                    path: format!("/synthetic/{:03}/{p:07}.jpg", p / 10_000),
                    size: 1_000_000,
                    mtime_ns: 1_600_000_000_000_000_000 + p as i64 * 1_000_000_000,
                    hash: None,
                };
                let faces: Vec<FoundFace> = (p * FACES_PER_PHOTO
                    ..((p + 1) * FACES_PER_PHOTO).min(n))
                    .enumerate()
                    .map(|(k, i)| {
                        let row = &rows[(i - faces_from) * DIM..(i - faces_from + 1) * DIM];
                        FoundFace {
                            detection: Detection {
                                rect: Rect {
                                    x: 200.0 + 600.0 * k as f32,
                                    y: 300.0,
                                    w: 240.0,
                                    h: 300.0,
                                },
                                size: 240,
                                score: 100.0,
                                source: Source::Pico,
                                probability: 0.99,
                                landmarks: Vec::new(),
                            },
                            embedding: row.to_vec(),
                            moment: None,
                        }
                    })
                    .collect();
                photos::store_indexed(tx, &file, info, &faces, crate::store::now())?;
            }
            Ok(())
        })?;
        if last % 100_000 < PHOTOS_PER_TX {
            log::info!("{} synthetic faces written", faces_to);
        }
    }
    Ok(())
}

fn checkpoint(db: &Path) -> anyhow::Result<()> {
    Ok(Store::open(db)?.checkpoint()?)
}

/// Run this visage with `args`; its stdout, and its wall time and peak memory.
fn visage(args: &[&str]) -> anyhow::Result<(String, Cost)> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let child = Command::new(&exe)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("{}", exe.display()))?;
    let (out, status, rss) = wait_with_rusage(child)?;
    let cost = Cost {
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_mib: rss,
    };
    if !status {
        bail!("visage {} failed", args.join(" "));
    }
    Ok((out, cost))
}

/// Wait for a child, reading its stdout; whether it succeeded and its peak RSS (MiB).
fn wait_with_rusage(mut child: Child) -> anyhow::Result<(String, bool, f64)> {
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        s.read_to_string(&mut out)?;
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 writes the status and a zeroed-then-filled rusage for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if got != pid {
        bail!("waiting for visage: {}", std::io::Error::last_os_error());
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok((out, ok, usage.ru_maxrss as f64 / 1024.0))
}

/// The review page's requests against `visage serve` on this library.
fn api(db: &str, drop_caches: bool) -> anyhow::Result<Api> {
    let mut out = Api::default();
    if drop_caches {
        // Written by root only; the figure says whether it happened.
        let _ = Command::new("sync").status();
        out.caches_dropped = std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    }
    let token = "benchlibrarytoken0123456789";
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let mut child = Command::new(&exe)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--token",
            token,
            "--db",
            db,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| -> anyhow::Result<()> {
        let mut first = String::new();
        BufReader::new(child.stdout.take().context("serve's stdout")?).read_line(&mut first)?;
        let addr = first
            .trim()
            .strip_prefix("http://")
            .and_then(|r| r.split('/').next())
            .with_context(|| format!("serve printed {first:?}"))?
            .to_string();
        let get = |path: &str| -> anyhow::Result<(Vec<u8>, f64)> { get(&addr, token, path) };
        // The first page: HTML, the clusters to review, the first cluster's thumbnails.
        get("/")?;
        let (clusters, _) = get("/api/clusters?limit=20")?;
        let clusters: Value = serde_json::from_slice(&clusters)?;
        let first_faces: Vec<String> = clusters["clusters"]
            .get(0)
            .and_then(|c| c["preview"].as_array())
            .map(|p| {
                p.iter()
                    .filter_map(|f| f["id"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for f in &first_faces {
            get(&format!("/faces/{f}.jpg"))?;
        }
        out.first_page_s = started.elapsed().as_secs_f64();
        let page: Vec<&str> = clusters["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["id"].as_str())
            .collect();
        let also = format!("/api/also?clusters={}", page.join(","));
        if !page.is_empty() {
            out.first_also_s = get(&also)?.1 / 1000.0;
        }

        // The page's requests.
        let (people, _) = get("/api/people")?;
        let people: Value = serde_json::from_slice(&people)?;
        let mut paths: Vec<String> = vec![
            "/api/people".into(),
            "/api/people?hidden=1".into(),
            "/api/clusters?limit=20".into(),
            "/api/clusters?offset=20&limit=20".into(),
            "/api/faces?unassigned=1&limit=100".into(),
            "/api/faces?unassigned=1&offset=100&limit=100".into(),
            "/api/progress".into(),
            "/api/suggestions".into(),
        ];
        // The faces offered with the first page's clusters (the page asks once the rows show).
        if !page.is_empty() {
            paths.push(also);
        }
        for c in clusters["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .take(5)
        {
            if let Some(id) = c["id"].as_str() {
                paths.push(format!("/api/faces?cluster={id}&limit=100"));
            }
        }
        for p in people.as_array().into_iter().flatten().take(3) {
            if let Some(name) = p["name"].as_str() {
                let name: String = url_encode(name);
                paths.push(format!("/api/faces?person={name}&limit=200"));
            }
        }
        for f in first_faces.iter().take(12) {
            paths.push(format!("/faces/{f}.jpg"));
            if let Some(photo) = clusters["clusters"][0]["preview"]
                .as_array()
                .and_then(|p| p.iter().find(|x| x["id"] == f.as_str()))
                .and_then(|x| x["photo"].as_str())
            {
                paths.push(format!("/api/photos/{photo}"));
            }
        }
        // Warm: each request once untimed (answers that scan faces are computed once per change
        // of the library, see `serve::Answers`), then five timed passes.
        for p in &paths {
            get(p)?;
        }
        let mut times: Vec<(f64, String)> = Vec::new();
        for _ in 0..5 {
            for p in &paths {
                let (_, ms) = get(p)?;
                times.push((ms, p.clone()));
            }
        }
        times.sort_by(|a, b| a.0.total_cmp(&b.0));
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].0;
        out.requests = times.len();
        out.p50_ms = at(0.5);
        out.p95_ms = at(0.95);
        if let Some((ms, path)) = times.last() {
            out.max_ms = *ms;
            out.slowest = path.clone();
        }
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    result.map(|()| out)
}

/// A GET with the token; the body and the milliseconds it took. Any answer but 200 fails.
fn get(addr: &str, token: &str, path: &str) -> anyhow::Result<(Vec<u8>, f64)> {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(600)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Visage-Token: {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("an HTTP answer")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or(""));
    }
    let body = answer[split + 4..].to_vec();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    Ok((body, ms))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..end]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < end + 2 + size {
            break;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + size]);
        b = &b[(end + 2 + size + 2).min(b.len())..];
    }
    out
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (c as char).to_string()
            }
            _ => format!("%{c:02X}"),
        })
        .collect()
}
