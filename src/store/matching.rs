//! What automatic matching writes and reads: a face joining a cluster (and its person) by
//! distance, a face left "ambiguous" between two people, a match that no longer holds set free,
//! and the faces named or un-named by hand since the last run (`match_pending`, written by
//! triggers), around which matching looks again. `people::assign` decides; this module stores.

use rusqlite::{Connection, Transaction, params};

use super::SqlResult;
use super::embeddings::{self, Found};
use crate::graph::range::RangeQuery;

/// The face joins the cluster (and person) automatically: a match, not a DBSCAN member.
pub fn join(
    tx: &Transaction,
    face: i64,
    cluster: Option<i64>,
    person: Option<i64>,
) -> SqlResult<()> {
    tx.prepare_cached(
        "UPDATE faces SET cluster = ?2, person = ?3, assigned = 'auto', ambiguous = 0, member = 0
         WHERE id = ?1",
    )?
    .execute(params![face, cluster, person])?;
    Ok(())
}

/// The face is about as close to two people: it is left to a person to decide.
pub fn set_ambiguous(tx: &Transaction, face: i64) -> SqlResult<()> {
    tx.prepare_cached("UPDATE faces SET ambiguous = 1 WHERE id = ?1")?
        .execute([face])?;
    Ok(())
}

/// Set free as ambiguous: in no cluster, of nobody, until a person decides.
pub fn free_ambiguous(tx: &Transaction, face: i64) -> SqlResult<()> {
    tx.execute(
        "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL,
             ambiguous = 1, member = 0
         WHERE id = ?1",
        [face],
    )?;
    Ok(())
}

/// Set free: in no cluster, of nobody, looked at again by the next run like a new face.
pub fn free(tx: &Transaction, face: i64) -> SqlResult<()> {
    tx.execute(
        "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL,
             ambiguous = 0, member = 0, seen = 0
         WHERE id = ?1",
        [face],
    )?;
    Ok(())
}

/// A face's cluster, person and whether it is ambiguous.
pub fn assignment(tx: &Transaction, face: i64) -> SqlResult<(Option<i64>, Option<i64>, bool)> {
    tx.prepare_cached("SELECT cluster, person, ambiguous FROM faces WHERE id = ?1")?
        .query_row([face], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
}

/// The faces (of photos still present) matched automatically to `person`.
pub fn matched_to(tx: &Transaction, person: i64) -> SqlResult<Vec<i64>> {
    tx.prepare_cached("SELECT id FROM faces WHERE person = ?1 AND assigned = 'auto' AND gone = 0")?
        .query_map([person], |r| r.get(0))?
        .collect()
}

/// The faces named or un-named by hand since the last run: their vectors (an un-named face's as
/// it was kept, since it may be gone), and the people they were or are named as (by id). Taken:
/// the next call returns only what changes after this one.
pub fn take_pending(tx: &Transaction) -> SqlResult<(Vec<Vec<f32>>, Vec<i64>)> {
    let pending: Vec<(i64, Option<Vec<u8>>)> = tx
        .prepare("SELECT face, vector FROM match_pending")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<SqlResult<_>>()?;
    let people: Vec<i64> = tx
        .prepare("SELECT DISTINCT person FROM match_pending ORDER BY person")?
        .query_map([], |r| r.get(0))?
        .collect::<SqlResult<_>>()?;
    tx.execute("DELETE FROM match_pending", [])?;
    let vectors = pending
        .into_iter()
        .map(|(face, vector)| match vector {
            Some(b) => Ok(embeddings::from_blob(&b)),
            None => Ok(embeddings::get(tx, face)?.unwrap_or_default()),
        })
        .collect::<SqlResult<_>>()?;
    Ok((vectors, people))
}

/// The faces the automatic side may assign or take back (not decided by hand, photo present)
/// within reach of `queries`, as [`embeddings::search`] finds them.
pub fn search_automatic(
    conn: &Connection,
    queries: &mut RangeQuery,
    each: impl FnMut(&Found),
) -> SqlResult<()> {
    embeddings::search(
        conn,
        queries,
        &[],
        "f.gone = 0 AND f.assigned IS NOT 'manual'",
        each,
    )
}

/// The faces left over by earlier runs (in no cluster, of no person, not ambiguous, seen)
/// within reach of `queries`, as [`embeddings::search`] finds them.
pub fn search_leftovers(
    conn: &Connection,
    queries: &mut RangeQuery,
    each: impl FnMut(&Found),
) -> SqlResult<()> {
    embeddings::search(
        conn,
        queries,
        &[],
        "f.gone = 0 AND f.cluster IS NULL AND f.person IS NULL AND f.assigned IS NULL
         AND f.seen = 1 AND f.ambiguous = 0",
        each,
    )
}
