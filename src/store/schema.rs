//! The database schema as an ordered list of migrations. `PRAGMA user_version` records how many
//! have run; opening a database runs the rest, each in its own transaction. A released migration
//! is never edited: a change is a new entry at the end.

/// Migration `k` takes a database from version `k` to `k + 1`. Ids are AUTOINCREMENT so a cluster,
/// face or person id a user has seen (`c12`, `f345`) never comes back meaning something else.
pub const MIGRATIONS: &[&str] = &[
    // 1: the first release.
    r#"
    CREATE TABLE photos (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        path        TEXT NOT NULL UNIQUE,
        size        INTEGER NOT NULL,
        mtime_ns    INTEGER NOT NULL,
        hash        TEXT,
        width       INTEGER,
        height      INTEGER,
        orientation INTEGER,
        indexed_at  INTEGER NOT NULL,
        error       TEXT,
        gone        INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE people (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        name    TEXT NOT NULL UNIQUE COLLATE NOCASE,
        hidden  INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE clusters (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        kind     TEXT NOT NULL CHECK (kind IN ('auto', 'manual', 'ignored')),
        person   INTEGER REFERENCES people(id) ON DELETE SET NULL,
        centroid BLOB,
        radius   REAL NOT NULL DEFAULT 0,
        samples  INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE faces (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        photo       INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
        rel_x REAL NOT NULL, rel_y REAL NOT NULL, rel_w REAL NOT NULL, rel_h REAL NOT NULL,
        x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,
        size        INTEGER NOT NULL,
        score       REAL NOT NULL,
        probability REAL NOT NULL,
        landmarks   TEXT NOT NULL,
        embedding   BLOB NOT NULL,
        cluster     INTEGER REFERENCES clusters(id) ON DELETE SET NULL,
        person      INTEGER REFERENCES people(id) ON DELETE SET NULL,
        assigned    TEXT CHECK (assigned IN ('auto', 'manual')),
        ambiguous   INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX faces_photo ON faces(photo);
    CREATE INDEX faces_cluster ON faces(cluster);
    CREATE INDEX faces_person ON faces(person);

    -- "Not this person": the face is never assigned to that person again.
    CREATE TABLE rejections (
        face   INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
        person INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        PRIMARY KEY (face, person)
    );
    "#,
    // 2: where a manual name came from when it was not typed into visage (`xmp:PATH` for a
    // name imported from a photo's metadata).
    r#"
    ALTER TABLE faces ADD COLUMN name_source TEXT;
    "#,
    // 3: "not a face" and "stranger" verdicts on faces (never clustered, matched or suggested),
    // and the history of decisions: each action and, per row it changed in faces, clusters, people
    // or rejections, the SQL that puts the row back (`?1` is `row_id`). The rows are written by
    // temporary triggers that exist only while a recorded action runs (see people::history).
    r#"
    ALTER TABLE faces ADD COLUMN verdict TEXT CHECK (verdict IN ('not_a_face', 'stranger'));

    CREATE TABLE history (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        at     INTEGER NOT NULL,
        kind   TEXT NOT NULL,
        what   TEXT NOT NULL,
        undone INTEGER
    );
    CREATE TABLE history_rows (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        action INTEGER NOT NULL REFERENCES history(id) ON DELETE CASCADE,
        tbl    TEXT NOT NULL,
        row_id INTEGER NOT NULL,
        undo   TEXT NOT NULL
    );
    CREATE INDEX history_rows_action ON history_rows(action);
    CREATE INDEX history_rows_row ON history_rows(tbl, row_id);
    "#,
];
