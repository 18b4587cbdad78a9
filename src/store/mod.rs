//! The library's database: one SQLite file (bundled SQLite, WAL, foreign keys on) holding photos,
//! their faces and embeddings, clusters and people. [`schema`] migrates it; [`photos`],
//! [`faces`] and [`clusters`] read and write rows; [`merge`] brings a shard database (one part of a
//! library indexed on another machine) into a library through them.
//!
//! Every write goes through [`Store::write`], one transaction per call, so a crash at any moment
//! leaves the last committed state. This module stores and loads; it does not decide who a face
//! is (see `people`) and never computes embeddings.

pub mod clusters;
pub mod faces;
pub mod merge;
pub mod photos;
pub mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {path}: cannot create its folder: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
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
    Sql(#[from] rusqlite::Error),
    /// A request that cannot be carried out as asked (unknown name, id, ...): nothing was written.
    #[error("{0}")]
    Refused(String),
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

    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let sql = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(sql)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
        // WAL: readers never block the writer, and a crash mid-write rolls back cleanly.
        // synchronous=NORMAL is durable across application crashes (kill -9) in WAL mode.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
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
        while self.write(|tx| -> Result<bool, StoreError> {
            let v = tx.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
            let Some(sql) = schema::MIGRATIONS.get(v) else {
                return Ok(false);
            };
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (v + 1) as i64)?;
            Ok(true)
        })? {}
        Ok(())
    }

    /// Run `f` in one write transaction: committed if it returns `Ok`, rolled back otherwise.
    pub fn write<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&Transaction) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| E::from(self_error(&self.path, e)))?;
        let out = f(&tx)?;
        tx.commit()
            .map_err(|e| E::from(self_error(&self.path, e)))?;
        Ok(out)
    }

    /// Run a read-only query.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> SqlResult<T>) -> Result<T, StoreError> {
        f(&self.conn).map_err(|source| self_error(&self.path, source))
    }

    /// `PRAGMA integrity_check`: `ok`, or what is wrong.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.read(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
    }
}

fn self_error(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
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

    #[test]
    fn opens_migrates_and_reopens() {
        let dir = std::env::temp_dir().join(format!("visage-store-{}", std::process::id()));
        let path = dir.join("sub/visage.db");
        let store = Store::open(&path).unwrap();
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
    fn embeddings_round_trip() {
        let v = vec![0.5f32, -1.25, 3.0e-8];
        assert_eq!(blob_embedding(&embedding_blob(&v)), v);
    }
}
