//! `visage bench review DIR`: the simulated review. A folder with one subfolder per person gives
//! the truth: in each photo the largest face (by box area) is the folder's person, and any other
//! face is a stranger (someone in the background, a face on a poster). The photos are indexed (or
//! an indexed database is copied) and clustered with the settings given, then a user is simulated
//! who does what the review page offers, through the same `people` operations the page calls,
//! until every person's face carries its right name and no stranger carries a name:
//!
//! 1. a suggestion group ("Is this also NAME?"): take out the faces that are not NAME's, strangers
//!    included (one action each), then accept the group (one action);
//! 2. otherwise name the largest unnamed automatic cluster most of whose faces are one person's,
//!    with the faces the page offers with it ("and these that look like them"), after taking out
//!    the faces that are not that person's (one action each, and one for the name); a cluster
//!    most of whose faces are strangers is left unnamed;
//! 3. otherwise "Not NAME" on a face that carries a wrong name (the person's page), a stranger's
//!    included;
//! 4. otherwise name the largest face of a person that has no name yet (the Unknown page).
//!
//! The user never names a stranger. Taking a stranger out of a group or cluster and "Not NAME"
//! on a stranger visage named count as one action and one correction each, as for a person's face
//! with a wrong name: each undoes a mistake of visage's. Leaving a stranger unnamed costs nothing.
//!
//! Matching runs after each decision, as the page runs it. Take-outs and "Not NAME" are
//! corrections. Every face a matching run gives a person is checked against the truth (a stranger
//! given any name is a wrong one): the automatic assignments' precision. One JSON line;
//! `--calibrate` adds the distance calibration (pairs of the people's faces, and each face's
//! nearest other face) as further lines.

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
use crate::store::{ClusterId, FaceId, PhotoId, Store, faces};

use super::TempDb;

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
    /// Faces that are not the largest of their photo: nobody the folder names.
    strangers: usize,
    actions: usize,
    corrections: usize,
    /// Actions by kind.
    accepted_groups: usize,
    taken_out: usize,
    named_clusters: usize,
    not_name: usize,
    named_faces: usize,
    /// Of the corrections, those on strangers (taken out, or "Not NAME").
    strangers_corrected: usize,
    /// Faces that matching gave a person, and how many of those were right (a stranger given a
    /// name is a wrong one).
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

/// Who each face is: the largest face of a photo (by box area; the lower id of two equal ones) is
/// the person its parent folder names, any other face of the photo is a stranger.
struct Truth(HashMap<FaceId, Option<String>>);

impl Truth {
    fn new(rows: &[faces::FaceRow]) -> Self {
        let mut largest: HashMap<PhotoId, &faces::FaceRow> = HashMap::new();
        for f in rows {
            let area = |f: &faces::FaceRow| f.w * f.h;
            largest
                .entry(f.photo)
                .and_modify(|l| {
                    if area(f) > area(l) || (area(f) == area(l) && f.id < l.id) {
                        *l = f;
                    }
                })
                .or_insert(f);
        }
        let folder = |path: &str| {
            Path::new(path)
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        Truth(
            rows.iter()
                .map(|f| {
                    let person = (largest[&f.photo].id == f.id).then(|| folder(&f.path));
                    (f.id, person)
                })
                .collect(),
        )
    }

    fn knows(&self, face: FaceId) -> bool {
        self.0.contains_key(&face)
    }

    /// The person `face` is, or `None` for a stranger.
    fn of(&self, face: FaceId) -> Option<&str> {
        self.0.get(&face).and_then(|p| p.as_deref())
    }

    /// Whether `face` is not `name`'s: someone else's, or a stranger's.
    fn wrong(&self, face: FaceId, name: &str) -> bool {
        self.of(face) != Some(name)
    }

    fn is_stranger(&self, face: FaceId) -> bool {
        self.knows(face) && self.of(face).is_none()
    }

    fn faces(&self) -> usize {
        self.0.len()
    }

    fn strangers(&self) -> usize {
        self.0.values().filter(|p| p.is_none()).count()
    }

    fn people(&self) -> usize {
        self.0.values().flatten().collect::<HashSet<_>>().len()
    }
}

pub fn run(args: ReviewArgs) -> anyhow::Result<i32> {
    let settings = &args.settings;
    let temp = TempDb::new("review");
    match &args.db {
        Some(src) => {
            Store::open(src)?
                .copy_to(&temp.0)
                .with_context(|| format!("copying {}", src.display()))?;
        }
        None => {
            let mut store = Store::open_or_create(&temp.0)?;
            let load = || crate::pipeline::Pipeline::new(settings, true);
            let reader = crate::photo::Reader::for_settings(settings);
            crate::index::index(
                &mut store,
                load,
                &reader,
                std::slice::from_ref(&args.dir),
                &crate::index::IndexOptions::new(settings, None),
                |p, why| eprintln!("visage: {}: {why}", p.display()),
            )?;
        }
    }
    let mut store = Store::open(&temp.0)?;
    let backend = GraphBackend::choose(settings.device)?;
    people::reset(&mut store, true, true)?;
    store.write(|tx| -> anyhow::Result<()> {
        crate::store::faces::unmark_all(tx)?;
        crate::store::history::forget(tx)?;
        Ok(())
    })?;
    assign::run(&mut store, settings, &backend, true)?;
    let truth = Truth::new(&store.read(|c| faces::list(c, faces::Filter::default()))?);
    if truth.faces() == 0 {
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
    truth: &Truth,
) -> anyhow::Result<Line> {
    let rematch = Some(Rematch { settings, backend });
    let mut line = Line {
        people: truth.people(),
        faces: truth.faces(),
        strangers: truth.strangers(),
        face_cluster_dist: settings.face_cluster_dist,
        face_match_dist: settings.face_match_dist,
        ..Line::default()
    };
    let mut seen_auto: HashSet<(FaceId, String)> = HashSet::new();
    let limit = 10 * truth.faces() + 10;
    // Take-outs and "Not NAME": corrections, those on strangers counted too.
    let correct = |line: &mut Line, faces: &[FaceId]| {
        line.actions += faces.len();
        line.corrections += faces.len();
        line.strangers_corrected += faces.iter().filter(|&&f| truth.is_stranger(f)).count();
    };
    loop {
        let rows = store.read(|c| faces::list(c, faces::Filter::default()))?;
        let rows: Vec<_> = rows.into_iter().filter(|f| truth.knows(f.id)).collect();
        for f in &rows {
            if let (Some(faces::Assigned::Auto), Some(p)) = (f.assigned, &f.person)
                && seen_auto.insert((f.id, p.clone()))
            {
                line.auto_assigned += 1;
                if !truth.wrong(f.id, p) {
                    line.auto_right += 1;
                }
            }
        }
        if rows.iter().all(|f| f.person.as_deref() == truth.of(f.id)) {
            break;
        }
        if line.actions > limit {
            bail!("the simulated review did not converge in {limit} actions");
        }

        // 1. "Is this also NAME?"
        let groups = store.read(|c| suggest::groups(c, None, settings, suggest::GROUP))?;
        if let Some(g) = groups.first() {
            let (out, keep): (Vec<FaceId>, Vec<FaceId>) =
                g.faces.iter().partition(|&&f| truth.wrong(f, &g.person));
            correct(&mut line, &out);
            line.actions += 1;
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

        // 2. The largest unnamed automatic cluster that is mostly one person's, the faces of
        // someone else taken out.
        let (_, clusters) = store.read(|c| report::review_clusters(c, 0, report::REVIEW_PAGE))?;
        let members = |cluster: ClusterId| -> Vec<FaceId> {
            rows.iter()
                .filter(|f| f.cluster == Some(cluster))
                .map(|f| f.id)
                .collect()
        };
        // Who most of a cluster's faces are (strangers vote as one); `None`: strangers.
        let majority = |faces: &[FaceId]| -> Option<String> {
            let mut votes: BTreeMap<Option<&str>, usize> = BTreeMap::new();
            for &f in faces {
                *votes.entry(truth.of(f)).or_default() += 1;
            }
            votes
                .into_iter()
                .max_by_key(|(n, k)| (*k, std::cmp::Reverse(*n)))
                .and_then(|(n, _)| n.map(str::to_string))
        };
        let named = clusters
            .iter()
            .find_map(|c| majority(&members(c.id)).map(|name| (c, name)));
        if let Some((c, name)) = named {
            let members = members(c.id);
            // The faces offered with it ("and N that look like them"), as the page offers them
            // with its first page of clusters.
            let page: Vec<ClusterId> = clusters.iter().map(|c| c.id).collect();
            let also = store
                .read(|conn| {
                    suggest::near_clusters(conn, &page, settings.face_match_dist, suggest::GROUP)
                })?
                .remove(&c.id)
                .unwrap_or_default();
            let out: Vec<FaceId> = members
                .iter()
                .chain(&also)
                .copied()
                .filter(|&f| truth.wrong(f, &name))
                .collect();
            let mut targets = vec![Ref::Cluster(c.id)];
            targets.extend(
                also.iter()
                    .filter(|f| !out.contains(f))
                    .map(|&f| Ref::Face(f)),
            );
            correct(&mut line, &out);
            line.actions += 1;
            line.taken_out += out.len();
            line.named_clusters += 1;
            line.offered_with_clusters += also.len();
            log::debug!(
                "name {} ({} faces, {} offered with it) {name}, {} taken out",
                c.id,
                members.len(),
                also.len(),
                out.len()
            );
            people::name_several(store, &targets, &name, &out, settings, rematch)?;
            continue;
        }

        // 3. "Not NAME" on a face with a wrong name (a stranger's included), largest first.
        let mut by_size: Vec<&faces::FaceRow> = rows.iter().collect();
        by_size.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id)));
        if let Some(f) = by_size
            .iter()
            .find(|f| f.person.as_deref().is_some_and(|p| truth.wrong(f.id, p)))
        {
            correct(&mut line, &[f.id]);
            line.not_name += 1;
            people::reject(store, &[f.id], None)?;
            continue;
        }

        // 4. The largest face of a person without a name.
        if let Some((f, name)) = by_size
            .iter()
            .filter(|f| f.person.is_none())
            .find_map(|f| truth.of(f.id).map(|name| (f, name)))
        {
            line.actions += 1;
            line.named_faces += 1;
            log::debug!("name {} {name}", f.id);
            people::name_several(store, &[Ref::Face(f.id)], name, &[], settings, rematch)?;
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

/// The calibration over the people's faces (strangers have no label to pair them by).
fn calibrate(store: &Store, truth: &Truth) -> anyhow::Result<()> {
    let rows = store.read(|c| faces::list(c, faces::Filter::default()))?;
    let people: Vec<(FaceId, &str)> = rows
        .iter()
        .filter_map(|f| truth.of(f.id).map(|p| (f.id, p)))
        .collect();
    let mut labels_of: BTreeMap<&str, usize> = BTreeMap::new();
    let labels: Vec<usize> = people
        .iter()
        .map(|&(_, p)| {
            let next = labels_of.len();
            *labels_of.entry(p).or_insert(next)
        })
        .collect();
    let ids: Vec<i64> = people.iter().map(|&(f, _)| f.0).collect();
    let embeddings: Vec<Vec<f32>> = store.read(|c| crate::store::embeddings::get_many(c, &ids))?;
    let (same, different) = evaluation::pair_distances(&labels, &embeddings);
    if let Some(sep) = evaluation::separation(&same, &different) {
        println!("{}", serde_json::json!({ "separation": sep }));
    }
    let default = Reach::new(Settings::default().face_match_dist);
    // For each face: the nearest other face of each person.
    let nearest: Vec<Vec<(usize, f32)>> = (0..ids.len())
        .map(|i| {
            let mut best: BTreeMap<usize, f32> = BTreeMap::new();
            for j in (0..ids.len()).filter(|&j| j != i) {
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
            faces: ids.len(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn face(id: i64, photo: i64, path: &str, (w, h): (f32, f32), size: u32) -> faces::FaceRow {
        faces::FaceRow {
            id: FaceId(id),
            photo: PhotoId(photo),
            path: path.to_string(),
            x: 0.0,
            y: 0.0,
            w,
            h,
            size,
            score: 10.0,
            probability: 1.0,
            cluster: None,
            person: None,
            person_id: None,
            assigned: None,
            ambiguous: false,
            verdict: None,
            moment: None,
        }
    }

    /// The celebrity set's Elton John photo: Cher's face beside his is the larger detection window
    /// (`size` 109 against 107) but the smaller box (76x109 against 83x107). The box decides.
    #[test]
    fn the_largest_box_of_a_photo_is_its_folders_person_and_the_rest_strangers() {
        let rows = [
            face(23, 1, "/p/elton_john/a.jpg", (83.2, 106.7), 107),
            face(24, 1, "/p/elton_john/a.jpg", (76.5, 108.9), 109),
            face(25, 2, "/p/madonna/b.jpg", (40.0, 50.0), 50),
            face(26, 3, "/p/madonna/c.jpg", (30.0, 30.0), 30),
            face(27, 3, "/p/madonna/c.jpg", (30.0, 30.0), 30),
        ];
        let truth = Truth::new(&rows);
        assert_eq!(truth.of(FaceId(23)), Some("elton_john"));
        assert_eq!(truth.of(FaceId(24)), None);
        assert!(truth.is_stranger(FaceId(24)) && !truth.is_stranger(FaceId(23)));
        assert_eq!(truth.of(FaceId(25)), Some("madonna"));
        // Two equal boxes: the lower id is the person.
        assert_eq!(
            (truth.of(FaceId(26)), truth.of(FaceId(27))),
            (Some("madonna"), None)
        );
        assert!(truth.wrong(FaceId(24), "elton_john") && !truth.wrong(FaceId(23), "elton_john"));
        assert!(!truth.knows(FaceId(99)) && !truth.is_stranger(FaceId(99)));
        assert_eq!(
            (truth.faces(), truth.strangers(), truth.people()),
            (5, 2, 2)
        );
    }
}
