//! The library's consistency checks: each kind of inconsistency between faces, clusters, people
//! and rejections (and the copies triggers keep), the query that counts it and the statements
//! that repair it. `people::audit` runs them (`visage audit [--fix]`); the rules they restore are
//! the ones every decision and automatic run keep.

use rusqlite::{Connection, Transaction};

use super::SqlResult;

/// Each check: what it finds, the query counting it, and the statements that repair it.
const CHECKS: &[(&str, &str, &[&str])] = &[
    (
        "faces of removed photos still in a cluster",
        "SELECT count(*) FROM faces WHERE cluster IS NOT NULL
             AND photo IN (SELECT id FROM photos WHERE gone = 1)",
        &["UPDATE faces SET cluster = NULL,
               person = CASE WHEN assigned = 'manual' THEN person END,
               assigned = CASE WHEN assigned = 'manual' THEN 'manual' END
           WHERE cluster IS NOT NULL AND photo IN (SELECT id FROM photos WHERE gone = 1)"],
    ),
    (
        "faces matched automatically to a person they were rejected for",
        "SELECT count(*) FROM faces f JOIN rejections r ON r.face = f.id AND r.person = f.person
             WHERE f.assigned IS NOT 'manual'",
        &["UPDATE faces SET cluster = NULL, person = NULL, assigned = NULL
           WHERE assigned IS NOT 'manual'
             AND EXISTS (SELECT 1 FROM rejections r WHERE r.face = faces.id
                         AND r.person = faces.person)"],
    ),
    (
        "faces named by hand as a person they were also rejected for (the name is kept)",
        "SELECT count(*) FROM faces f JOIN rejections r ON r.face = f.id AND r.person = f.person
             WHERE f.assigned = 'manual'",
        &["DELETE FROM rejections WHERE EXISTS (SELECT 1 FROM faces f
               WHERE f.id = rejections.face AND f.person = rejections.person
                 AND f.assigned = 'manual')"],
    ),
    (
        "faces whose person differs from their named cluster's person",
        "SELECT count(*) FROM faces f JOIN clusters c ON c.id = f.cluster
             WHERE c.kind = 'manual' AND f.person IS NOT c.person",
        &["UPDATE faces SET person = (SELECT c.person FROM clusters c WHERE c.id = faces.cluster)
           WHERE cluster IN (SELECT id FROM clusters WHERE kind = 'manual')
             AND person IS NOT (SELECT c.person FROM clusters c WHERE c.id = faces.cluster)"],
    ),
    (
        "faces with a person in an automatic or ignored cluster",
        "SELECT count(*) FROM faces f JOIN clusters c ON c.id = f.cluster
             WHERE c.kind != 'manual' AND f.person IS NOT NULL",
        &["UPDATE faces SET person = NULL WHERE person IS NOT NULL
             AND cluster IN (SELECT id FROM clusters WHERE kind != 'manual')"],
    ),
    (
        "faces with a person but no record of how it was assigned",
        "SELECT count(*) FROM faces WHERE person IS NOT NULL AND assigned IS NULL",
        &["UPDATE faces SET assigned = 'manual' WHERE person IS NOT NULL AND assigned IS NULL"],
    ),
    (
        "automatic clusters without faces",
        "SELECT count(*) FROM clusters c WHERE kind = 'auto'
             AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.cluster = c.id)",
        &["DELETE FROM clusters WHERE kind = 'auto'
             AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.cluster = clusters.id)"],
    ),
    (
        "named clusters without a person",
        "SELECT count(*) FROM clusters WHERE kind = 'manual' AND person IS NULL",
        &[
            "UPDATE faces SET person = NULL, assigned = NULL, cluster = NULL
             WHERE cluster IN (SELECT id FROM clusters WHERE kind = 'manual' AND person IS NULL)",
            "DELETE FROM clusters WHERE kind = 'manual' AND person IS NULL",
        ],
    ),
    (
        "clusters whose face count differs from their faces",
        "SELECT count(*) FROM clusters c
             WHERE faces != (SELECT count(*) FROM faces f WHERE f.cluster = c.id)",
        &["UPDATE clusters SET faces = (SELECT count(*) FROM faces f WHERE f.cluster = clusters.id)
             WHERE faces != (SELECT count(*) FROM faces f WHERE f.cluster = clusters.id)"],
    ),
    (
        "faces whose copy of their photo's gone flag is wrong",
        "SELECT count(*) FROM faces f JOIN photos p ON p.id = f.photo WHERE f.gone != p.gone",
        &["UPDATE faces SET gone = (SELECT p.gone FROM photos p WHERE p.id = faces.photo)
             WHERE gone != (SELECT p.gone FROM photos p WHERE p.id = faces.photo)"],
    ),
    (
        "faces without an embedding",
        "SELECT count(*) FROM faces f WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.face = f.id)",
        &[],
    ),
    (
        "people without faces or clusters",
        "SELECT count(*) FROM people pe WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.person = pe.id)
             AND NOT EXISTS (SELECT 1 FROM clusters c WHERE c.person = pe.id)",
        &["DELETE FROM people WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.person = people.id)
             AND NOT EXISTS (SELECT 1 FROM clusters c WHERE c.person = people.id)"],
    ),
    // Last, so that it counts what the repairs above left.
    (
        "library counts (the tally) that differ from a recount",
        "SELECT count(*) FROM (SELECT 1, * FROM tally_recount EXCEPT SELECT * FROM tally)",
        &[
            "DELETE FROM tally",
            "INSERT INTO tally SELECT 1, * FROM tally_recount",
        ],
    ),
];

/// Each check's problem, in words, with how many rows show it.
pub fn count(conn: &Connection) -> SqlResult<Vec<(&'static str, i64)>> {
    CHECKS
        .iter()
        .map(|(problem, query, _)| Ok((*problem, conn.query_row(query, [], |r| r.get(0))?)))
        .collect()
}

/// Run every check's repair.
pub fn repair(tx: &Transaction) -> SqlResult<()> {
    for (_, _, repairs) in CHECKS {
        for sql in *repairs {
            tx.execute(sql, [])?;
        }
    }
    Ok(())
}

/// Named clusters whose sample count differs from their manual faces.
pub fn stale_summaries(conn: &Connection) -> SqlResult<i64> {
    conn.query_row(
        "SELECT count(*) FROM clusters c WHERE kind = 'manual' AND samples !=
             (SELECT count(*) FROM faces f JOIN photos p ON p.id = f.photo
              WHERE f.cluster = c.id AND f.assigned = 'manual' AND p.gone = 0)",
        [],
        |r| r.get(0),
    )
}
