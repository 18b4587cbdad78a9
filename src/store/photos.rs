//! Photo rows and the faces found in them: what `index` needs to skip unchanged files, record
//! failures, mark removed files gone and replace a photo's faces.
//!
//! Replacing the faces of a changed photo keeps the manual decisions (person named by hand,
//! ignored cluster, rejections) of every new face that overlaps an old one (IoU), so editing a
//! photo loses nothing a person decided (and the history of those decisions follows the face to
//! its new id, so they can still be undone). Which person a face is, is decided elsewhere.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::faces::{self, StoredFace};
use super::{ClusterId, FaceId, PhotoId, SqlResult, embeddings, now};
use crate::detection::FoundFace;
use crate::geometry::Rect;

/// A new face box overlapping an old one at least this much (IoU) is the same face.
pub const SAME_FACE_IOU: f32 = 0.5;

/// What the store knows of a file, to decide whether to index it again.
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoState {
    pub id: PhotoId,
    pub size: u64,
    pub mtime_ns: i64,
    pub hash: Option<String>,
    pub failed: bool,
    pub gone: bool,
    /// When it was last indexed (or found unchanged, or failed), seconds since the Unix epoch.
    pub indexed_at: i64,
}

/// A file as found on disk.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub hash: Option<String>,
}

/// A decoded photo's facts.
#[derive(Debug, Clone, Copy)]
pub struct PhotoInfo {
    pub width: u32,
    pub height: u32,
    /// EXIF orientation, 1-8.
    pub orientation: u8,
}

/// One photo row as the review page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhotoRow {
    pub id: PhotoId,
    pub path: String,
    /// Original size after EXIF orientation (the pixels face boxes are in); `None` if it never
    /// decoded.
    pub width: Option<u32>,
    pub height: Option<u32>,
    #[serde(skip)]
    pub size: u64,
    #[serde(skip)]
    pub mtime_ns: i64,
    #[serde(skip)]
    pub hash: Option<String>,
    pub error: Option<String>,
    pub gone: bool,
}

/// One photo by id (gone or not).
pub fn get(conn: &Connection, id: PhotoId) -> SqlResult<Option<PhotoRow>> {
    conn.query_row(
        "SELECT id, path, width, height, size, mtime_ns, hash, error, gone FROM photos
         WHERE id = ?1",
        [id],
        |r| {
            Ok(PhotoRow {
                id: r.get(0)?,
                path: r.get(1)?,
                width: r.get(2)?,
                height: r.get(3)?,
                size: r.get::<_, i64>(4)? as u64,
                mtime_ns: r.get(5)?,
                hash: r.get(6)?,
                error: r.get(7)?,
                gone: r.get(8)?,
            })
        },
    )
    .optional()
}

const STATE: &str =
    "SELECT id, path, size, mtime_ns, hash, error IS NOT NULL, gone, indexed_at FROM photos";

fn state_row(r: &Row) -> SqlResult<(String, PhotoState)> {
    Ok((
        r.get(1)?,
        PhotoState {
            id: r.get(0)?,
            size: r.get::<_, i64>(2)? as u64,
            mtime_ns: r.get(3)?,
            hash: r.get(4)?,
            failed: r.get(5)?,
            gone: r.get(6)?,
            indexed_at: r.get(7)?,
        },
    ))
}

/// Every photo row by path.
pub fn states(tx: &Connection) -> SqlResult<HashMap<String, PhotoState>> {
    let mut stmt = tx.prepare(STATE)?;
    let rows = stmt.query_map([], state_row)?;
    rows.collect()
}

/// The rows of the photos under `folder` (a folder's path ending in `/`), by path: read through
/// the path index, so a small folder costs little however large the library.
pub fn states_under(conn: &Connection, folder: &str) -> SqlResult<HashMap<String, PhotoState>> {
    // Paths compare as bytes: those under `a/b/` are the range from `a/b/` up to `a/b0` ('0'
    // follows '/').
    let Some(parent) = folder.strip_suffix('/') else {
        return Ok(HashMap::new());
    };
    conn.prepare_cached(&format!("{STATE} WHERE path >= ?1 AND path < ?2"))?
        .query_map(params![folder, format!("{parent}0")], state_row)?
        .collect()
}

/// The id and facts of the photo at `path`, if it is indexed, present and decoded.
pub fn decoded(conn: &Connection, path: &str) -> SqlResult<Option<(PhotoId, PhotoInfo)>> {
    conn.query_row(
        "SELECT id, width, height, orientation FROM photos
         WHERE path = ?1 AND gone = 0 AND width > 0 AND height > 0",
        [path],
        |r| {
            Ok((
                r.get(0)?,
                PhotoInfo {
                    width: r.get(1)?,
                    height: r.get(2)?,
                    orientation: r.get::<_, Option<u8>>(3)?.unwrap_or(1),
                },
            ))
        },
    )
    .optional()
}

/// The row of one path, if there is one.
pub fn state(conn: &Connection, path: &str) -> SqlResult<Option<PhotoState>> {
    conn.prepare_cached(&format!("{STATE} WHERE path = ?1"))?
        .query_row([path], state_row)
        .optional()
        .map(|row| row.map(|(_, state)| state))
}

/// A photo row with its faces, as a database holds them (what `store::merge` carries from a
/// shard into a library).
#[derive(Debug, Clone)]
pub struct StoredPhoto {
    pub file: FileInfo,
    /// Size and orientation; `None` if it never decoded.
    pub info: Option<PhotoInfo>,
    pub indexed_at: i64,
    pub error: Option<String>,
    pub gone: bool,
    /// Its faces with embeddings and landmarks, in id order; none are read for a photo that
    /// failed or is gone.
    pub faces: Vec<StoredFace>,
}

/// Every photo row in id order, each with its faces, passed to `f` one at a time: a database of
/// millions of faces is read in one pass and never held whole. Errors of `f` stop the walk.
pub fn each_stored<E: From<rusqlite::Error>>(
    conn: &Connection,
    mut f: impl FnMut(StoredPhoto) -> Result<(), E>,
) -> Result<(), E> {
    let mut photos = conn.prepare(
        "SELECT id, path, size, mtime_ns, hash, width, height, orientation, indexed_at, error,
                gone
         FROM photos ORDER BY id",
    )?;
    let mut faces = conn.prepare(&format!(
        "{} WHERE p.gone = 0 AND p.error IS NULL ORDER BY f.photo, f.id",
        faces::SELECT_STORED
    ))?;
    let mut face_rows = faces.query_map([], faces::stored_from_row)?;
    let mut pending: Option<StoredFace> = face_rows.next().transpose()?;
    let mut rows = photos.query([])?;
    while let Some(r) = rows.next()? {
        let id: PhotoId = r.get(0)?;
        let orientation = r.get::<_, Option<u8>>(7)?.unwrap_or(1);
        let info = match (r.get(5)?, r.get(6)?) {
            (Some(width), Some(height)) => Some(PhotoInfo {
                width,
                height,
                orientation,
            }),
            _ => None,
        };
        let mut photo = StoredPhoto {
            file: FileInfo {
                path: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                mtime_ns: r.get(3)?,
                hash: r.get(4)?,
            },
            info,
            indexed_at: r.get(8)?,
            error: r.get(9)?,
            gone: r.get(10)?,
            faces: Vec::new(),
        };
        // Faces come in photo order: take this photo's, leave the next photo's.
        while let Some(face) = pending.take() {
            if face.photo > id {
                pending = Some(face);
                break;
            }
            if face.photo == id {
                photo.faces.push(face);
            }
            pending = face_rows.next().transpose()?;
        }
        f(photo)?;
    }
    Ok(())
}

/// Set when a photo was indexed (a merge keeps the time its shard indexed or tried it).
pub fn set_indexed_at(tx: &Transaction, id: PhotoId, at: i64) -> SqlResult<()> {
    tx.prepare_cached("UPDATE photos SET indexed_at = ?2 WHERE id = ?1")?
        .execute(params![id, at])?;
    Ok(())
}

/// Insert or update the row for `file` (clearing `gone`), returning its id.
fn upsert(tx: &Transaction, file: &FileInfo, error: Option<&str>) -> SqlResult<PhotoId> {
    tx.prepare_cached(
        "INSERT INTO photos (path, size, mtime_ns, hash, indexed_at, error, gone)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
         ON CONFLICT(path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,
             hash = COALESCE(excluded.hash, hash), indexed_at = excluded.indexed_at,
             error = excluded.error, gone = 0
         RETURNING id",
    )?
    .query_row(
        params![
            file.path,
            file.size as i64,
            file.mtime_ns,
            file.hash,
            now(),
            error
        ],
        |r| r.get(0),
    )
}

/// The file could not be read or decoded: record why. Faces stored before stay.
pub fn record_failure(tx: &Transaction, file: &FileInfo, error: &str) -> SqlResult<PhotoId> {
    upsert(tx, file, Some(error))
}

/// The file's content is unchanged (same hash) though its size or time moved: note the new ones.
pub fn touch(tx: &Transaction, file: &FileInfo) -> SqlResult<PhotoId> {
    upsert(tx, file, None)
}

/// Store a freshly indexed photo and its faces, replacing its old faces but carrying their
/// manual decisions over to the new faces that overlap them. `indexed_at`: when it was indexed
/// (seconds since the Unix epoch: [`super::now`], or the time a shard indexed it). Returns the
/// photo id.
pub fn store_indexed(
    tx: &Transaction,
    file: &FileInfo,
    info: PhotoInfo,
    faces: &[FoundFace],
    indexed_at: i64,
) -> SqlResult<PhotoId> {
    let known: Option<PhotoId> = tx
        .prepare_cached("SELECT id FROM photos WHERE path = ?1")?
        .query_row([&file.path], |r| r.get(0))
        .optional()?;
    let row = params![
        file.path,
        file.size as i64,
        file.mtime_ns,
        file.hash,
        indexed_at,
        info.width,
        info.height,
        info.orientation
    ];
    // A new photo (the common case of a first index or a merge) has no old faces to look at.
    let (id, old) = match known {
        None => {
            tx.prepare_cached(
                "INSERT INTO photos (path, size, mtime_ns, hash, indexed_at, error, gone, width,
                                     height, orientation)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0, ?6, ?7, ?8)",
            )?
            .execute(row)?;
            (PhotoId(tx.last_insert_rowid()), Vec::new())
        }
        Some(id) => {
            tx.prepare_cached(
                "UPDATE photos SET size = ?2, mtime_ns = ?3, hash = COALESCE(?4, hash),
                     indexed_at = ?5, error = NULL, gone = 0, width = ?6, height = ?7,
                     orientation = ?8
                 WHERE path = ?1",
            )?
            .execute(row)?;
            let old = old_decisions(tx, id)?;
            tx.prepare_cached("DELETE FROM faces WHERE photo = ?1")?
                .execute([id])?;
            (id, old)
        }
    };
    let mut follow = tx.prepare_cached(
        "UPDATE history_rows SET row_id = ?2 WHERE tbl IN ('faces', 'rejections') AND row_id = ?1",
    )?;
    let mut reject = tx.prepare_cached("INSERT OR IGNORE INTO rejections VALUES (?1, ?2)")?;
    for f in faces {
        let rel = relative(info, f);
        let carried = old
            .iter()
            .map(|o| (o, o.rel.iou(&rel)))
            .filter(|(_, iou)| *iou >= SAME_FACE_IOU)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(o, _)| o);
        let (cluster, person, assigned) = match carried {
            Some(o) if o.manual => (o.cluster, o.person, Some("manual")),
            _ => (None, None, None),
        };
        let face = insert_face(tx, id, info, f, cluster, person, assigned)?;
        // The history of the old face's decisions follows it to its new id.
        if let Some(o) = carried {
            follow.execute([o.id, face])?;
        }
        for p in carried.map(|o| o.rejected.as_slice()).unwrap_or_default() {
            reject.execute(params![face, p])?;
        }
    }
    Ok(id)
}

/// A face box relative to the photo's size (0-1).
fn relative(info: PhotoInfo, f: &FoundFace) -> Rect {
    let (pw, ph) = (info.width.max(1) as f32, info.height.max(1) as f32);
    let r = &f.detection.rect;
    Rect {
        x: r.x / pw,
        y: r.y / ph,
        w: r.w / pw,
        h: r.h / ph,
    }
}

/// Insert one face of photo `photo`; returns its id.
fn insert_face(
    tx: &Transaction,
    photo: PhotoId,
    info: PhotoInfo,
    f: &FoundFace,
    cluster: Option<ClusterId>,
    person: Option<i64>,
    assigned: Option<&str>,
) -> SqlResult<FaceId> {
    let rel = relative(info, f);
    let d = &f.detection;
    let landmarks = serde_json::to_string(&d.landmarks).unwrap_or_else(|_| "[]".into());
    tx.prepare_cached(
        "INSERT INTO faces (photo, rel_x, rel_y, rel_w, rel_h, x, y, w, h, size, score,
                            probability, landmarks, cluster, person, assigned)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         RETURNING id",
    )?
    .query_row(
        params![
            photo,
            rel.x,
            rel.y,
            rel.w,
            rel.h,
            d.rect.x,
            d.rect.y,
            d.rect.w,
            d.rect.h,
            d.size,
            d.score,
            d.probability,
            landmarks,
            cluster,
            person,
            assigned
        ],
        |r| r.get(0),
    )
    .and_then(|id| embeddings::insert(tx, id, &f.embedding).map(|()| FaceId(id)))
}

/// Add a face to a photo already indexed (one a person marked that detection missed); it has
/// no cluster or person yet. Returns its id.
pub fn add_face(
    tx: &Transaction,
    photo: PhotoId,
    info: PhotoInfo,
    f: &FoundFace,
) -> SqlResult<FaceId> {
    insert_face(tx, photo, info, f, None, None, None)
}

/// An old face's box and the decisions a person made about it.
struct OldFace {
    id: FaceId,
    rel: Rect,
    manual: bool,
    cluster: Option<ClusterId>,
    person: Option<i64>,
    rejected: Vec<i64>,
}

fn old_decisions(tx: &Transaction, photo: PhotoId) -> SqlResult<Vec<OldFace>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, rel_x, rel_y, rel_w, rel_h, assigned = 'manual', cluster, person
         FROM faces WHERE photo = ?1",
    )?;
    let mut rejections = tx.prepare_cached("SELECT person FROM rejections WHERE face = ?1")?;
    let rows: Vec<(FaceId, OldFace)> = stmt
        .query_map([photo], |r| {
            Ok((
                r.get(0)?,
                OldFace {
                    id: r.get(0)?,
                    rel: Rect {
                        x: r.get(1)?,
                        y: r.get(2)?,
                        w: r.get(3)?,
                        h: r.get(4)?,
                    },
                    manual: r.get::<_, Option<bool>>(5)?.unwrap_or(false),
                    cluster: r.get(6)?,
                    person: r.get(7)?,
                    rejected: Vec::new(),
                },
            ))
        })?
        .collect::<SqlResult<_>>()?;
    rows.into_iter()
        .map(|(id, mut face)| {
            face.rejected = rejections
                .query_map([id], |r| r.get(0))?
                .collect::<SqlResult<_>>()?;
            Ok(face)
        })
        .collect()
}

/// Mark photos gone (their files were removed): their faces leave their clusters and lose
/// automatic matches; manual names stay, in case the file comes back.
pub fn mark_gone(tx: &Transaction, ids: &[PhotoId]) -> SqlResult<()> {
    let mut photo = tx.prepare_cached("UPDATE photos SET gone = 1 WHERE id = ?1")?;
    let mut faces = tx.prepare_cached(
        "UPDATE faces SET cluster = NULL, ambiguous = 0,
             person = CASE WHEN assigned = 'manual' THEN person END,
             assigned = CASE WHEN assigned = 'manual' THEN 'manual' END
         WHERE photo = ?1",
    )?;
    for id in ids {
        photo.execute([id])?;
        faces.execute([id])?;
    }
    Ok(())
}

/// Store a photo at `path` with one face of this embedding (a 90-pixel face in a 200 x 200
/// photo, found now): how unit tests build a library of vectors. Returns the face's id.
#[cfg(test)]
pub(crate) fn store_vector(tx: &Transaction, path: &str, embedding: &[f32]) -> SqlResult<FaceId> {
    let face = FoundFace {
        detection: crate::detection::Detection {
            rect: Rect {
                x: 10.0,
                y: 10.0,
                w: 90.0,
                h: 90.0,
            },
            size: 90,
            score: 20.0,
            source: crate::detection::Source::Pico,
            probability: 1.0,
            landmarks: Vec::new(),
        },
        embedding: embedding.to_vec(),
    };
    let file = FileInfo {
        path: path.to_string(),
        size: 1,
        mtime_ns: 0,
        hash: None,
    };
    let info = PhotoInfo {
        width: 200,
        height: 200,
        orientation: 1,
    };
    let photo = store_indexed(tx, &file, info, &[face], super::now())?;
    tx.query_row("SELECT id FROM faces WHERE photo = ?1", [photo], |r| {
        r.get(0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreError};

    #[test]
    fn the_states_under_a_folder_are_its_photos_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_or_create(&dir.path().join("library.db")).unwrap();
        let paths = [
            "/a/b/x.jpg",
            "/a/b/c/y.jpg",
            "/a/b0.jpg",
            "/a/bc/z.jpg",
            "/a/b.jpg",
            "/a/b",
            "/a/c/x.jpg",
        ];
        store
            .write(|tx| -> Result<(), StoreError> {
                for path in paths {
                    let file = FileInfo {
                        path: path.into(),
                        size: 1,
                        mtime_ns: 0,
                        hash: None,
                    };
                    record_failure(tx, &file, "a test row")?;
                }
                Ok(())
            })
            .unwrap();
        let under = |folder: &str| {
            let mut got: Vec<String> = store
                .read(|c| states_under(c, folder))
                .unwrap()
                .into_keys()
                .collect();
            got.sort();
            got
        };
        assert_eq!(under("/a/b/"), ["/a/b/c/y.jpg", "/a/b/x.jpg"]);
        assert_eq!(under("/a/"), {
            let mut all: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
            all.sort();
            all
        });
        assert!(under("/z/").is_empty());
        assert!(under("no slash").is_empty());
    }
}
