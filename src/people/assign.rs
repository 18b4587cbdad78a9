//! `visage cluster`: brings the store's clusters up to date. Manual clusters are re-summarised
//! from their faces; faces without a cluster are matched to people by their faces named by hand
//! ([`match_faces`], `clustering::matching::PersonMatcher`); the eligible rest (PhotoPrism's
//! `face-cluster-size` and `face-cluster-score`) are clustered with DBSCAN over the neighbour
//! graph into new automatic clusters; then the leftovers are matched to the automatic clusters.
//! One transaction for the whole run.
//!
//! Automatic decisions only: a face assigned by hand is never moved, nothing manual is dropped
//! (`--recluster` drops automatic clusters and matches only), and faces with a verdict ("not a
//! face", "stranger") take no part.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use rusqlite::{Transaction, params};
use serde::Serialize;

use super::PeopleError;
use crate::clustering::matching::{
    Identity, Match, PersonMatch, PersonMatcher, Reach, Target, best_match,
};
use crate::clustering::{self, ClusterSummary};
use crate::config::Settings;
use crate::graph::GraphBackend;
use crate::store::clusters::{self, ClusterKind, ClusterRow};
use crate::store::faces::{self, Assigned, FaceRow};
use crate::store::{SqlResult, Store};

/// What one clustering run did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct ClusterReport {
    /// Automatic clusters dropped first (`--recluster`).
    pub dropped_clusters: usize,
    /// Faces that had no cluster when the run began.
    pub unassigned_before: usize,
    /// Faces matched to an existing cluster.
    pub matched: usize,
    /// Faces that took part in DBSCAN, and the clusters it found.
    pub eligible: usize,
    pub new_clusters: usize,
    /// Faces placed in the new clusters by DBSCAN.
    pub clustered: usize,
    /// Faces equally close to two identities, left unassigned.
    pub ambiguous: usize,
    /// Faces still without a cluster.
    pub unassigned_after: usize,
    pub graph_edges: usize,
    pub seconds: f64,
}

/// Drop automatic clusters and automatic matches; manual decisions stay. Returns how many
/// clusters were dropped.
pub fn drop_automatic(tx: &Transaction) -> SqlResult<usize> {
    tx.execute(
        "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL, ambiguous = 0
         WHERE assigned IS NOT 'manual'",
        [],
    )?;
    tx.execute("DELETE FROM clusters WHERE kind = 'auto'", [])
}

/// Re-summarise every manual cluster from its manual faces; a manual cluster left without any is
/// deleted (faces matched to it automatically lose the match).
pub fn refresh_manual(tx: &Transaction) -> SqlResult<()> {
    for c in clusters::all(tx)? {
        if c.kind != ClusterKind::Manual {
            continue;
        }
        let members: Vec<Vec<f32>> = faces::in_cluster(tx, c.id)?
            .into_iter()
            .filter(|f| f.assigned == Some(Assigned::Manual))
            .map(|f| f.embedding)
            .collect();
        if members.is_empty() {
            tx.execute(
                "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL
                 WHERE cluster = ?1 AND assigned IS NOT 'manual'",
                [c.id],
            )?;
            tx.execute("DELETE FROM clusters WHERE id = ?1", [c.id])?;
        } else {
            clusters::set_summary(tx, c.id, &summary_of(&members))?;
        }
    }
    Ok(())
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

/// Which people matching must look at: all of them (an index run, `visage cluster`), or only those
/// whose named faces a decision just changed (a face out of their reach keeps its decision).
#[derive(Debug, Clone, Copy)]
pub enum Candidates<'a> {
    All,
    People(&'a [i64]),
}

/// Run clustering and matching over the store, in one transaction.
pub fn run(
    store: &mut Store,
    settings: &Settings,
    backend: &GraphBackend,
    recluster: bool,
) -> Result<ClusterReport, PeopleError> {
    store.write(|tx| run_in(tx, settings, backend, recluster, Candidates::All))
}

/// [`run`] inside the caller's transaction (a decision and the matching that follows it are one
/// transaction and one recorded action).
pub fn run_in(
    tx: &Transaction,
    settings: &Settings,
    backend: &GraphBackend,
    recluster: bool,
    candidates: Candidates,
) -> Result<ClusterReport, PeopleError> {
    let started = std::time::Instant::now();
    let mut report = ClusterReport::default();
    {
        if recluster {
            report.dropped_clusters = drop_automatic(tx)?;
        }
        refresh_manual(tx)?;
        let all = faces::all(tx)?;
        let rejections = faces::rejections(tx)?;
        let mut known = clusters::all(tx)?;
        let mut open: Vec<&FaceRow> = all
            .iter()
            .filter(|f| f.cluster.is_none() && f.person_id.is_none() && f.verdict.is_none())
            .collect();
        report.unassigned_before = open.len();
        // Ambiguity is decided again for every face, or (after a decision) kept for the faces out
        // of reach of the people it changed.
        let mut ambiguous = HashSet::new();
        match candidates {
            Candidates::All => {
                tx.execute(
                    "UPDATE faces SET ambiguous = 0 WHERE cluster IS NULL AND person IS NULL",
                    [],
                )?;
            }
            Candidates::People(_) => {
                ambiguous.extend(open.iter().filter(|f| f.ambiguous).map(|f| f.id));
            }
        }

        // 1. People first, by their faces named by hand; faces matched to a person before are
        // decided again (a new name nearby may make them ambiguous or someone else's).
        let named = load_named(tx)?;
        let matched_before: Vec<&FaceRow> = all
            .iter()
            .filter(|f| f.assigned == Some(Assigned::Auto) && f.person_id.is_some())
            .collect();
        report.matched += match_faces(
            tx,
            &mut open,
            &matched_before,
            &named,
            &rejections,
            settings,
            candidates,
            &mut ambiguous,
        )?;

        // 2. DBSCAN over the eligible rest.
        let eligible: Vec<&FaceRow> = open
            .iter()
            .copied()
            .filter(|f| {
                !ambiguous.contains(&f.id)
                    && f.size >= settings.face_cluster_size
                    && f.score >= settings.face_cluster_score as f32
            })
            .collect();
        report.eligible = eligible.len();
        if !eligible.is_empty() {
            let embeddings: Vec<Vec<f32>> = eligible.iter().map(|f| f.embedding.clone()).collect();
            let graph = backend.graph(&embeddings, settings.face_cluster_dist)?;
            report.graph_edges = graph.edge_count();
            let labels = clustering::dbscan(&graph, settings.face_cluster_core as usize);
            let summaries = clustering::summarise(&labels, &embeddings);
            let ids: Vec<i64> = summaries
                .iter()
                .map(|s| clusters::insert(tx, ClusterKind::Auto, None, s))
                .collect::<SqlResult<_>>()?;
            report.new_clusters = ids.len();
            let mut set = tx.prepare_cached(
                "UPDATE faces SET cluster = ?2, assigned = 'auto', ambiguous = 0 WHERE id = ?1",
            )?;
            let mut placed = HashSet::new();
            for (f, label) in eligible.iter().zip(&labels) {
                if let Some(l) = label {
                    set.execute(params![f.id, ids[*l as usize]])?;
                    placed.insert(f.id);
                }
            }
            report.clustered = placed.len();
            open.retain(|f| !placed.contains(&f.id));
            known = clusters::all(tx)?;
        }

        // 3. The rest against the automatic clusters, the new ones included.
        let open_ambiguous = ambiguous.clone();
        open.retain(|f| !open_ambiguous.contains(&f.id));
        report.matched +=
            match_clusters(tx, &mut open, &known, &rejections, settings, &mut ambiguous)?;
        report.ambiguous = ambiguous.len();
        report.unassigned_after = open.len() + open_ambiguous.len();
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Every person's faces named by hand (of photos still present), for matching and suggestions,
/// with the cluster each is in.
pub struct Named {
    pub matcher: PersonMatcher,
    /// The manual cluster of each named face, by face id.
    pub cluster_of: HashMap<i64, i64>,
}

/// Load every face named by hand: what person matching and suggestions compare with.
pub fn load_named(conn: &rusqlite::Connection) -> SqlResult<Named> {
    let rows = faces::named(conn)?;
    let matcher = PersonMatcher::new(
        rows.iter()
            .map(|n| (n.person, n.face, n.embedding.as_slice())),
    );
    let cluster_of = rows.iter().map(|n| (n.face, n.cluster)).collect();
    Ok(Named {
        matcher,
        cluster_of,
    })
}

/// Match faces to people by their faces named by hand ([`PersonMatcher`]): `open` faces (no
/// cluster, no person) join the person whose nearest named face is within reach, or are marked
/// ambiguous; `matched` faces (matched to a person before) are decided again and leave a person
/// they no longer match (they become open). With [`Candidates::People`], only faces within reach
/// of those people are decided. Matched faces leave `open`; returns how many were matched. The
/// decisions are computed in parallel (they are independent), then written in order.
#[allow(clippy::too_many_arguments)]
pub fn match_faces<'a>(
    tx: &Transaction,
    open: &mut Vec<&'a FaceRow>,
    matched: &[&'a FaceRow],
    named: &Named,
    rejections: &HashMap<i64, Vec<i64>>,
    settings: &Settings,
    candidates: Candidates,
    ambiguous: &mut HashSet<i64>,
) -> SqlResult<usize> {
    if named.matcher.is_empty() && matched.is_empty() {
        return Ok(0);
    }
    let reach = Reach::new(settings.face_match_dist);
    let none = Vec::new();
    let decide = |f: &FaceRow| -> Option<PersonMatch> {
        let rejected = rejections.get(&f.id).unwrap_or(&none);
        match candidates {
            Candidates::All => Some(named.matcher.decide(&f.embedding, rejected, reach)),
            Candidates::People(people) => {
                let touched = f.person_id.is_some_and(|p| people.contains(&p));
                match named
                    .matcher
                    .decide_among(&f.embedding, rejected, people, reach)
                {
                    Some(d) => Some(d),
                    // Out of reach of the people who changed: a face of one of them is decided
                    // again; anyone else's keeps its decision.
                    None if touched => Some(named.matcher.decide(&f.embedding, rejected, reach)),
                    None => None,
                }
            }
        }
    };
    let open_decisions: Vec<Option<PersonMatch>> = open.par_iter().map(|f| decide(f)).collect();
    let matched_decisions: Vec<Option<PersonMatch>> =
        matched.par_iter().map(|f| decide(f)).collect();
    let mut join = tx.prepare_cached(
        "UPDATE faces SET cluster = ?2, person = ?3, assigned = 'auto', ambiguous = 0
         WHERE id = ?1",
    )?;
    let mut mark = tx.prepare_cached(
        "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL, ambiguous = 1
         WHERE id = ?1",
    )?;
    let mut leave = tx.prepare_cached(
        "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL, ambiguous = 0
         WHERE id = ?1",
    )?;
    let mut joined = HashSet::new();
    for (f, decision) in open.iter().zip(open_decisions) {
        match decision {
            Some(PersonMatch::Join { person, row, .. }) => {
                let cluster = named.cluster_of.get(&named.matcher.face(row));
                join.execute(params![f.id, cluster, person])?;
                joined.insert(f.id);
                ambiguous.remove(&f.id);
            }
            Some(PersonMatch::None) if ambiguous.remove(&f.id) => {
                leave.execute([f.id])?;
            }
            Some(PersonMatch::Ambiguous) => {
                mark.execute([f.id])?;
                ambiguous.insert(f.id);
            }
            Some(PersonMatch::None) | None => {}
        }
    }
    open.retain(|f| !joined.contains(&f.id));
    let mut matched_count = joined.len();
    for (f, decision) in matched.iter().zip(matched_decisions) {
        match decision {
            Some(PersonMatch::Join { person, row, .. }) => {
                let cluster = named.cluster_of.get(&named.matcher.face(row)).copied();
                if Some(person) != f.person_id || cluster != f.cluster {
                    join.execute(params![f.id, cluster, person])?;
                    if Some(person) != f.person_id {
                        matched_count += 1;
                    }
                }
            }
            Some(PersonMatch::Ambiguous) => {
                mark.execute([f.id])?;
                ambiguous.insert(f.id);
            }
            Some(PersonMatch::None) => {
                leave.execute([f.id])?;
                open.push(*f);
            }
            None => {}
        }
    }
    Ok(matched_count)
}

/// Match each open face to the automatic clusters (radius clamped, see
/// `clustering::matching::best_match`), writing the matches and ambiguities; matched faces
/// leave `open`. Returns how many were matched.
fn match_clusters(
    tx: &Transaction,
    open: &mut Vec<&FaceRow>,
    known: &[ClusterRow],
    rejections: &HashMap<i64, Vec<i64>>,
    settings: &Settings,
    ambiguous: &mut HashSet<i64>,
) -> SqlResult<usize> {
    let usable: Vec<&ClusterRow> = known
        .iter()
        .filter(|c| c.kind != ClusterKind::Manual && !c.centroid.is_empty())
        .collect();
    if usable.is_empty() {
        return Ok(0);
    }
    let targets: Vec<Target> = usable
        .iter()
        .map(|c| Target {
            centroid: &c.centroid,
            radius: c.radius,
            manual: c.kind != ClusterKind::Auto,
            identity: match (c.kind, c.person_id) {
                (ClusterKind::Manual, Some(p)) => Identity::Person(p),
                _ => Identity::Cluster(c.id),
            },
        })
        .collect();
    let none = Vec::new();
    let decisions: Vec<Match> = open
        .par_iter()
        .map(|f| {
            let rejected = rejections.get(&f.id).unwrap_or(&none);
            best_match(&f.embedding, &targets, rejected, settings.face_match_dist)
        })
        .collect();
    let mut join = tx.prepare_cached(
        "UPDATE faces SET cluster = ?2, person = ?3, assigned = 'auto', ambiguous = 0
         WHERE id = ?1",
    )?;
    let mut mark = tx.prepare_cached("UPDATE faces SET ambiguous = 1 WHERE id = ?1")?;
    let mut matched = HashSet::new();
    for (f, decision) in open.iter().zip(decisions) {
        match decision {
            Match::Join(k, _) => {
                let c = usable[k];
                let person = if c.kind == ClusterKind::Manual {
                    c.person_id
                } else {
                    None
                };
                join.execute(params![f.id, c.id, person])?;
                matched.insert(f.id);
            }
            Match::Ambiguous => {
                mark.execute([f.id])?;
                ambiguous.insert(f.id);
            }
            Match::None => {}
        }
    }
    open.retain(|f| !matched.contains(&f.id));
    Ok(matched.len())
}
