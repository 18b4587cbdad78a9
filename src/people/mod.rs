//! People: the decisions a person makes about faces and clusters (name, rename, merge, split,
//! reject, ignore, hide, reset) applied to the store, each in one transaction, and the views of
//! the result (people, a person's photos, stats, audit). [`assign`] runs the automatic side:
//! clustering and matching.
//!
//! Manual decisions are marked `assigned = 'manual'` (faces) or kind `manual` / `ignored`
//! (clusters); nothing automatic ever overwrites them. No embedding is computed here.

pub mod assign;
pub mod report;

use rusqlite::{OptionalExtension, Transaction, params};

use crate::config::Settings;
use crate::embedding::distance;
use crate::gpu::GpuError;
use crate::store::clusters::{self, ClusterKind};
use crate::store::{SqlResult, Store, StoreError, faces};

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("GPU: {0}")]
    Gpu(#[from] GpuError),
}

impl From<rusqlite::Error> for PeopleError {
    fn from(e: rusqlite::Error) -> Self {
        PeopleError::Store(StoreError::Sql(e))
    }
}

/// A cluster (`c12`) or a face (`f345`), as the read commands print them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ref {
    Cluster(i64),
    Face(i64),
}

impl std::str::FromStr for Ref {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: expected a cluster like c12 or a face like f345");
        let (kind, num) = s.split_at_checked(1).ok_or_else(bad)?;
        let id: i64 = num.parse().map_err(|_| bad())?;
        match kind {
            "c" | "C" => Ok(Ref::Cluster(id)),
            "f" | "F" => Ok(Ref::Face(id)),
            _ => Err(bad()),
        }
    }
}

fn refused(msg: String) -> StoreError {
    StoreError::Refused(msg)
}

/// The id of the person called `name` (case-insensitive).
pub fn person_id(tx: &rusqlite::Connection, name: &str) -> SqlResult<Option<i64>> {
    tx.query_row("SELECT id FROM people WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
}

fn existing_person(tx: &rusqlite::Connection, name: &str) -> Result<i64, StoreError> {
    person_id(tx, name)?.ok_or_else(|| refused(format!("no person named {name:?}")))
}

fn ensure_person(tx: &Transaction, name: &str) -> Result<i64, StoreError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(refused("a person's name cannot be empty".into()));
    }
    tx.execute("INSERT OR IGNORE INTO people (name) VALUES (?1)", [name])?;
    existing_person(tx, name)
}

fn existing_face(tx: &rusqlite::Connection, id: i64) -> Result<faces::FaceRow, StoreError> {
    faces::get(tx, id)?.ok_or_else(|| refused(format!("no face f{id}")))
}

/// Name a cluster or a face. Naming a cluster makes it manual and names all its faces (except
/// those rejected for that person, which leave it); naming a face puts it in that person's
/// nearest manual cluster within reach, or a new one. Returns how many faces were named.
pub fn name(
    store: &mut Store,
    what: Ref,
    name: &str,
    settings: &Settings,
) -> Result<usize, StoreError> {
    store.write(|tx| {
        let p = ensure_person(tx, name)?;
        let n = match what {
            Ref::Cluster(c) => name_cluster(tx, c, p)?,
            Ref::Face(f) => {
                name_face(tx, f, p, settings)?;
                1
            }
        };
        assign::refresh_manual(tx)?;
        Ok(n)
    })
}

fn name_cluster(tx: &Transaction, c: i64, p: i64) -> Result<usize, StoreError> {
    clusters::get(tx, c)?.ok_or_else(|| refused(format!("no cluster c{c}")))?;
    let rejected = "SELECT face FROM rejections WHERE person = ?2";
    tx.execute(
        &format!(
            "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL, ambiguous = 0
             WHERE cluster = ?1 AND id IN ({rejected})"
        ),
        params![c, p],
    )?;
    let n = tx.execute(
        "UPDATE faces SET person = ?2, assigned = 'manual', ambiguous = 0, name_source = NULL
         WHERE cluster = ?1",
        params![c, p],
    )?;
    tx.execute(
        "UPDATE clusters SET kind = 'manual', person = ?2 WHERE id = ?1",
        params![c, p],
    )?;
    Ok(n)
}

fn name_face(tx: &Transaction, f: i64, p: i64, settings: &Settings) -> Result<(), StoreError> {
    let face = existing_face(tx, f)?;
    // Naming by hand overrides an earlier "not this person".
    tx.execute(
        "DELETE FROM rejections WHERE face = ?1 AND person = ?2",
        params![f, p],
    )?;
    let nearest = clusters::all(tx)?
        .into_iter()
        .filter(|c| c.kind == ClusterKind::Manual && c.person_id == Some(p))
        .filter(|c| !c.centroid.is_empty())
        .map(|c| (distance(&face.embedding, &c.centroid), c))
        .filter(|(d, c)| *d <= c.radius + settings.face_match_dist)
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.id);
    let cluster = match nearest {
        Some(c) => c,
        None => clusters::insert(
            tx,
            ClusterKind::Manual,
            Some(p),
            &assign::summary_of(std::slice::from_ref(&face.embedding)),
        )?,
    };
    tx.execute(
        "UPDATE faces SET person = ?2, cluster = ?3, assigned = 'manual', ambiguous = 0,
             name_source = NULL
         WHERE id = ?1",
        params![f, p, cluster],
    )?;
    Ok(())
}

/// Move chosen faces to another (or a new) person. Returns how many moved.
pub fn split(
    store: &mut Store,
    face_ids: &[i64],
    to: &str,
    settings: &Settings,
) -> Result<usize, StoreError> {
    store.write(|tx| {
        let p = ensure_person(tx, to)?;
        for &f in face_ids {
            name_face(tx, f, p, settings)?;
        }
        assign::refresh_manual(tx)?;
        Ok(face_ids.len())
    })
}

/// Name many faces by hand, each as [`name`] names one face, recording where each name came from
/// (e.g. `xmp:/photos/a.jpg.xmp`), inside a transaction the caller holds (so it can add faces in
/// the same one). Returns how many were named.
pub fn name_faces(
    tx: &Transaction,
    named: &[(i64, String, String)],
    settings: &Settings,
) -> Result<usize, StoreError> {
    let mut source = tx.prepare_cached("UPDATE faces SET name_source = ?2 WHERE id = ?1")?;
    for (f, name, from) in named {
        let p = ensure_person(tx, name)?;
        name_face(tx, *f, p, settings)?;
        source.execute(params![f, from])?;
    }
    assign::refresh_manual(tx)?;
    Ok(named.len())
}

/// Rename a person; the new name must not belong to someone else (merge them instead).
pub fn rename(store: &mut Store, old: &str, new: &str) -> Result<(), StoreError> {
    store.write(|tx| {
        let p = existing_person(tx, old)?;
        let new = new.trim();
        if new.is_empty() {
            return Err(refused("a person's name cannot be empty".into()));
        }
        if person_id(tx, new)?.is_some_and(|o| o != p) {
            return Err(refused(format!(
                "{new:?} is already a person; use `visage merge-person {old:?} {new:?}`"
            )));
        }
        tx.execute("UPDATE people SET name = ?2 WHERE id = ?1", params![p, new])?;
        Ok(())
    })
}

/// Merge person `from` into person `into`: faces, clusters and rejections move; `from` is gone.
pub fn merge(store: &mut Store, from: &str, into: &str) -> Result<usize, StoreError> {
    store.write(|tx| {
        let a = existing_person(tx, from)?;
        let b = existing_person(tx, into)?;
        if a == b {
            return Err(refused(format!(
                "{from:?} and {into:?} are the same person"
            )));
        }
        let n = tx.execute(
            "UPDATE faces SET person = ?2 WHERE person = ?1",
            params![a, b],
        )?;
        tx.execute(
            "UPDATE clusters SET person = ?2 WHERE person = ?1",
            params![a, b],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO rejections SELECT face, ?2 FROM rejections WHERE person = ?1",
            params![a, b],
        )?;
        // A face named by hand as `from` but rejected for `into`: the name is the newer word.
        tx.execute(
            "DELETE FROM rejections WHERE person = ?1 AND face IN
                 (SELECT id FROM faces WHERE person = ?1 AND assigned = 'manual')",
            [b],
        )?;
        tx.execute(
            "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL
             WHERE person = ?1 AND assigned = 'auto'
               AND id IN (SELECT face FROM rejections WHERE person = ?1)",
            [b],
        )?;
        tx.execute("DELETE FROM people WHERE id = ?1", [a])?;
        assign::refresh_manual(tx)?;
        Ok(n)
    })
}

/// "Not this person": the face leaves `person` (default: the person it has now) and is never
/// matched to that person again. Returns the person's name.
pub fn reject(store: &mut Store, face: i64, person: Option<&str>) -> Result<String, StoreError> {
    store.write(|tx| {
        let row = existing_face(tx, face)?;
        let (p, name) = match person {
            Some(n) => (existing_person(tx, n)?, n.to_string()),
            None => match (row.person_id, row.person.clone()) {
                (Some(p), Some(n)) => (p, n),
                _ => {
                    return Err(refused(format!(
                        "face f{face} has no person; say which with --person"
                    )));
                }
            },
        };
        tx.execute(
            "INSERT OR IGNORE INTO rejections VALUES (?1, ?2)",
            params![face, p],
        )?;
        tx.execute(
            "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL, ambiguous = 0
             WHERE id = ?1 AND person = ?2",
            params![face, p],
        )?;
        assign::refresh_manual(tx)?;
        Ok(name)
    })
}

/// Not a person of interest: the cluster's faces lose their person and new faces like them
/// join it instead of becoming someone. Returns how many faces it holds.
pub fn ignore(store: &mut Store, cluster: i64) -> Result<usize, StoreError> {
    store.write(|tx| {
        clusters::get(tx, cluster)?.ok_or_else(|| refused(format!("no cluster c{cluster}")))?;
        tx.execute(
            "UPDATE clusters SET kind = 'ignored', person = NULL WHERE id = ?1",
            [cluster],
        )?;
        let n = tx.execute(
            "UPDATE faces SET person = NULL, assigned = 'manual', ambiguous = 0 WHERE cluster = ?1",
            [cluster],
        )?;
        assign::refresh_manual(tx)?;
        Ok(n)
    })
}

/// Hide (or show again) a person in `visage people`.
pub fn hide(store: &mut Store, name: &str, hidden: bool) -> Result<(), StoreError> {
    store.write(|tx| {
        let p = existing_person(tx, name)?;
        tx.execute(
            "UPDATE people SET hidden = ?2 WHERE id = ?1",
            params![p, hidden],
        )?;
        Ok(())
    })
}

/// What a reset removed.
#[derive(Debug, Default, serde::Serialize)]
pub struct ResetReport {
    pub clusters: usize,
    pub people: usize,
    pub faces_cleared: usize,
}

/// Drop automatic clusters and matches; with `all`, every cluster, person and rejection too
/// (`force` required, so it cannot happen by accident). Faces and embeddings always stay.
pub fn reset(store: &mut Store, all: bool, force: bool) -> Result<ResetReport, StoreError> {
    store.write(|tx| {
        if !all {
            let faces_cleared = tx.query_row(
                "SELECT count(*) FROM faces WHERE assigned = 'auto' OR ambiguous = 1",
                [],
                |r| r.get::<_, i64>(0),
            )? as usize;
            return Ok(ResetReport {
                clusters: assign::drop_automatic(tx)?,
                people: 0,
                faces_cleared,
            });
        }
        let people =
            tx.query_row("SELECT count(*) FROM people", [], |r| r.get::<_, i64>(0))? as usize;
        if !force {
            return Err(refused(format!(
                "`reset --all` deletes every cluster, all {people} people and every manual \
                 decision; add --force to do it"
            )));
        }
        let faces_cleared = tx.execute(
            "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL, ambiguous = 0
             WHERE cluster IS NOT NULL OR person IS NOT NULL OR assigned IS NOT NULL
                OR ambiguous = 1",
            [],
        )?;
        tx.execute("DELETE FROM rejections", [])?;
        let clusters = tx.execute("DELETE FROM clusters", [])?;
        tx.execute("DELETE FROM people", [])?;
        Ok(ResetReport {
            clusters,
            people,
            faces_cleared,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_parse() {
        assert_eq!("c12".parse::<Ref>(), Ok(Ref::Cluster(12)));
        assert_eq!("f7".parse::<Ref>(), Ok(Ref::Face(7)));
        assert!("12".parse::<Ref>().unwrap_err().contains("c12"));
        assert!("x1".parse::<Ref>().is_err());
    }
}
