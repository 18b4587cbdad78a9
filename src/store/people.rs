//! People and rejections: a person's row (name, unique whatever its case, and whether `visage
//! people` hides them), and the "not this person" of each face (`rejections`). Which face is
//! whose is `people`'s to decide; this module writes and reads what it decided.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{FaceId, PhotoId, SqlResult};

/// The id of the person called `name` (case-insensitive).
pub fn find(conn: &Connection, name: &str) -> SqlResult<Option<i64>> {
    conn.query_row("SELECT id FROM people WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .optional()
}

/// A person called `name`, unless there is one already.
pub fn add(tx: &Transaction, name: &str) -> SqlResult<()> {
    tx.execute("INSERT OR IGNORE INTO people (name) VALUES (?1)", [name])?;
    Ok(())
}

pub fn rename(tx: &Transaction, person: i64, name: &str) -> SqlResult<()> {
    tx.execute(
        "UPDATE people SET name = ?2 WHERE id = ?1",
        params![person, name],
    )?;
    Ok(())
}

pub fn set_hidden(tx: &Transaction, person: i64, hidden: bool) -> SqlResult<()> {
    tx.execute(
        "UPDATE people SET hidden = ?2 WHERE id = ?1",
        params![person, hidden],
    )?;
    Ok(())
}

/// Every person's name, by id.
pub fn names(conn: &Connection) -> SqlResult<HashMap<i64, String>> {
    let mut stmt = conn.prepare("SELECT id, name FROM people")?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// How many people there are (hidden ones too).
pub fn count(conn: &Connection) -> SqlResult<i64> {
    conn.query_row("SELECT count(*) FROM people", [], |r| r.get(0))
}

/// Give person `from`'s faces and clusters to person `into`, and `from`'s rejections to `into`
/// as well (`from` keeps its row: see [`delete`]). Returns how many faces moved.
pub fn move_all(tx: &Transaction, from: i64, into: i64) -> SqlResult<usize> {
    let n = tx.execute(
        "UPDATE faces SET person = ?2 WHERE person = ?1",
        params![from, into],
    )?;
    tx.execute(
        "UPDATE clusters SET person = ?2 WHERE person = ?1",
        params![from, into],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO rejections SELECT face, ?2 FROM rejections WHERE person = ?1",
        params![from, into],
    )?;
    Ok(n)
}

/// A person's row goes (their faces, clusters and rejections let go of them).
pub fn delete(tx: &Transaction, person: i64) -> SqlResult<()> {
    tx.execute("DELETE FROM people WHERE id = ?1", [person])?;
    Ok(())
}

/// Face `face` is not person `person`.
pub fn reject(tx: &Transaction, face: FaceId, person: i64) -> SqlResult<()> {
    tx.execute(
        "INSERT OR IGNORE INTO rejections VALUES (?1, ?2)",
        params![face, person],
    )?;
    Ok(())
}

/// Face `face`'s "not `person`" goes.
pub fn unreject(tx: &Transaction, face: FaceId, person: i64) -> SqlResult<()> {
    tx.execute(
        "DELETE FROM rejections WHERE face = ?1 AND person = ?2",
        params![face, person],
    )?;
    Ok(())
}

/// The rejections of `person` on faces named by hand as that person go.
pub fn unreject_named(tx: &Transaction, person: i64) -> SqlResult<()> {
    tx.execute(
        "DELETE FROM rejections WHERE person = ?1 AND face IN
             (SELECT id FROM faces WHERE person = ?1 AND assigned = 'manual')",
        [person],
    )?;
    Ok(())
}

/// The people each face (by row id) was rejected for.
pub fn rejections(conn: &Connection) -> SqlResult<HashMap<i64, Vec<i64>>> {
    let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut stmt = conn.prepare("SELECT face, person FROM rejections")?;
    for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (face, person) = row?;
        out.entry(face).or_default().push(person);
    }
    Ok(out)
}

/// The people each of these faces (by row id) was rejected for; faces rejected for nobody are
/// left out.
pub fn rejections_of(conn: &Connection, faces: &[i64]) -> SqlResult<HashMap<i64, Vec<i64>>> {
    let mut stmt = conn.prepare_cached("SELECT person FROM rejections WHERE face = ?1")?;
    let mut out = HashMap::new();
    for &f in faces {
        let people: Vec<i64> = stmt
            .query_map([f], |r| r.get(0))?
            .collect::<SqlResult<_>>()?;
        if !people.is_empty() {
            out.insert(f, people);
        }
    }
    Ok(out)
}

/// The names of the people each face of photo `photo` was rejected for.
pub fn rejected_names_in(
    conn: &Connection,
    photo: PhotoId,
) -> SqlResult<HashMap<FaceId, Vec<String>>> {
    let mut rejected: HashMap<FaceId, Vec<String>> = HashMap::new();
    let mut stmt = conn.prepare(
        "SELECT r.face, pe.name FROM rejections r JOIN faces f ON f.id = r.face
         JOIN people pe ON pe.id = r.person WHERE f.photo = ?1",
    )?;
    for row in stmt.query_map([photo], |r| Ok((r.get(0)?, r.get(1)?)))? {
        let (face, name) = row?;
        rejected.entry(face).or_default().push(name);
    }
    Ok(rejected)
}

/// Every decision goes (`reset --all`): faces lose their cluster, person and how they got them,
/// and every rejection, cluster and person is deleted; faces and embeddings stay. Returns how
/// many faces were cleared and how many clusters deleted.
pub fn forget_all(tx: &Transaction) -> SqlResult<(usize, usize)> {
    let faces = tx.execute(
        "UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL, ambiguous = 0
         WHERE cluster IS NOT NULL OR person IS NOT NULL OR assigned IS NOT NULL
            OR ambiguous = 1",
        [],
    )?;
    tx.execute("DELETE FROM rejections", [])?;
    let clusters = tx.execute("DELETE FROM clusters", [])?;
    tx.execute("DELETE FROM people", [])?;
    Ok((faces, clusters))
}
