//! DBSCAN's state, kept so that new faces cluster without the old ones being clustered again:
//! each face's neighbour count (`faces.neighbours`, NULL for a face DBSCAN does not run over),
//! whether DBSCAN put it in its cluster (`member`, as opposed to matching it there afterwards),
//! whether a run has looked at it since it arrived or was set free (`seen`), the faces that left
//! since the last run with the state they had (`dbscan_removed`, written by triggers), and the
//! cluster settings the state is for (`meta`). `people::assign` decides what changes; this module
//! reads and writes it.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::embeddings::{self, Chunk, Found};
use super::{SqlResult, embeddings::from_blob};
use crate::graph::range::RangeQuery;

/// The key in `meta` of the cluster settings DBSCAN's state was computed under.
const SETTINGS_KEY: &str = "dbscan";

/// The cluster settings the state was computed under, as the last run stored them (`None`: no
/// run yet, or settings this version cannot read).
pub fn settings<T: serde::de::DeserializeOwned>(conn: &Connection) -> SqlResult<Option<T>> {
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [SETTINGS_KEY],
            |r| r.get(0),
        )
        .optional()?;
    Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
}

/// The cluster settings the state is now computed under.
pub fn set_settings<T: serde::Serialize>(tx: &Transaction, settings: &T) -> SqlResult<()> {
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        params![
            SETTINGS_KEY,
            serde_json::to_string(settings).unwrap_or_default()
        ],
    )?;
    Ok(())
}

/// Drop automatic clusters, automatic matches and DBSCAN's state; manual decisions stay.
/// Returns how many clusters were dropped.
pub fn drop_automatic(tx: &Transaction) -> SqlResult<usize> {
    let dropped = drop_for_full_run(tx)?;
    tx.execute(
        "UPDATE faces SET neighbours = NULL, member = 0, seen = 0
         WHERE neighbours IS NOT NULL OR member = 1 OR seen = 1",
        [],
    )?;
    Ok(dropped)
}

/// [`drop_automatic`] for a full run, which works DBSCAN's state of every face out again: each
/// face's count and flags stay until [`place`] writes them where they changed and
/// [`clear_unplaced`] clears those of the faces DBSCAN no longer runs over. A face's row holds
/// its vector, so rewriting every row twice (cleared here, placed again) was most of a
/// re-cluster's writing at ten million faces, for counts that mostly come out the same.
pub fn drop_for_full_run(tx: &Transaction) -> SqlResult<usize> {
    tx.execute(
        "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL, ambiguous = 0
         WHERE assigned IS NOT 'manual' AND (cluster IS NOT NULL OR person IS NOT NULL
             OR assigned IS NOT NULL OR ambiguous = 1)",
        [],
    )?;
    // What the full run's end leaves unseen: faces named by hand and faces gone, found in the
    // cluster index (which holds both columns) rather than by reading every row and its vector.
    tx.execute(
        "UPDATE faces SET seen = 0
         WHERE id IN (SELECT id FROM faces INDEXED BY faces_cluster
                      WHERE gone = 1 OR assigned IS 'manual')
           AND seen = 1",
        [],
    )?;
    tx.execute_batch(
        "DELETE FROM dbscan_removed; DELETE FROM match_pending; DELETE FROM meta WHERE key = 'dbscan';",
    )?;
    tx.execute("DELETE FROM clusters WHERE kind = 'auto'", [])
}

/// After a full run placed its faces ([`place`]): every other face is out of DBSCAN (its count
/// cleared). `placed` holds the placed faces' ids, ascending. Returns the faces cleared.
pub fn clear_unplaced(tx: &Transaction, placed: &[i64]) -> SqlResult<usize> {
    debug_assert!(placed.windows(2).all(|w| w[0] < w[1]));
    let stale: Vec<i64> = tx
        .prepare("SELECT id FROM faces WHERE neighbours IS NOT NULL ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .filter(|id: &SqlResult<i64>| {
            id.as_ref()
                .map_or(true, |id| placed.binary_search(id).is_err())
        })
        .collect::<SqlResult<_>>()?;
    let mut clear =
        tx.prepare_cached("UPDATE faces SET neighbours = NULL, member = 0 WHERE id = ?1")?;
    for id in &stale {
        clear.execute([id])?;
    }
    Ok(stale.len())
}

/// A face with what gates DBSCAN (PhotoPrism's cluster size and score).
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub id: i64,
    pub size: u32,
    pub score: f32,
    /// The cluster it is in (a face a decision set free may still be in one).
    pub cluster: Option<i64>,
}

/// The faces in no cluster and of no person, of photos still present, in photo path order (then
/// face id): what a full run decides about.
pub fn open_by_path(tx: &Transaction) -> SqlResult<Vec<Candidate>> {
    tx.prepare(
        "SELECT f.id, f.size, f.score FROM faces f JOIN photos p ON p.id = f.photo
         WHERE f.gone = 0 AND f.cluster IS NULL AND f.person IS NULL
         ORDER BY p.path, f.id",
    )?
    .query_map([], |r| {
        Ok(Candidate {
            id: r.get(0)?,
            size: r.get(1)?,
            score: r.get(2)?,
            cluster: None,
        })
    })?
    .collect()
}

/// The faces a full run's neighbour graph is over, as an SQL condition on `faces f`: those
/// [`open_by_path`] gives once [`drop_automatic`] has run (present, and in no cluster and of no
/// person or there automatically). It selects the same faces before the drop as after it, so the
/// parts of a graph computed by other processes, which write nothing, cover the faces the run
/// that writes the clusters takes.
const GRAPH_FACES: &str =
    "f.gone = 0 AND ((f.cluster IS NULL AND f.person IS NULL) OR f.assigned IS NOT 'manual')";

/// The faces of [`GRAPH_FACES`] with what gates DBSCAN, in face id order.
pub fn graph_faces(conn: &Connection) -> SqlResult<Vec<Candidate>> {
    conn.prepare(&format!(
        "SELECT f.id, f.size, f.score FROM faces f JOIN photos p ON p.id = f.photo
         WHERE {GRAPH_FACES} ORDER BY f.id"
    ))?
    .query_map([], |r| {
        Ok(Candidate {
            id: r.get(0)?,
            size: r.get(1)?,
            score: r.get(2)?,
            cluster: None,
        })
    })?
    .collect()
}

/// The embeddings of [`graph_faces`]'s faces (and perhaps a few more: photos gone from the
/// table), in face id order, a chunk at a time.
pub fn scan_graph_faces(
    conn: &Connection,
    each: impl FnMut(Chunk) -> SqlResult<()>,
) -> SqlResult<()> {
    embeddings::scan(conn, GRAPH_FACES, each)
}

/// The embeddings of [`open_by_path`]'s faces, in face id order, a chunk at a time
/// ([`embeddings::scan`]).
pub fn scan_open(tx: &Transaction, each: impl FnMut(Chunk) -> SqlResult<()>) -> SqlResult<()> {
    embeddings::scan(
        tx,
        "f.gone = 0 AND f.cluster IS NULL AND f.person IS NULL",
        each,
    )
}

/// The faces no run has looked at since they arrived or a decision (or an undo) set them free,
/// that the automatic side may decide about, in id order.
pub fn unseen(tx: &Transaction) -> SqlResult<Vec<Candidate>> {
    tx.prepare(
        "SELECT id, size, score, cluster FROM faces
         WHERE seen = 0 AND gone = 0 AND person IS NULL AND assigned IS NOT 'manual'
           AND neighbours IS NULL AND verdict IS NULL
         ORDER BY id",
    )?
    .query_map([], |r| {
        Ok(Candidate {
            id: r.get(0)?,
            size: r.get(1)?,
            score: r.get(2)?,
            cluster: r.get(3)?,
        })
    })?
    .collect()
}

/// These faces have been looked at.
pub fn mark_seen(tx: &Transaction, faces: &[i64]) -> SqlResult<()> {
    let mut seen = tx.prepare_cached("UPDATE faces SET seen = 1 WHERE id = ?1")?;
    for id in faces {
        seen.execute([id])?;
    }
    Ok(())
}

/// Every face the automatic side may decide about has been looked at (a full run).
pub fn mark_all_seen(tx: &Transaction) -> SqlResult<()> {
    tx.execute(
        "UPDATE faces SET seen = 1 WHERE seen = 0 AND gone = 0 AND assigned IS NOT 'manual'",
        [],
    )?;
    Ok(())
}

/// A face starts from nothing: out of its automatic cluster.
pub fn leave_cluster(tx: &Transaction, face: i64) -> SqlResult<()> {
    tx.execute(
        "UPDATE faces SET cluster = NULL, assigned = NULL, member = 0 WHERE id = ?1",
        [face],
    )?;
    Ok(())
}

/// DBSCAN's state of one face: its neighbour count (itself included), its cluster, and whether
/// DBSCAN put it there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct State {
    pub count: u32,
    pub cluster: Option<i64>,
    pub member: bool,
}

/// A full run's result for one face: its neighbour count, and its cluster if DBSCAN gave it one
/// (a member, assigned automatically). Written only where it changed: the row holds the face's
/// vector, so a write costs a page.
pub fn place(tx: &Transaction, face: i64, neighbours: i64, cluster: Option<i64>) -> SqlResult<()> {
    tx.prepare_cached(
        "UPDATE faces SET neighbours = ?2, cluster = ?3, member = ?4, assigned = ?5,
             ambiguous = 0, seen = 1
         WHERE id = ?1 AND (neighbours IS NOT ?2 OR cluster IS NOT ?3 OR member IS NOT ?4
             OR assigned IS NOT ?5 OR ambiguous != 0 OR seen != 1)",
    )?
    .execute(params![
        face,
        neighbours,
        cluster,
        cluster.is_some(),
        cluster.map(|_| "auto")
    ])?;
    Ok(())
}

/// The automatic clusters' summaries are those of their faces (a full run just made them).
pub fn mark_clusters_fresh(tx: &Transaction) -> SqlResult<()> {
    tx.execute("UPDATE clusters SET stale = 0 WHERE kind = 'auto'", [])?;
    Ok(())
}

/// A face DBSCAN now runs over, its count still to be worked out.
pub fn enter(tx: &Transaction, face: i64) -> SqlResult<()> {
    tx.prepare_cached("UPDATE faces SET neighbours = 0 WHERE id = ?1")?
        .execute([face])?;
    Ok(())
}

/// A face's neighbour count.
pub fn set_count(tx: &Transaction, face: i64, neighbours: i64) -> SqlResult<()> {
    tx.prepare_cached("UPDATE faces SET neighbours = ?2 WHERE id = ?1")?
        .execute(params![face, neighbours])?;
    Ok(())
}

/// DBSCAN put the face in cluster `cluster`.
pub fn set_member(tx: &Transaction, face: i64, cluster: i64) -> SqlResult<()> {
    tx.prepare_cached(
        "UPDATE faces SET cluster = ?2, member = 1, assigned = 'auto', ambiguous = 0
         WHERE id = ?1",
    )?
    .execute(params![face, cluster])?;
    Ok(())
}

/// The face is noise now: a member leaves its cluster (a face matched there stays).
pub fn set_noise(tx: &Transaction, face: i64) -> SqlResult<()> {
    tx.prepare_cached(
        "UPDATE faces SET cluster = NULL, member = 0, assigned = NULL WHERE id = ?1 AND member = 1",
    )?
    .execute([face])?;
    Ok(())
}

/// Cluster `from` joined cluster `into`: its faces move and it goes.
pub fn merge_clusters(tx: &Transaction, from: i64, into: i64) -> SqlResult<()> {
    tx.execute(
        "UPDATE faces SET cluster = ?2 WHERE cluster = ?1",
        params![from, into],
    )?;
    tx.execute("DELETE FROM clusters WHERE id = ?1", [from])?;
    Ok(())
}

/// Whether DBSCAN put the face in its cluster.
pub fn is_member(tx: &Transaction, face: i64) -> SqlResult<bool> {
    tx.prepare_cached("SELECT member FROM faces WHERE id = ?1")?
        .query_row([face], |r| r.get(0))
}

/// The faces DBSCAN put in cluster `cluster`.
pub fn members(tx: &Transaction, cluster: i64) -> SqlResult<Vec<i64>> {
    tx.prepare_cached("SELECT id FROM faces WHERE cluster = ?1 AND member = 1")?
        .query_map([cluster], |r| r.get(0))?
        .collect()
}

/// The faces DBSCAN put in cluster `cluster` and still runs over, with their state, by id.
pub fn members_with_state(tx: &Transaction, cluster: i64) -> SqlResult<Vec<(i64, State)>> {
    tx.prepare_cached(
        "SELECT id, neighbours, cluster, member FROM faces
         WHERE cluster = ?1 AND member = 1 AND neighbours IS NOT NULL ORDER BY id",
    )?
    .query_map([cluster], |r| {
        Ok((
            r.get(0)?,
            State {
                count: r.get::<_, i64>(1)?.max(1) as u32,
                cluster: r.get(2)?,
                member: r.get(3)?,
            },
        ))
    })?
    .collect()
}

/// An automatic cluster left without members goes: the faces matched to it lose the match and
/// are looked at again next run. A cluster that is not automatic (named since) stays.
pub fn delete_cluster(tx: &Transaction, cluster: i64) -> SqlResult<()> {
    tx.execute(
        "UPDATE faces SET cluster = NULL, assigned = NULL, member = 0
         WHERE cluster = ?1 AND assigned IS NOT 'manual'",
        [cluster],
    )?;
    tx.execute(
        "DELETE FROM clusters WHERE id = ?1 AND kind = 'auto'",
        [cluster],
    )?;
    Ok(())
}

/// A face that left DBSCAN since the last run (named, matched to a person, gone, deleted), with
/// the state and the vector it had.
pub struct Removed {
    pub face: i64,
    pub state: State,
    pub vector: Vec<f32>,
}

/// The faces that left DBSCAN since the last run, by id.
pub fn removed(tx: &Transaction) -> SqlResult<Vec<Removed>> {
    tx.prepare(
        "SELECT face, neighbours, cluster, member, vector FROM dbscan_removed ORDER BY face",
    )?
    .query_map([], |r| {
        Ok(Removed {
            face: r.get(0)?,
            state: State {
                count: r.get::<_, i64>(1)?.max(1) as u32,
                cluster: r.get(2)?,
                member: r.get(3)?,
            },
            vector: r
                .get::<_, Option<Vec<u8>>>(4)?
                .map(|b| from_blob(&b))
                .unwrap_or_default(),
        })
    })?
    .collect()
}

/// The faces that left have been taken out of their neighbours' counts.
pub fn clear_removed(tx: &Transaction) -> SqlResult<()> {
    tx.execute("DELETE FROM dbscan_removed", [])?;
    Ok(())
}

/// The faces DBSCAN runs over within reach of `queries`, each with its state
/// ([`state_of`]), as [`embeddings::search`] finds them.
pub fn search(
    conn: &Connection,
    queries: &mut RangeQuery,
    each: impl FnMut(&Found),
) -> SqlResult<()> {
    embeddings::search(
        conn,
        queries,
        &["f.neighbours", "f.cluster", "f.member"],
        "f.neighbours IS NOT NULL",
        each,
    )
}

/// The state of a face [`search`] found.
pub fn state_of(found: &Found) -> State {
    State {
        count: found.value(0).unwrap_or(1).max(1) as u32,
        cluster: found.value(1),
        member: found.value(2) == Some(1),
    }
}
