//! An incremental run: only what changed since the last run is looked at.
//!
//! 1. Faces named (or un-named) by hand since the last run: the faces around them are matched
//!    again (they may join that person, or lose a match that no longer holds).
//! 2. New faces (and faces a decision set free) are matched to the people named by hand.
//! 3. DBSCAN's state takes in the eligible rest and lets go of the faces that left (named,
//!    matched to a person, gone): `clustering::incremental` works out the change from the
//!    neighbourhoods of those faces, found by range queries over the stored embeddings
//!    (`store::dbscan::search`: on a large library, the rows of the cells of the vector file's
//!    partition that those faces probe, `store::embeddings::cells`).
//! 4. What is left over is matched to the clusters near it (on a large library, those at home in
//!    the cells it probes: [`targets_near`]), and faces left over earlier are matched to the
//!    clusters that changed.

use std::collections::{BTreeMap, HashMap, HashSet};

use half::slice::HalfFloatSliceExt;
use rusqlite::Transaction;

use super::named::PersonDecision;
use super::{
    ClusterReport, Decision, Faces, Named, Targets, Which, decide, load_named, match_leftovers,
    refresh_automatic, refresh_manual_clusters,
};
use crate::clustering::incremental::{Batch, Label, Point};
use crate::clustering::matching::SAMPLE_RADIUS_CLAMP;
use crate::config::Settings;
use crate::embedding::EMBEDDING_DIM as DIM;
use crate::graph::GraphBackend;
use crate::graph::range::RangeQuery;
use crate::people::PeopleError;
use crate::store::ClusterId;
use crate::store::clusters::{self, ClusterKind};
use crate::store::embeddings::cells::Cells;
use crate::store::embeddings::file::VectorFile;
use crate::store::embeddings::{self, Found};
use crate::store::matching::{self, join};
use crate::store::people::rejections_of;
use crate::store::{SqlResult, dbscan};

pub(super) fn run(
    tx: &Transaction,
    settings: &Settings,
    backend: &GraphBackend,
) -> Result<ClusterReport, PeopleError> {
    let mut report = ClusterReport::default();
    let phase = Phases::start();
    // The searches below read the vector file's cells: made or brought up to date first.
    prepare_cells(tx, settings)?;
    refresh_manual_clusters(tx, false)?;
    rematch_named(tx, settings, &mut report)?;
    phase.done("named faces' matches");

    // 2. New faces, and faces a decision (or an undo) set free: they start from nothing.
    let new = dbscan::unseen(tx)?;
    let mut freed_from: Vec<i64> = Vec::new();
    for f in &new {
        if let Some(c) = f.cluster {
            dbscan::leave_cluster(tx, f.id)?;
            freed_from.push(c);
        }
    }
    report.considered += new.len();
    let ids: Vec<i64> = new.iter().map(|f| f.id).collect();
    let size: HashMap<i64, (u32, f32)> = new.iter().map(|f| (f.id, (f.size, f.score))).collect();
    let mut open = Faces::default();
    for (id, v) in ids.iter().zip(embeddings::get_many(tx, &ids)?) {
        if v.len() == DIM {
            open.push(*id, &v);
        }
    }
    let rejections = rejections_of(tx, &ids)?;
    let named = load_named(tx)?;
    let ignored = Targets::load(tx, Which::Ignored)?;
    let mut left: Vec<usize> = Vec::new();
    let mut in_dbscan: Vec<usize> = Vec::new();
    let people = named.decide(&open, &rejections, settings);
    let ignored_decisions = decide(&open, &ignored, &rejections, settings);
    for (k, (p, i)) in people.into_iter().zip(ignored_decisions).enumerate() {
        let id = open.ids[k];
        match (p, i) {
            (PersonDecision::Join { person, cluster }, _) => {
                join(tx, id, cluster, Some(person))?;
                report.matched_people += 1;
            }
            (PersonDecision::Ambiguous, _) => {
                matching::set_ambiguous(tx, id)?;
                report.ambiguous += 1;
            }
            (PersonDecision::None, Decision::Join(cluster, _)) => {
                join(tx, id, Some(cluster), None)?;
                report.joined_clusters += 1;
            }
            _ if settings.eligible(size[&id].0, size[&id].1) => in_dbscan.push(k),
            _ => left.push(k),
        }
    }

    phase.done("new faces against people");
    // 3. DBSCAN takes in the eligible new faces and lets go of those that left.
    let removed: Vec<(i64, Point, Vec<f32>)> = dbscan::removed(tx)?
        .into_iter()
        .map(|r| (r.face, point(r.state), r.vector))
        .collect();
    let adds: Vec<(i64, Vec<f32>)> = in_dbscan
        .iter()
        .map(|&k| (open.ids[k], open.row_f32(k)))
        .collect();
    report.dbscan_faces = adds.len();
    let re_added: HashSet<i64> = removed
        .iter()
        .map(|r| r.0)
        .filter(|id| adds.iter().any(|a| a.0 == *id))
        .collect();
    let mut touched: Vec<i64> = Vec::new();
    if re_added.is_empty() {
        touched.extend(round(tx, settings, backend, &adds, &removed, &mut report)?);
    } else {
        // A face that left and came back: take it out first, then in again.
        touched.extend(round(tx, settings, backend, &[], &removed, &mut report)?);
        touched.extend(round(tx, settings, backend, &adds, &[], &mut report)?);
    }
    dbscan::clear_removed(tx)?;
    touched.extend(freed_from);
    touched.sort_unstable();
    touched.dedup();
    refresh_automatic(tx, &touched)?;
    phase.done("DBSCAN");

    // 4. Leftovers: the new ones against every cluster; the old ones against what changed.
    let mut placed: HashSet<i64> = HashSet::new();
    for &k in &in_dbscan {
        if dbscan::is_member(tx, open.ids[k])? {
            placed.insert(open.ids[k]);
        }
    }
    let mut rest = Faces::default();
    for &k in left.iter().chain(in_dbscan.iter()) {
        if !placed.contains(&open.ids[k]) {
            rest.push_half(open.ids[k], open.row(k));
        }
    }
    let near = targets_near(tx, settings, &rest)?;
    let mut unassigned = 0;
    for d in match_leftovers(tx, &rest, &near, &rejections, settings, &mut report)? {
        match d {
            Decision::Join(..) => {}
            Decision::Ambiguous => report.ambiguous += 1,
            Decision::None => unassigned += 1,
        }
    }
    report.unassigned = unassigned;
    phase.done("leftovers against clusters");
    rematch_leftovers(tx, settings, &touched, &mut report)?;
    phase.done("old leftovers against changed clusters");
    dbscan::mark_seen(tx, &ids)?;
    Ok(report)
}

/// How long each step of a run took (`RUST_LOG=debug`).
struct Phases(std::cell::Cell<std::time::Instant>);

impl Phases {
    fn start() -> Self {
        Phases(std::cell::Cell::new(std::time::Instant::now()))
    }

    fn done(&self, what: &str) {
        let now = std::time::Instant::now();
        log::debug!(
            "incremental run: {what} in {:.3} s",
            (now - self.0.get()).as_secs_f64()
        );
        self.0.set(now);
    }
}

/// A face's stored DBSCAN state, as `clustering::incremental` takes it.
fn point(s: dbscan::State) -> Point {
    Point {
        count: s.count,
        cluster: s.cluster,
        member: s.member,
    }
}

/// One round of incremental DBSCAN: `adds` join, `removed` leave. Writes the change and
/// returns the automatic clusters whose members changed (new ones included).
fn round(
    tx: &Transaction,
    settings: &Settings,
    backend: &GraphBackend,
    adds: &[(i64, Vec<f32>)],
    removed: &[(i64, Point, Vec<f32>)],
    report: &mut ClusterReport,
) -> Result<Vec<i64>, PeopleError> {
    let removed: Vec<&(i64, Point, Vec<f32>)> =
        removed.iter().filter(|r| r.2.len() == DIM).collect();
    if adds.is_empty() && removed.is_empty() {
        return Ok(Vec::new());
    }
    let eps = settings.face_cluster_dist;
    let mut batch = Batch::new(settings.face_cluster_core);
    for (id, _) in adds {
        dbscan::enter(tx, *id)?;
        batch.add(*id);
    }
    for (id, p, _) in &removed {
        batch.remove(*id, *p);
    }
    // Around the faces that arrive and leave.
    let query_ids: Vec<i64> = adds
        .iter()
        .map(|a| a.0)
        .chain(removed.iter().map(|r| r.0))
        .collect();
    let rows: Vec<f32> = adds
        .iter()
        .map(|a| a.1.as_slice())
        .chain(removed.iter().map(|r| r.2.as_slice()))
        .flatten()
        .copied()
        .collect();
    // Within 2 eps too: every neighbour of a face within eps of these is among those, so the
    // neighbourhoods of the faces that become core need no second pass (up to a bound).
    let mut queries = RangeQuery::new(&rows, DIM, 2.0 * eps);
    let eps2 = eps * eps;
    let mut near = Near::default();
    dbscan::search(tx, &mut queries, |found| {
        near.keep(found);
        let q = query_ids[found.query as usize];
        if found.d2 < eps2 && found.id != q {
            batch.know(found.id, point(dbscan::state_of(found)));
            batch.pair(q, found.id);
        }
    })?;

    // Old faces that became core: their whole neighbourhood.
    let gained = batch.gained_cores();
    if !near.neighbourhoods(&gained, eps, &mut batch) {
        neighbourhoods(tx, &gained, eps, &mut batch)?;
    }
    // Clusters that lost a core face: their members and the pairs among them (a cluster named
    // by hand since has no DBSCAN members any more).
    for c in batch.split_candidates() {
        let members = dbscan::members_with_state(tx, c)?;
        let ids: Vec<i64> = members.iter().map(|m| m.0).collect();
        for (id, s) in &members {
            batch.know(*id, point(*s));
        }
        let vectors = embeddings::get_many(tx, &ids)?;
        let rows: Vec<f32> = vectors.iter().flatten().copied().collect();
        let pairs = backend
            .edges(&rows, DIM, eps)?
            .into_iter()
            .map(|e| (ids[e.i as usize], ids[e.j as usize]))
            .collect();
        batch.members(c, ids, pairs);
    }
    // Their members that no core of their own reaches: border faces elsewhere, or noise.
    neighbourhoods(tx, &batch.orphans(), eps, &mut batch)?;

    let change = batch.finish();
    for (id, n) in &change.counts {
        dbscan::set_count(tx, *id, *n as i64)?;
    }
    for (from, into) in &change.merged {
        dbscan::merge_clusters(tx, *from, *into)?;
    }
    report.merged_clusters += change.merged.len();
    let fresh: Vec<i64> = (0..change.new_clusters)
        .map(|_| clusters::insert(tx, ClusterKind::Auto, None, &[], 0.0, 0).map(|c| c.0))
        .collect::<SqlResult<_>>()?;
    report.new_clusters += fresh.len();
    let existing: HashSet<i64> = change.touched.iter().copied().collect();
    let adds: HashSet<i64> = adds.iter().map(|a| a.0).collect();
    for (id, label) in &change.labels {
        match label {
            Some(l) => {
                let c = match l {
                    Label::Cluster(c) => *c,
                    Label::New(k) => fresh[*k as usize],
                };
                dbscan::set_member(tx, *id, c)?;
                if matches!(l, Label::New(_)) {
                    report.new_cluster_faces += 1;
                } else if adds.contains(id) {
                    report.joined_clusters += 1;
                }
            }
            None => dbscan::set_noise(tx, *id)?,
        }
    }
    let mut touched: Vec<i64> = existing.into_iter().chain(fresh).collect();
    touched.sort_unstable();
    Ok(touched)
}

/// The faces a round's search found within 2 eps of its faces, with their state and vectors, up
/// to [`Near::MAX`] of them.
#[derive(Default)]
struct Near {
    ids: Vec<i64>,
    points: Vec<Point>,
    rows: Vec<half::f16>,
    overflow: bool,
}

impl Near {
    /// Faces kept at most (64 MiB of vectors); beyond, neighbourhoods are searched again.
    const MAX: usize = 65_536;

    fn keep(&mut self, found: &Found) {
        if self.overflow || self.ids.last() == Some(&found.id) {
            return; // hits come face by face
        }
        if self.ids.len() == Self::MAX {
            *self = Near {
                overflow: true,
                ..Near::default()
            };
            return;
        }
        self.ids.push(found.id);
        self.points.push(point(dbscan::state_of(found)));
        self.rows.extend_from_slice(found.row);
    }

    /// [`neighbourhoods`] of faces among these, from these alone; `false` (and nothing done)
    /// when these are not all the faces within reach.
    fn neighbourhoods(&self, ids: &[i64], eps: f32, batch: &mut Batch) -> bool {
        let at: HashMap<i64, usize> = self
            .ids
            .iter()
            .enumerate()
            .map(|(k, &id)| (id, k))
            .collect();
        if self.overflow || !ids.iter().all(|g| at.contains_key(g)) {
            return false;
        }
        if ids.is_empty() {
            return true;
        }
        let mut rows: Vec<f32> = Vec::with_capacity(ids.len() * DIM);
        for g in ids {
            let k = at[g];
            let mut v = vec![0f32; DIM];
            self.rows[k * DIM..(k + 1) * DIM].convert_to_f32_slice(&mut v);
            rows.extend(v);
        }
        let mut queries = RangeQuery::new(&rows, DIM, eps);
        let mut found: BTreeMap<i64, Vec<i64>> = ids.iter().map(|&g| (g, Vec::new())).collect();
        for hit in queries.within(crate::graph::Rows::F16(&self.rows)) {
            let (g, k) = (ids[hit.query as usize], hit.row as usize);
            let id = self.ids[k];
            if id != g {
                batch.know(id, self.points[k]);
                found.get_mut(&g).expect("a face asked for").push(id);
            }
        }
        for (g, n) in found {
            batch.neighbourhood(g, n);
        }
        true
    }
}

/// The whole neighbourhood (faces DBSCAN runs over within `eps`) of each of these faces, into
/// the batch, with the stored state of every face found.
fn neighbourhoods(tx: &Transaction, ids: &[i64], eps: f32, batch: &mut Batch) -> SqlResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let vectors = embeddings::get_many(tx, ids)?;
    let rows: Vec<f32> = vectors.iter().flatten().copied().collect();
    let mut queries = RangeQuery::new(&rows, DIM, eps);
    let mut found: BTreeMap<i64, Vec<i64>> = ids.iter().map(|&g| (g, Vec::new())).collect();
    dbscan::search(tx, &mut queries, |hit| {
        let g = ids[hit.query as usize];
        if hit.id != g {
            batch.know(hit.id, point(dbscan::state_of(hit)));
            found.get_mut(&g).expect("a face asked for").push(hit.id);
        }
    })?;
    for (g, n) in found {
        batch.neighbourhood(g, n);
    }
    Ok(())
}

/// Matching after a decision, in the decision's transaction: the manual clusters it changed are
/// re-summarised and the faces around the faces it named or un-named are matched again.
pub(super) fn after_decision(
    tx: &Transaction,
    settings: &Settings,
) -> Result<ClusterReport, PeopleError> {
    let mut report = ClusterReport::default();
    refresh_manual_clusters(tx, false)?;
    rematch_named(tx, settings, &mut report)?;
    Ok(report)
}

/// Faces named or un-named by hand since the last run change who the faces around them are. The
/// faces the automatic side may decide about (not named by hand, not marked) within reach of a
/// face that was named or un-named, or of the centroid of a person who changed, and the faces
/// matched to such a person, are matched to people again, against everyone: one may join a
/// person (leaving its automatic cluster), become ambiguous, or lose a match that no longer
/// holds (it is set free and looked at again like a new face).
fn rematch_named(
    tx: &Transaction,
    settings: &Settings,
    report: &mut ClusterReport,
) -> SqlResult<()> {
    let (pending, people) = matching::take_pending(tx)?;
    if people.is_empty() {
        return Ok(());
    }
    let named = load_named(tx)?;
    let (_, near) = Named::reach(settings);
    // What changed: the faces named or un-named, and the changed people's centroids.
    let mut rows: Vec<f32> = Vec::new();
    for v in pending {
        if v.len() == DIM {
            rows.extend(v);
        }
    }
    for &p in &people {
        if let Some((c, _)) = named.matcher.centroid(p) {
            rows.extend_from_slice(c);
        }
    }
    let mut candidates = Faces::default();
    if !rows.is_empty() {
        let mut queries = RangeQuery::new(&rows, DIM, near);
        let mut seen: HashSet<i64> = HashSet::new();
        matching::search_automatic(tx, &mut queries, |hit| {
            if seen.insert(hit.id) {
                candidates.push_half(hit.id, hit.row);
            }
        })?;
    }
    // Faces matched to a changed person, wherever they are.
    for &p in &people {
        let ids = matching::matched_to(tx, p)?;
        for (id, v) in ids.iter().zip(embeddings::get_many(tx, &ids)?) {
            if v.len() == DIM && !candidates.ids.contains(id) {
                candidates.push(*id, &v);
            }
        }
    }
    let rejections = rejections_of(tx, &candidates.ids)?;
    let decisions = named.decide(&candidates, &rejections, settings);
    for (k, d) in decisions.into_iter().enumerate() {
        let id = candidates.ids[k];
        let (cluster, person, ambiguous) = matching::assignment(tx, id)?;
        match d {
            PersonDecision::Join {
                person: p,
                cluster: c,
            } if person != Some(p) || cluster != c => {
                join(tx, id, c, Some(p))?;
                if person != Some(p) {
                    report.matched_people += 1;
                }
            }
            PersonDecision::Ambiguous if person.is_some() || !ambiguous => {
                // Set free as ambiguous: in no cluster, of nobody, until a person decides.
                matching::free_ambiguous(tx, id)?;
                report.ambiguous += 1;
            }
            PersonDecision::None if person.is_some() || ambiguous => {
                // Its person (or its rival) no longer holds: set it free; the next run looks at
                // it again like a new face.
                matching::free(tx, id)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The vector file's cells made (or brought up to date) and every cluster's cell worked out: at
/// the start of an incremental run, and after a full one (so that the next run pays for
/// neither).
pub(super) fn prepare_cells(tx: &Transaction, settings: &Settings) -> SqlResult<()> {
    targets_near(tx, settings, &Faces::default()).map(|_| ())
}

/// The unnamed clusters (automatic and ignored) that `faces` may match. On a library with a cell
/// file ([`Cells`]), those at home in the cells the faces probe within the widest reach a cluster
/// has (as a face probes cells for its neighbours): a few hundred clusters, not all of them.
/// Each cluster's cell is kept in its row, worked out here for the clusters whose centroid is
/// new or changed since, and for all of them when the partition was made again. A small library
/// has no cell file: every cluster.
fn targets_near(tx: &Transaction, settings: &Settings, faces: &Faces) -> SqlResult<Targets> {
    let cells = tx
        .path()
        .filter(|p| !p.is_empty())
        .map(std::path::Path::new)
        .and_then(|db| Cells::open(db, &mut VectorFile::open(db)?, true));
    let Some(cells) = cells else {
        if faces.len() == 0 {
            return Ok(Targets {
                rows: Vec::new(),
                index: None,
            });
        }
        return Targets::load(tx, Which::Unnamed);
    };
    let partition = cells.partition();
    if clusters::cells_partition(tx)?.as_deref() != Some(partition.as_str()) {
        clusters::renumber_cells(tx, &partition)?;
    }
    let unknown: Vec<(i64, Vec<f32>)> = clusters::without_cell(tx)?
        .into_iter()
        .filter(|(_, c)| c.len() == DIM)
        .collect();
    if !unknown.is_empty() {
        let rows: Vec<f32> = unknown
            .iter()
            .flat_map(|(_, c)| c.iter().copied())
            .collect();
        for ((id, _), cell) in unknown.iter().zip(cells.homes_of(&rows)) {
            clusters::set_cell(tx, *id, cell)?;
        }
    }
    if faces.len() == 0 {
        return Ok(Targets {
            rows: Vec::new(),
            index: None,
        });
    }
    let mut rows = vec![0f32; faces.rows.len()];
    faces.rows.convert_to_f32_slice(&mut rows);
    let reach = SAMPLE_RADIUS_CLAMP + settings.face_match_dist;
    let probed = cells.probed(&rows, |_| reach);
    let near: Vec<clusters::ClusterRow> = clusters::in_cells(tx, &probed)?
        .into_iter()
        .filter(|c| c.kind != ClusterKind::Manual && c.centroid.len() == DIM)
        .collect();
    log::debug!(
        "matching: {} faces probe {} of {} cells, {} clusters",
        faces.len(),
        probed.len(),
        cells.cells(),
        near.len()
    );
    Ok(Targets {
        rows: near,
        index: None,
    })
}

/// Faces left over earlier (in no cluster, of no person) that are within reach of a cluster
/// that changed in this run join it.
fn rematch_leftovers(
    tx: &Transaction,
    settings: &Settings,
    touched: &[i64],
    report: &mut ClusterReport,
) -> SqlResult<()> {
    let mut changed: Vec<clusters::ClusterRow> = Vec::new();
    for &c in touched {
        if let Some(row) = clusters::get(tx, ClusterId(c))?
            && row.kind != ClusterKind::Manual
            && row.centroid.len() == DIM
        {
            changed.push(row);
        }
    }
    if changed.is_empty() {
        return Ok(());
    }
    let rows: Vec<f32> = changed.iter().flat_map(|c| c.centroid.clone()).collect();
    let reach: Vec<f32> = changed
        .iter()
        .map(|c| c.radius + settings.face_match_dist)
        .collect();
    let mut queries = RangeQuery::with_reach(&rows, DIM, &reach);
    let mut candidates: BTreeMap<i64, Vec<f32>> = BTreeMap::new();
    matching::search_leftovers(tx, &mut queries, |hit| {
        candidates.entry(hit.id).or_insert_with(|| {
            let mut v = vec![0f32; DIM];
            hit.row.convert_to_f32_slice(&mut v);
            v
        });
    })?;
    let mut open = Faces::default();
    for (id, v) in candidates {
        open.push(id, &v);
    }
    let rejections = rejections_of(tx, &open.ids)?;
    let all = targets_near(tx, settings, &open)?;
    for (k, d) in decide(&open, &all, &rejections, settings)
        .into_iter()
        .enumerate()
    {
        if let Decision::Join(cluster, person) = d {
            join(tx, open.ids[k], Some(cluster), person)?;
            report.joined_clusters += 1;
        }
    }
    Ok(())
}
