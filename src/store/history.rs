//! The history of decisions as the database keeps it: `history` (one row per action: when, what
//! kind, what was done in words, when it was undone) and `history_rows` (per row an action changed
//! in `faces`, `clusters`, `people` or `rejections`, the SQL that puts the row back, `?1` being the
//! row's id).
//!
//! This is SQLite's documented undo technique: while an action is open ([`open`] to [`stop`]),
//! temporary triggers (built from the tables' columns as they are) write, for each row changed,
//! the SQL that puts it back. The triggers exist only inside an open action, so automatic runs
//! (`index`, `cluster`) over a million faces log nothing and pay nothing. An update logs only the
//! columns it changed, and an update that changes nothing logs nothing.
//!
//! What an action is, and which may be undone, is `people::history`'s to decide; this module
//! writes and reads the rows.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use super::SqlResult;

/// One recorded action.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub kind: String,
    /// What was done, in words (`named c12 "Jerry Seinfeld"`).
    pub what: String,
    /// How many rows it changed.
    pub rows: i64,
    /// When it was undone (Unix seconds), if it was.
    pub undone: Option<i64>,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} {}: {}", self.id, self.kind, self.what)
    }
}

/// The tables whose rows an action records by their `id` (`rejections` is recorded by face).
const TABLES: [&str; 3] = ["faces", "clusters", "people"];

/// Columns that are the automatic side's bookkeeping, not decisions: DBSCAN's state of a face,
/// the copy of its photo's `gone`, a cluster's face count and staleness. Triggers and the
/// automatic runs keep them; an undo leaves them to those, and never puts an old count back.
pub const BOOKKEEPING: [&str; 6] = ["neighbours", "member", "seen", "gone", "faces", "stale"];

fn columns(tx: &Connection, table: &str) -> SqlResult<Vec<String>> {
    let mut stmt = tx.prepare(&format!("PRAGMA main.table_info({table})"))?;
    stmt.query_map([], |r| r.get::<_, String>(1))?
        .filter(|c| !matches!(c.as_deref(), Ok("id")))
        .filter(|c| !matches!(c.as_deref(), Ok(name) if BOOKKEEPING.contains(&name)))
        .collect()
}

/// The temporary triggers that log each change to `history_rows` under the open action.
fn trigger_sql(tx: &Connection) -> SqlResult<String> {
    let action = "(SELECT action FROM temp.visage_action)";
    let mut sql = String::new();
    for table in TABLES {
        let cols = columns(tx, table)?;
        let changed = cols
            .iter()
            .map(|c| format!("old.\"{c}\" IS NOT new.\"{c}\""))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sets = cols
            .iter()
            .map(|c| {
                format!(
                    "CASE WHEN old.\"{c}\" IS NOT new.\"{c}\" \
                     THEN '\"{c}\" = ' || quote(old.\"{c}\") || ', ' ELSE '' END"
                )
            })
            .collect::<Vec<_>>()
            .join(" || ");
        let names = cols
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let values = cols
            .iter()
            .map(|c| format!("quote(old.\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" || ', ' || ");
        sql.push_str(&format!(
            "CREATE TEMP TRIGGER visage_undo_{table}_insert AFTER INSERT ON main.{table} BEGIN
                 INSERT INTO history_rows (action, tbl, row_id, undo)
                 VALUES ({action}, '{table}', new.id, 'DELETE FROM {table} WHERE id = ?1');
             END;
             CREATE TEMP TRIGGER visage_undo_{table}_update AFTER UPDATE ON main.{table}
             WHEN {changed} BEGIN
                 INSERT INTO history_rows (action, tbl, row_id, undo)
                 VALUES ({action}, '{table}', old.id,
                         'UPDATE {table} SET ' || {sets} || 'id = id WHERE id = ?1');
             END;
             CREATE TEMP TRIGGER visage_undo_{table}_delete AFTER DELETE ON main.{table} BEGIN
                 INSERT INTO history_rows (action, tbl, row_id, undo)
                 VALUES ({action}, '{table}', old.id,
                         'INSERT INTO {table} (id, {names}) VALUES (?1, ' || {values} || ')');
             END;\n"
        ));
    }
    sql.push_str(&format!(
        "CREATE TEMP TRIGGER visage_undo_rejections_insert AFTER INSERT ON main.rejections BEGIN
             INSERT INTO history_rows (action, tbl, row_id, undo)
             VALUES ({action}, 'rejections', new.face,
                     'DELETE FROM rejections WHERE face = ?1 AND person = ' || new.person);
         END;
         CREATE TEMP TRIGGER visage_undo_rejections_delete AFTER DELETE ON main.rejections BEGIN
             INSERT INTO history_rows (action, tbl, row_id, undo)
             VALUES ({action}, 'rejections', old.face,
                     'INSERT OR IGNORE INTO rejections (face, person) VALUES (?1, ' || old.person || ')');
         END;\n"
    ));
    Ok(sql)
}

const TRIGGERS: [&str; 11] = [
    "faces_insert",
    "faces_update",
    "faces_delete",
    "clusters_insert",
    "clusters_update",
    "clusters_delete",
    "people_insert",
    "people_update",
    "people_delete",
    "rejections_insert",
    "rejections_delete",
];

/// Open a new action of `kind` inside the caller's transaction: its `history` row, and the
/// triggers that log every change under it until [`stop`]. Returns its id.
pub fn open(tx: &Transaction, kind: &str, what: &str, at: i64) -> SqlResult<i64> {
    let id: i64 = tx.query_row(
        "INSERT INTO history (at, kind, what) VALUES (?1, ?2, ?3) RETURNING id",
        params![at, kind, what],
        |r| r.get(0),
    )?;
    tx.execute_batch(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS visage_action (action INTEGER);
         DELETE FROM temp.visage_action;
         INSERT INTO temp.visage_action VALUES ({id});
         {}",
        trigger_sql(tx)?
    ))?;
    Ok(id)
}

/// Stop logging: the open action's triggers go.
pub fn stop(tx: &Transaction) -> SqlResult<()> {
    let drops: String = TRIGGERS
        .iter()
        .map(|t| format!("DROP TRIGGER IF EXISTS temp.visage_undo_{t};"))
        .collect();
    tx.execute_batch(&format!("{drops} DELETE FROM temp.visage_action;"))
}

/// Delete action `id` if it logged no row. Returns whether it is kept.
pub fn keep_if_logged(tx: &Transaction, id: i64) -> SqlResult<bool> {
    let rows: i64 = tx.query_row(
        "SELECT count(*) FROM history_rows WHERE action = ?1",
        [id],
        |r| r.get(0),
    )?;
    if rows == 0 {
        tx.execute("DELETE FROM history WHERE id = ?1", [id])?;
    }
    Ok(rows > 0)
}

const SELECT: &str = "SELECT h.id, h.at, h.kind, h.what,
        (SELECT count(*) FROM history_rows r WHERE r.action = h.id), h.undone
    FROM history h";

fn action_of(r: &rusqlite::Row) -> SqlResult<Action> {
    Ok(Action {
        id: r.get(0)?,
        at: r.get(1)?,
        kind: r.get(2)?,
        what: r.get(3)?,
        rows: r.get(4)?,
        undone: r.get(5)?,
    })
}

/// Every recorded action goes: nothing can be undone any more (a library made to be reviewed
/// again from the start).
pub fn forget(tx: &Transaction) -> SqlResult<()> {
    tx.execute("DELETE FROM history", [])?;
    Ok(())
}

/// The recorded actions, newest first, at most `limit`.
pub fn list(conn: &Connection, limit: usize) -> SqlResult<Vec<Action>> {
    let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY h.id DESC LIMIT ?1"))?;
    stmt.query_map([limit.min(i64::MAX as usize) as i64], action_of)?
        .collect()
}

/// One action by id.
pub fn get(conn: &Connection, id: i64) -> SqlResult<Option<Action>> {
    conn.query_row(&format!("{SELECT} WHERE h.id = ?1"), [id], action_of)
        .optional()
}

/// The latest action still in force.
pub fn last(conn: &Connection) -> SqlResult<Option<Action>> {
    conn.query_row(
        &format!("{SELECT} WHERE h.undone IS NULL ORDER BY h.id DESC LIMIT 1"),
        [],
        action_of,
    )
    .optional()
}

/// The first later action still in force that touched a row `action` touched.
pub fn dependent(conn: &Connection, action: i64) -> SqlResult<Option<Action>> {
    let later: Option<i64> = conn
        .query_row(
            "SELECT min(l.action) FROM history_rows l JOIN history h ON h.id = l.action
             WHERE l.action > ?1 AND h.undone IS NULL
               AND EXISTS (SELECT 1 FROM history_rows r WHERE r.action = ?1
                           AND r.tbl = l.tbl AND r.row_id = l.row_id)",
            [action],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    later.map_or(Ok(None), |id| get(conn, id))
}

/// Put back every row `action` changed, newest change first, and mark it undone at `at`.
/// References to rows that automatic runs removed since (an automatic cluster dropped by
/// `cluster --recluster`) are cleared, as those runs clear them, and the automatic side takes up
/// again what the undo gave back to it: faces that are automatic again and outside DBSCAN are
/// looked at again by the next clustering run (as new faces), and the clusters put back are
/// summarised again.
pub fn put_back(tx: &Transaction, action: i64, at: i64) -> SqlResult<()> {
    tx.pragma_update(None, "defer_foreign_keys", true)?;
    let rows: Vec<(i64, String)> = {
        let mut stmt = tx
            .prepare("SELECT row_id, undo FROM history_rows WHERE action = ?1 ORDER BY seq DESC")?;
        stmt.query_map([action], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<SqlResult<_>>()?
    };
    for (row, sql) in rows {
        tx.execute(&sql, [row])?;
    }
    tx.execute_batch(
        "UPDATE faces SET cluster = NULL,
             person = CASE WHEN assigned = 'manual' THEN person END,
             assigned = CASE WHEN assigned = 'manual' THEN 'manual' END
         WHERE cluster IS NOT NULL AND cluster NOT IN (SELECT id FROM clusters);
         UPDATE faces SET person = NULL, assigned = NULL
         WHERE person IS NOT NULL AND person NOT IN (SELECT id FROM people);
         UPDATE clusters SET person = NULL
         WHERE person IS NOT NULL AND person NOT IN (SELECT id FROM people);
         DELETE FROM rejections WHERE face NOT IN (SELECT id FROM faces)
             OR person NOT IN (SELECT id FROM people);",
    )?;
    tx.execute(
        "UPDATE faces SET seen = 0
         WHERE id IN (SELECT row_id FROM history_rows WHERE action = ?1 AND tbl = 'faces')
           AND assigned IS NOT 'manual' AND person IS NULL AND neighbours IS NULL",
        [action],
    )?;
    tx.execute(
        "UPDATE clusters SET stale = 1
         WHERE id IN (SELECT row_id FROM history_rows WHERE action = ?1 AND tbl = 'clusters')",
        [action],
    )?;
    tx.execute(
        "UPDATE history SET undone = ?2 WHERE id = ?1",
        params![action, at],
    )?;
    Ok(())
}
