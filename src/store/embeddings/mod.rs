//! Face embeddings, in a table of their own: one row per face (`embeddings.face` is the face's
//! id), the 512 floats stored as little-endian IEEE half floats (1 KiB a face).
//!
//! Half floats keep 11 significant bits (each component within 2^-11 of its value, a few 1e-5
//! for a FaceNet unit vector's components), which moves a distance between faces by about 1e-4 at
//! most (BENCHMARKS.md measures it on real faces), far below anything the cluster and match
//! distances can tell apart; in exchange the library is half the size and a scan over
//! every face reads half as much. Faces are read here in chunks ([`scan`]) so that a million of
//! them never need to be in memory at once. This module stores and loads; it decides nothing.

pub mod cells;
pub mod file;

use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use half::f16;
use half::slice::HalfFloatSliceExt;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::SqlResult;
use crate::embedding::EMBEDDING_DIM;

/// Bytes of one stored embedding.
pub const BLOB_BYTES: usize = EMBEDDING_DIM * 2;

/// An embedding as its stored BLOB: half floats, little-endian.
pub fn to_blob(v: &[f32]) -> Vec<u8> {
    let mut half = vec![f16::ZERO; v.len()];
    half.convert_from_f32_slice(v);
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice::<f16, u8>(&half).to_vec()
    } else {
        half.iter().flat_map(|h| h.to_le_bytes()).collect()
    }
}

/// A stored BLOB as half floats (empty if it is not a whole number of them).
pub fn blob_halves(b: &[u8]) -> Vec<f16> {
    if !b.len().is_multiple_of(2) {
        return Vec::new();
    }
    b.chunks_exact(2)
        .map(|c| f16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// Append a stored BLOB's half floats to `halves` (a copy of its bytes on a little-endian
/// machine).
fn push_blob(halves: &mut Vec<f16>, blob: &[u8]) {
    let start = halves.len();
    halves.resize(start + blob.len() / 2, f16::ZERO);
    let out = &mut halves[start..];
    let bytes = out.len() * 2;
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice_mut::<f16, u8>(out).copy_from_slice(&blob[..bytes]);
    } else {
        for (h, c) in out.iter_mut().zip(blob.chunks_exact(2)) {
            *h = f16::from_le_bytes([c[0], c[1]]);
        }
    }
}

/// A stored BLOB back as floats.
pub fn from_blob(b: &[u8]) -> Vec<f32> {
    let half = blob_halves(b);
    let mut out = vec![0f32; half.len()];
    half.convert_to_f32_slice(&mut out);
    out
}

/// What a stored embedding reads back as: the vector rounded to half floats.
pub fn rounded(v: &[f32]) -> Vec<f32> {
    from_blob(&to_blob(v))
}

/// Store the embedding of face `face` (a face has one; storing again replaces it).
pub fn insert(tx: &Transaction, face: i64, v: &[f32]) -> SqlResult<()> {
    tx.prepare_cached("INSERT OR REPLACE INTO embeddings (face, vector) VALUES (?1, ?2)")?
        .execute(params![face, to_blob(v)])?;
    Ok(())
}

/// The embedding of one face.
pub fn get(conn: &Connection, face: i64) -> SqlResult<Option<Vec<f32>>> {
    conn.prepare_cached("SELECT vector FROM embeddings WHERE face = ?1")?
        .query_row([face], |r| r.get::<_, Vec<u8>>(0))
        .optional()
        .map(|b| b.map(|b| from_blob(&b)))
}

/// The embeddings of these faces, in the same order (a face without one gets an empty vector).
pub fn get_many(conn: &Connection, faces: &[i64]) -> SqlResult<Vec<Vec<f32>>> {
    let mut stmt = conn.prepare_cached("SELECT vector FROM embeddings WHERE face = ?1")?;
    faces
        .iter()
        .map(|&f| {
            Ok(stmt
                .query_row([f], |r| r.get::<_, Vec<u8>>(0))
                .optional()?
                .map(|b| from_blob(&b))
                .unwrap_or_default())
        })
        .collect()
}

/// A chunk of faces and their embeddings, as [`scan`] hands them over: `ids[k]`'s vector is
/// `rows[k * dim..(k + 1) * dim]` (half floats).
pub struct Chunk<'a> {
    pub ids: &'a [i64],
    pub rows: &'a [f16],
    pub dim: usize,
}

/// How [`Found::value`] holds an SQL NULL.
pub const NULL: i64 = i64::MIN;

/// Faces per chunk of a scan: 16 MiB of half floats.
pub const SCAN_CHUNK: usize = 16 * 1024;

/// Every face that `face_filter` (an SQL condition on `faces f`, e.g. `f.cluster IS NULL`)
/// selects, with its embedding, in face id order, handed to `each` a chunk at a time. Memory
/// stays at one chunk whatever the library's size. To find the faces near a few vectors, see
/// [`search`]: it reads only the vectors.
pub fn scan(
    conn: &Connection,
    face_filter: &str,
    mut each: impl FnMut(Chunk) -> SqlResult<()>,
) -> SqlResult<()> {
    let mut stmt = conn.prepare(&format!(
        "SELECT f.id, e.vector FROM faces f JOIN embeddings e ON e.face = f.id
         WHERE {face_filter} ORDER BY f.id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut ids: Vec<i64> = Vec::with_capacity(SCAN_CHUNK);
    let mut halves: Vec<f16> = Vec::with_capacity(SCAN_CHUNK * EMBEDDING_DIM);
    let mut flush = |ids: &mut Vec<i64>, halves: &mut Vec<f16>| {
        let out = each(Chunk {
            ids,
            rows: halves,
            dim: EMBEDDING_DIM,
        });
        ids.clear();
        halves.clear();
        out
    };
    while let Some(row) = rows.next()? {
        let blob = row.get_ref(1)?.as_blob()?;
        if blob.len() != BLOB_BYTES {
            continue; // not an embedding of this network (cannot happen through `insert`)
        }
        ids.push(row.get(0)?);
        push_blob(&mut halves, blob);
        if ids.len() == SCAN_CHUNK {
            flush(&mut ids, &mut halves)?;
        }
    }
    if !ids.is_empty() {
        flush(&mut ids, &mut halves)?;
    }
    Ok(())
}

/// A face within reach of a query, as [`search`] finds it: its vector (half floats), the squared
/// distance, and the extra columns asked for ([`NULL`] where SQL had NULL).
pub struct Found<'a> {
    pub query: u32,
    pub id: i64,
    pub d2: f32,
    pub row: &'a [f16],
    values: &'a [i64],
}

impl Found<'_> {
    /// Extra column `c`, `None` for SQL NULL.
    pub fn value(&self, c: usize) -> Option<i64> {
        Some(self.values[c]).filter(|v| *v != NULL)
    }
}

/// Every face that `face_filter` selects (as for [`scan`]) within reach of `queries`, with the
/// integer `columns` asked for, handed to `each` in face id order (then query order).
///
/// The vectors are read on their own, and only the faces within reach are looked up in `faces`
/// (filter and columns). They come from the vector file ([`file`]: 8-bit vectors, half the
/// bytes) up to its last face, then from SQLite. A face the file puts within reach (each reach
/// widened by the file's rounding) is checked again with its stored half floats, so the hits and
/// their distances are exactly those of a scan of the table alone. On a library with a cell file
/// ([`cells`]), only the rows of the cells the queries probe are read (then those added since):
/// every hit is still exact, and about 99% of them are found, as the full graph finds edges.
pub fn search(
    conn: &Connection,
    queries: &mut crate::graph::range::RangeQuery,
    columns: &[&str],
    face_filter: &str,
    mut each: impl FnMut(&Found),
) -> SqlResult<()> {
    use crate::graph::Rows;
    use crate::graph::range::Hit;
    use std::sync::mpsc;
    let extra: String = if columns.is_empty() {
        "1".to_string()
    } else {
        columns.join(", ")
    };
    let mut state = conn.prepare(&format!(
        "SELECT {extra} FROM faces f WHERE f.id = ?1 AND ({face_filter})"
    ))?;
    let mut stored = conn.prepare_cached("SELECT vector FROM embeddings WHERE face = ?1")?;
    let width = columns.len();
    let mut values: Vec<i64> = vec![NULL; width];
    // The vector file holds the committed rows up to its last id; SQLite gives the rest (and
    // everything when there is no file: an in-memory database, a folder that cannot be written).
    let db = conn.path().filter(|p| !p.is_empty()).map(Path::new);
    let mut vector_file = db.and_then(file::VectorFile::open);
    // On a large library, the rows of the cells the queries probe ([`cells`]), then the rows the
    // cells do not cover yet; else every row.
    let mut probed: Option<(Vec<u64>, u64)> = None;
    if let (Some(db), Some(f)) = (db, vector_file.as_mut())
        && let Some(c) = cells::Cells::open(db, f, false)
    {
        let (rows, probes) = c.rows_for(queries, f.margin());
        log::debug!(
            "search: {} queries probe {probes} of {} cells, {} of {} rows, and the last {}",
            queries.len(),
            c.cells(),
            rows.len(),
            c.len(),
            f.len() - c.len()
        );
        probed = Some((rows, c.len()));
    }
    let after = vector_file.as_ref().map_or(i64::MIN, |f| f.last);
    let mut wide = queries.widened(vector_file.as_ref().map_or(0.0, |f| f.margin()));
    let mut exact = queries.clone();
    let mut vectors =
        conn.prepare("SELECT face, vector FROM embeddings WHERE face > ?1 ORDER BY face")?;
    let mut rows = vectors.query([after])?;
    /// Rows to compute: from the file (8-bit, dequantised) or from SQLite (half floats).
    enum Piece {
        Approximate(Vec<i64>, crate::graph::quantised::QuantisedRows),
        Exact(Vec<i64>, Vec<f16>),
    }
    // Reading and the distances overlap: this thread reads the next chunk while a second one
    // computes the last chunk's hits; two chunks in flight bound the memory.
    let (to_work, work) = mpsc::sync_channel::<Piece>(1);
    let (to_done, done) = mpsc::sync_channel::<(Piece, Vec<Hit>)>(1);
    // Where the time goes (debug log): reading the probed rows, and looking faces up in SQLite.
    let started = std::time::Instant::now();
    let (read, looked) = (Cell::new(Duration::ZERO), Cell::new(Duration::ZERO));
    let rechecked = Cell::new(0usize);
    let result = std::thread::scope(|scope| -> SqlResult<()> {
        scope.spawn(move || {
            for piece in work {
                let hits = match &piece {
                    Piece::Approximate(_, rows) => wide.within(rows.rows()),
                    Piece::Exact(_, halves) => exact.within(Rows::F16(halves)),
                };
                if to_done.send((piece, hits)).is_err() {
                    break;
                }
            }
        });
        // The faces within reach among exact rows: filter, columns, and `each`.
        let mut report_exact = |ids: &[i64], halves: &[f16], hits: &[Hit]| -> SqlResult<()> {
            let mut k = 0;
            while k < hits.len() {
                // The hits of one face are next to each other (by row, then query).
                let row = hits[k].row as usize;
                let end = k + hits[k..]
                    .iter()
                    .take_while(|h| h.row as usize == row)
                    .count();
                let id = ids[row];
                let t = std::time::Instant::now();
                let passed = state
                    .query_row([id], |r| {
                        for (c, v) in values.iter_mut().enumerate() {
                            *v = r.get::<_, Option<i64>>(c)?.unwrap_or(NULL);
                        }
                        Ok(())
                    })
                    .optional()?
                    .is_some();
                looked.set(looked.get() + t.elapsed());
                if passed {
                    for h in &hits[k..end] {
                        each(&Found {
                            query: h.query,
                            id,
                            d2: h.d2,
                            row: &halves[row * EMBEDDING_DIM..(row + 1) * EMBEDDING_DIM],
                            values: &values[..width],
                        });
                    }
                }
                k = end;
            }
            Ok(())
        };
        // A chunk of the file's rows, once computed, is handed back to read the next one into:
        // fresh buffers each time cost more in page faults than the distances.
        type Buffers = (Vec<i64>, crate::graph::quantised::QuantisedRows);
        let mut report = |(piece, hits): (Piece, Vec<Hit>)| -> SqlResult<Option<Buffers>> {
            match piece {
                Piece::Exact(ids, halves) => report_exact(&ids, &halves, &hits).map(|()| None),
                Piece::Approximate(mut ids, mut rows) => {
                    // The faces the file puts within reach, again with their stored vectors (a
                    // face deleted since has none).
                    let (mut near, mut halves) = (Vec::new(), Vec::new());
                    for h in &hits {
                        let id = ids[h.row as usize];
                        if near.last() == Some(&id) {
                            continue;
                        }
                        let t = std::time::Instant::now();
                        let blob: Option<Vec<u8>> =
                            stored.query_row([id], |r| r.get(0)).optional()?;
                        looked.set(looked.get() + t.elapsed());
                        rechecked.set(rechecked.get() + 1);
                        if let Some(b) = blob.filter(|b| b.len() == BLOB_BYTES) {
                            near.push(id);
                            push_blob(&mut halves, &b);
                        }
                    }
                    let hits = queries.within(Rows::F16(&halves));
                    report_exact(&near, &halves, &hits)?;
                    ids.clear();
                    rows.clear();
                    Ok(Some((ids, rows)))
                }
            }
        };
        let result = (|| -> SqlResult<()> {
            let mut in_flight = false;
            // Two buffers take turns: one computed while the other is read into.
            let mut free: Vec<Buffers> = Vec::new();
            let mut send = |piece: Piece, in_flight: &mut bool, free: &mut Vec<Buffers>| {
                if *in_flight {
                    free.extend(report(done.recv().expect("the distance thread stopped"))?);
                }
                to_work.send(piece).expect("the distance thread stopped");
                *in_flight = true;
                SqlResult::Ok(())
            };
            let fresh = |free: &mut Vec<Buffers>| {
                free.pop().unwrap_or_else(|| {
                    (
                        Vec::new(),
                        crate::graph::quantised::QuantisedRows::new(EMBEDDING_DIM),
                    )
                })
            };
            let read_error = |e: std::io::Error| {
                rusqlite::Error::ToSqlConversionFailure(
                    format!("reading the vector file: {e}").into(),
                )
            };
            if let Some(f) = vector_file.as_mut() {
                if let Some((rows, covered)) = &probed {
                    for part in rows.chunks(SCAN_CHUNK) {
                        let (mut ids, mut approx) = fresh(&mut free);
                        let t = std::time::Instant::now();
                        f.read_rows(part, &mut ids, &mut approx)
                            .map_err(read_error)?;
                        read.set(read.get() + t.elapsed());
                        send(Piece::Approximate(ids, approx), &mut in_flight, &mut free)?;
                    }
                    f.seek(*covered);
                }
                loop {
                    let (mut ids, mut approx) = fresh(&mut free);
                    f.read_chunk(&mut ids, &mut approx).map_err(read_error)?;
                    if ids.is_empty() {
                        break;
                    }
                    send(Piece::Approximate(ids, approx), &mut in_flight, &mut free)?;
                }
            }
            let mut ids: Vec<i64> = Vec::new();
            let mut halves: Vec<f16> = Vec::new();
            while let Some(row) = rows.next()? {
                let blob = row.get_ref(1)?.as_blob()?;
                if blob.len() != BLOB_BYTES {
                    continue;
                }
                ids.push(row.get(0)?);
                push_blob(&mut halves, blob);
                if ids.len() == SCAN_CHUNK {
                    let piece = Piece::Exact(std::mem::take(&mut ids), std::mem::take(&mut halves));
                    send(piece, &mut in_flight, &mut free)?;
                }
            }
            if !ids.is_empty() {
                send(Piece::Exact(ids, halves), &mut in_flight, &mut free)?;
            }
            if in_flight {
                report(done.recv().expect("the distance thread stopped"))?;
            }
            Ok(())
        })();
        // On an error too: the distance thread ends once nothing more comes and what it was
        // handing back is taken.
        drop(to_work);
        for _ in done.iter() {}
        result
    });
    log::debug!(
        "search: {:.2} s, of which {:.2} s reading probed rows, {:.2} s looking up faces \
         ({} rechecked)",
        started.elapsed().as_secs_f64(),
        read.get().as_secs_f64(),
        looked.get().as_secs_f64(),
        rechecked.get()
    );
    result
}

/// Migration 3: copy every face's f32 embedding out of `faces.embedding` into this table as
/// half floats.
pub fn migrate_from_faces(tx: &Transaction) -> SqlResult<()> {
    let mut read = tx.prepare("SELECT id, embedding FROM faces")?;
    let mut write = tx.prepare("INSERT INTO embeddings (face, vector) VALUES (?1, ?2)")?;
    let mut rows = read.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let floats = super::blob_embedding(row.get_ref(1)?.as_blob()?);
        write.execute(params![id, to_blob(&floats)])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_round_trip_closely() {
        let v: Vec<f32> = (0..EMBEDDING_DIM)
            .map(|i| (i as f32 * 0.37).sin() * 0.09)
            .collect();
        let blob = to_blob(&v);
        assert_eq!(blob.len(), BLOB_BYTES);
        let back = from_blob(&blob);
        for (a, b) in v.iter().zip(&back) {
            assert!((a - b).abs() <= a.abs() / 2048.0 + 1e-7, "{a} {b}");
        }
        assert_eq!(rounded(&back), back, "rounding twice changes nothing");
    }
}
