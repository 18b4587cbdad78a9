//! Merging a shard database (what `visage index --shard I/N` wrote on one machine) into a
//! library: its photos and their faces, one transaction per shard.
//!
//! Rows are read and written through the store's own functions ([`photos::each_stored`],
//! [`photos::store_indexed`]), never with SQL of this module's own, so the merge follows any change
//! in how faces are stored. A photo is taken when the library has no row for it, or an older one
//! (the shard indexed it later): its faces replace the library's and keep the manual decisions of
//! the faces they overlap, by the rule `index` uses. A photo the library holds as new or newer is
//! left alone, so merging a shard again changes nothing, and merging a rerun shard replaces just
//! what the rerun indexed again: nothing is ever duplicated. A merged photo keeps the time its
//! shard indexed it.
//!
//! The shard's clusters, people and decisions are not carried: shards hold photos and faces, and
//! clustering runs once, over the merged library.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use rusqlite::Transaction;
use serde::Serialize;

use super::photos::{self, StoredPhoto};
use super::{Store, StoreError};
use crate::detection::FoundFace;

/// The library's page cache during a merge, KiB.
const MERGE_CACHE_KIB: i64 = 64 * 1024;

/// `--path-map FROM=TO`: a photo path under FROM (the folder as the workers saw it) is the same
/// path under TO in the library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathMap {
    from: String,
    to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path map {0:?}: expected FROM=TO, two absolute folders (as /scratch/photos=/data/photos)")]
pub struct PathMapError(String);

impl FromStr for PathMap {
    type Err = PathMapError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || PathMapError(s.to_string());
        let (from, to) = s.split_once('=').ok_or_else(bad)?;
        // A folder is a prefix of whole components: `/a/b` maps `/a/b/c.jpg`, not `/a/bc.jpg`.
        let folder = |p: &str| match p.trim_end_matches('/') {
            "" if p.starts_with('/') => Some(String::new()),
            t if t.starts_with('/') => Some(t.to_string()),
            _ => None,
        };
        Ok(PathMap {
            from: folder(from).ok_or_else(bad)?,
            to: folder(to).ok_or_else(bad)?,
        })
    }
}

impl PathMap {
    /// `path` with the prefix of the first map that matches it rewritten (or as it is).
    pub fn apply<'a>(maps: &[PathMap], path: &'a str) -> Cow<'a, str> {
        for m in maps {
            if let Some(rest) = path.strip_prefix(m.from.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                return Cow::Owned(format!("{}{rest}", m.to));
            }
        }
        Cow::Borrowed(path)
    }
}

/// What merging one shard did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct MergeReport {
    pub shard: PathBuf,
    /// Photo rows in the shard.
    pub photos: usize,
    /// Photos the library did not have.
    pub added: usize,
    /// Photos whose library row was older: their faces replaced.
    pub replaced: usize,
    /// Photos the library already holds as new (a shard merged before) or newer.
    pub unchanged: usize,
    /// Photos that failed in the shard, recorded as failed (with the reason).
    pub failed: usize,
    /// Photos the shard found gone, marked gone in the library.
    pub gone: usize,
    /// Faces written.
    pub faces: usize,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// The message carries the SQLite error (and there is no `source`: see `StoreError`).
    #[error("shard {path}: {error}")]
    Shard {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error("shard {0} is the library itself")]
    SameFile(PathBuf),
    #[error(transparent)]
    Library(#[from] StoreError),
}

/// Where an error came from inside the one transaction.
enum Failure {
    /// Reading the shard.
    Shard(rusqlite::Error),
    /// Writing the library.
    Library(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Shard(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// Merge `shard` into `library` in one transaction, rewriting photo paths by `maps`. On an error
/// nothing of this shard is stored.
pub fn merge(
    library: &mut Store,
    shard: &Store,
    maps: &[PathMap],
) -> Result<MergeReport, MergeError> {
    let started = Instant::now();
    if same_file(library.path(), shard.path()) {
        return Err(MergeError::SameFile(shard.path().to_path_buf()));
    }
    let mut report = MergeReport {
        shard: shard.path().to_path_buf(),
        ..MergeReport::default()
    };
    let library_path = library.path().to_path_buf();
    // A page cache large enough for the indexes a merge touches on every row: with SQLite's
    // default (2 MiB) they are spilled to the WAL again and again (five times the write calls,
    // BENCHMARKS.md). The connection keeps it.
    library.read(|c| c.pragma_update(None, "cache_size", -MERGE_CACHE_KIB))?;
    library
        .write(|tx| -> Result<(), Failure> {
            shard.read(|conn| {
                Ok(photos::each_stored(conn, |photo| {
                    take(tx, photo, maps, &mut report).map_err(Failure::Library)
                }))
            })?
        })
        .map_err(|e| match e {
            Failure::Shard(error) => MergeError::Shard {
                path: shard.path().to_path_buf(),
                error,
            },
            Failure::Library(error) => MergeError::Library(StoreError::Sqlite {
                path: library_path,
                error,
            }),
            Failure::Store(e) => MergeError::Library(e),
        })?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Bring one of the shard's photos into the library, if the library's row is older or missing.
fn take(
    tx: &Transaction,
    photo: StoredPhoto,
    maps: &[PathMap],
    report: &mut MergeReport,
) -> rusqlite::Result<()> {
    report.photos += 1;
    let mut file = photo.file;
    if let Cow::Owned(path) = PathMap::apply(maps, &file.path) {
        file.path = path;
    }
    let known = photos::state(tx, &file.path)?;
    if photo.gone {
        // The file the library holds is the one the shard found gone.
        match known {
            Some(k) if !k.gone && k.hash == file.hash => {
                photos::mark_gone(tx, &[k.id])?;
                report.gone += 1;
            }
            _ => report.unchanged += 1,
        }
        return Ok(());
    }
    if known
        .as_ref()
        .is_some_and(|k| k.indexed_at >= photo.indexed_at)
    {
        report.unchanged += 1;
        return Ok(());
    }
    match (&photo.error, photo.info) {
        (None, Some(info)) => {
            let faces: Vec<FoundFace> = photo.faces.into_iter().map(|stored| stored.face).collect();
            report.faces += faces.len();
            match known {
                Some(_) => report.replaced += 1,
                None => report.added += 1,
            }
            photos::store_indexed(tx, &file, info, &faces, photo.indexed_at)?;
        }
        (error, _) => {
            report.failed += 1;
            let why = error.as_deref().unwrap_or("its shard holds no size for it");
            let id = photos::record_failure(tx, &file, why)?;
            photos::set_indexed_at(tx, id, photo.indexed_at)?;
        }
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::{Detection, Source};
    use crate::geometry::Rect;
    use crate::store::faces;
    use crate::store::photos::{FileInfo, PhotoInfo};

    const INFO: PhotoInfo = PhotoInfo {
        width: 1000,
        height: 800,
        orientation: 1,
    };

    fn face(x: f32, seed: f32) -> FoundFace {
        let mut embedding: Vec<f32> = (0..512).map(|i| ((i as f32 + seed) * 0.37).sin()).collect();
        let norm = embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
        embedding.iter_mut().for_each(|v| *v /= norm);
        FoundFace {
            detection: Detection {
                rect: Rect {
                    x,
                    y: 100.0,
                    w: 120.0,
                    h: 150.0,
                },
                size: 130,
                score: 20.0,
                source: Source::Pico,
                probability: 0.99,
                landmarks: vec![
                    [x + 30.0, 150.0],
                    [x + 90.0, 150.0],
                    [x + 60.0, 190.0],
                    [x + 35.0, 220.0],
                    [x + 85.0, 220.0],
                ],
            },
            embedding,
        }
    }

    fn file(path: &str, hash: &str) -> FileInfo {
        FileInfo {
            path: path.into(),
            size: 1234,
            mtime_ns: 5,
            hash: Some(hash.into()),
        }
    }

    fn store_photo(store: &mut Store, path: &str, hash: &str, faces: &[FoundFace], at: i64) {
        store
            .write(|tx| -> Result<(), StoreError> {
                photos::store_indexed(tx, &file(path, hash), INFO, faces, at)?;
                Ok(())
            })
            .unwrap();
    }

    /// Every face of the library as (path, x, person, embedding[0]), sorted.
    fn faces_of(store: &Store) -> Vec<(String, i64, Option<String>, f32)> {
        let mut out: Vec<_> = store
            .read(|c| {
                faces::list(c, faces::Filter::default())?
                    .into_iter()
                    .map(|f| {
                        let e = crate::store::embeddings::get(c, f.id.0)?.unwrap_or_default();
                        Ok((f.path, f.x as i64, f.person, e[0]))
                    })
                    .collect::<Result<Vec<_>, rusqlite::Error>>()
            })
            .unwrap();
        out.sort_by(|a, b| a.partial_cmp(b).unwrap());
        out
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("visage-merge-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn merges_once_replaces_reruns_and_keeps_manual_names() {
        let d = dir("rerun");
        let mut shard = Store::open_or_create(&d.join("shard-0.db")).unwrap();
        store_photo(
            &mut shard,
            "/scratch/p/a.jpg",
            "h1",
            &[face(10.0, 1.0), face(400.0, 2.0)],
            100,
        );
        store_photo(
            &mut shard,
            "/scratch/p/b.jpg",
            "h2",
            &[face(10.0, 3.0)],
            100,
        );
        store_photo(&mut shard, "/scratch/p/c.jpg", "h3", &[], 100);
        let mut library = Store::open_or_create(&d.join("library.db")).unwrap();
        let maps = ["/scratch/p/=/data/photos".parse::<PathMap>().unwrap()];

        let first = merge(&mut library, &shard, &maps).unwrap();
        assert_eq!((first.photos, first.added, first.faces), (3, 3, 3));
        let merged = faces_of(&library);
        assert_eq!(merged.len(), 3);
        assert!(
            merged.iter().all(|f| f.0.starts_with("/data/photos/")),
            "{merged:?}"
        );
        // The merged row keeps its shard's time, so a second merge finds it as new.
        let a = library
            .read(|c| photos::state(c, "/data/photos/a.jpg"))
            .unwrap()
            .unwrap();
        assert_eq!(a.indexed_at, 100);

        // A person names a face by hand in the library.
        let a_face = library
            .read(|c| faces::list(c, faces::Filter::default()))
            .unwrap()[0]
            .clone();
        library
            .write(|tx| -> Result<(), StoreError> {
                tx.execute("INSERT INTO people (name) VALUES ('Grandma')", [])?;
                tx.execute(
                    "UPDATE faces SET person = 1, assigned = 'manual' WHERE id = ?1",
                    [a_face.id],
                )?;
                Ok(())
            })
            .unwrap();

        // The same shard again: nothing changes, nothing is duplicated, the name stays.
        let again = merge(&mut library, &shard, &maps).unwrap();
        assert_eq!(
            (again.unchanged, again.added, again.replaced, again.faces),
            (3, 0, 0, 0)
        );
        let named = faces_of(&library);
        assert_eq!(named.len(), 3);
        assert_eq!(
            named
                .iter()
                .filter(|f| f.2.as_deref() == Some("Grandma"))
                .count(),
            1
        );

        // The shard is rerun: a.jpg indexed again (its boxes moved a little, new vectors), b.jpg
        // unchanged. The merge replaces a.jpg's faces; the named face keeps its name by IoU.
        store_photo(
            &mut shard,
            "/scratch/p/a.jpg",
            "h1",
            &[face(12.0, 5.0), face(402.0, 6.0)],
            200,
        );
        let rerun = merge(&mut library, &shard, &maps).unwrap();
        assert_eq!((rerun.replaced, rerun.unchanged, rerun.faces), (1, 2, 2));
        let after = faces_of(&library);
        assert_eq!(after.len(), 3, "{after:?}");
        let grandma: Vec<_> = after
            .iter()
            .filter(|f| f.2.as_deref() == Some("Grandma"))
            .collect();
        assert_eq!(grandma.len(), 1);
        assert_eq!(grandma[0].0, "/data/photos/a.jpg");
        assert_eq!(
            grandma[0].3,
            crate::store::embeddings::rounded(&face(12.0, 5.0).embedding)[0]
        );
        assert_eq!(library.integrity_check().unwrap(), "ok");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn gone_and_failed_photos_and_an_older_shard() {
        let d = dir("gone");
        let mut library = Store::open_or_create(&d.join("library.db")).unwrap();
        // The library indexed x.jpg itself, later than the shard did.
        store_photo(&mut library, "/p/x.jpg", "new", &[face(10.0, 9.0)], 500);
        store_photo(&mut library, "/p/y.jpg", "hy", &[face(10.0, 8.0)], 100);
        let mut shard = Store::open_or_create(&d.join("shard.db")).unwrap();
        store_photo(
            &mut shard,
            "/p/x.jpg",
            "old",
            &[face(10.0, 1.0), face(300.0, 2.0)],
            300,
        );
        store_photo(&mut shard, "/p/y.jpg", "hy", &[face(10.0, 8.0)], 100);
        shard
            .write(|tx| -> Result<(), StoreError> {
                let y = photos::state(tx, "/p/y.jpg")?.unwrap();
                photos::mark_gone(tx, &[y.id])?;
                photos::record_failure(tx, &file("/p/z.jpg", "hz"), "truncated JPEG")?;
                Ok(())
            })
            .unwrap();
        let report = merge(&mut library, &shard, &[]).unwrap();
        assert_eq!(
            (report.unchanged, report.gone, report.failed),
            (1, 1, 1),
            "{report:?}"
        );
        // x.jpg: the library's newer result stays.
        let faces = faces_of(&library);
        assert_eq!(faces.iter().filter(|f| f.0 == "/p/x.jpg").count(), 1);
        let states = library.read(photos::states).unwrap();
        assert!(states["/p/y.jpg"].gone);
        assert!(states["/p/z.jpg"].failed);
        // A shard merged into itself is refused.
        let itself = Store::open(&d.join("library.db")).unwrap();
        assert!(matches!(
            merge(&mut library, &itself, &[]),
            Err(MergeError::SameFile(_))
        ));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn path_maps() {
        let maps: Vec<PathMap> = ["/scratch/a=/data/a", "/mnt/=/"]
            .iter()
            .map(|m| m.parse().unwrap())
            .collect();
        assert_eq!(PathMap::apply(&maps, "/scratch/a/x.jpg"), "/data/a/x.jpg");
        assert_eq!(
            PathMap::apply(&maps, "/scratch/ab/x.jpg"),
            "/scratch/ab/x.jpg"
        );
        assert_eq!(PathMap::apply(&maps, "/mnt/photos/x.jpg"), "/photos/x.jpg");
        for bad in ["/a", "a=/b", "/a=b", "=/b"] {
            assert!(bad.parse::<PathMap>().is_err(), "{bad}");
        }
    }
}
