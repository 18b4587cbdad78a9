//! The database schema as an ordered list of migrations. `PRAGMA user_version` records how many
//! have run; opening a database runs the rest, each in its own transaction. A released migration
//! is never edited: a change is a new entry at the end.

use rusqlite::Transaction;

/// One step of the schema: SQL, or SQL around a conversion written in Rust (data SQL cannot
/// convert by itself, such as f32 embeddings to f16).
pub enum Migration {
    Sql(&'static str),
    /// `before`, then the conversion, then `after`, in one transaction.
    Code {
        before: &'static str,
        convert: fn(&Transaction) -> rusqlite::Result<()>,
        after: &'static str,
    },
}

impl Migration {
    pub fn run(&self, tx: &Transaction) -> rusqlite::Result<()> {
        match self {
            Migration::Sql(sql) => tx.execute_batch(sql),
            Migration::Code {
                before,
                convert,
                after,
            } => {
                tx.execute_batch(before)?;
                convert(tx)?;
                tx.execute_batch(after)
            }
        }
    }

    /// Whether the migration frees so much space that the file should be compacted after it.
    pub fn compacts(&self) -> bool {
        matches!(self, Migration::Code { .. })
    }
}

/// Migration `k` takes a database from version `k` to `k + 1`. Ids are AUTOINCREMENT so a cluster,
/// face or person id a user has seen (`c12`, `f345`) never comes back meaning something else.
pub const MIGRATIONS: &[Migration] = &[
    // 1: the first release.
    Migration::Sql(
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
    ),
    // 2: where a manual name came from when it was not typed into visage (`xmp:PATH` for a
    // name imported from a photo's metadata).
    Migration::Sql(
        r#"
    ALTER TABLE faces ADD COLUMN name_source TEXT;
    "#,
    ),
    // 3: "not a face" and "stranger" verdicts on faces (never clustered, matched or suggested),
    // and the history of decisions: each action and, per row it changed in faces, clusters, people
    // or rejections, the SQL that puts the row back (`?1` is `row_id`). The rows are written by
    // temporary triggers that exist only while a recorded action runs (see people::history).
    Migration::Sql(
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
    ),
    // 4: a library of a million faces. Embeddings move to a table of their own as half floats
    // (1 KiB a face instead of 2, and face rows small enough that listing them reads little);
    // faces carry DBSCAN's state (`neighbours`) so new faces cluster without the old ones being
    // clustered again, and a copy of their photo's `gone`; clusters keep their face count.
    Migration::Code {
        before: MILLION_BEFORE,
        convert: crate::store::embeddings::migrate_from_faces,
        after: MILLION_AFTER,
    },
    // 5: `visage stats` at a million faces counts clusters by kind and reads their radii from a
    // small index instead of the table (a cluster row, with its centroid, fills a page).
    Migration::Sql(
        r#"
    CREATE INDEX clusters_kind ON clusters(kind, radius);
    "#,
    ),
    // 6: a face found in a video carries the moment of the still it was found in, seconds from
    // the video's start (its box is in that still's pixels); NULL for a photo's faces.
    Migration::Sql(
        r#"
    ALTER TABLE faces ADD COLUMN moment REAL;
    "#,
    ),
    // 7: matching reads the clusters near a face, not every cluster: each cluster's cell in the
    // vector file's partition (`store::embeddings::cells`, numbered for the partition `meta`
    // names under 'cells'), NULL until a run works it out, and again whenever the centroid
    // changes.
    Migration::Sql(
        r#"
    ALTER TABLE clusters ADD COLUMN cell INTEGER;
    CREATE INDEX clusters_cell ON clusters(cell);
    CREATE TRIGGER clusters_cell_stale AFTER UPDATE OF centroid ON clusters
        WHEN new.cell IS NOT NULL
    BEGIN
        UPDATE clusters SET cell = NULL WHERE id = new.id;
    END;
    "#,
    ),
    // 8: ten million faces. The counts of `visage stats`, of the review page's progress and of
    // its lists are kept in one row (`tally`) by triggers, in the transaction of every change, so
    // that reading them costs the same at any size; `tally_recount` counts the same from the
    // tables (it fills the row here, and `visage audit` checks the row against it). Clusters of
    // every kind largest first, for `visage clusters`' page.
    Migration::Sql(TALLY),
];

const TALLY: &str = r#"
    CREATE TABLE tally (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        photos INTEGER NOT NULL,
        photos_failed INTEGER NOT NULL,
        photos_gone INTEGER NOT NULL,
        faces INTEGER NOT NULL,
        faces_clustered INTEGER NOT NULL,
        faces_manual INTEGER NOT NULL,
        faces_auto INTEGER NOT NULL,
        faces_ambiguous INTEGER NOT NULL,
        faces_unassigned INTEGER NOT NULL,
        faces_named INTEGER NOT NULL,
        faces_matched INTEGER NOT NULL,
        faces_marked INTEGER NOT NULL,
        faces_unnamed INTEGER NOT NULL,
        faces_open INTEGER NOT NULL,
        clusters_auto INTEGER NOT NULL,
        clusters_manual INTEGER NOT NULL,
        clusters_ignored INTEGER NOT NULL,
        clusters_open INTEGER NOT NULL,
        people INTEGER NOT NULL,
        rejections INTEGER NOT NULL
    );
    CREATE VIEW tally_recount AS SELECT * FROM
        (SELECT
                count(CASE WHEN photos.gone = 0 THEN 1 END) AS photos,
                count(CASE WHEN photos.gone = 0 AND photos.error IS NOT NULL THEN 1 END) AS photos_failed,
                count(CASE WHEN photos.gone = 1 THEN 1 END) AS photos_gone
         FROM photos),
        (SELECT
                count(CASE WHEN faces.gone = 0 THEN 1 END) AS faces,
                count(CASE WHEN faces.gone = 0 AND faces.cluster IS NOT NULL THEN 1 END) AS faces_clustered,
                count(CASE WHEN faces.gone = 0 AND faces.assigned IS 'manual' THEN 1 END) AS faces_manual,
                count(CASE WHEN faces.gone = 0 AND faces.assigned IS 'auto' THEN 1 END) AS faces_auto,
                count(CASE WHEN faces.gone = 0 AND faces.ambiguous = 1 THEN 1 END) AS faces_ambiguous,
                count(CASE WHEN faces.gone = 0 AND faces.cluster IS NULL AND faces.person IS NULL THEN 1 END) AS faces_unassigned,
                count(CASE WHEN faces.gone = 0 AND faces.person IS NOT NULL AND faces.assigned IS 'manual' THEN 1 END) AS faces_named,
                count(CASE WHEN faces.gone = 0 AND faces.person IS NOT NULL AND faces.assigned IS 'auto' THEN 1 END) AS faces_matched,
                count(CASE WHEN faces.gone = 0 AND faces.verdict IS NOT NULL THEN 1 END) AS faces_marked,
                count(CASE WHEN faces.gone = 0 AND faces.person IS NULL AND faces.verdict IS NULL THEN 1 END) AS faces_unnamed,
                count(CASE WHEN faces.gone = 0 AND faces.cluster IS NULL AND faces.person IS NULL AND faces.verdict IS NULL THEN 1 END) AS faces_open
         FROM faces),
        (SELECT
                count(CASE WHEN clusters.kind = 'auto' THEN 1 END) AS clusters_auto,
                count(CASE WHEN clusters.kind = 'manual' THEN 1 END) AS clusters_manual,
                count(CASE WHEN clusters.kind = 'ignored' THEN 1 END) AS clusters_ignored,
                count(CASE WHEN clusters.kind = 'auto' AND clusters.person IS NULL AND clusters.faces > 0 THEN 1 END) AS clusters_open
         FROM clusters),
        (SELECT count(*) AS people FROM people),
        (SELECT count(*) AS rejections FROM rejections);
    INSERT INTO tally SELECT 1, * FROM tally_recount;
    CREATE TRIGGER faces_tally_insert AFTER INSERT ON faces
    BEGIN
        UPDATE tally SET
            faces = faces + (new.gone = 0),
            faces_clustered = faces_clustered + (new.gone = 0 AND new.cluster IS NOT NULL),
            faces_manual = faces_manual + (new.gone = 0 AND new.assigned IS 'manual'),
            faces_auto = faces_auto + (new.gone = 0 AND new.assigned IS 'auto'),
            faces_ambiguous = faces_ambiguous + (new.gone = 0 AND new.ambiguous = 1),
            faces_unassigned = faces_unassigned + (new.gone = 0 AND new.cluster IS NULL AND new.person IS NULL),
            faces_named = faces_named + (new.gone = 0 AND new.person IS NOT NULL AND new.assigned IS 'manual'),
            faces_matched = faces_matched + (new.gone = 0 AND new.person IS NOT NULL AND new.assigned IS 'auto'),
            faces_marked = faces_marked + (new.gone = 0 AND new.verdict IS NOT NULL),
            faces_unnamed = faces_unnamed + (new.gone = 0 AND new.person IS NULL AND new.verdict IS NULL),
            faces_open = faces_open + (new.gone = 0 AND new.cluster IS NULL AND new.person IS NULL AND new.verdict IS NULL);
    END;
    CREATE TRIGGER faces_tally_delete AFTER DELETE ON faces
    BEGIN
        UPDATE tally SET
            faces = faces - (old.gone = 0),
            faces_clustered = faces_clustered - (old.gone = 0 AND old.cluster IS NOT NULL),
            faces_manual = faces_manual - (old.gone = 0 AND old.assigned IS 'manual'),
            faces_auto = faces_auto - (old.gone = 0 AND old.assigned IS 'auto'),
            faces_ambiguous = faces_ambiguous - (old.gone = 0 AND old.ambiguous = 1),
            faces_unassigned = faces_unassigned - (old.gone = 0 AND old.cluster IS NULL AND old.person IS NULL),
            faces_named = faces_named - (old.gone = 0 AND old.person IS NOT NULL AND old.assigned IS 'manual'),
            faces_matched = faces_matched - (old.gone = 0 AND old.person IS NOT NULL AND old.assigned IS 'auto'),
            faces_marked = faces_marked - (old.gone = 0 AND old.verdict IS NOT NULL),
            faces_unnamed = faces_unnamed - (old.gone = 0 AND old.person IS NULL AND old.verdict IS NULL),
            faces_open = faces_open - (old.gone = 0 AND old.cluster IS NULL AND old.person IS NULL AND old.verdict IS NULL);
    END;
    CREATE TRIGGER faces_tally_update AFTER UPDATE OF cluster, person, assigned, ambiguous, gone, verdict ON faces
        WHEN old.cluster IS NOT new.cluster
         OR old.person IS NOT new.person
         OR old.assigned IS NOT new.assigned
         OR old.ambiguous IS NOT new.ambiguous
         OR old.gone IS NOT new.gone
         OR old.verdict IS NOT new.verdict
    BEGIN
        UPDATE tally SET
            faces = faces + (new.gone = 0) - (old.gone = 0),
            faces_clustered = faces_clustered + (new.gone = 0 AND new.cluster IS NOT NULL) - (old.gone = 0 AND old.cluster IS NOT NULL),
            faces_manual = faces_manual + (new.gone = 0 AND new.assigned IS 'manual') - (old.gone = 0 AND old.assigned IS 'manual'),
            faces_auto = faces_auto + (new.gone = 0 AND new.assigned IS 'auto') - (old.gone = 0 AND old.assigned IS 'auto'),
            faces_ambiguous = faces_ambiguous + (new.gone = 0 AND new.ambiguous = 1) - (old.gone = 0 AND old.ambiguous = 1),
            faces_unassigned = faces_unassigned + (new.gone = 0 AND new.cluster IS NULL AND new.person IS NULL) - (old.gone = 0 AND old.cluster IS NULL AND old.person IS NULL),
            faces_named = faces_named + (new.gone = 0 AND new.person IS NOT NULL AND new.assigned IS 'manual') - (old.gone = 0 AND old.person IS NOT NULL AND old.assigned IS 'manual'),
            faces_matched = faces_matched + (new.gone = 0 AND new.person IS NOT NULL AND new.assigned IS 'auto') - (old.gone = 0 AND old.person IS NOT NULL AND old.assigned IS 'auto'),
            faces_marked = faces_marked + (new.gone = 0 AND new.verdict IS NOT NULL) - (old.gone = 0 AND old.verdict IS NOT NULL),
            faces_unnamed = faces_unnamed + (new.gone = 0 AND new.person IS NULL AND new.verdict IS NULL) - (old.gone = 0 AND old.person IS NULL AND old.verdict IS NULL),
            faces_open = faces_open + (new.gone = 0 AND new.cluster IS NULL AND new.person IS NULL AND new.verdict IS NULL) - (old.gone = 0 AND old.cluster IS NULL AND old.person IS NULL AND old.verdict IS NULL);
    END;
    CREATE TRIGGER photos_tally_insert AFTER INSERT ON photos
    BEGIN
        UPDATE tally SET
            photos = photos + (new.gone = 0),
            photos_failed = photos_failed + (new.gone = 0 AND new.error IS NOT NULL),
            photos_gone = photos_gone + (new.gone = 1);
    END;
    CREATE TRIGGER photos_tally_delete AFTER DELETE ON photos
    BEGIN
        UPDATE tally SET
            photos = photos - (old.gone = 0),
            photos_failed = photos_failed - (old.gone = 0 AND old.error IS NOT NULL),
            photos_gone = photos_gone - (old.gone = 1);
    END;
    CREATE TRIGGER photos_tally_update AFTER UPDATE OF gone, error ON photos
        WHEN old.gone IS NOT new.gone
         OR old.error IS NOT new.error
    BEGIN
        UPDATE tally SET
            photos = photos + (new.gone = 0) - (old.gone = 0),
            photos_failed = photos_failed + (new.gone = 0 AND new.error IS NOT NULL) - (old.gone = 0 AND old.error IS NOT NULL),
            photos_gone = photos_gone + (new.gone = 1) - (old.gone = 1);
    END;
    CREATE TRIGGER clusters_tally_insert AFTER INSERT ON clusters
    BEGIN
        UPDATE tally SET
            clusters_auto = clusters_auto + (new.kind = 'auto'),
            clusters_manual = clusters_manual + (new.kind = 'manual'),
            clusters_ignored = clusters_ignored + (new.kind = 'ignored'),
            clusters_open = clusters_open + (new.kind = 'auto' AND new.person IS NULL AND new.faces > 0);
    END;
    CREATE TRIGGER clusters_tally_delete AFTER DELETE ON clusters
    BEGIN
        UPDATE tally SET
            clusters_auto = clusters_auto - (old.kind = 'auto'),
            clusters_manual = clusters_manual - (old.kind = 'manual'),
            clusters_ignored = clusters_ignored - (old.kind = 'ignored'),
            clusters_open = clusters_open - (old.kind = 'auto' AND old.person IS NULL AND old.faces > 0);
    END;
    CREATE TRIGGER clusters_tally_update AFTER UPDATE OF kind, person, faces ON clusters
        WHEN old.kind IS NOT new.kind
         OR (old.kind = 'auto' AND old.person IS NULL AND old.faces > 0)
            IS NOT (new.kind = 'auto' AND new.person IS NULL AND new.faces > 0)
    BEGIN
        UPDATE tally SET
            clusters_auto = clusters_auto + (new.kind = 'auto') - (old.kind = 'auto'),
            clusters_manual = clusters_manual + (new.kind = 'manual') - (old.kind = 'manual'),
            clusters_ignored = clusters_ignored + (new.kind = 'ignored') - (old.kind = 'ignored'),
            clusters_open = clusters_open + (new.kind = 'auto' AND new.person IS NULL AND new.faces > 0) - (old.kind = 'auto' AND old.person IS NULL AND old.faces > 0);
    END;
    CREATE TRIGGER people_tally_insert AFTER INSERT ON people
    BEGIN
        UPDATE tally SET people = people + 1;
    END;
    CREATE TRIGGER people_tally_delete AFTER DELETE ON people
    BEGIN
        UPDATE tally SET people = people - 1;
    END;
    CREATE TRIGGER rejections_tally_insert AFTER INSERT ON rejections
    BEGIN
        UPDATE tally SET rejections = rejections + 1;
    END;
    CREATE TRIGGER rejections_tally_delete AFTER DELETE ON rejections
    BEGIN
        UPDATE tally SET rejections = rejections - 1;
    END;

    CREATE INDEX clusters_size ON clusters(faces DESC, id);
    "#;

const MILLION_BEFORE: &str = r#"
    CREATE TABLE embeddings (
        face   INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
        vector BLOB NOT NULL
    );
    "#;

const MILLION_AFTER: &str = r#"
    ALTER TABLE faces DROP COLUMN embedding;

    -- DBSCAN's state for the faces it runs over (eligible, not decided by hand, not matched to
    -- a person or an ignored cluster): how many of those lie within the cluster distance,
    -- itself included. NULL for every other face. `member`: DBSCAN put the face in its cluster
    -- (core or border), as opposed to matching it there by distance afterwards.
    ALTER TABLE faces ADD COLUMN neighbours INTEGER;
    ALTER TABLE faces ADD COLUMN member INTEGER NOT NULL DEFAULT 0;
    UPDATE faces SET member = 1 WHERE assigned = 'auto' AND person IS NULL AND cluster IS NOT NULL;

    -- The photo's `gone`, copied so that lists of faces need no join to leave gone photos out.
    ALTER TABLE faces ADD COLUMN gone INTEGER NOT NULL DEFAULT 0;
    UPDATE faces SET gone = 1 WHERE photo IN (SELECT id FROM photos WHERE gone = 1);
    CREATE TRIGGER photos_gone AFTER UPDATE OF gone ON photos WHEN old.gone IS NOT new.gone
    BEGIN
        UPDATE faces SET gone = new.gone WHERE photo = new.id;
    END;
    CREATE TRIGGER faces_gone AFTER INSERT ON faces
        WHEN (SELECT gone FROM photos WHERE id = new.photo) = 1
    BEGIN
        UPDATE faces SET gone = 1 WHERE id = new.id;
    END;

    -- How many faces each cluster holds, kept by triggers; `stale`: its faces changed since its
    -- centroid and radius were computed.
    ALTER TABLE clusters ADD COLUMN faces INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE clusters ADD COLUMN stale INTEGER NOT NULL DEFAULT 0;
    UPDATE clusters SET faces = (SELECT count(*) FROM faces f WHERE f.cluster = clusters.id);
    CREATE TRIGGER faces_cluster_insert AFTER INSERT ON faces WHEN new.cluster IS NOT NULL
    BEGIN
        UPDATE clusters SET faces = faces + 1, stale = 1 WHERE id = new.cluster;
    END;
    CREATE TRIGGER faces_cluster_delete AFTER DELETE ON faces WHEN old.cluster IS NOT NULL
    BEGIN
        UPDATE clusters SET faces = faces - 1, stale = 1 WHERE id = old.cluster;
    END;
    CREATE TRIGGER faces_cluster_update AFTER UPDATE OF cluster ON faces
        WHEN old.cluster IS NOT new.cluster
    BEGIN
        UPDATE clusters SET faces = faces - 1, stale = 1 WHERE id = old.cluster;
        UPDATE clusters SET faces = faces + 1, stale = 1 WHERE id = new.cluster;
    END;
    CREATE TRIGGER faces_assigned_update AFTER UPDATE OF assigned, gone ON faces
        WHEN new.cluster IS NOT NULL AND old.cluster IS new.cluster
    BEGIN
        UPDATE clusters SET stale = 1 WHERE id = new.cluster;
    END;

    -- The automatic side's bookkeeping, so that each run looks at what changed only.
    -- `seen`: the face has been matched or clustered (or found to fit nowhere) since it arrived
    -- or was last set free by a decision.
    ALTER TABLE faces ADD COLUMN seen INTEGER NOT NULL DEFAULT 0;
    UPDATE faces SET seen = 1;
    CREATE TRIGGER faces_reopened AFTER UPDATE OF person, cluster ON faces
        WHEN new.person IS NULL AND new.cluster IS NULL AND new.neighbours IS NULL
         AND (old.person IS NOT NULL OR old.cluster IS NOT NULL)
    BEGIN
        UPDATE faces SET seen = 0 WHERE id = new.id;
    END;
    -- Faces that left the faces DBSCAN runs over (named, matched to a person, gone, deleted),
    -- with the state they had: the next run takes them out of their neighbours' counts.
    CREATE TABLE dbscan_removed (
        face       INTEGER PRIMARY KEY,
        neighbours INTEGER NOT NULL,
        cluster    INTEGER,
        member     INTEGER NOT NULL,
        vector     BLOB
    );
    CREATE TRIGGER faces_leave_dbscan AFTER UPDATE OF assigned, person, gone, verdict ON faces
        WHEN old.neighbours IS NOT NULL
         AND (new.assigned IS 'manual' OR new.person IS NOT NULL OR new.gone = 1
              OR new.verdict IS NOT NULL)
    BEGIN
        INSERT OR REPLACE INTO dbscan_removed VALUES (old.id, old.neighbours, old.cluster,
            old.member, (SELECT vector FROM embeddings WHERE face = old.id));
        UPDATE faces SET neighbours = NULL, member = 0 WHERE id = old.id;
    END;
    CREATE TRIGGER faces_delete_dbscan BEFORE DELETE ON faces WHEN old.neighbours IS NOT NULL
    BEGIN
        INSERT OR REPLACE INTO dbscan_removed VALUES (old.id, old.neighbours, old.cluster,
            old.member, (SELECT vector FROM embeddings WHERE face = old.id));
    END;
    -- Faces named by hand since the last run, and faces that stopped being named (with their
    -- vector, as they may be gone): matching looks around these only.
    CREATE TABLE match_pending (
        face   INTEGER NOT NULL,
        person INTEGER NOT NULL,
        named  INTEGER NOT NULL,
        vector BLOB,
        PRIMARY KEY (face, named)
    );
    CREATE TRIGGER faces_named_insert AFTER INSERT ON faces
        WHEN new.assigned IS 'manual' AND new.person IS NOT NULL
    BEGIN
        INSERT OR REPLACE INTO match_pending VALUES (new.id, new.person, 1, NULL);
    END;
    CREATE TRIGGER faces_named_update AFTER UPDATE OF person, assigned ON faces
        WHEN (new.assigned IS 'manual' AND new.person IS NOT NULL)
         AND (old.person IS NOT new.person OR old.assigned IS NOT 'manual')
    BEGIN
        INSERT OR REPLACE INTO match_pending VALUES (new.id, new.person, 1, NULL);
    END;
    CREATE TRIGGER faces_unnamed_update AFTER UPDATE OF person, assigned ON faces
        WHEN (old.assigned IS 'manual' AND old.person IS NOT NULL)
         AND (new.person IS NOT old.person OR new.assigned IS NOT 'manual')
    BEGIN
        INSERT OR REPLACE INTO match_pending VALUES (old.id, old.person, 0,
            (SELECT vector FROM embeddings WHERE face = old.id));
    END;
    CREATE TRIGGER faces_unnamed_delete BEFORE DELETE ON faces
        WHEN old.assigned IS 'manual' AND old.person IS NOT NULL
    BEGIN
        INSERT OR REPLACE INTO match_pending VALUES (old.id, old.person, 0,
            (SELECT vector FROM embeddings WHERE face = old.id));
    END;

    -- Settings and state of the automatic side (the cluster settings DBSCAN's state is for).
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;

    -- The review page's lists at a million faces: unnamed clusters largest first, faces in no
    -- cluster largest first, a person's faces, the faces DBSCAN runs over.
    CREATE INDEX clusters_open ON clusters(faces DESC, id) WHERE kind = 'auto' AND person IS NULL;
    CREATE INDEX faces_open ON faces(size DESC, id)
        WHERE cluster IS NULL AND person IS NULL AND gone = 0 AND verdict IS NULL;
    CREATE INDEX faces_dbscan ON faces(id) WHERE neighbours IS NOT NULL;
    -- A cluster's faces largest first (a page reads its first rows only, however large the
    -- cluster), and the counts of `visage stats` and the page's progress in one pass over the
    -- index alone.
    DROP INDEX faces_cluster;
    CREATE INDEX faces_cluster
        ON faces(cluster, gone, size DESC, id, person, assigned, ambiguous, verdict);
    -- People with their counts read the named and matched faces alone, from the index.
    DROP INDEX faces_person;
    CREATE INDEX faces_person ON faces(person, gone, photo, assigned) WHERE person IS NOT NULL;
    CREATE INDEX clusters_person ON clusters(person) WHERE person IS NOT NULL;
    CREATE INDEX faces_unseen ON faces(id) WHERE seen = 0;
    "#;
