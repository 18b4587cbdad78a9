//! A full run: drop everything automatic and build it again over the whole library, as
//! PhotoPrism does. Faces are taken in photo path order (then face id), so the same photos give
//! the same clusters however the library was put together (one index, or merged shards).
//!
//! 1. Faces without a cluster or person are matched to the people named by hand (and to ignored
//!    clusters).
//! 2. DBSCAN over the eligible rest, from the neighbour graph; each face's neighbour count and
//!    cluster is DBSCAN's state for later incremental runs.
//! 3. What is left is matched to every cluster, the new ones included.

use std::collections::HashSet;

use half::f16;
use half::slice::HalfFloatSliceExt;
use rusqlite::Transaction;

use super::named::PersonDecision;
use super::{
    ClusterReport, Decision, Faces, Targets, Which, decide, drop_automatic, eligible,
    insert_cluster, load_named, refresh_manual_clusters,
};
use crate::clustering;
use crate::config::Settings;
use crate::embedding::EMBEDDING_DIM as DIM;
use crate::graph::{GraphBackend, Rows, Search};
use crate::people::PeopleError;
use crate::store::clusters::ClusterKind;
use crate::store::dbscan::{self, Candidate};
use crate::store::matching::{self, join};
use crate::store::{SqlResult, people};

pub(super) fn run(
    tx: &Transaction,
    settings: &Settings,
    backend: &GraphBackend,
) -> Result<ClusterReport, PeopleError> {
    let mut report = ClusterReport {
        full: true,
        ..ClusterReport::default()
    };
    report.dropped_clusters = drop_automatic(tx)?;
    refresh_manual_clusters(tx, true)?;

    let candidates = dbscan::open_by_path(tx)?;
    report.considered = candidates.len();
    let faces = Faces {
        ids: candidates.iter().map(|c| c.id).collect(),
        rows: load_rows(tx, &candidates)?,
    };
    let rejections = people::rejections(tx)?;

    // 1. The people named by hand first, then the ignored clusters.
    let named = load_named(tx)?;
    let people = named.decide(&faces, &rejections, settings);
    let mut decided: HashSet<i64> = HashSet::new();
    let mut ambiguous: HashSet<i64> = HashSet::new();
    let mut rest = Faces::default();
    for (k, d) in people.iter().enumerate() {
        let id = faces.ids[k];
        match *d {
            PersonDecision::Join { person, cluster } => {
                join(tx, id, cluster, Some(person))?;
                decided.insert(id);
                report.matched_people += 1;
            }
            PersonDecision::Ambiguous => {
                matching::set_ambiguous(tx, id)?;
                ambiguous.insert(id);
            }
            PersonDecision::None => rest.push_half(id, faces.row(k)),
        }
    }
    let ignored = Targets::load(tx, Which::Ignored)?;
    for (k, d) in decide(&rest, &ignored, &rejections, settings)
        .into_iter()
        .enumerate()
    {
        if let Decision::Join(cluster, _) = d {
            join(tx, rest.ids[k], Some(cluster), None)?;
            decided.insert(rest.ids[k]);
            report.joined_clusters += 1;
        }
    }
    drop(rest);

    // 2. DBSCAN over the eligible rest.
    let dbscan: Vec<usize> = (0..candidates.len())
        .filter(|&k| {
            let c = &candidates[k];
            !decided.contains(&c.id)
                && !ambiguous.contains(&c.id)
                && eligible(c.size, c.score, settings)
        })
        .collect();
    report.dbscan_faces = dbscan.len();
    if !dbscan.is_empty() {
        let mut subset = vec![f16::ZERO; dbscan.len() * DIM];
        for (j, &k) in dbscan.iter().enumerate() {
            subset[j * DIM..(j + 1) * DIM].copy_from_slice(faces.row(k));
        }
        let search = Search::from(settings.graph);
        log::info!(
            "neighbour graph of {} faces: {:?}",
            dbscan.len(),
            backend.method(dbscan.len(), search)
        );
        // The one step of a full run that takes minutes at a million faces.
        let bar = crate::progress::bar(
            1,
            "{elapsed_precise} [{bar:30}] neighbour graph {percent}%, ETA {eta}",
        );
        let edges = backend.search(
            Rows::F16(&subset),
            DIM,
            settings.face_cluster_dist,
            search,
            &|done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            },
        )?;
        bar.finish_and_clear();
        drop(subset);
        let graph = crate::graph::NeighbourGraph::from_edges(dbscan.len(), &edges);
        drop(edges);
        let labels = clustering::dbscan(&graph, settings.face_cluster_core as usize);
        let summaries = clustering::summarise_rows(&labels, DIM, |j, out| {
            faces.row(dbscan[j]).convert_to_f32_slice(out)
        });
        let ids: Vec<i64> = summaries
            .iter()
            .map(|s| insert_cluster(tx, ClusterKind::Auto, None, s).map(|c| c.0))
            .collect::<SqlResult<_>>()?;
        report.new_clusters = ids.len();
        for (j, &k) in dbscan.iter().enumerate() {
            let c = &candidates[k];
            let count = graph.neighbours(j).len() as i64 + 1;
            let cluster = labels[j].map(|l| ids[l as usize]);
            dbscan::place(tx, c.id, count, cluster)?;
            if cluster.is_some() {
                decided.insert(c.id);
                report.new_cluster_faces += 1;
            }
        }
        dbscan::mark_clusters_fresh(tx)?;
    }

    // 3. The rest against the unnamed clusters, the new ones included.
    let all = Targets::load(tx, Which::Unnamed)?;
    let mut rest = Faces::default();
    for (k, c) in candidates.iter().enumerate() {
        if !decided.contains(&c.id) {
            rest.push_half(c.id, faces.row(k));
        }
    }
    drop(faces);
    for (k, d) in decide(&rest, &all, &rejections, settings)
        .into_iter()
        .enumerate()
    {
        let id = rest.ids[k];
        match d {
            Decision::Join(cluster, person) => {
                join(tx, id, Some(cluster), person)?;
                decided.insert(id);
                report.joined_clusters += 1;
            }
            Decision::Ambiguous => {
                matching::set_ambiguous(tx, id)?;
                ambiguous.insert(id);
            }
            Decision::None => {}
        }
    }
    report.ambiguous = ambiguous.len();
    report.unassigned = candidates
        .iter()
        .filter(|c| !decided.contains(&c.id))
        .count();
    dbscan::mark_all_seen(tx)?;
    Ok(report)
}

/// The embeddings of these faces, as half floats in the candidates' order.
fn load_rows(tx: &Transaction, candidates: &[Candidate]) -> SqlResult<Vec<f16>> {
    let dim = DIM;
    let position: std::collections::HashMap<i64, usize> = candidates
        .iter()
        .enumerate()
        .map(|(k, c)| (c.id, k))
        .collect();
    let mut rows = vec![f16::ZERO; candidates.len() * dim];
    dbscan::scan_open(tx, |chunk| {
        for (j, id) in chunk.ids.iter().enumerate() {
            if let Some(&k) = position.get(id) {
                rows[k * dim..(k + 1) * dim].copy_from_slice(&chunk.rows[j * dim..(j + 1) * dim]);
            }
        }
        Ok(())
    })?;
    Ok(rows)
}
