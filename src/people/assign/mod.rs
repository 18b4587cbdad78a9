//! `visage cluster` and the end of `visage index`: the automatic side. It matches faces to the
//! people named by hand, clusters the eligible rest (PhotoPrism's `face-cluster-size` and
//! `face-cluster-score`) with DBSCAN, and matches what is left over to the clusters. One
//! transaction per run.
//!
//! Two ways to the same clusters:
//! - [`full`]: everything automatic is dropped and rebuilt over the whole library (`cluster
//!   --recluster`, the first run, or a run with other cluster settings than the last);
//! - [`incremental`]: otherwise. DBSCAN's state is kept in the store (`store::dbscan`: each
//!   face's neighbour count, its cluster, whether DBSCAN put it there), so a run looks only at the
//!   faces that arrived, left or were named since the last one, and at their neighbourhoods
//!   (`clustering::incremental`). Its cost grows with what changed, not with the library.
//!
//! Automatic decisions only: a face assigned by hand is never moved, and nothing manual is
//! dropped. The decisions are made here; `store::dbscan` and `store::matching` write them.

mod full;
pub mod graph;
mod incremental;
mod named;

pub use full::Full;
pub use graph::Plan;
pub use named::{Candidates, Named, load_named};

use std::collections::HashMap;

use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;
use rusqlite::{Connection, Transaction};
use serde::Serialize;

use super::PeopleError;
use crate::clustering::matching::{Identity, Match, SAMPLE_RADIUS_CLAMP, Target, choose};
use crate::clustering::{self, ClusterSummary};
use crate::config::{GraphChoice, Settings};
use crate::embedding::EMBEDDING_DIM as DIM;
use crate::graph::GraphBackend;
use crate::graph::Rows;
use crate::graph::range::RangeQuery;
use crate::graph::reach::TargetIndex;
use crate::store::clusters::{self, ClusterKind, ClusterRow};
use crate::store::{ClusterId, SqlResult, Store, dbscan, embeddings, matching};

/// What one clustering run did. Counts are of this run's work.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ClusterReport {
    /// Everything automatic was rebuilt over the whole library (`--recluster`, the first run,
    /// or other cluster settings than the last run's).
    pub full: bool,
    /// Why, when it was.
    pub rebuilt: Option<String>,
    /// Automatic clusters dropped first (a full run).
    pub dropped_clusters: usize,
    /// Faces this run decided about: new ones, and ones a decision set free.
    pub considered: usize,
    /// Faces matched to a person named by hand.
    pub matched_people: usize,
    /// Faces that joined clusters that existed before this run (DBSCAN or matching).
    pub joined_clusters: usize,
    /// Clusters DBSCAN formed in this run, and the faces in them.
    pub new_clusters: usize,
    pub new_cluster_faces: usize,
    /// Automatic clusters that merged into another one.
    pub merged_clusters: usize,
    /// Faces about equally close to two people, left unassigned.
    pub ambiguous: usize,
    /// Faces this run considered that fit no cluster and no person.
    pub unassigned: usize,
    /// Faces DBSCAN ran over (the eligible ones of this run, or of the library in a full run).
    pub dbscan_faces: usize,
    pub seconds: f64,
}

/// The settings DBSCAN's stored state was computed under; a run under other ones rebuilds it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct ClusterSettings {
    pub dist: f32,
    pub core: u32,
    pub size: u32,
    pub score: u32,
}

impl ClusterSettings {
    pub fn of(settings: &Settings) -> Self {
        ClusterSettings {
            dist: settings.face_cluster_dist,
            core: settings.face_cluster_core,
            size: settings.face_cluster_size,
            score: settings.face_cluster_score,
        }
    }

    fn apply(self, settings: &Settings) -> Settings {
        Settings {
            face_cluster_dist: self.dist,
            face_cluster_core: self.core,
            face_cluster_size: self.size,
            face_cluster_score: self.score,
            ..settings.clone()
        }
    }
}

impl std::fmt::Display for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "--face-cluster-dist {} --face-cluster-core {} --face-cluster-size {} \
             --face-cluster-score {}",
            self.dist, self.core, self.size, self.score
        )
    }
}

/// The cluster settings the library's automatic clusters were made with, if any.
pub fn settings_in_use(conn: &Connection) -> SqlResult<Option<ClusterSettings>> {
    dbscan::settings(conn)
}

/// Run clustering and matching over the store: incrementally when the stored state allows it,
/// else (`recluster`, a first run, or cluster settings other than the last run's) rebuilding
/// every automatic cluster.
pub fn run(
    store: &mut Store,
    settings: &Settings,
    backend: &GraphBackend,
    recluster: bool,
) -> Result<ClusterReport, PeopleError> {
    let never = std::sync::atomic::AtomicBool::new(false);
    let how = Full {
        plan: &Plan::Here,
        stop: &never,
    };
    run_with(store, settings, backend, recluster, how)
}

/// [`run`], a full run's graph as `how` says (computed here, or read from the parts of a graph
/// computed elsewhere), stopping when `how.stop` is set: the run then fails with
/// [`PeopleError::is_stopped`] and writes nothing.
pub fn run_with(
    store: &mut Store,
    settings: &Settings,
    backend: &GraphBackend,
    recluster: bool,
    how: Full,
) -> Result<ClusterReport, PeopleError> {
    let started = std::time::Instant::now();
    let mut report = store.write(|tx| -> Result<ClusterReport, PeopleError> {
        let want = ClusterSettings::of(settings);
        let state = settings_in_use(tx)?;
        let reason = match state {
            _ if recluster => Some("--recluster".to_string()),
            None => Some("the first clustering of this library".to_string()),
            Some(s) if s != want => Some(format!("the cluster settings changed (were: {s})")),
            Some(_) => None,
        };
        let mut report = match &reason {
            Some(_) => full::run(tx, settings, backend, how)?,
            None => incremental::run(tx, settings, backend)?,
        };
        report.rebuilt = reason;
        dbscan::set_settings(tx, &want)?;
        Ok(report)
    })?;
    if report.full {
        // Incremental runs read the vectors from the vector file: make it now, after a run that
        // read every vector anyway, rather than in the next `index`.
        let _ = crate::store::embeddings::file::VectorFile::open(store.path());
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Matching after a decision, inside the decision's own transaction (and recorded action): the
/// faces around the faces it named or un-named are matched to people again. Clustering itself
/// (DBSCAN's state) is left to the next run of [`run`]: a recorded action holds decisions and the
/// matching they cause, never the automatic clusters. With `recluster`, everything automatic is
/// rebuilt instead, as `visage cluster --recluster` does.
pub fn run_in(
    tx: &Transaction,
    settings: &Settings,
    backend: &GraphBackend,
    recluster: bool,
    _candidates: Candidates,
) -> Result<ClusterReport, PeopleError> {
    let started = std::time::Instant::now();
    let mut report = if recluster {
        let never = std::sync::atomic::AtomicBool::new(false);
        let how = Full {
            plan: &Plan::Here,
            stop: &never,
        };
        full::run(tx, settings, backend, how)?
    } else {
        incremental::after_decision(tx, settings)?
    };
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Matching again after a decision (the review page's actions): like [`run`], but under the
/// cluster settings the library's clusters were made with, so that naming a face never
/// rebuilds every cluster because the page was started with other settings.
pub fn rematch(
    store: &mut Store,
    settings: &Settings,
    backend: &GraphBackend,
) -> Result<ClusterReport, PeopleError> {
    let settings = match store.read(settings_in_use)? {
        Some(kept) => kept.apply(settings),
        None => settings.clone(),
    };
    run(store, &settings, backend, false)
}

pub use dbscan::drop_automatic;

/// Re-summarise the manual clusters whose faces changed (`all`: every one) from their faces
/// named by hand; a manual cluster left without any is deleted (faces matched to it
/// automatically lose the match). Returns the clusters re-summarised or deleted.
pub fn refresh_manual(tx: &Transaction) -> SqlResult<Vec<i64>> {
    refresh_manual_clusters(tx, false)
}

fn refresh_manual_clusters(tx: &Transaction, all: bool) -> SqlResult<Vec<i64>> {
    let ids = clusters::manual(tx, !all)?;
    for &c in &ids {
        let members = clusters::named_members(tx, c)?;
        if members.is_empty() {
            clusters::delete_manual(tx, c)?;
        } else {
            let vectors = embeddings::get_many(tx, &members)?;
            set_summary(tx, c, &summary_of(&vectors))?;
        }
    }
    Ok(ids.into_iter().map(|c| c.0).collect())
}

/// A new cluster of this kind (and person) with this summary; returns its id.
pub fn insert_cluster(
    tx: &Transaction,
    kind: ClusterKind,
    person: Option<i64>,
    s: &ClusterSummary,
) -> SqlResult<ClusterId> {
    clusters::insert(tx, kind, person, &s.centroid, s.radius, s.size)
}

/// A cluster's summary, as its faces give it now.
fn set_summary(tx: &Transaction, c: ClusterId, s: &ClusterSummary) -> SqlResult<()> {
    clusters::set_summary(tx, c, &s.centroid, s.radius, s.size)
}

/// Centroid, sample radius and size of one group of embeddings.
pub fn summary_of(members: &[Vec<f32>]) -> ClusterSummary {
    let labels = vec![Some(0u32); members.len()];
    clustering::summarise(&labels, members)
        .pop()
        .unwrap_or(ClusterSummary {
            centroid: Vec::new(),
            radius: 0.0,
            size: 0,
        })
}

/// Re-summarise automatic clusters from their DBSCAN members; one left without members is
/// deleted (its matched faces lose the match and are looked at again next run). Clusters that
/// are not automatic (any more: a cluster named since) are left alone.
fn refresh_automatic(tx: &Transaction, ids: &[i64]) -> SqlResult<()> {
    for &c in ids {
        if clusters::kind(tx, ClusterId(c))? != Some(ClusterKind::Auto) {
            continue;
        }
        let members = dbscan::members(tx, c)?;
        if members.is_empty() {
            dbscan::delete_cluster(tx, c)?;
        } else {
            let vectors = embeddings::get_many(tx, &members)?;
            set_summary(tx, ClusterId(c), &summary_of(&vectors))?;
        }
    }
    Ok(())
}

/// The clusters a face can be matched to by distance (people named by hand are matched by
/// their faces instead: [`Named`]).
struct Targets {
    rows: Vec<ClusterRow>,
    /// Their own partition, when many faces are to be matched against many clusters
    /// ([`Targets::indexed`]); without it every face is measured against every cluster.
    index: Option<TargetIndex>,
}

/// Cells a face probes in the clusters' partition ([`TargetIndex`]).
const TARGET_PROBES: usize = 16;

/// Which clusters: the ignored ones (matched before DBSCAN, so faces like them stay out of new
/// clusters), or the unnamed ones, automatic and ignored (what is left over is matched to).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Which {
    Ignored,
    Unnamed,
}

impl Targets {
    fn load(conn: &Connection, which: Which) -> SqlResult<Self> {
        let rows = match which {
            // A few, usually: read those alone.
            Which::Ignored => clusters::of_kind(conn, ClusterKind::Ignored)?,
            Which::Unnamed => clusters::all(conn)?
                .into_iter()
                .filter(|c| c.kind != ClusterKind::Manual)
                .collect(),
        }
        .into_iter()
        .filter(|c| c.centroid.len() == DIM)
        .collect();
        Ok(Targets { rows, index: None })
    }

    /// Partition the clusters for `faces` faces to come, when measuring every pair would cost
    /// more than the partition ([`TargetIndex::WORTH_IT`]): what a full re-cluster leaves over
    /// (seven million faces against two hundred thousand clusters at ten million faces) is then
    /// measured against the clusters of a few cells near it, not against all of them. A cluster
    /// is missed only when its cell is not among the face's probes, as the approximate
    /// neighbour graph misses an edge; `--graph exact` keeps every pair.
    fn indexed(mut self, faces: usize, settings: &Settings) -> Self {
        let pairs = faces.saturating_mul(self.rows.len());
        if settings.graph == GraphChoice::Exact || pairs < TargetIndex::WORTH_IT {
            return self;
        }
        let centroids: Vec<f32> = self
            .rows
            .iter()
            .flat_map(|c| c.centroid.iter().copied())
            .collect();
        let reach: Vec<f32> = self.rows.iter().map(|c| reach_of(c, settings)).collect();
        log::info!(
            "partitioning {} clusters for {faces} faces to match",
            self.rows.len()
        );
        self.index = Some(TargetIndex::build(&centroids, DIM, &reach, TARGET_PROBES));
        self
    }

    fn targets(&self) -> Vec<Target<'_>> {
        self.rows
            .iter()
            .map(|c| Target {
                centroid: &c.centroid,
                radius: c.radius,
                manual: c.kind != ClusterKind::Auto,
                identity: match (c.kind, c.person_id) {
                    (ClusterKind::Manual, Some(p)) => Identity::Person(p),
                    _ => Identity::Cluster(c.id.0),
                },
            })
            .collect()
    }
}

/// Faces waiting for a decision: their ids and embeddings (half floats, as stored; row `k` is
/// face `ids[k]`).
#[derive(Default)]
struct Faces {
    ids: Vec<i64>,
    rows: Vec<f16>,
}

impl Faces {
    fn push(&mut self, id: i64, embedding: &[f32]) {
        self.ids.push(id);
        self.rows
            .extend(embedding.iter().map(|&x| f16::from_f32(x)));
    }

    fn push_half(&mut self, id: i64, row: &[f16]) {
        self.ids.push(id);
        self.rows.extend_from_slice(row);
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn row(&self, k: usize) -> &[f16] {
        &self.rows[k * DIM..(k + 1) * DIM]
    }

    fn row_f32(&self, k: usize) -> Vec<f32> {
        let mut out = vec![0f32; DIM];
        self.row(k).convert_to_f32_slice(&mut out);
        out
    }
}

/// What matching decided for each face.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Decision {
    /// Join this cluster (and its person, if it is named).
    Join(i64, Option<i64>),
    Ambiguous,
    None,
}

/// Match each face against `targets`, as `clustering::matching::best_match` decides, with the
/// candidates found by one range search of every face against every target (a million faces
/// against thirty thousand clusters is matrix products, not a loop over pairs).
fn decide(
    faces: &Faces,
    targets: &Targets,
    rejections: &HashMap<i64, Vec<i64>>,
    settings: &Settings,
) -> Vec<Decision> {
    let n = faces.len();
    if targets.rows.is_empty() || n == 0 {
        return vec![Decision::None; n];
    }
    let t = targets.targets();
    let mut candidates: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
    if let Some(index) = &targets.index {
        for hit in index.within(Rows::F16(&faces.rows), 0.0) {
            candidates[hit.query as usize].push((hit.target as usize, hit.d2.max(0.0).sqrt()));
        }
    } else {
        let centroids: Vec<f32> = targets
            .rows
            .iter()
            .flat_map(|c| c.centroid.iter().copied())
            .collect();
        let reach: Vec<f32> = targets.rows.iter().map(|c| reach_of(c, settings)).collect();
        let mut queries = RangeQuery::with_reach(&centroids, DIM, &reach);
        for hit in queries.within(Rows::F16(&faces.rows)) {
            candidates[hit.row as usize].push((hit.query as usize, hit.d2.max(0.0).sqrt()));
        }
    }
    let none = Vec::new();
    candidates
        .into_par_iter()
        .enumerate()
        .map(|(k, c)| {
            if c.is_empty() {
                return Decision::None;
            }
            let rejected = rejections.get(&faces.ids[k]).unwrap_or(&none);
            match choose(c, &t, rejected) {
                Match::Join(j, _) => {
                    let c = &targets.rows[j];
                    let person = (c.kind == ClusterKind::Manual)
                        .then_some(c.person_id)
                        .flatten();
                    Decision::Join(c.id.0, person)
                }
                Match::Ambiguous => Decision::Ambiguous,
                Match::None => Decision::None,
            }
        })
        .collect()
}

/// What is left over, matched to `targets` (the unnamed clusters, automatic and ignored, the new
/// ones included): a face joins the cluster it matches (and the cluster's person, if it is named)
/// and counts in `report.joined_clusters`, or is marked ambiguous when two clusters are about as
/// near. Returns what was decided for each face of `rest`.
fn match_leftovers(
    tx: &Transaction,
    rest: &Faces,
    targets: &Targets,
    rejections: &HashMap<i64, Vec<i64>>,
    settings: &Settings,
    report: &mut ClusterReport,
) -> SqlResult<Vec<Decision>> {
    let decisions = decide(rest, targets, rejections, settings);
    for (&id, d) in rest.ids.iter().zip(&decisions) {
        match *d {
            Decision::Join(cluster, person) => {
                matching::join(tx, id, Some(cluster), person)?;
                report.joined_clusters += 1;
            }
            Decision::Ambiguous => matching::set_ambiguous(tx, id)?,
            Decision::None => {}
        }
    }
    Ok(decisions)
}

/// How far a cluster reaches: its sample radius, clamped as PhotoPrism clamps it, plus the match
/// distance.
pub(super) fn reach_of(c: &ClusterRow, settings: &Settings) -> f32 {
    c.radius.min(SAMPLE_RADIUS_CLAMP) + settings.face_match_dist
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::synthetic::People;

    /// Clusters as a re-cluster leaves them (each tight synthetic person's first faces, summed
    /// as DBSCAN's clusters are), and faces to match: the other faces of every person.
    fn library() -> (Targets, Faces) {
        let people = People::new(60_000, 9);
        let rows = people.rows_f32();
        let mut members: Vec<Vec<Vec<f32>>> = vec![Vec::new(); people.sizes().len()];
        let mut faces = Faces::default();
        for (i, &p) in people.labels().iter().enumerate() {
            let row = &rows[i * DIM..(i + 1) * DIM];
            let m = &mut members[p as usize];
            if People::is_tight(p) && m.len() < 4 + people.sizes()[p as usize] as usize / 2 {
                m.push(row.to_vec());
            } else {
                faces.push(i as i64, row);
            }
        }
        let rows = members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.len() >= 4)
            .map(|(p, m)| {
                let s = summary_of(m);
                ClusterRow {
                    id: ClusterId(p as i64 + 1),
                    kind: ClusterKind::Auto,
                    person_id: None,
                    person: None,
                    centroid: s.centroid,
                    radius: s.radius,
                    samples: s.size as u32,
                }
            })
            .collect();
        (Targets { rows, index: None }, faces)
    }

    #[test]
    fn partitioned_clusters_match_faces_as_every_pair_does() {
        let (targets, faces) = library();
        let settings = Settings::default();
        let none = HashMap::new();
        let exact = decide(&faces, &targets, &none, &settings);
        let joins = exact
            .iter()
            .filter(|d| matches!(d, Decision::Join(..)))
            .count();
        assert!(
            targets.rows.len() > 1_000 && joins > 2_000,
            "{} clusters, {joins} faces joined",
            targets.rows.len()
        );
        // As if a re-cluster had left enough faces over for the partition to pay.
        let targets = targets.indexed(TargetIndex::WORTH_IT, &settings);
        assert!(targets.index.is_some());
        let indexed = decide(&faces, &targets, &none, &settings);
        let differ = exact.iter().zip(&indexed).filter(|(a, b)| a != b).count();
        assert!(
            differ * 1000 <= faces.len(),
            "{differ} of {} faces decided otherwise",
            faces.len()
        );
        // A face the partition joins to a cluster is within that cluster's reach.
        for (k, d) in indexed.iter().enumerate() {
            if let Decision::Join(c, _) = *d {
                let row = targets.rows.iter().find(|r| r.id.0 == c).unwrap();
                let dist = crate::embedding::distance(&faces.row_f32(k), &row.centroid);
                assert!(dist <= reach_of(row, &settings) + 1e-3, "{dist}");
            }
        }
    }

    #[test]
    fn the_exact_graph_keeps_every_pair_in_matching() {
        let (targets, _) = library();
        let settings = Settings {
            graph: GraphChoice::Exact,
            ..Settings::default()
        };
        assert!(targets.indexed(usize::MAX, &settings).index.is_none());
        let small = Settings::default();
        let (targets, _) = library();
        assert!(targets.indexed(1000, &small).index.is_none());
    }
}
