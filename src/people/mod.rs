//! People: the decisions a person makes about faces and clusters (name, rename, merge, split,
//! reject, ignore, hide, accept suggestions, confirm matches, "not a face" / "stranger", reset)
//! applied to the store, each in one transaction and recorded in [`history`] (so it can be
//! undone); the views of the result in [`report`] (people, a person's photos, stats, progress)
//! and [`audit`] (inconsistencies found and repaired). [`assign`] runs the automatic side:
//! clustering and matching, which follows a decision inside the same transaction and the same
//! recorded action; [`suggest`] offers faces for a person to confirm.
//!
//! Here each decision is made: what it changes, what it refuses, what follows. What it writes is
//! written by `store` (`store::faces`, `store::clusters`, `store::people`), which holds every SQL
//! statement. Manual decisions are marked `assigned = 'manual'` (faces) or kind `manual` /
//! `ignored` (clusters); nothing automatic ever overwrites them. No embedding is computed here.

pub mod assign;
pub mod audit;
pub mod history;
pub mod report;
pub mod suggest;

use rusqlite::Transaction;

use crate::config::Settings;
use crate::embedding::distance;
use crate::gpu::GpuError;
use crate::graph::GraphBackend;
pub use crate::store::Ref;
use crate::store::clusters::{self, ClusterKind};
pub use crate::store::faces::Verdict;
use crate::store::ids::listed;
pub use crate::store::people::find as person_id;
use crate::store::{ClusterId, FaceId, Item, Store, StoreError, faces, people as persons};
use history::Kind;

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The message carries the GPU's error (no `source`, so a printed chain says it once).
    #[error("GPU: {0}")]
    Gpu(GpuError),
    /// The neighbour graph of a full run (its files, its rows), or a stop asked for; the message
    /// carries the graph's error, as for the GPU.
    #[error("neighbour graph: {0}")]
    Graph(crate::graph::GraphError),
}

impl From<GpuError> for PeopleError {
    fn from(e: GpuError) -> Self {
        PeopleError::Gpu(e)
    }
}

impl From<crate::graph::GraphError> for PeopleError {
    fn from(e: crate::graph::GraphError) -> Self {
        PeopleError::Graph(e)
    }
}

impl PeopleError {
    /// The run stopped because it was asked to (Ctrl-C), at a check of its own or by an SQL
    /// statement interrupted ([`crate::store::Store::interrupt_handle`]): nothing was written.
    pub fn is_stopped(&self) -> bool {
        let sql = match self {
            PeopleError::Graph(crate::graph::GraphError::Stopped) => return true,
            PeopleError::Store(StoreError::Sql(e) | StoreError::Sqlite { error: e, .. }) => e,
            _ => return false,
        };
        sql.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
    }
}

impl From<rusqlite::Error> for PeopleError {
    fn from(e: rusqlite::Error) -> Self {
        PeopleError::Store(StoreError::Sql(e))
    }
}

fn refused(msg: String) -> StoreError {
    StoreError::Refused(msg)
}

fn existing_person(tx: &rusqlite::Connection, name: &str) -> Result<i64, StoreError> {
    person_id(tx, name)?.ok_or_else(|| StoreError::NotFound(Item::Person(name.to_string())))
}

/// Longest name a person can be given, in characters.
pub const MAX_NAME: usize = 200;

/// A person's name as given by someone naming faces: trimmed, and refused when it is empty or
/// longer than [`MAX_NAME`] characters. The one rule for naming, renaming and splitting, from
/// the command line as from the review page.
pub fn checked_name(name: &str) -> Result<&str, StoreError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(refused("a person's name cannot be empty".into()));
    }
    if name.chars().count() > MAX_NAME {
        return Err(refused(format!("a name is at most {MAX_NAME} characters")));
    }
    Ok(name)
}

/// The person called `name` (trimmed), made if there is none. Names typed by someone pass
/// [`checked_name`] first; names read from elsewhere (XMP regions) are taken as they are.
fn ensure_person(tx: &Transaction, name: &str) -> Result<i64, StoreError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(refused("a person's name cannot be empty".into()));
    }
    persons::add(tx, name)?;
    existing_person(tx, name)
}

fn existing_face(tx: &rusqlite::Connection, id: FaceId) -> Result<faces::FaceRow, StoreError> {
    faces::get(tx, id)?.ok_or(StoreError::NotFound(Item::Face(id)))
}

/// What a decision did: how many faces it named (or moved, rejected, ...), how many more faces
/// the matching that followed gave the person, and its entry in the history (`None` when it
/// changed nothing).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outcome {
    pub faces: usize,
    pub joined: usize,
    pub action: Option<i64>,
}

/// Where matching runs after a decision that names faces; `None` leaves matching to the next
/// `visage cluster`.
#[derive(Clone, Copy)]
pub struct Rematch<'a> {
    pub settings: &'a Settings,
    pub backend: &'a GraphBackend,
}

/// One recorded action in one transaction: `f` decides, then (with `rematch`) matching runs for
/// the people `f` says changed, and the faces they gained are counted.
fn act(
    store: &mut Store,
    kind: Kind,
    what: String,
    rematch: Option<Rematch>,
    f: impl FnOnce(&Transaction) -> Result<(usize, Vec<i64>), PeopleError>,
) -> Result<Outcome, PeopleError> {
    store.write(|tx| {
        let ((faces, joined), action) = history::record(tx, kind, what, |tx| {
            let (faces, changed) = f(tx)?;
            assign::refresh_manual(tx)?;
            let mut joined = 0;
            if let Some(r) = rematch {
                let before = faces::count_matched(tx, &changed)?;
                assign::run_in(
                    tx,
                    r.settings,
                    r.backend,
                    false,
                    assign::Candidates::People(&changed),
                )?;
                joined = faces::count_matched(tx, &changed)?.saturating_sub(before);
            }
            Ok::<_, PeopleError>((faces, joined))
        })?;
        Ok(Outcome {
            faces,
            joined,
            action,
        })
    })
}

/// Name a cluster or a face. Naming a cluster makes it manual and names all its faces (except
/// those rejected for that person, which leave it); naming a face puts it in that person's
/// nearest manual cluster within reach, or a new one.
pub fn name(
    store: &mut Store,
    what: Ref,
    name: &str,
    settings: &Settings,
    rematch: Option<Rematch>,
) -> Result<Outcome, PeopleError> {
    name_several(store, &[what], name, &[], settings, rematch)
}

/// Name clusters and faces as one person in one action, and say that the faces in `except` (taken
/// out of a named cluster) are not that person.
pub fn name_several(
    store: &mut Store,
    targets: &[Ref],
    name: &str,
    except: &[FaceId],
    settings: &Settings,
    rematch: Option<Rematch>,
) -> Result<Outcome, PeopleError> {
    let name = checked_name(name)?;
    let mut what = format!("named {} {name:?}", listed(targets));
    if !except.is_empty() {
        what.push_str(&format!(", not {}", listed(except)));
    }
    act(store, Kind::Name, what, rematch, |tx| {
        let p = ensure_person(tx, name)?;
        // Faces taken out of a cluster named here were counted with it.
        let mut taken_out = 0;
        for &f in except {
            let cluster = existing_face(tx, f)?.cluster;
            taken_out += usize::from(
                targets
                    .iter()
                    .any(|t| Some(*t) == cluster.map(Ref::Cluster)),
            );
        }
        let mut n = 0;
        for &t in targets {
            n += match t {
                Ref::Cluster(c) => name_cluster(tx, c, p)?,
                Ref::Face(f) => {
                    name_face(tx, f, p, settings)?;
                    1
                }
            };
        }
        for &f in except {
            reject_in(tx, f, p)?;
        }
        Ok((n - taken_out.min(n), vec![p]))
    })
}

/// Accept a suggestion group: the faces are `name`'s (named by hand, as confirmed), and those in
/// `except` (taken out of the group) are not.
pub fn accept(
    store: &mut Store,
    faces: &[FaceId],
    name: &str,
    except: &[FaceId],
    settings: &Settings,
    rematch: Option<Rematch>,
) -> Result<Outcome, PeopleError> {
    let mut what = format!("accepted {} as {:?}", listed(faces), name.trim());
    if !except.is_empty() {
        what.push_str(&format!(", not {}", listed(except)));
    }
    act(store, Kind::Accept, what, rematch, |tx| {
        let p = existing_person(tx, name)?;
        for &f in faces {
            name_face(tx, f, p, settings)?;
        }
        for &f in except {
            existing_face(tx, f)?;
            reject_in(tx, f, p)?;
        }
        Ok((faces.len(), vec![p]))
    })
}

/// Confirm faces matched automatically: each becomes named by hand as the person it has.
pub fn confirm(
    store: &mut Store,
    faces: &[FaceId],
    settings: &Settings,
    rematch: Option<Rematch>,
) -> Result<Outcome, PeopleError> {
    act(
        store,
        Kind::Confirm,
        format!("confirmed {}", listed(faces)),
        rematch,
        |tx| {
            let mut changed = Vec::new();
            for &f in faces {
                let row = existing_face(tx, f)?;
                let p = row
                    .person_id
                    .ok_or_else(|| refused(format!("face {f} has no person to confirm")))?;
                name_face(tx, f, p, settings)?;
                if !changed.contains(&p) {
                    changed.push(p);
                }
            }
            Ok((faces.len(), changed))
        },
    )
}

fn name_cluster(tx: &Transaction, c: ClusterId, p: i64) -> Result<usize, StoreError> {
    clusters::get(tx, c)?.ok_or(StoreError::NotFound(Item::Cluster(c)))?;
    // Its faces rejected for the person leave it first.
    faces::take_rejected_out(tx, c, p)?;
    let n = faces::name_cluster(tx, c, p)?;
    clusters::name(tx, c, p)?;
    Ok(n)
}

fn name_face(tx: &Transaction, f: FaceId, p: i64, settings: &Settings) -> Result<(), StoreError> {
    let face = existing_face(tx, f)?;
    if face.verdict.is_some() {
        faces::unmark(tx, f)?;
    }
    // Naming by hand overrides an earlier "not this person".
    persons::unreject(tx, f, p)?;
    // Already named by hand as this person: nothing to do.
    if face.person_id == Some(p) && face.assigned == Some(faces::Assigned::Manual) {
        return Ok(());
    }
    let embedding = faces::embedding(tx, f)?;
    let nearest = clusters::all(tx)?
        .into_iter()
        .filter(|c| c.kind == ClusterKind::Manual && c.person_id == Some(p))
        .filter(|c| !c.centroid.is_empty() && c.centroid.len() == embedding.len())
        .map(|c| (distance(&embedding, &c.centroid), c))
        .filter(|(d, c)| *d <= assign::reach_of(c, settings))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.id);
    let cluster = match nearest {
        Some(c) => c,
        None => assign::insert_cluster(
            tx,
            ClusterKind::Manual,
            Some(p),
            &assign::summary_of(std::slice::from_ref(&embedding)),
        )?,
    };
    faces::name(tx, f, p, cluster)?;
    Ok(())
}

/// Move chosen faces to another (or a new) person. Returns how many moved.
pub fn split(
    store: &mut Store,
    face_ids: &[FaceId],
    to: &str,
    settings: &Settings,
    rematch: Option<Rematch>,
) -> Result<Outcome, PeopleError> {
    let to = checked_name(to)?;
    act(
        store,
        Kind::Split,
        format!("moved {} to {to:?}", listed(face_ids)),
        rematch,
        |tx| {
            let p = ensure_person(tx, to)?;
            let mut changed = vec![p];
            for &f in face_ids {
                if let Some(old) = existing_face(tx, f)?.person_id
                    && !changed.contains(&old)
                {
                    changed.push(old);
                }
                name_face(tx, f, p, settings)?;
            }
            Ok((face_ids.len(), changed))
        },
    )
}

/// Name many faces by hand, each as [`name`] names one face, recording where each name came from
/// (e.g. `xmp:/photos/a.jpg.xmp`), inside a transaction the caller holds (so it can add faces in
/// the same one). Returns how many were named.
pub fn name_faces(
    tx: &Transaction,
    named: &[(FaceId, String, String)],
    settings: &Settings,
) -> Result<usize, StoreError> {
    for (f, name, from) in named {
        let p = ensure_person(tx, name)?;
        name_face(tx, *f, p, settings)?;
        faces::set_name_source(tx, *f, from)?;
    }
    assign::refresh_manual(tx)?;
    Ok(named.len())
}

/// Rename a person; the new name must not belong to someone else (merge them instead).
pub fn rename(store: &mut Store, old: &str, new: &str) -> Result<Outcome, PeopleError> {
    let new = checked_name(new)?;
    let what = format!("renamed {old:?} to {new:?}");
    act(store, Kind::Rename, what, None, |tx| {
        let p = existing_person(tx, old)?;
        if person_id(tx, new)?.is_some_and(|o| o != p) {
            return Err(refused(format!(
                "{new:?} is already a person; use `visage merge-person {old:?} {new:?}`"
            ))
            .into());
        }
        persons::rename(tx, p, new)?;
        Ok((0, Vec::new()))
    })
}

/// Merge person `from` into person `into`: faces, clusters and rejections move; `from` is gone.
pub fn merge(store: &mut Store, from: &str, into: &str) -> Result<Outcome, PeopleError> {
    let what = format!("merged {from:?} into {into:?}");
    act(store, Kind::Merge, what, None, |tx| {
        let a = existing_person(tx, from)?;
        let b = existing_person(tx, into)?;
        if a == b {
            return Err(refused(format!("{from:?} and {into:?} are the same person")).into());
        }
        let n = persons::move_all(tx, a, b)?;
        // A face named by hand as `from` but rejected for `into`: the name is the newer word.
        persons::unreject_named(tx, b)?;
        // A face matched to `from` but rejected for `into` is nobody's match any more.
        faces::drop_rejected_matches(tx, b)?;
        persons::delete(tx, a)?;
        Ok((n, vec![b]))
    })
}

/// Say `face` is not person `p`: it is rejected for them and leaves them if it was theirs.
fn reject_in(tx: &Transaction, face: FaceId, p: i64) -> Result<(), StoreError> {
    persons::reject(tx, face, p)?;
    faces::leave_person(tx, face, p)?;
    Ok(())
}

/// "Not this person": each face leaves `person` (default: the person it has now) and is never
/// matched to that person again. Returns the people named, in order.
pub fn reject(
    store: &mut Store,
    faces: &[FaceId],
    person: Option<&str>,
) -> Result<(Outcome, Vec<String>), PeopleError> {
    let mut who = Vec::new();
    let what = format!(
        "{} not {}",
        listed(faces),
        person.map_or("their person".to_string(), |p| format!("{p:?}"))
    );
    let out = act(store, Kind::Reject, what, None, |tx| {
        let mut changed = Vec::new();
        for &face in faces {
            let row = existing_face(tx, face)?;
            let (p, name) = match person {
                Some(n) => (existing_person(tx, n)?, n.to_string()),
                None => match (row.person_id, row.person.clone()) {
                    (Some(p), Some(n)) => (p, n),
                    _ => {
                        return Err(refused(format!(
                            "face {face} has no person; say which with --person"
                        ))
                        .into());
                    }
                },
            };
            reject_in(tx, face, p)?;
            if !who.contains(&name) {
                who.push(name);
            }
            if !changed.contains(&p) {
                changed.push(p);
            }
        }
        Ok((faces.len(), changed))
    })?;
    Ok((out, who))
}

/// Not a person of interest: the cluster's faces lose their person and new faces like them
/// join it instead of becoming someone. Returns how many faces it holds.
pub fn ignore(store: &mut Store, cluster: ClusterId) -> Result<Outcome, PeopleError> {
    act(
        store,
        Kind::Ignore,
        format!("ignored {cluster}"),
        None,
        |tx| {
            clusters::get(tx, cluster)?.ok_or(StoreError::NotFound(Item::Cluster(cluster)))?;
            clusters::ignore(tx, cluster)?;
            let n = faces::ignore_cluster(tx, cluster)?;
            Ok((n, Vec::new()))
        },
    )
}

/// Bring an ignored cluster back: its faces are set free, and the next clustering run groups
/// them again (as an unnamed automatic cluster, to review).
pub fn unignore(store: &mut Store, cluster: ClusterId) -> Result<Outcome, PeopleError> {
    act(
        store,
        Kind::Unignore,
        format!("brought back {cluster}"),
        None,
        |tx| {
            let c =
                clusters::get(tx, cluster)?.ok_or(StoreError::NotFound(Item::Cluster(cluster)))?;
            if c.kind != ClusterKind::Ignored {
                return Err(refused(format!("{cluster} is not ignored")).into());
            }
            // Its faces are set free (the next clustering run groups them again, as new faces)
            // and the ignored cluster goes.
            let n = faces::free_cluster(tx, cluster)?;
            clusters::delete(tx, cluster)?;
            Ok((n, Vec::new()))
        },
    )
}

/// Hide (or show again) a person in `visage people`.
pub fn hide(store: &mut Store, name: &str, hidden: bool) -> Result<Outcome, PeopleError> {
    let (kind, verb) = if hidden {
        (Kind::Hide, "hid")
    } else {
        (Kind::Unhide, "showed")
    };
    act(store, kind, format!("{verb} {name:?}"), None, |tx| {
        let p = existing_person(tx, name)?;
        persons::set_hidden(tx, p, hidden)?;
        Ok((0, Vec::new()))
    })
}

/// Mark faces "not a face" or "stranger" (`None` takes the mark away): they leave their cluster
/// and person, and are never clustered, matched or suggested again.
pub fn set_verdict(
    store: &mut Store,
    faces: &[FaceId],
    verdict: Option<Verdict>,
) -> Result<Outcome, PeopleError> {
    let what = format!(
        "marked {} {}",
        listed(faces),
        verdict.map_or("as faces to review", |v| match v {
            Verdict::NotAFace => "not a face",
            Verdict::Stranger => "a stranger",
        })
    );
    act(store, Kind::Verdict, what, None, |tx| {
        let mut changed = Vec::new();
        for &f in faces {
            let row = existing_face(tx, f)?;
            if let Some(p) = row.person_id.filter(|p| !changed.contains(p)) {
                changed.push(p);
            }
            match verdict {
                Some(v) => faces::mark(tx, f, v)?,
                None => faces::unmark(tx, f)?,
            }
        }
        Ok((faces.len(), changed))
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
            let faces_cleared = faces::count_automatic(tx)?;
            return Ok(ResetReport {
                clusters: assign::drop_automatic(tx)?,
                people: 0,
                faces_cleared,
            });
        }
        let people = persons::count(tx)? as usize;
        if !force {
            return Err(refused(format!(
                "`reset --all` deletes every cluster, all {people} people and every manual \
                 decision; add --force to do it"
            )));
        }
        let (faces_cleared, clusters) = persons::forget_all(tx)?;
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
    fn a_name_is_trimmed_and_neither_empty_nor_over_the_limit() {
        assert_eq!(checked_name("  Ada Lovelace \n").unwrap(), "Ada Lovelace");
        let longest = "é".repeat(MAX_NAME);
        assert_eq!(
            checked_name(&longest).unwrap(),
            longest,
            "characters, not bytes"
        );
        for bad in ["", "  \t ", &"x".repeat(MAX_NAME + 1)] {
            assert!(
                matches!(checked_name(bad), Err(StoreError::Refused(_))),
                "{bad:?}"
            );
        }
    }
}
