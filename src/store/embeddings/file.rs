//! The vector file: a compact copy of the embeddings table beside the database
//! (`LIBRARY.db-vectors`), which [`super::search`] reads in large sequential chunks. A pass over a
//! million faces then reads 0.5 GiB of one file instead of a million SQLite rows of 1 KiB read a
//! 4 KiB page at a time.
//!
//! Each row is a face id and its vector in 8 bits a component (the vector's largest component
//! maps to 127, `graph::quantised`): 524 bytes a face, half the table. The rounding moves a
//! distance by at most [`VectorFile::margin`], so a search widens each reach by it and checks
//! every face found that way again with its stored half floats: the hits are exactly those of the
//! table alone. A full re-cluster reads the rows of the faces it clusters through [`FileRows`],
//! the graph's row source, a chunk at a time.
//!
//! SQLite stays the one source of truth; the file is a cache that rebuilds itself. It holds
//! committed rows only, in face id order. Face ids are never reused (`AUTOINCREMENT`), so a row
//! of the file is either that face's vector or a face deleted since, which a search drops when it
//! looks the face up. Each use first appends the rows committed after the file's last id; the file
//! is rebuilt when it is missing or damaged, when it was made for another database file, when
//! the database's face ids went back (a restored copy), or when a spot-checked row differs from
//! the database. Writers hold an exclusive lock on the file, readers a shared one, so nobody
//! reads a file being written.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::{BLOB_BYTES, SCAN_CHUNK};
use crate::embedding::EMBEDDING_DIM as DIM;
use crate::graph::quantised::{self, QuantisedRows};
use crate::graph::{GraphError, RowSource, Rows};

const MAGIC: &[u8; 8] = b"VISAGEV1";
/// Magic, dimension, the database file's device and inode and birth time, rows, last id, and
/// the largest rounding step of any row.
const HEADER: usize = 8 + 8 * 7;
/// One row: the face id (i64), its rounding step (f32) and its components (i8), little-endian.
const ROW: usize = 8 + 4 + DIM;
/// Threads that read a search's scattered rows at once ([`VectorFile::read_rows`]).
const READERS: usize = 16;

/// The vector file of one database, up to date with what was committed when it was opened, and
/// locked for reading.
pub struct VectorFile {
    file: File,
    rows: u64,
    /// The last face id it holds (0 when empty): faces after it are read from SQLite.
    pub last: i64,
    step: f32,
    next: u64,
    /// The database file it was made for: device, inode, birth time.
    identity: [u64; 3],
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Header {
    dim: u64,
    device: u64,
    inode: u64,
    born: i64,
    rows: u64,
    last: i64,
    /// The largest rounding step of any row.
    step: f32,
}

/// Where the vector file of the database at `db` lives.
pub fn path_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-vectors");
    PathBuf::from(name)
}

impl VectorFile {
    /// The vector file of the database at `db`, brought up to date. `None` when it cannot be
    /// used (a folder that cannot be written, a full disk): the search then reads SQLite alone,
    /// as correct and slower.
    pub fn open(db: &Path) -> Option<VectorFile> {
        match Self::try_open(db) {
            Ok(f) => Some(f),
            Err(e) => {
                log::debug!("vector file of {}: {e}; reading SQLite", db.display());
                None
            }
        }
    }

    fn try_open(db: &Path) -> Result<VectorFile, Box<dyn std::error::Error>> {
        let meta = std::fs::metadata(db)?;
        let born = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i64);
        // What is committed: a connection of its own, outside any transaction of the caller.
        let reader = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(std::time::Duration::from_secs(30))?;
        let tx = reader.unchecked_transaction()?;
        let seq: i64 = tx
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'faces'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path_of(db))?;
        file.lock()?;
        let ours = Header {
            dim: DIM as u64,
            device: meta.dev(),
            inode: meta.ino(),
            born,
            rows: 0,
            last: 0,
            step: 0.0,
        };
        let header = match read_header(&mut file)? {
            Some(h)
                if Header {
                    rows: 0,
                    last: 0,
                    step: 0.0,
                    ..h
                } == ours
                    && h.last <= seq
                    && file.metadata()?.len() >= (HEADER + h.rows as usize * ROW) as u64
                    && spot_check(&tx, &mut file, &h)? =>
            {
                h
            }
            _ => {
                // Rebuilt from nothing: an empty file and its header; `append` writes the rows,
                // then, once they are on disk, the header that counts them.
                file.set_len(0)?;
                write_header(&mut file, &ours)?;
                ours
            }
        };
        let header = append(&tx, &mut file, header)?;
        file.lock_shared()?;
        Ok(VectorFile {
            file,
            rows: header.rows,
            last: header.last,
            step: header.step,
            next: 0,
            identity: [header.device, header.inode, header.born as u64],
        })
    }

    /// The database file it was made for (device, inode, birth time): what a file derived from
    /// this one ([`super::cells`]) checks it was made for.
    pub fn identity(&self) -> [u64; 3] {
        self.identity
    }

    /// A digest of the first `rows` rows as they stand: the first, the last and six between (id
    /// and bytes). A file derived from these rows checks with it that they are still the same.
    pub fn digest(&self, rows: u64) -> std::io::Result<[u8; 32]> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(rows.to_le_bytes());
        if rows > 0 {
            let mut b = vec![0u8; ROW];
            for k in (0..8).map(|s| s * (rows - 1) / 7) {
                self.file
                    .read_exact_at(&mut b, (HEADER + k as usize * ROW) as u64)?;
                h.update(&b);
            }
        }
        Ok(h.finalize().into())
    }

    /// The file's own metadata (its permissions, for a file derived from it).
    pub fn metadata(&self) -> std::io::Result<std::fs::Metadata> {
        self.file.metadata()
    }

    /// Read on from row `row` ([`VectorFile::read_chunk`]).
    pub fn seek(&mut self, row: u64) {
        self.next = row.min(self.rows);
    }

    /// Append these rows (ascending positions in the file, at most [`SCAN_CHUNK`] of them) to
    /// `ids` and `rows`. They are read by [`READERS`] threads at once, each a share of them a run
    /// of neighbouring rows at a time: rows the page cache lacks are scattered over the file
    /// (a cell's faces are those of many photos, indexed at many times), and a disk answers
    /// several reads at once in little more than the time of one (BENCHMARKS.md: 16 at once,
    /// about three times as many rows a second).
    pub fn read_rows(
        &self,
        positions: &[u64],
        ids: &mut Vec<i64>,
        rows: &mut QuantisedRows,
    ) -> std::io::Result<()> {
        if let Some(&last) = positions.iter().max()
            && last >= self.rows
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("row {last} of a file of {} rows", self.rows),
            ));
        }
        let share = positions.len().div_ceil(READERS).max(64);
        let read: Vec<std::io::Result<Vec<u8>>> = std::thread::scope(|scope| {
            let readers: Vec<_> = positions
                .chunks(share)
                .map(|mine| scope.spawn(move || self.read_runs(mine)))
                .collect();
            readers
                .into_iter()
                .map(|r| r.join().expect("a reader of the vector file panicked"))
                .collect()
        });
        rows.values.reserve(positions.len() * DIM);
        for bytes in read {
            for row in bytes?.chunks_exact(ROW) {
                ids.push(i64::from_le_bytes(row[..8].try_into().expect("8 bytes")));
                rows.push_bytes(&row[8..]);
            }
        }
        Ok(())
    }

    /// The bytes of these rows (ascending, in the file), one after another, read a run of
    /// neighbouring rows at a time.
    fn read_runs(&self, positions: &[u64]) -> std::io::Result<Vec<u8>> {
        /// Rows between two wanted ones read through rather than skipped with a second read.
        const GAP: u64 = 4;
        let mut out = Vec::with_capacity(positions.len() * ROW);
        let mut buf = Vec::new();
        let mut k = 0;
        while k < positions.len() {
            let first = positions[k];
            let mut end = k + 1;
            while end < positions.len()
                && positions[end] > positions[end - 1]
                && positions[end] - positions[end - 1] <= GAP
                && positions[end] - first < 64
            {
                end += 1;
            }
            let last = positions[end - 1];
            buf.resize((last - first + 1) as usize * ROW, 0);
            self.file
                .read_exact_at(&mut buf, (HEADER + first as usize * ROW) as u64)?;
            for &p in &positions[k..end] {
                out.extend_from_slice(
                    &buf[(p - first) as usize * ROW..(p - first + 1) as usize * ROW],
                );
            }
            k = end;
        }
        Ok(out)
    }

    /// How far a distance to a row of the file may lie from the distance to the stored vector:
    /// each component is off by at most half a step, so the vector by at most √512 half steps
    /// (with a little more for the float arithmetic).
    pub fn margin(&self) -> f32 {
        quantised::margin(DIM, self.step)
    }

    /// Rows.
    pub fn len(&self) -> u64 {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Read from the first row again.
    pub fn rewind(&mut self) {
        self.next = 0;
    }

    /// Append the next rows to these (ids, and vectors as the file rounds them), at most
    /// [`SCAN_CHUNK`]; none at the end. Each chunk is mapped on its own and unmapped after
    /// (8 MiB), so the process never holds more than a chunk of the file.
    pub fn read_chunk(
        &mut self,
        ids: &mut Vec<i64>,
        rows: &mut QuantisedRows,
    ) -> std::io::Result<()> {
        let n = (self.rows - self.next).min(SCAN_CHUNK as u64) as usize;
        if n == 0 {
            return Ok(());
        }
        // SAFETY: the file is locked shared: no writer of ours changes it while it is mapped,
        // and only visage writes it.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset((HEADER + self.next as usize * ROW) as u64)
                .len(n * ROW)
                .populate()
                .map(&self.file)?
        };
        rows.values.reserve(n * DIM);
        for row in map.chunks_exact(ROW) {
            ids.push(i64::from_le_bytes(row[..8].try_into().expect("8 bytes")));
            rows.push_bytes(&row[8..]);
        }
        self.next += n as u64;
        Ok(())
    }
}

/// The faces a full graph runs over as the graph's row source ([`RowSource`]): their rows read
/// from the vector file a chunk at a time, in the file's order (faces it does not hold come from
/// SQLite after it), and their exact rows, the stored half floats, looked up on demand through
/// read-only connections of its own (one per thread at a time). Memory: the faces' ids (12 bytes
/// a face) and a chunk.
pub struct FileRows {
    db: PathBuf,
    file: Mutex<VectorFile>,
    /// The graph's faces, in its order.
    ids: Vec<i64>,
    /// Graph indices by ascending face id.
    by_id: Vec<u32>,
    margin: f32,
    pool: Mutex<Vec<Connection>>,
}

impl FileRows {
    /// The rows of `ids` (in the graph's order) from the vector file of the database at `db`;
    /// `None` when the file cannot be used (the caller then reads the rows into memory).
    pub fn open(db: &Path, ids: Vec<i64>) -> Option<FileRows> {
        let file = VectorFile::open(db)?;
        let mut by_id: Vec<u32> = (0..ids.len() as u32).collect();
        by_id.sort_unstable_by_key(|&k| ids[k as usize]);
        Some(FileRows {
            db: db.to_path_buf(),
            margin: file.margin(),
            file: Mutex::new(file),
            ids,
            by_id,
            pool: Mutex::new(Vec::new()),
        })
    }

    /// The faces, in the graph's order.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    fn connection(&self) -> rusqlite::Result<Connection> {
        if let Some(c) = self.pool.lock().expect("pool").pop() {
            return Ok(c);
        }
        let c = Connection::open_with_flags(
            &self.db,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(std::time::Duration::from_secs(30))?;
        Ok(c)
    }

    /// The stored half floats of these faces (by graph index), as f32 rows in that order.
    fn stored(&self, indices: &[u32], out: &mut [f32]) -> rusqlite::Result<()> {
        let conn = self.connection()?;
        {
            let mut stmt = conn.prepare_cached("SELECT vector FROM embeddings WHERE face = ?1")?;
            // In id order: neighbouring faces share pages.
            let mut order: Vec<usize> = (0..indices.len()).collect();
            order.sort_unstable_by_key(|&p| self.ids[indices[p] as usize]);
            for p in order {
                let id = self.ids[indices[p] as usize];
                let blob: Vec<u8> = stmt.query_row([id], |r| r.get(0))?;
                let v = super::blob_halves(&blob);
                if v.len() != DIM {
                    return Err(rusqlite::Error::InvalidColumnType(
                        0,
                        format!("the embedding of face {id}"),
                        rusqlite::types::Type::Blob,
                    ));
                }
                use half::slice::HalfFloatSliceExt;
                v.convert_to_f32_slice(&mut out[p * DIM..(p + 1) * DIM]);
            }
        }
        self.pool.lock().expect("pool").push(conn);
        Ok(())
    }
}

fn source_error(e: impl std::fmt::Display) -> GraphError {
    GraphError::Source(e.to_string())
}

impl RowSource for FileRows {
    fn dim(&self) -> usize {
        DIM
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn margin(&self) -> f32 {
        self.margin
    }

    fn scan(&self, each: &mut crate::graph::source::Chunks) -> Result<(), GraphError> {
        let mut file = self.file.lock().expect("vector file");
        file.rewind();
        let (mut ids, mut rows) = (Vec::new(), QuantisedRows::new(DIM));
        let (mut picked, mut out) = (Vec::new(), QuantisedRows::new(DIM));
        // Faces the file does not hold: read from SQLite after it.
        let mut missing: Vec<u32> = Vec::new();
        let mut next = 0; // in `by_id`
        loop {
            ids.clear();
            rows.clear();
            file.read_chunk(&mut ids, &mut rows).map_err(source_error)?;
            if ids.is_empty() {
                break;
            }
            picked.clear();
            out.clear();
            for (r, &id) in ids.iter().enumerate() {
                while next < self.by_id.len() && self.ids[self.by_id[next] as usize] < id {
                    missing.push(self.by_id[next]);
                    next += 1;
                }
                if next < self.by_id.len() && self.ids[self.by_id[next] as usize] == id {
                    picked.push(self.by_id[next]);
                    out.push(rows.steps[r], &rows.values[r * DIM..(r + 1) * DIM]);
                    next += 1;
                }
            }
            if !picked.is_empty() {
                each(&picked, out.rows())?;
            }
        }
        drop(file);
        missing.extend_from_slice(&self.by_id[next..]);
        let mut exact = Vec::new();
        for chunk in missing.chunks(SCAN_CHUNK) {
            exact.resize(chunk.len() * DIM, 0.0);
            self.stored(chunk, &mut exact).map_err(source_error)?;
            each(chunk, Rows::F32(&exact))?;
        }
        Ok(())
    }

    fn exact(&self, indices: &[u32], out: &mut Vec<f32>) -> Result<(), GraphError> {
        out.resize(indices.len() * DIM, 0.0);
        self.stored(indices, out).map_err(source_error)
    }
}

/// Every row of a vector file as the graph's row source ([`RowSource`]), numbered by position:
/// what the file's own partition ([`super::cells`]) is built from. It has no exact rows (a
/// partition does not need them).
pub struct WholeFile<'a>(pub Mutex<&'a mut VectorFile>);

impl RowSource for WholeFile<'_> {
    fn dim(&self) -> usize {
        DIM
    }

    fn len(&self) -> usize {
        self.0.lock().expect("vector file").rows as usize
    }

    fn margin(&self) -> f32 {
        self.0.lock().expect("vector file").margin()
    }

    fn scan(&self, each: &mut crate::graph::source::Chunks) -> Result<(), GraphError> {
        let mut file = self.0.lock().expect("vector file");
        file.rewind();
        let (mut ids, mut rows) = (Vec::new(), QuantisedRows::new(DIM));
        let mut indices: Vec<u32> = Vec::new();
        loop {
            let start = file.next as u32;
            ids.clear();
            rows.clear();
            file.read_chunk(&mut ids, &mut rows).map_err(source_error)?;
            if ids.is_empty() {
                return Ok(());
            }
            indices.clear();
            indices.extend(start..start + ids.len() as u32);
            each(&indices, rows.rows())?;
        }
    }

    fn exact(&self, _: &[u32], _: &mut Vec<f32>) -> Result<(), GraphError> {
        Err(GraphError::Source(
            "the vector file's partition reads no exact rows".into(),
        ))
    }
}

/// A stored vector (half floats, as a BLOB) as a row of the file without its id: the rounding
/// step, then each component in steps.
fn quantise(blob: &[u8]) -> Vec<u8> {
    let v = super::from_blob(blob);
    let mut q = vec![0i8; DIM];
    let step = quantised::quantise(&v, &mut q);
    let mut out = Vec::with_capacity(4 + DIM);
    out.extend_from_slice(&step.to_le_bytes());
    out.extend(q.iter().map(|&x| x as u8));
    out
}

fn read_header(file: &mut File) -> std::io::Result<Option<Header>> {
    let mut b = [0u8; HEADER];
    file.seek(SeekFrom::Start(0))?;
    match file.read_exact(&mut b) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    if &b[..8] != MAGIC {
        return Ok(None);
    }
    let word = |k: usize| u64::from_le_bytes(b[8 + 8 * k..16 + 8 * k].try_into().expect("8"));
    Ok(Some(Header {
        dim: word(0),
        device: word(1),
        inode: word(2),
        born: word(3) as i64,
        rows: word(4),
        last: word(5) as i64,
        step: f32::from_bits(word(6) as u32),
    }))
}

fn write_header(file: &mut File, h: &Header) -> std::io::Result<()> {
    let mut b = Vec::with_capacity(HEADER);
    b.extend_from_slice(MAGIC);
    for w in [
        h.dim,
        h.device,
        h.inode,
        h.born as u64,
        h.rows,
        h.last as u64,
        h.step.to_bits() as u64,
    ] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&b)
}

/// Row `k` of the file: its id and vector bytes.
fn row_at(file: &mut File, k: u64) -> std::io::Result<(i64, Vec<u8>)> {
    let mut b = vec![0u8; ROW];
    file.seek(SeekFrom::Start((HEADER + k as usize * ROW) as u64))?;
    file.read_exact(&mut b)?;
    let id = i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    Ok((id, b.split_off(8)))
}

/// Whether a few rows (the first, the last and six between) are what the database holds for
/// those faces (a face deleted since proves nothing either way), and in id order.
fn spot_check(
    conn: &Connection,
    file: &mut File,
    h: &Header,
) -> Result<bool, Box<dyn std::error::Error>> {
    if h.rows == 0 {
        return Ok(h.last == 0);
    }
    let mut stmt = conn.prepare_cached("SELECT vector FROM embeddings WHERE face = ?1")?;
    let mut previous = i64::MIN;
    for k in (0..8).map(|s| s * (h.rows - 1) / 7) {
        let (id, bytes) = row_at(file, k)?;
        if id < previous || (k == h.rows - 1 && id != h.last) {
            return Ok(false);
        }
        previous = id;
        let stored: Option<Vec<u8>> = stmt.query_row([id], |r| r.get(0)).optional()?;
        if stored.is_some_and(|s| quantise(&s) != bytes) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Append the committed rows after `h.last`; the new header.
fn append(
    conn: &Connection,
    file: &mut File,
    h: Header,
) -> Result<Header, Box<dyn std::error::Error>> {
    let mut stmt =
        conn.prepare("SELECT face, vector FROM embeddings WHERE face > ?1 ORDER BY face")?;
    let mut rows = stmt.query([h.last])?;
    file.seek(SeekFrom::Start((HEADER + h.rows as usize * ROW) as u64))?;
    let mut out = BufWriter::with_capacity(1 << 20, &mut *file);
    let mut next = h;
    while let Some(row) = rows.next()? {
        let blob = row.get_ref(1)?.as_blob()?;
        if blob.len() != BLOB_BYTES {
            continue;
        }
        let id: i64 = row.get(0)?;
        let quantised = quantise(blob);
        out.write_all(&id.to_le_bytes())?;
        out.write_all(&quantised)?;
        let step = f32::from_le_bytes(quantised[..4].try_into().expect("4 bytes"));
        next.step = next.step.max(step);
        next.rows += 1;
        next.last = id;
    }
    out.flush()?;
    drop(out);
    if next != h {
        // The rows reach the disk before the header that counts them.
        file.sync_data()?;
        write_header(file, &next)?;
        file.sync_data()?;
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::range::RangeQuery;
    use crate::store::photos;
    use crate::store::{Store, StoreError};

    /// A unit vector of its own for each seed.
    fn vector(seed: u64) -> Vec<f32> {
        let v: Vec<f32> = (0..DIM)
            .map(|i| ((i as f32 + 1.0) * (seed as f32 * 0.618 + 0.3)).sin())
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect()
    }

    /// One photo with one face for each seed, in one transaction of `tx`.
    fn add(tx: &rusqlite::Transaction, seeds: std::ops::Range<u64>) -> Result<(), StoreError> {
        for s in seeds {
            photos::store_vector(tx, &format!("/v/{s}.jpg"), &vector(s))?;
        }
        Ok(())
    }

    /// Every row the file holds, as it reads back.
    fn rows(db: &Path) -> Vec<(i64, Vec<f32>)> {
        let mut f = VectorFile::open(db).expect("a vector file");
        let (mut ids, mut values) = (Vec::new(), QuantisedRows::new(DIM));
        loop {
            let before = ids.len();
            f.read_chunk(&mut ids, &mut values).unwrap();
            if ids.len() == before {
                break;
            }
        }
        ids.iter()
            .enumerate()
            .map(|(k, &id)| {
                let mut v = vec![0f32; DIM];
                values.rows().copy_to(DIM, k, &mut v);
                (id, v)
            })
            .collect()
    }

    /// A stored vector as the file reads it back.
    fn dequantise(blob: &[u8], out: &mut Vec<f32>) {
        let mut q = QuantisedRows::new(DIM);
        q.push_bytes(&quantise(blob));
        out.resize(DIM, 0.0);
        q.rows().copy_to(DIM, 0, out);
    }

    /// What the database holds, as the file should read it back: (face, vector) in id order.
    fn stored(store: &Store) -> Vec<(i64, Vec<f32>)> {
        store
            .read(|c| {
                c.prepare("SELECT face, vector FROM embeddings ORDER BY face")?
                    .query_map([], |r| {
                        let mut v = Vec::new();
                        dequantise(&r.get::<_, Vec<u8>>(1)?, &mut v);
                        Ok((r.get(0)?, v))
                    })?
                    .collect()
            })
            .unwrap()
    }

    /// Each stored vector is within the file's margin of what the file reads back.
    fn within_margin(db: &Path, store: &Store) {
        let margin = VectorFile::open(db).unwrap().margin();
        assert!(margin > 0.0 && margin < 0.05, "{margin}");
        let exact: Vec<(i64, Vec<f32>)> = store
            .read(|c| {
                c.prepare("SELECT face, vector FROM embeddings ORDER BY face")?
                    .query_map([], |r| {
                        Ok((r.get(0)?, super::super::from_blob(&r.get::<_, Vec<u8>>(1)?)))
                    })?
                    .collect()
            })
            .unwrap();
        let file = rows(db);
        for (id, v) in exact {
            let (_, r) = file
                .iter()
                .find(|(f, _)| *f == id)
                .expect("every stored face");
            let d = crate::embedding::distance(&v, r);
            assert!(d < margin, "{id}: {d} >= {margin}");
        }
    }

    /// How far [`near`] looks: about as far as two unrelated vectors lie, so that about half of
    /// them are near.
    const REACH: f32 = std::f32::consts::SQRT_2;

    /// The faces within [`REACH`] of seed 0's vector, as `search` finds them through `conn`.
    fn near(conn: &Connection) -> Vec<i64> {
        let mut q = RangeQuery::new(&vector(0), DIM, REACH);
        let mut out = Vec::new();
        super::super::search(conn, &mut q, &[], "1", |f| out.push(f.id)).unwrap();
        out
    }

    /// The same by brute force over the database's own vectors.
    fn near_by_hand(store: &Store) -> Vec<i64> {
        let q = vector(0);
        store
            .read(|c| {
                c.prepare("SELECT face, vector FROM embeddings ORDER BY face")?
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            super::super::from_blob(&r.get::<_, Vec<u8>>(1)?),
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .unwrap()
            .into_iter()
            .filter(|(_, v)| crate::embedding::distance(v, &q) < REACH)
            .map(|(id, _)| id)
            .collect()
    }

    #[test]
    fn the_file_follows_the_database_and_rebuilds_when_it_cannot_be_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("library.db");
        let mut store = Store::open_or_create(&db).unwrap();
        store.write(|tx| add(tx, 0..40)).unwrap();
        // Built from nothing, then appended to.
        assert_eq!(rows(&db), stored(&store));
        store.write(|tx| add(tx, 40..70)).unwrap();
        assert_eq!(rows(&db), stored(&store));
        within_margin(&db, &store);
        let found = store.read(|c| Ok(near(c))).unwrap();
        assert!(found.len() > 3 && found.len() < 70, "{}", found.len());
        assert_eq!(found, near_by_hand(&store));

        // Faces deleted since stay in the file, and the search drops them.
        store
            .write(|tx| -> Result<(), StoreError> {
                tx.execute(
                    "DELETE FROM photos WHERE path IN ('/v/0.jpg', '/v/5.jpg')",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(rows(&db).len(), 70);
        let conn = Connection::open(&db).unwrap();
        assert_eq!(near(&conn), near_by_hand(&store));

        // Uncommitted faces of the caller's own transaction are found too.
        store
            .write(|tx| -> Result<(), StoreError> {
                add(tx, 70..75)?;
                add(tx, 0..1)?; // seed 0 again, at a new id
                let found = near(tx);
                let last: i64 =
                    tx.query_row("SELECT max(face) FROM embeddings", [], |r| r.get(0))?;
                assert!(found.contains(&last), "{found:?}");
                Ok(())
            })
            .unwrap();
        let file = rows(&db);
        assert_eq!(file.len(), 76, "70, then 6 more; the 2 deleted stay");
        assert!(stored(&store).iter().all(|r| file.contains(r)));

        // A vector that differs from the database's: rebuilt.
        let last = stored(&store).last().unwrap().0;
        store
            .write(|tx| -> Result<(), StoreError> {
                tx.execute(
                    "UPDATE embeddings SET vector = ?2 WHERE face = ?1",
                    rusqlite::params![last, super::super::to_blob(&vector(999))],
                )?;
                Ok(())
            })
            .unwrap();
        assert_eq!(rows(&db), stored(&store));

        // Another database at the same path: rebuilt.
        drop(store);
        drop(conn);
        for end in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{end}", db.display()));
        }
        let mut store = Store::open_or_create(&db).unwrap();
        store.write(|tx| add(tx, 500..520)).unwrap();
        assert_eq!(rows(&db), stored(&store));
        assert_eq!(rows(&db).len(), 20);
    }

    #[test]
    fn file_rows_stream_the_faces_asked_for_and_their_exact_rows() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("library.db");
        let mut store = Store::open_or_create(&db).unwrap();
        store.write(|tx| add(tx, 0..60)).unwrap();
        let all: Vec<i64> = stored(&store).iter().map(|r| r.0).collect();
        // The graph's faces in an order of their own, some left out, and three faces committed
        // after the file was opened (so it does not hold them).
        let mut wanted: Vec<i64> = all.iter().rev().copied().filter(|id| id % 4 != 0).collect();
        let later = all.last().unwrap() + 1;
        wanted.extend([later + 1, later, later + 2]);
        let source = FileRows::open(&db, wanted.clone()).unwrap();
        store.write(|tx| add(tx, 60..63)).unwrap();
        assert_eq!(source.len(), wanted.len());
        let exact: Vec<(i64, Vec<f32>)> = store
            .read(|c| {
                c.prepare("SELECT face, vector FROM embeddings ORDER BY face")?
                    .query_map([], |r| {
                        Ok((r.get(0)?, super::super::from_blob(&r.get::<_, Vec<u8>>(1)?)))
                    })?
                    .collect()
            })
            .unwrap();
        let exact_of = |id: i64| &exact.iter().find(|e| e.0 == id).unwrap().1;
        let mut seen = vec![0; wanted.len()];
        let mut row = vec![0f32; DIM];
        source
            .scan(&mut |indices, rows| {
                for (r, &k) in indices.iter().enumerate() {
                    seen[k as usize] += 1;
                    rows.copy_to(DIM, r, &mut row);
                    let want = exact_of(wanted[k as usize]);
                    let d: f32 = row
                        .iter()
                        .zip(want)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f32>()
                        .sqrt();
                    assert!(d <= source.margin(), "{}: {d}", wanted[k as usize]);
                }
                Ok(())
            })
            .unwrap();
        assert!(seen.iter().all(|&s| s == 1), "{seen:?}");
        // Exact rows: the stored half floats, in the order asked.
        let mut out = Vec::new();
        source
            .exact(&[3, 0, wanted.len() as u32 - 1], &mut out)
            .unwrap();
        assert_eq!(&out[..DIM], &exact_of(wanted[3])[..]);
        assert_eq!(&out[DIM..2 * DIM], &exact_of(wanted[0])[..]);
        assert_eq!(&out[2 * DIM..], &exact_of(later + 2)[..]);
    }
}
