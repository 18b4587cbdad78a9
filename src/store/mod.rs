//! The library's database: one SQLite file (bundled SQLite, WAL, foreign keys on) holding photos,
//! their faces and embeddings, clusters and people. Every SQL statement of visage lives here, in a
//! module named for what it holds:
//! - [`schema`] migrates the file; [`ids`] are the ids users type (`f345`, `c12`, `p7`);
//! - [`photos`], [`faces`], [`embeddings`] and [`clusters`] read and write those rows (a face's
//!   name, mark or cluster as a decision sets it included); [`people`] holds people and
//!   rejections;
//! - [`dbscan`] keeps DBSCAN's state (neighbour counts, members, the faces that left, the settings
//!   it is for) and [`matching`] what automatic matching writes (a match, "ambiguous", the names
//!   pending), both for `people::assign`;
//! - [`history`] records each decision's rows (the triggers of SQLite's undo technique);
//! - [`report`] holds the views' queries, [`audit`] the consistency checks and their repairs;
//! - [`merge`] brings a shard database (one part of a library indexed on another machine) into a
//!   library through [`photos`].
//!
//! [`Store::open`] opens an existing library and creates nothing; [`Store::open_or_create`] is for
//! the commands that fill one. Every write goes through [`Store::write`], one transaction per call,
//! so a crash at any moment leaves the last committed state. This module stores and loads: which
//! person a face is, what a decision changes and when the automatic side runs are decided in
//! `people`, and no embedding is computed here. It imports nothing above it (not `people`,
//! `clustering`, `serve` or `cli`).

pub mod audit;
pub mod clusters;
pub mod dbscan;
pub mod embeddings;
pub mod faces;
pub mod history;
pub mod ids;
pub mod matching;
pub mod merge;
pub mod people;
pub mod photos;
pub mod report;
pub mod schema;

pub use ids::{ClusterId, FaceId, Item, PhotoId, Ref};

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// [`Store::open`] found no database there (and made none).
    #[error(
        "no database at {}: nothing was created there; make one with `visage index --db {} DIR`",
        path.display(),
        shell_word(path)
    )]
    NoDatabase { path: PathBuf },
    /// There is something at the path, but not a visage database: a folder, or an SQLite file
    /// another program made. It was left as it was.
    #[error("{} is not a visage database: {why}", path.display())]
    NotVisage { path: PathBuf, why: &'static str },
    // The message carries the SQLite (or system) error itself, and no variant has a `source`, so
    // a printed chain (`{:#}`) says it once.
    #[error("database {path}: {error}")]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error("database {path}: cannot create its folder: {error}")]
    Folder {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "database {path} has schema version {found}, newer than this visage knows ({known}); \
         use a newer visage"
    )]
    TooNew {
        path: PathBuf,
        found: usize,
        known: usize,
    },
    /// An SQL error inside a write (the command that ran it names the database).
    #[error("database: {0}")]
    Sql(rusqlite::Error),
    /// A face, cluster, photo or person asked for that is not there: nothing was written.
    #[error("no {0}")]
    NotFound(Item),
    /// A request that cannot be carried out as asked: nothing was written.
    #[error("{0}")]
    Refused(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(e)
    }
}

/// SQL errors inside a write, before the database path is attached.
pub type SqlResult<T> = Result<T, rusqlite::Error>;

/// An open database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// `$XDG_DATA_HOME/visage/visage.db` (or `~/.local/share/visage/visage.db`).
    pub fn default_path() -> PathBuf {
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share")
            });
        data.join("visage").join("visage.db")
    }

    /// Open the existing database at `path` and bring its schema up to date. A path with no
    /// database is [`StoreError::NoDatabase`], and nothing is created there (no file, no folder):
    /// commands that read a library use this one.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if path.is_dir() {
            return Err(StoreError::NotVisage {
                path: path.to_path_buf(),
                why: "it is a folder",
            });
        }
        if !path.exists() {
            return Err(StoreError::NoDatabase {
                path: path.to_path_buf(),
            });
        }
        // Without SQLITE_OPEN_CREATE: a file removed since the check above is not made again.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| {
            match source.sqlite_error_code() {
                Some(rusqlite::ErrorCode::CannotOpen) if !path.exists() => StoreError::NoDatabase {
                    path: path.to_path_buf(),
                },
                _ => self_error(path, source),
            }
        })?;
        Self::setup(conn, path, false)
    }

    /// Open the database at `path`, making it (and its folder) if there is none: for the
    /// commands that fill a library (`index`, `import`, merging shards).
    pub fn open_or_create(path: &Path) -> Result<Self, StoreError> {
        if path.is_dir() {
            return Err(StoreError::NotVisage {
                path: path.to_path_buf(),
                why: "it is a folder",
            });
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|error| StoreError::Folder {
                path: path.to_path_buf(),
                error,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| self_error(path, source))?;
        Self::setup(conn, path, true)
    }

    /// Settings every connection gets, then the schema brought up to date (made from nothing
    /// only when `create`).
    fn setup(conn: Connection, path: &Path, create: bool) -> Result<Self, StoreError> {
        let sql = |source| self_error(path, source);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // Another program's SQLite file is refused before anything (even WAL mode) is set on it.
        let (version, tables): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version),
                        (SELECT count(*) FROM sqlite_master)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|source| match source.sqlite_error_code() {
                Some(rusqlite::ErrorCode::NotADatabase) => StoreError::NotVisage {
                    path: path.to_path_buf(),
                    why: "it is not an SQLite file",
                },
                _ => self_error(path, source),
            })?;
        if version == 0 && tables > 0 {
            return Err(StoreError::NotVisage {
                path: path.to_path_buf(),
                why: "it is an SQLite database of another program",
            });
        }
        if version == 0 && !create {
            return Err(StoreError::NotVisage {
                path: path.to_path_buf(),
                why: "it is empty (`visage index` makes a library in it)",
            });
        }
        // WAL: readers never block the writer, and a crash mid-write rolls back cleanly.
        // synchronous=NORMAL is durable across application crashes (kill -9) in WAL mode.
        wal(&conn).map_err(sql)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Schema version (number of migrations applied).
    pub fn version(&self) -> Result<usize, StoreError> {
        self.read(|c| c.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0)))
            .map(|v| v as usize)
    }

    /// Run the migrations this database lacks, one transaction each. The version is read inside
    /// each transaction, so two processes opening a new database at once cannot both migrate.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = schema::MIGRATIONS.len();
        let found = self.version()?;
        if found > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                known,
            });
        }
        if found == known {
            return Ok(()); // no write lock needed
        }
        let mut compact = false;
        while let Some(ran) =
            self.transaction(false, |tx| -> Result<Option<usize>, StoreError> {
                let v =
                    tx.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
                let Some(migration) = schema::MIGRATIONS.get(v) else {
                    return Ok(None);
                };
                migration.run(tx)?;
                tx.pragma_update(None, "user_version", (v + 1) as i64)?;
                Ok(Some(v))
            })?
        {
            compact |= schema::MIGRATIONS[ran].compacts() && found > 0;
        }
        if compact {
            // A migration that moved most of the data leaves the old pages free: give them back
            // to the file system (needs no transaction of ours around it).
            log::info!("compacting {} after its migration", self.path.display());
            self.conn
                .execute_batch("VACUUM")
                .map_err(|e| self_error(&self.path, e))?;
        }
        Ok(())
    }

    /// Run `f` in one write transaction: committed if it returns `Ok`, rolled back otherwise.
    /// Each one counts in the library's [`Self::generation`].
    pub fn write<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&Transaction) -> Result<T, E>,
    ) -> Result<T, E> {
        self.transaction(true, f)
    }

    /// A write transaction; `counted` bumps the generation (not in migrations: the counter's
    /// table is one of theirs).
    fn transaction<T, E: From<StoreError>>(
        &mut self,
        counted: bool,
        f: impl FnOnce(&Transaction) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| E::from(self_error(&self.path, e)))?;
        let out = f(&tx)?;
        if counted {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('generation', 1)
                 ON CONFLICT (key) DO UPDATE SET value = value + 1",
                [],
            )
            .map_err(|e| E::from(self_error(&self.path, e)))?;
        }
        tx.commit()
            .map_err(|e| E::from(self_error(&self.path, e)))?;
        Ok(out)
    }

    /// How many write transactions the library has seen (any process's): an answer computed
    /// from it stays true while this stays the same.
    pub fn generation(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'), 0)",
                [],
                |r| r.get(0),
            )
        })
    }

    /// Run read-only work that fails in its own way (a long computation over the library that
    /// reads it through this connection, and writes nothing to it).
    /// A handle that stops the SQL statement running on this store's connection from another
    /// thread (Ctrl-C during a query over millions of rows): the statement fails with SQLite's
    /// "interrupted", and its transaction is rolled back.
    pub fn interrupt_handle(&self) -> rusqlite::InterruptHandle {
        self.conn.get_interrupt_handle()
    }

    pub fn read_with<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E> {
        f(&self.conn)
    }

    /// Run a read-only query.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> SqlResult<T>) -> Result<T, StoreError> {
        f(&self.conn).map_err(|source| self_error(&self.path, source))
    }

    /// Run several read-only queries on one snapshot of the library (a read transaction): a
    /// report made of several counts sees one state of it, even while `index` writes, and the
    /// snapshot is taken once rather than for every query.
    pub fn snapshot<T>(
        &self,
        f: impl FnOnce(&Connection) -> SqlResult<T>,
    ) -> Result<T, StoreError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|source| self_error(&self.path, source))?;
        // Nothing is written: the transaction ends (rolled back) when `tx` is dropped.
        f(&tx).map_err(|source| self_error(&self.path, source))
    }

    /// Move everything the write-ahead log holds into the database file and empty the log (so
    /// the file alone is the whole library, as its size on disk is measured).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.read(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
    }

    /// A compact copy of the library at `target` (SQLite's `VACUUM INTO`: one consistent
    /// snapshot, even while another process writes). `target` must not exist yet.
    pub fn copy_to(&self, target: &Path) -> Result<(), StoreError> {
        let target = target.to_string_lossy();
        self.read(|c| c.execute("VACUUM INTO ?1", [target.as_ref()]).map(drop))
    }

    /// `PRAGMA integrity_check`: `ok`, or what is wrong.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.read(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
    }
}

/// Set SQLite's page cache of this connection (`cache_size` in SQLite's terms: a negative
/// number is KiB, a positive one pages); returns the setting it had, to put back.
pub fn page_cache(conn: &rusqlite::Connection, cache_size: i64) -> SqlResult<i64> {
    let before: i64 = conn.pragma_query_value(None, "cache_size", |r| r.get(0))?;
    conn.pragma_update(None, "cache_size", cache_size)?;
    Ok(before)
}

/// Put the database in WAL mode (it stays so, in the file). Switching a file that is not yet in
/// WAL (a copy made by `VACUUM INTO`, a backup) takes an exclusive lock, and two processes
/// opening it at once can each hold the shared lock the other waits for: SQLite then answers
/// one of them "busy" at once instead of calling the busy handler. The other's switch serves
/// both, so the loser asks again, within the busy timeout.
fn wal(conn: &Connection) -> rusqlite::Result<()> {
    let give_up = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < give_up =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            done => return done,
        }
    }
}

/// `path` as one shell word, quoted only when it must be (for commands a message suggests).
pub fn shell_word(path: &Path) -> String {
    let s = path.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@=%~".contains(c);
    if !s.is_empty() && s.chars().all(plain) && !s.starts_with('~') {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// How long a connection waits for another's lock before answering "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

fn self_error(path: &Path, error: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        error,
    }
}

/// An embedding as a BLOB: 512 little-endian f32.
pub fn embedding_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// An embedding back from its BLOB.
pub fn blob_embedding(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy made by `VACUUM INTO` is not in WAL mode; processes opening it at once all switch
    /// it, and SQLite answers one of two that wait for each other "busy" at once, busy timeout
    /// or not. Each must still open it (graph parts started together on a copied library did
    /// not). The processes are this test binary run again, each opening the copy as soon as a
    /// file says go (threads of one process do not meet this: SQLite shares their locks).
    #[test]
    fn a_copy_not_in_wal_opens_from_many_processes_at_once() {
        const CHILD: &str = "VISAGE_TEST_OPEN_AT_ONCE";
        if let Some(copy) = std::env::var_os(CHILD) {
            let copy = std::path::PathBuf::from(copy);
            while !copy.with_extension("go").exists() {
                std::hint::spin_loop();
            }
            if let Err(e) = Store::open(&copy) {
                eprintln!("{e}");
                std::process::exit(3);
            }
            std::process::exit(0);
        }
        let dir = std::env::temp_dir().join(format!("visage-store-wal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let original = dir.join("visage.db");
        drop(Store::open_or_create(&original).unwrap());
        let (copy, go) = (dir.join("copy.db"), dir.join("copy.go"));
        for round in 0..15 {
            for f in ["copy.db", "copy.db-wal", "copy.db-shm", "copy.go"] {
                let _ = std::fs::remove_file(dir.join(f));
            }
            Connection::open(&original)
                .unwrap()
                .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
                .unwrap();
            assert_eq!(
                std::fs::read(&copy).unwrap()[18..20],
                [1, 1],
                "not in WAL mode"
            );
            let children: Vec<_> = (0..8)
                .map(|_| {
                    std::process::Command::new(std::env::current_exe().unwrap())
                        .args([
                            "--exact",
                            "store::tests::a_copy_not_in_wal_opens_from_many_processes_at_once",
                        ])
                        .args(["--nocapture", "--test-threads", "1"])
                        .env(CHILD, &copy)
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            std::thread::sleep(Duration::from_millis(150));
            std::fs::write(&go, b"").unwrap();
            for child in children {
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "round {round}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn opens_migrates_and_reopens() {
        let dir = std::env::temp_dir().join(format!("visage-store-{}", std::process::id()));
        let path = dir.join("sub/visage.db");
        let store = Store::open_or_create(&path).unwrap();
        assert_eq!(store.version().unwrap(), schema::MIGRATIONS.len());
        let mode: String = store
            .read(|c| c.pragma_query_value(None, "journal_mode", |r| r.get(0)))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = store
            .read(|c| c.pragma_query_value(None, "foreign_keys", |r| r.get(0)))
            .unwrap();
        assert_eq!(fk, 1);
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok");
        // A database from a newer visage is refused, not damaged.
        store
            .read(|c| c.pragma_update(None, "user_version", 99))
            .unwrap();
        drop(store);
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("schema version 99"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn open_refuses_what_is_not_a_library_and_creates_nothing() {
        let dir = std::env::temp_dir().join(format!("visage-store-open-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let listing = || {
            let mut names: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };

        // No database: refused, and neither it nor its folder is made.
        let missing = dir.join("typo/visage.db");
        let err = Store::open(&missing).err().unwrap();
        assert!(
            matches!(&err, StoreError::NoDatabase { path } if *path == missing),
            "{err}"
        );
        assert!(err.to_string().contains("typo/visage.db"), "{err}");
        assert!(listing().is_empty(), "{:?}", listing());

        // A folder.
        let err = Store::open(&dir).err().unwrap();
        assert!(matches!(err, StoreError::NotVisage { .. }), "{err}");
        assert!(err.to_string().contains("folder"), "{err}");

        // Not SQLite at all, another program's SQLite file, an empty file: refused, unchanged.
        let text = dir.join("notes.db");
        std::fs::write(&text, b"not a database, a note of mine").unwrap();
        let other = dir.join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE pets (name TEXT); INSERT INTO pets VALUES ('Rex');")
            .unwrap();
        let empty = dir.join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let before: Vec<Vec<u8>> = [&text, &other, &empty]
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        let names = listing();
        for (path, words) in [
            (&text, "not an SQLite file"),
            (&other, "another program"),
            (&empty, "empty"),
        ] {
            let err = Store::open(path).err().unwrap();
            assert!(matches!(err, StoreError::NotVisage { .. }), "{err}");
            assert!(err.to_string().contains(words), "{err}");
        }
        assert!(Store::open_or_create(&other).is_err());
        let after: Vec<Vec<u8>> = [&text, &other, &empty]
            .iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        assert_eq!(before, after);
        assert_eq!(listing(), names, "no -wal or -shm file either");

        // An empty file is where `open_or_create` may make a library; `open` then takes it.
        Store::open_or_create(&empty).unwrap();
        assert_eq!(
            Store::open(&empty).unwrap().version().unwrap(),
            schema::MIGRATIONS.len()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn paths_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(shell_word(Path::new("/home/me/v.db")), "/home/me/v.db");
        assert_eq!(
            shell_word(Path::new("/my photos/v.db")),
            "'/my photos/v.db'"
        );
        assert_eq!(shell_word(Path::new("it's.db")), "'it'\\''s.db'");
    }

    #[test]
    fn an_sql_error_is_said_once_however_it_is_printed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_or_create(&dir.path().join("v.db")).unwrap();
        let read = store
            .read(|c| c.query_row("SELECT * FROM no_such_table", [], |_| Ok(())))
            .unwrap_err();
        let write = store
            .write(|tx| -> Result<(), StoreError> {
                tx.execute("DELETE FROM no_such_table", [])?;
                Ok(())
            })
            .unwrap_err();
        for err in [read, write] {
            let alone = err.to_string();
            let chain = format!("{:#}", anyhow::Error::new(err).context("visage stats"));
            for text in [&alone, &chain] {
                assert_eq!(text.matches("no such table").count(), 1, "{text}");
                assert!(text.contains("database"), "{text}");
            }
        }
    }

    #[test]
    fn embeddings_round_trip() {
        let v = vec![0.5f32, -1.25, 3.0e-8];
        assert_eq!(blob_embedding(&embedding_blob(&v)), v);
    }
}
