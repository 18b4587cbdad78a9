//! A full run: drop everything automatic and build it again over the whole library, as
//! PhotoPrism does. Faces are taken in photo path order (then face id), so the same photos give
//! the same clusters however the library was put together (one index, or merged shards).
//!
//! 1. Faces without a cluster or person are matched to the people named by hand (and to ignored
//!    clusters).
//! 2. DBSCAN over the eligible rest, from the neighbour graph; each face's neighbour count and
//!    cluster is DBSCAN's state for later incremental runs.
//! 3. What is left is matched to every cluster, the new ones included.
//!
//! Its memory does not grow with the faces' vectors: the faces are read a chunk at a time for
//! matching, the graph streams its rows from the vector file and its edges go to a file
//! ([`super::graph`]), DBSCAN reads that file three times ([`clustering::dbscan::Streamed`]), and
//! the clusters' summaries are summed from the members' stored vectors read a chunk at a time. What
//! it keeps per face is a few dozen bytes (ids, size and score, a state byte, DBSCAN's counts and
//! labels). It stops at the next chunk when asked to (Ctrl-C), and everything it wrote is then
//! rolled back with the run's one transaction.

use std::sync::atomic::AtomicBool;

use rusqlite::Transaction;

use super::graph::{self, Plan, Source};
use super::named::PersonDecision;
use super::{
    ClusterReport, Decision, Faces, Targets, Which, decide, insert_cluster, load_named,
    refresh_manual_clusters,
};
use crate::clustering::dbscan::{NOISE, PairSink, Streamed};
use crate::clustering::{self, ClusterSummary, Summing};
use crate::config::Settings;
use crate::embedding::EMBEDDING_DIM as DIM;
use crate::graph::{Control, GraphBackend, GraphError};
use crate::people::PeopleError;
use crate::store::clusters::ClusterKind;
use crate::store::dbscan::{self, Candidate};
use crate::store::embeddings::SCAN_CHUNK;
use crate::store::matching::{self, join};
use crate::store::{SqlResult, people};

/// How a full run gets its neighbour graph, and what asks it to stop.
#[derive(Clone, Copy)]
pub struct Full<'a> {
    pub plan: &'a Plan,
    /// Set (by a Ctrl-C handler) to stop the run; it then fails with
    /// [`GraphError::Stopped`] and its transaction is rolled back.
    pub stop: &'a AtomicBool,
}

/// A face's state in the run.
const DECIDED: u8 = 1;
const AMBIGUOUS: u8 = 2;

/// The candidates, and each one's place by face id.
struct Open {
    list: Vec<Candidate>,
    /// Candidate indices by ascending face id.
    by_id: Vec<u32>,
    state: Vec<u8>,
}

impl Open {
    fn new(list: Vec<Candidate>) -> Self {
        let mut by_id: Vec<u32> = (0..list.len() as u32).collect();
        by_id.sort_unstable_by_key(|&k| list[k as usize].id);
        let state = vec![0; list.len()];
        Open { list, by_id, state }
    }

    /// The candidate with this face id.
    fn find(&self, id: i64) -> Option<usize> {
        self.by_id
            .binary_search_by_key(&id, |&k| self.list[k as usize].id)
            .ok()
            .map(|p| self.by_id[p] as usize)
    }

    fn decided(&self, k: usize) -> bool {
        self.state[k] & DECIDED != 0
    }

    fn mark(&mut self, id: i64, state: u8) {
        let k = self.find(id).expect("a candidate");
        self.state[k] |= state;
    }

    /// Write what matching decided; returns the faces joined to a person and to a cluster alone.
    fn write(&mut self, tx: &Transaction, writes: Vec<Write>) -> SqlResult<(usize, usize)> {
        let (mut people, mut clusters) = (0, 0);
        for w in writes {
            match w {
                Write::Join(id, cluster, person) => {
                    join(tx, id, cluster, person)?;
                    self.mark(id, DECIDED);
                    if person.is_some() {
                        people += 1;
                    } else {
                        clusters += 1;
                    }
                }
                Write::Ambiguous(id) => {
                    matching::set_ambiguous(tx, id)?;
                    self.mark(id, AMBIGUOUS);
                }
            }
        }
        Ok((people, clusters))
    }
}

/// What matching decided about one face, written after the scan that found it.
enum Write {
    Join(i64, Option<i64>, Option<i64>),
    Ambiguous(i64),
}

/// SQLite's page cache during a full run, KiB. A full run rewrites the rows of every face
/// DBSCAN clusters, and their entries in the cluster index, in an order the index does not
/// follow: with SQLite's default cache (2 MiB) the same pages are spilled to the WAL again and
/// again (at ten million faces, gigabytes of writes a minute that change little).
const FULL_RUN_CACHE_KIB: i64 = 1024 * 1024;

pub(super) fn run(
    tx: &Transaction,
    settings: &Settings,
    backend: &GraphBackend,
    how: Full,
) -> Result<ClusterReport, PeopleError> {
    let before = crate::store::page_cache(tx, -FULL_RUN_CACHE_KIB)?;
    let report = run_whole(tx, settings, backend, how);
    // The connection goes on with its own cache (a review server's, say); the run's own failure
    // is the one to tell.
    let restored = crate::store::page_cache(tx, before);
    let report = report?;
    restored?;
    Ok(report)
}

fn run_whole(
    tx: &Transaction,
    settings: &Settings,
    backend: &GraphBackend,
    how: Full,
) -> Result<ClusterReport, PeopleError> {
    let mut report = ClusterReport {
        full: true,
        ..ClusterReport::default()
    };
    let progress = |_: usize, _: usize| {};
    let ctl = Control {
        progress: &progress,
        stop: how.stop,
    };
    let started = std::time::Instant::now();
    report.dropped_clusters = dbscan::drop_for_full_run(tx)?;
    refresh_manual_clusters(tx, true)?;
    log::debug!(
        "{} automatic clusters dropped in {:.0} s",
        report.dropped_clusters,
        started.elapsed().as_secs_f64()
    );

    let started = std::time::Instant::now();
    let mut open = Open::new(dbscan::open_by_path(tx)?);
    report.considered = open.list.len();
    log::debug!(
        "{} faces to decide about, listed in {:.0} s",
        open.list.len(),
        started.elapsed().as_secs_f64()
    );
    let rejections = people::rejections(tx)?;

    // 1. The people named by hand first, then the ignored clusters.
    let named = load_named(tx)?;
    let ignored = Targets::load(tx, Which::Ignored)?;
    let mut writes = Vec::new();
    // Without either there is nothing to match: the scan (every open face's vector) is skipped.
    let anyone = !named.cluster_of.is_empty() || !ignored.rows.is_empty();
    if anyone {
        log::info!(
            "matching {} faces to the people named by hand",
            open.list.len()
        );
        scan(tx, &open, &ctl, |faces| {
            let mut rest = Faces::default();
            for (k, d) in named
                .decide(faces, &rejections, settings)
                .iter()
                .enumerate()
            {
                let id = faces.ids[k];
                match *d {
                    PersonDecision::Join { person, cluster } => {
                        writes.push(Write::Join(id, cluster, Some(person)))
                    }
                    PersonDecision::Ambiguous => writes.push(Write::Ambiguous(id)),
                    PersonDecision::None => rest.push_half(id, faces.row(k)),
                }
            }
            for (k, d) in decide(&rest, &ignored, &rejections, settings)
                .into_iter()
                .enumerate()
            {
                if let Decision::Join(cluster, _) = d {
                    writes.push(Write::Join(rest.ids[k], Some(cluster), None));
                }
            }
            Ok(())
        })?;
    }
    let (people, clusters) = open.write(tx, writes)?;
    report.matched_people += people;
    report.joined_clusters += clusters;

    // 2. DBSCAN over the eligible rest, in path order (`j`), from the graph over every face it
    //    could have taken, in id order (`g`).
    let dbscan: Vec<u32> = (0..open.list.len())
        .filter(|&k| {
            let c = &open.list[k];
            open.state[k] == 0 && settings.eligible(c.size, c.score)
        })
        .map(|k| k as u32)
        .collect();
    report.dbscan_faces = dbscan.len();
    if !dbscan.is_empty() {
        let ids = graph::faces(tx, settings)?;
        let mut at = vec![NOISE; ids.len()]; // j of each g
        let mut of = Vec::with_capacity(dbscan.len()); // g of each j
        for (j, &k) in dbscan.iter().enumerate() {
            let id = open.list[k as usize].id;
            let g = ids.binary_search(&id).map_err(|_| {
                GraphError::Source(format!("face {id} is missing from the neighbour graph"))
            })?;
            at[g] = j as u32;
            of.push(g as u32);
        }
        let method = graph::method(backend, ids.len(), settings);
        log::info!(
            "neighbour graph of {} faces ({} of them for DBSCAN): {method:?}",
            ids.len(),
            dbscan.len()
        );
        let db = tx
            .path()
            .filter(|p| !p.is_empty())
            .map(std::path::Path::new);
        let source = Source::open(tx, db, &ids, method)?;
        // The one step of a full run that takes minutes at a million faces.
        let bar = crate::progress::bar(
            1,
            "{elapsed_precise} [{bar:30}] neighbour graph {percent}%, ETA {eta}",
        );
        let shown = |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        };
        let shown_ctl = Control {
            progress: &shown,
            stop: how.stop,
        };
        let edges = graph::whole(
            &source, db, &ids, method, settings, backend, how.plan, &shown_ctl,
        )?;
        bar.finish_and_clear();
        log::info!("DBSCAN over {} edges", edges.count());
        // The graph's pairs between faces DBSCAN takes, as `j`.
        let mut pairs = |each: &mut PairSink| -> Result<(), GraphError> {
            let mut mapped = Vec::new();
            edges.pairs(&mut |chunk| {
                ctl.check()?;
                mapped.clear();
                mapped.extend(chunk.iter().filter_map(|&(a, b)| {
                    let (i, j) = (at[a as usize], at[b as usize]);
                    (i != NOISE && j != NOISE).then_some((i, j))
                }));
                each(&mapped);
                Ok(())
            })
        };
        let streamed = Streamed::count(
            dbscan.len(),
            settings.face_cluster_core as usize,
            &mut pairs,
        )?;
        let labels = streamed.labels(&mut pairs)?;
        drop(at);
        log::debug!("summing the clusters' members");
        let summaries = summarise(&source, &labels, &of, &ctl)?;
        drop(source);
        let cluster_ids: Vec<i64> = summaries
            .iter()
            .map(|s| insert_cluster(tx, ClusterKind::Auto, None, s).map(|c| c.0))
            .collect::<SqlResult<_>>()?;
        report.new_clusters = cluster_ids.len();
        log::debug!("{} clusters; writing their faces", cluster_ids.len());
        for (j, &k) in dbscan.iter().enumerate() {
            if j % SCAN_CHUNK == 0 {
                ctl.check()?;
            }
            let c = &open.list[k as usize];
            let cluster = (labels[j] != NOISE).then(|| cluster_ids[labels[j] as usize]);
            dbscan::place(tx, c.id, streamed.count_of(j) as i64, cluster)?;
            if cluster.is_some() {
                open.state[k as usize] |= DECIDED;
                report.new_cluster_faces += 1;
            }
        }
        dbscan::mark_clusters_fresh(tx)?;
    }
    // The faces DBSCAN ran over before and not now (named since, or no longer eligible).
    let mut placed: Vec<i64> = dbscan.iter().map(|&k| open.list[k as usize].id).collect();
    placed.sort_unstable();
    dbscan::clear_unplaced(tx, &placed)?;
    drop(placed);

    // 3. The rest against the unnamed clusters, the new ones included.
    log::info!("matching the faces left over to the clusters");
    let left = (0..open.list.len()).filter(|&k| !open.decided(k)).count();
    let all = Targets::load(tx, Which::Unnamed)?.indexed(left, settings);
    let mut writes = Vec::new();
    scan(tx, &open, &ctl, |faces| {
        for (r, d) in decide(faces, &all, &rejections, settings)
            .into_iter()
            .enumerate()
        {
            match d {
                Decision::Join(cluster, person) => {
                    writes.push(Write::Join(faces.ids[r], Some(cluster), person))
                }
                Decision::Ambiguous => writes.push(Write::Ambiguous(faces.ids[r])),
                Decision::None => {}
            }
        }
        Ok(())
    })?;
    // Every join here counts as one to a cluster, a named person's included.
    let (people, clusters) = open.write(tx, writes)?;
    report.joined_clusters += people + clusters;
    report.ambiguous = open.state.iter().filter(|&&s| s & AMBIGUOUS != 0).count();
    report.unassigned = (0..open.list.len()).filter(|&k| !open.decided(k)).count();
    dbscan::mark_all_seen(tx)?;
    // The vector file's cells and the clusters' cells, so that the next incremental run's
    // searches and matching are quick.
    super::incremental::prepare_cells(tx, settings)?;
    Ok(report)
}

/// The candidates not yet decided, with their stored vectors, a chunk at a time in face id
/// order.
fn scan(
    tx: &Transaction,
    open: &Open,
    ctl: &Control,
    mut each: impl FnMut(&Faces) -> Result<(), PeopleError>,
) -> Result<(), PeopleError> {
    let mut failed = None;
    dbscan::scan_open(tx, |chunk| {
        if let Err(e) = ctl.check() {
            failed = Some(PeopleError::from(e));
            return Err(rusqlite::Error::ExecuteReturnedResults);
        }
        let mut faces = Faces::default();
        for (r, &id) in chunk.ids.iter().enumerate() {
            if open.find(id).is_some_and(|k| !open.decided(k)) {
                faces.push_half(id, &chunk.rows[r * DIM..(r + 1) * DIM]);
            }
        }
        if let Err(e) = each(&faces) {
            failed = Some(e);
            return Err(rusqlite::Error::ExecuteReturnedResults);
        }
        Ok(())
    })
    .or_else(|e| failed.take().map_or(Err(e.into()), Err))
}

/// The new clusters' summaries, from their members' stored vectors read a chunk at a time in
/// `j` order (the order of the sums in memory, for the same centroids to the bit): members
/// summed, then each summary widened to its members.
fn summarise(
    source: &Source,
    labels: &[u32],
    of: &[u32],
    ctl: &Control,
) -> Result<Vec<ClusterSummary>, GraphError> {
    let clusters = labels
        .iter()
        .filter(|&&l| l != NOISE)
        .map(|&l| l as usize + 1)
        .max()
        .unwrap_or(0);
    let members: Vec<u32> = (0..labels.len() as u32)
        .filter(|&j| labels[j as usize] != NOISE)
        .collect();
    let mut rows = Vec::new();
    let mut indices = Vec::new();
    let mut pass = |each: &mut dyn FnMut(u32, &[f32])| -> Result<(), GraphError> {
        for chunk in members.chunks(SCAN_CHUNK) {
            ctl.check()?;
            indices.clear();
            indices.extend(chunk.iter().map(|&j| of[j as usize]));
            graph::exact_rows(source, &indices, &mut rows)?;
            for (r, &j) in chunk.iter().enumerate() {
                each(labels[j as usize], &rows[r * DIM..(r + 1) * DIM]);
            }
        }
        Ok(())
    };
    let mut sums = Summing::new(clusters, DIM);
    pass(&mut |l, v| sums.add(l, v))?;
    let mut out = sums.centroids();
    pass(&mut |l, v| clustering::widen(&mut out[l as usize], v))?;
    Ok(out)
}
