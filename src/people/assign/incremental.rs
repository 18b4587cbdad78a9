//! An incremental run: only what changed since the last run is looked at.
//!
//! 1. Faces named (or un-named) by hand since the last run: the faces around them are matched
//!    again (they may join that person, or lose a match that no longer holds).
//! 2. New faces (and faces a decision set free) are matched to the people named by hand.
//! 3. DBSCAN's state takes in the eligible rest and lets go of the faces that left (named,
//!    matched to a person, gone): `clustering::incremental` works out the change from the
//!    neighbourhoods of those faces, found by range queries over the stored embeddings
//!    (`store::embeddings::search`, a chunk at a time).
//! 4. What is left over is matched to the clusters, and faces left over earlier are matched to
//!    the clusters that changed.

use std::collections::{BTreeMap, HashMap, HashSet};

use half::slice::HalfFloatSliceExt;
use rusqlite::{Transaction, params};

use super::named::PersonDecision;
use super::{
    ClusterReport, Decision, Faces, Named, Targets, Which, decide, eligible, join, load_named,
    refresh_automatic, refresh_manual_clusters, rejections_of,
};
use crate::clustering::incremental::{Batch, Label, Point};
use crate::config::Settings;
use crate::embedding::EMBEDDING_DIM as DIM;
use crate::graph::GraphBackend;
use crate::graph::range::RangeQuery;
use crate::people::PeopleError;
use crate::store::clusters::{self, ClusterKind};
use crate::store::embeddings::{self, Found};
use crate::store::{SqlResult, embeddings::from_blob};

/// The faces DBSCAN runs over.
const IN_DBSCAN: &str = "f.neighbours IS NOT NULL";
/// Faces the automatic side may assign or take back (not decided by hand, photo present).
const AUTOMATIC: &str = "f.gone = 0 AND f.assigned IS NOT 'manual'";

pub(super) fn run(
    tx: &Transaction,
    settings: &Settings,
    backend: &GraphBackend,
) -> Result<ClusterReport, PeopleError> {
    let mut report = ClusterReport::default();
    let phase = Phases::start();
    refresh_manual_clusters(tx, false)?;
    rematch_named(tx, settings, &mut report)?;
    phase.done("named faces' matches");

    // 2. New faces, and faces a decision (or an undo) set free: they start from nothing.
    let new: Vec<(i64, u32, f32, Option<i64>)> = tx
        .prepare(
            "SELECT id, size, score, cluster FROM faces
             WHERE seen = 0 AND gone = 0 AND person IS NULL AND assigned IS NOT 'manual'
               AND neighbours IS NULL AND verdict IS NULL
             ORDER BY id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<SqlResult<_>>()?;
    let mut freed_from: Vec<i64> = Vec::new();
    for (id, _, _, cluster) in &new {
        if let Some(c) = cluster {
            tx.execute(
                "UPDATE faces SET cluster = NULL, assigned = NULL, member = 0 WHERE id = ?1",
                [id],
            )?;
            freed_from.push(*c);
        }
    }
    report.considered += new.len();
    let ids: Vec<i64> = new.iter().map(|f| f.0).collect();
    let size: HashMap<i64, (u32, f32)> = new.iter().map(|f| (f.0, (f.1, f.2))).collect();
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
    let mut dbscan: Vec<usize> = Vec::new();
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
                tx.execute("UPDATE faces SET ambiguous = 1 WHERE id = ?1", [id])?;
                report.ambiguous += 1;
            }
            (PersonDecision::None, Decision::Join(cluster, _)) => {
                join(tx, id, Some(cluster), None)?;
                report.joined_clusters += 1;
            }
            _ if eligible(size[&id].0, size[&id].1, settings) => dbscan.push(k),
            _ => left.push(k),
        }
    }

    phase.done("new faces against people");
    // 3. DBSCAN takes in the eligible new faces and lets go of those that left.
    let removed = removed_faces(tx)?;
    let adds: Vec<(i64, Vec<f32>)> = dbscan
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
    tx.execute("DELETE FROM dbscan_removed", [])?;
    touched.extend(freed_from);
    touched.sort_unstable();
    touched.dedup();
    refresh_automatic(tx, &touched)?;
    phase.done("DBSCAN");

    // 4. Leftovers: the new ones against every cluster; the old ones against what changed.
    let mut is_member = tx.prepare_cached("SELECT member FROM faces WHERE id = ?1")?;
    let mut placed: HashSet<i64> = HashSet::new();
    for &k in &dbscan {
        if is_member.query_row([open.ids[k]], |r| r.get::<_, bool>(0))? {
            placed.insert(open.ids[k]);
        }
    }
    let mut rest = Faces::default();
    for &k in left.iter().chain(dbscan.iter()) {
        if !placed.contains(&open.ids[k]) {
            rest.push_half(open.ids[k], open.row(k));
        }
    }
    let all = Targets::load(tx, Which::Unnamed)?;
    let mut unassigned = 0;
    for (k, d) in decide(&rest, &all, &rejections, settings)
        .into_iter()
        .enumerate()
    {
        let id = rest.ids[k];
        match d {
            Decision::Join(cluster, person) => {
                join(tx, id, Some(cluster), person)?;
                report.joined_clusters += 1;
            }
            Decision::Ambiguous => {
                tx.execute("UPDATE faces SET ambiguous = 1 WHERE id = ?1", [id])?;
                report.ambiguous += 1;
            }
            Decision::None => unassigned += 1,
        }
    }
    report.unassigned = unassigned;
    phase.done("leftovers against clusters");
    rematch_leftovers(tx, settings, &touched, &all, &mut report)?;
    phase.done("old leftovers against changed clusters");
    let mut seen = tx.prepare_cached("UPDATE faces SET seen = 1 WHERE id = ?1")?;
    for id in &ids {
        seen.execute([id])?;
    }
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

/// Faces that left DBSCAN since the last run, with the state they had and their vector.
fn removed_faces(tx: &Transaction) -> SqlResult<Vec<(i64, Point, Vec<f32>)>> {
    tx.prepare(
        "SELECT face, neighbours, cluster, member, vector FROM dbscan_removed ORDER BY face",
    )?
    .query_map([], |r| {
        Ok((
            r.get(0)?,
            Point {
                count: r.get::<_, i64>(1)?.max(1) as u32,
                cluster: r.get(2)?,
                member: r.get(3)?,
            },
            r.get::<_, Option<Vec<u8>>>(4)?
                .map(|b| from_blob(&b))
                .unwrap_or_default(),
        ))
    })?
    .collect()
}

/// A face's stored DBSCAN state, from a search's extra columns (neighbours, cluster, member).
fn point(found: &Found) -> Point {
    Point {
        count: found.value(0).unwrap_or(1).max(1) as u32,
        cluster: found.value(1),
        member: found.value(2) == Some(1),
    }
}

const STATE: [&str; 3] = ["f.neighbours", "f.cluster", "f.member"];

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
    let mut mark = tx.prepare_cached("UPDATE faces SET neighbours = 0 WHERE id = ?1")?;
    for (id, _) in adds {
        mark.execute([id])?;
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
    embeddings::search(tx, &mut queries, &STATE, IN_DBSCAN, |found| {
        near.keep(found);
        let q = query_ids[found.query as usize];
        if found.d2 < eps2 && found.id != q {
            batch.know(found.id, point(found));
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
        let members: Vec<(i64, Point)> = tx
            .prepare_cached(
                "SELECT id, neighbours, cluster, member FROM faces
                 WHERE cluster = ?1 AND member = 1 AND neighbours IS NOT NULL ORDER BY id",
            )?
            .query_map([c], |r| {
                Ok((
                    r.get(0)?,
                    Point {
                        count: r.get::<_, i64>(1)?.max(1) as u32,
                        cluster: r.get(2)?,
                        member: r.get(3)?,
                    },
                ))
            })?
            .collect::<SqlResult<_>>()?;
        let ids: Vec<i64> = members.iter().map(|m| m.0).collect();
        for (id, p) in &members {
            batch.know(*id, *p);
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
    let mut count = tx.prepare_cached("UPDATE faces SET neighbours = ?2 WHERE id = ?1")?;
    for (id, n) in &change.counts {
        count.execute(params![id, n])?;
    }
    for (from, into) in &change.merged {
        tx.execute(
            "UPDATE faces SET cluster = ?2 WHERE cluster = ?1",
            params![from, into],
        )?;
        tx.execute("DELETE FROM clusters WHERE id = ?1", [from])?;
    }
    report.merged_clusters += change.merged.len();
    let fresh: Vec<i64> = (0..change.new_clusters)
        .map(|_| {
            clusters::insert(
                tx,
                ClusterKind::Auto,
                None,
                &crate::clustering::ClusterSummary {
                    centroid: Vec::new(),
                    radius: 0.0,
                    size: 0,
                },
            )
            .map(|c| c.0)
        })
        .collect::<SqlResult<_>>()?;
    report.new_clusters += fresh.len();
    let existing: HashSet<i64> = change.touched.iter().copied().collect();
    let mut member = tx.prepare_cached(
        "UPDATE faces SET cluster = ?2, member = 1, assigned = 'auto', ambiguous = 0
         WHERE id = ?1",
    )?;
    let mut noise = tx.prepare_cached(
        "UPDATE faces SET cluster = NULL, member = 0, assigned = NULL WHERE id = ?1 AND member = 1",
    )?;
    let adds: HashSet<i64> = adds.iter().map(|a| a.0).collect();
    for (id, label) in &change.labels {
        match label {
            Some(l) => {
                let c = match l {
                    Label::Cluster(c) => *c,
                    Label::New(k) => fresh[*k as usize],
                };
                member.execute(params![id, c])?;
                if matches!(l, Label::New(_)) {
                    report.new_cluster_faces += 1;
                } else if adds.contains(id) {
                    report.joined_clusters += 1;
                }
            }
            None => {
                noise.execute([id])?;
            }
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
        self.points.push(point(found));
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
    embeddings::search(tx, &mut queries, &STATE, IN_DBSCAN, |hit| {
        let g = ids[hit.query as usize];
        if hit.id != g {
            batch.know(hit.id, point(hit));
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
    let pending: Vec<(i64, Option<Vec<u8>>)> = tx
        .prepare("SELECT face, vector FROM match_pending")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<SqlResult<_>>()?;
    let people: Vec<i64> = tx
        .prepare("SELECT DISTINCT person FROM match_pending ORDER BY person")?
        .query_map([], |r| r.get(0))?
        .collect::<SqlResult<_>>()?;
    tx.execute("DELETE FROM match_pending", [])?;
    if people.is_empty() {
        return Ok(());
    }
    let named = load_named(tx)?;
    let (_, near) = Named::reach(settings);
    // What changed: the faces named or un-named, and the changed people's centroids.
    let mut rows: Vec<f32> = Vec::new();
    for (face, vector) in &pending {
        let v = match vector {
            Some(b) => from_blob(b),
            None => embeddings::get(tx, *face)?.unwrap_or_default(),
        };
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
        embeddings::search(tx, &mut queries, &[], AUTOMATIC, |hit| {
            if seen.insert(hit.id) {
                candidates.push_half(hit.id, hit.row);
            }
        })?;
    }
    // Faces matched to a changed person, wherever they are.
    for &p in &people {
        let ids: Vec<i64> = tx
            .prepare_cached(
                "SELECT id FROM faces WHERE person = ?1 AND assigned = 'auto' AND gone = 0",
            )?
            .query_map([p], |r| r.get(0))?
            .collect::<SqlResult<_>>()?;
        for (id, v) in ids.iter().zip(embeddings::get_many(tx, &ids)?) {
            if v.len() == DIM && !candidates.ids.contains(id) {
                candidates.push(*id, &v);
            }
        }
    }
    let rejections = rejections_of(tx, &candidates.ids)?;
    let decisions = named.decide(&candidates, &rejections, settings);
    let mut state =
        tx.prepare_cached("SELECT cluster, person, ambiguous FROM faces WHERE id = ?1")?;
    for (k, d) in decisions.into_iter().enumerate() {
        let id = candidates.ids[k];
        let (cluster, person, ambiguous): (Option<i64>, Option<i64>, bool) =
            state.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
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
                tx.execute(
                    "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL,
                         ambiguous = 1, member = 0
                     WHERE id = ?1",
                    [id],
                )?;
                report.ambiguous += 1;
            }
            PersonDecision::None if person.is_some() || ambiguous => {
                // Its person (or its rival) no longer holds: set it free; the next run looks at
                // it again like a new face.
                tx.execute(
                    "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL,
                         ambiguous = 0, member = 0, seen = 0
                     WHERE id = ?1",
                    [id],
                )?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Faces left over earlier (in no cluster, of no person) that are within reach of a cluster
/// that changed in this run join it.
fn rematch_leftovers(
    tx: &Transaction,
    settings: &Settings,
    touched: &[i64],
    all: &Targets,
    report: &mut ClusterReport,
) -> SqlResult<()> {
    let changed: Vec<&clusters::ClusterRow> = all
        .rows
        .iter()
        .filter(|c| touched.contains(&c.id.0))
        .collect();
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
    embeddings::search(
        tx,
        &mut queries,
        &[],
        "f.gone = 0 AND f.cluster IS NULL AND f.person IS NULL AND f.assigned IS NULL
         AND f.seen = 1 AND f.ambiguous = 0",
        |hit| {
            candidates.entry(hit.id).or_insert_with(|| {
                let mut v = vec![0f32; DIM];
                hit.row.convert_to_f32_slice(&mut v);
                v
            });
        },
    )?;
    let mut open = Faces::default();
    for (id, v) in candidates {
        open.push(id, &v);
    }
    let rejections = rejections_of(tx, &open.ids)?;
    for (k, d) in decide(&open, all, &rejections, settings)
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
