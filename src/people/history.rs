//! The history of decisions and undo. Every decision a person makes (name, rename, merge, split,
//! reject, ignore, hide, accepting suggestions, confirming matches, "not a face", XMP import) is
//! one action, recorded with exactly the rows it changed in `faces`, `clusters`, `people` and
//! `rejections`, the automatic matching that follows it in the same transaction included
//! (`store::history` keeps the rows, and the triggers that log them while an action runs).
//!
//! Undo puts the rows back newest first. An action that a later action (not undone) depends on,
//! because it touched the same rows, is refused with that action named.

use rusqlite::Transaction;
use serde::Serialize;

pub use crate::store::history::{Action, BOOKKEEPING, list};
use crate::store::{Store, StoreError, history, now};

/// What kind of decision an action was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Name,
    Rename,
    Merge,
    Split,
    Reject,
    Ignore,
    Unignore,
    Hide,
    Unhide,
    Accept,
    Confirm,
    Verdict,
    Import,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Name => "name",
            Kind::Rename => "rename",
            Kind::Merge => "merge",
            Kind::Split => "split",
            Kind::Reject => "reject",
            Kind::Ignore => "ignore",
            Kind::Unignore => "unignore",
            Kind::Hide => "hide",
            Kind::Unhide => "unhide",
            Kind::Accept => "accept",
            Kind::Confirm => "confirm",
            Kind::Verdict => "verdict",
            Kind::Import => "import",
        }
    }
}

/// Run `f` as one recorded action inside the caller's transaction: every row it changes is logged
/// under a new history entry. An action that changed nothing leaves no entry. Returns `f`'s
/// result and the action's id (`None` when nothing changed).
pub fn record<T, E: From<StoreError>>(
    tx: &Transaction,
    kind: Kind,
    what: impl Into<String>,
    f: impl FnOnce(&Transaction) -> Result<T, E>,
) -> Result<(T, Option<i64>), E> {
    let sql = |e| E::from(StoreError::Sql(e));
    let id = history::open(tx, kind.as_str(), &what.into(), now()).map_err(sql)?;
    let out = f(tx);
    // The triggers go whatever `f` did: its error, if any, is the one reported.
    let stopped = history::stop(tx);
    let out = out?;
    stopped.map_err(sql)?;
    let kept = history::keep_if_logged(tx, id).map_err(sql)?;
    Ok((out, kept.then_some(id)))
}

/// Put back every row `action` changed, unless a later action still in force touched the same
/// rows.
fn apply(tx: &Transaction, action: &Action) -> Result<(), StoreError> {
    if let Some(later) = history::dependent(tx, action.id)? {
        return Err(StoreError::Refused(format!(
            "cannot undo {action}: {later} was done later and changed the same faces, clusters \
             or people; undo it first"
        )));
    }
    history::put_back(tx, action.id, now())?;
    Ok(())
}

/// Take back the last `count` actions still in force, newest first, in one transaction. Returns
/// what was undone (empty when there was nothing to undo).
pub fn undo(store: &mut Store, count: usize) -> Result<Vec<Action>, StoreError> {
    store.write(|tx| {
        let mut done = Vec::new();
        for _ in 0..count {
            let Some(action) = history::last(tx)? else {
                break;
            };
            apply(tx, &action)?;
            done.push(action);
        }
        Ok(done)
    })
}

/// Take back one action by id, unless a later action still in force depends on it.
pub fn undo_action(store: &mut Store, id: i64) -> Result<Action, StoreError> {
    store.write(|tx| {
        let action =
            history::get(tx, id)?.ok_or_else(|| StoreError::Refused(format!("no action #{id}")))?;
        if action.undone.is_some() {
            return Err(StoreError::Refused(format!("{action} is already undone")));
        }
        apply(tx, &action)?;
        Ok(action)
    })
}
