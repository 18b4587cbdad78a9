//! `visage bench review DIR`: the simulated review. A folder with one subfolder per person gives
//! the truth; the photos are indexed (or an indexed database is copied) and clustered with the
//! settings given, then a user is simulated who does what the review page offers, through the
//! same `people` operations the page calls, until every face carries its right name:
//!
//! 1. a suggestion group ("Is this also NAME?"): take out the faces that are someone else (one
//!    action each), then accept the group (one action);
//! 2. otherwise name the largest unnamed automatic cluster, with the faces the page offers with
//!    it ("and these that look like them"), after taking out the faces that are someone else (one
//!    action each, and one for the name);
//! 3. otherwise "Not NAME" on a face that carries a wrong name (the person's page);
//! 4. otherwise name the largest face that has no person yet (the Unknown page).
//!
//! Matching runs after each decision, as the page runs it. Take-outs and "Not NAME" are
//! corrections. Every face a matching run gives a person is checked against the truth: the
//! automatic assignments' precision. One JSON line; `--calibrate` adds the distance calibration
//! (pairs of faces, and each face's nearest other face) as further lines.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Serialize;

use crate::clustering::matching::{PERSON_MARGIN, Reach};
use crate::config::Settings;
use crate::evaluation;
use crate::graph::GraphBackend;
use crate::people::{self, Ref, Rematch, assign, report, suggest};
use crate::store::{Store, faces};

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// A folder with one subfolder per person (the subfolder's name is the truth)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Start from this database of DIR already indexed (copied; never changed) instead of
    /// indexing DIR again
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Also print the distance calibration: one JSON line per threshold
    #[arg(long)]
    pub calibrate: bool,
    #[command(flatten)]
    pub settings: Settings,
}

/// What the simulated review did.
#[derive(Debug, Default, Serialize)]
struct Line {
    people: usize,
    faces: usize,
    actions: usize,
    corrections: usize,
    /// Actions by kind.
    accepted_groups: usize,
    taken_out: usize,
    named_clusters: usize,
    not_name: usize,
    named_faces: usize,
    /// Faces that matching gave a person, and how many of those were right.
    auto_assigned: usize,
    auto_right: usize,
    auto_precision: f64,
    /// Faces accepted from suggestions, and faces offered with the clusters named.
    suggested_accepted: usize,
    offered_with_clusters: usize,
    face_cluster_dist: f32,
    face_match_dist: f32,
    seconds: f64,
}

/// The person a photo shows: its parent folder's name.
fn truth_of(path: &str) -> String {
    Path::new(path)
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A temporary database file, removed (with its WAL files) when dropped.
struct TempDb(PathBuf);

impl TempDb {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "visage-bench-review-{}-{}.db",
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

pub fn run(args: ReviewArgs) -> anyhow::Result<i32> {
    let settings = &args.settings;
    let temp = TempDb::new();
    match &args.db {
        Some(src) => {
            let source = Store::open(src)?;
            let target = temp.0.display().to_string();
            source
                .read(|c| c.execute("VACUUM INTO ?1", [&target]))
                .with_context(|| format!("copying {}", src.display()))?;
        }
        None => {
            let mut store = Store::open_or_create(&temp.0)?;
            let load = || crate::pipeline::Pipeline::new(settings, true);
            let reader =
                crate::photo::Reader::new(crate::models::Models::new(settings.models.clone()));
            crate::index::index(
                &mut store,
                load,
                &reader,
                std::slice::from_ref(&args.dir),
                None,
                |p, why| eprintln!("visage: {}: {why}", p.display()),
            )?;
        }
    }
    let mut store = Store::open(&temp.0)?;
    let backend = GraphBackend::choose(settings.device)?;
    people::reset(&mut store, true, true)?;
    store.write(|tx| -> anyhow::Result<()> {
        tx.execute("UPDATE faces SET verdict = NULL", [])?;
        tx.execute("DELETE FROM history", [])?;
        Ok(())
    })?;
    assign::run(&mut store, settings, &backend, true)?;
    let truth: HashMap<i64, String> = store
        .read(|c| faces::list(c, faces::Filter::default()))?
        .into_iter()
        .map(|f| (f.id, truth_of(&f.path)))
        .collect();
    if truth.is_empty() {
        bail!("{}: no faces to review", args.dir.display());
    }
    if args.calibrate {
        calibrate(&store, &truth)?;
    }
    let started = std::time::Instant::now();
    let line = simulate(&mut store, settings, &backend, &truth)?;
    let line = Line {
        seconds: started.elapsed().as_secs_f64(),
        ..line
    };
    println!("{}", serde_json::to_string(&line)?);
    Ok(0)
}

fn simulate(
    store: &mut Store,
    settings: &Settings,
    backend: &GraphBackend,
    truth: &HashMap<i64, String>,
) -> anyhow::Result<Line> {
    let rematch = Some(Rematch { settings, backend });
    let people: HashSet<&String> = truth.values().collect();
    let mut line = Line {
        people: people.len(),
        faces: truth.len(),
        face_cluster_dist: settings.face_cluster_dist,
        face_match_dist: settings.face_match_dist,
        ..Line::default()
    };
    let mut seen_auto: HashSet<(i64, String)> = HashSet::new();
    let limit = 10 * truth.len() + 10;
    loop {
        let rows = store.read(|c| faces::list(c, faces::Filter::default()))?;
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|f| truth.contains_key(&f.id))
            .collect();
        for f in &rows {
            if let (Some(faces::Assigned::Auto), Some(p)) = (f.assigned, &f.person)
                && seen_auto.insert((f.id, p.clone()))
            {
                line.auto_assigned += 1;
                if truth[&f.id] == *p {
                    line.auto_right += 1;
                }
            }
        }
        if rows
            .iter()
            .all(|f| f.person.as_deref() == Some(truth[&f.id].as_str()))
        {
            break;
        }
        if line.actions > limit {
            bail!("the simulated review did not converge in {limit} actions");
        }
        let wrong = |id: &i64, name: &str| truth.get(id).is_none_or(|t| t != name);

        // 1. "Is this also NAME?"
        let groups = store.read(|c| suggest::groups(c, None, settings, suggest::GROUP))?;
        if let Some(g) = groups.first() {
            let (out, keep): (Vec<i64>, Vec<i64>) =
                g.faces.iter().partition(|f| wrong(f, &g.person));
            line.actions += out.len() + 1;
            line.corrections += out.len();
            line.taken_out += out.len();
            line.accepted_groups += 1;
            line.suggested_accepted += keep.len();
            log::debug!(
                "accept {} faces as {}, {} taken out",
                keep.len(),
                g.person,
                out.len()
            );
            people::accept(store, &keep, &g.person, &out, settings, rematch)?;
            continue;
        }

        // 2. The largest unnamed automatic cluster, the faces of someone else taken out.
        let (_, clusters) = store.read(|c| report::review_clusters(c, 0, report::REVIEW_PAGE))?;
        if let Some(c) = clusters.first() {
            let members: Vec<i64> = rows
                .iter()
                .filter(|f| f.cluster == Some(c.id))
                .map(|f| f.id)
                .collect();
            let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
            for f in &members {
                *votes.entry(truth[f].as_str()).or_default() += 1;
            }
            let name = votes
                .iter()
                .max_by_key(|(n, k)| (**k, std::cmp::Reverse(**n)))
                .map(|(n, _)| n.to_string())
                .unwrap_or_default();
            // The faces offered with it ("and N that look like them"), as the page offers them
            // with its first page of clusters.
            let page: Vec<i64> = clusters.iter().map(|c| c.id).collect();
            let also = store
                .read(|conn| {
                    suggest::near_clusters(conn, &page, settings.face_match_dist, suggest::GROUP)
                })?
                .remove(&c.id)
                .unwrap_or_default();
            let out: Vec<i64> = members
                .iter()
                .chain(&also)
                .copied()
                .filter(|f| wrong(f, &name))
                .collect();
            let mut targets = vec![Ref::Cluster(c.id)];
            targets.extend(
                also.iter()
                    .filter(|f| !out.contains(f))
                    .map(|&f| Ref::Face(f)),
            );
            line.actions += out.len() + 1;
            line.corrections += out.len();
            line.taken_out += out.len();
            line.named_clusters += 1;
            line.offered_with_clusters += also.len();
            log::debug!(
                "name c{} ({} faces, {} offered with it) {name}, {} taken out",
                c.id,
                members.len(),
                also.len(),
                out.len()
            );
            people::name_several(store, &targets, &name, &out, settings, rematch)?;
            continue;
        }

        // 3. "Not NAME" on a face with a wrong name, largest first.
        let mut by_size: Vec<&faces::FaceRow> = rows.iter().collect();
        by_size.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id)));
        if let Some(f) = by_size
            .iter()
            .find(|f| f.person.as_deref().is_some_and(|p| wrong(&f.id, p)))
        {
            line.actions += 1;
            line.corrections += 1;
            line.not_name += 1;
            people::reject(store, &[f.id], None)?;
            continue;
        }

        // 4. The largest face without a person.
        if let Some(f) = by_size.iter().find(|f| f.person.is_none()) {
            line.actions += 1;
            line.named_faces += 1;
            log::debug!("name f{} {}", f.id, truth[&f.id]);
            people::name_several(
                store,
                &[Ref::Face(f.id)],
                &truth[&f.id],
                &[],
                settings,
                rematch,
            )?;
            continue;
        }
        bail!("the simulated review found nothing to do, yet not every face is right");
    }
    line.auto_precision = if line.auto_assigned == 0 {
        1.0
    } else {
        line.auto_right as f64 / line.auto_assigned as f64
    };
    Ok(line)
}

/// One line of the calibration: at distance `threshold`, what pairs and nearest faces do.
#[derive(Debug, Serialize)]
struct Calibration {
    threshold: f32,
    /// Share of same-person pairs within the threshold, and of different-person pairs.
    same_pairs_within: f64,
    different_pairs_within: f64,
    /// Each face with every other face named: faces whose nearest named face is within the
    /// threshold with no other person within it plus the margin, and how many of those are right.
    nearest_decided: usize,
    nearest_right: usize,
    nearest_precision: f64,
    faces: usize,
}

fn calibrate(store: &Store, truth: &HashMap<i64, String>) -> anyhow::Result<()> {
    let rows = store.read(|c| faces::list(c, faces::Filter::default()))?;
    let rows: Vec<_> = rows
        .into_iter()
        .filter(|f| truth.contains_key(&f.id))
        .collect();
    let mut labels_of: BTreeMap<&str, usize> = BTreeMap::new();
    let labels: Vec<usize> = rows
        .iter()
        .map(|f| {
            let next = labels_of.len();
            *labels_of.entry(truth[&f.id].as_str()).or_insert(next)
        })
        .collect();
    let ids: Vec<i64> = rows.iter().map(|f| f.id).collect();
    let embeddings: Vec<Vec<f32>> = store.read(|c| crate::store::embeddings::get_many(c, &ids))?;
    let (same, different) = evaluation::pair_distances(&labels, &embeddings);
    if let Some(sep) = evaluation::separation(&same, &different) {
        println!("{}", serde_json::json!({ "separation": sep }));
    }
    let default = Reach::new(Settings::default().face_match_dist);
    // For each face: the nearest other face of each person.
    let nearest: Vec<Vec<(usize, f32)>> = (0..rows.len())
        .map(|i| {
            let mut best: BTreeMap<usize, f32> = BTreeMap::new();
            for j in (0..rows.len()).filter(|&j| j != i) {
                let d = crate::embedding::distance(&embeddings[i], &embeddings[j]);
                let e = best.entry(labels[j]).or_insert(f32::INFINITY);
                *e = e.min(d);
            }
            let mut v: Vec<(usize, f32)> = best.into_iter().collect();
            v.sort_by(|a, b| a.1.total_cmp(&b.1));
            v
        })
        .collect();
    let share = |v: &[f32], t: f32| v.iter().filter(|&&d| d <= t).count() as f64 / v.len() as f64;
    for k in 0..=30 {
        let t = 0.5 + 0.02 * k as f32;
        let (mut decided, mut right) = (0, 0);
        for (i, n) in nearest.iter().enumerate() {
            let Some(&(p, d)) = n.first() else { continue };
            let clear = n.get(1).is_none_or(|&(_, d2)| d2 >= d + PERSON_MARGIN);
            if d <= t && clear {
                decided += 1;
                right += usize::from(p == labels[i]);
            }
        }
        let c = Calibration {
            threshold: t,
            same_pairs_within: share(&same, t),
            different_pairs_within: share(&different, t),
            nearest_decided: decided,
            nearest_right: right,
            nearest_precision: if decided == 0 {
                1.0
            } else {
                right as f64 / decided as f64
            },
            faces: rows.len(),
        };
        println!("{}", serde_json::to_string(&c)?);
    }
    println!(
        "{}",
        serde_json::json!({ "reach": { "auto": default.auto, "suggest": default.suggest,
                                       "margin": default.margin } })
    );
    Ok(())
}

/// `visage bench suggest`: a synthetic library (deterministic 512-d embeddings in groups of 20
/// about 0.7 apart, stored through `store::photos` as 100 faces a photo), one person named by hand
/// on `named` faces of the first group, then suggestions for that person over all the unnamed
/// faces, timed (three runs; the database is in the page cache after the first).
pub fn run_suggest(n: usize, named: usize) -> anyhow::Result<i32> {
    use crate::pipeline::{FoundFace, Source};
    use crate::store::photos::{self, FileInfo, PhotoInfo};
    let named = named.clamp(1, 19);
    let rows = crate::graph::synthetic::embeddings(512, n / 20 + 1, 20, 0.55, 0);
    let total = rows.len() / 512;
    let temp = TempDb::new();
    let mut store = Store::open_or_create(&temp.0)?;
    let started = std::time::Instant::now();
    store.write(|tx| -> anyhow::Result<()> {
        for (k, chunk) in rows.chunks(512 * 100).enumerate() {
            let found: Vec<FoundFace> = chunk
                .chunks(512)
                .enumerate()
                .map(|(i, e)| FoundFace {
                    x: (i % 10) as f32 * 100.0,
                    y: (i / 10) as f32 * 100.0,
                    w: 90.0,
                    h: 90.0,
                    size: 90,
                    score: 20.0,
                    source: Source::Pico,
                    probability: 1.0,
                    landmarks: Vec::new(),
                    embedding: e.to_vec(),
                })
                .collect();
            let file = FileInfo {
                path: format!("/synthetic/{k:05}.jpg"),
                size: 1,
                mtime_ns: 0,
                hash: None,
            };
            let info = PhotoInfo {
                width: 1000,
                height: 1000,
                orientation: 1,
            };
            photos::store_indexed(tx, &file, info, &found, crate::store::now())?;
        }
        Ok(())
    })?;
    let stored = started.elapsed().as_secs_f64();
    let first: Vec<i64> = store.read(|c| {
        c.prepare("SELECT id FROM faces ORDER BY id LIMIT ?1")?
            .query_map([named as i64], |r| r.get(0))?
            .collect()
    })?;
    let targets: Vec<Ref> = first.iter().map(|&f| Ref::Face(f)).collect();
    let settings = Settings::default();
    people::name_several(&mut store, &targets, "Synthetic", &[], &settings, None)?;
    let p = store
        .read(|c| people::person_id(c, "Synthetic"))?
        .context("the synthetic person")?;
    let mut times = Vec::new();
    let mut suggested = 0;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let groups = store.read(|c| suggest::groups(c, Some(p), &settings, suggest::GROUP))?;
        times.push(t.elapsed().as_secs_f64());
        suggested = groups.iter().map(|g| g.faces.len()).sum::<usize>();
    }
    println!(
        "{}",
        serde_json::json!({
            "unnamed_faces": total - named,
            "named": named,
            "suggested": suggested,
            "seconds": times,
            "library_written_s": stored,
            "threads": rayon::current_num_threads(),
        })
    );
    Ok(0)
}
