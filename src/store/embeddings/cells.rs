//! The cell file: an inverted-file partition of the vector file ([`super::file`]) beside the
//! database (`LIBRARY.db-cells`), so that a search around a few faces reads the rows of a few
//! cells instead of every row.
//!
//! k-means centres (as the full graph's IVF partition finds them, [`crate::graph::ivf`]) and, for
//! each row of the vector file, its home cell (the nearest centre): 2 bytes a face, and the
//! centres (2 KiB each, about √(2 n) of them). A query probes the cells that may hold a face
//! within its reach as a face of the full graph does ([`ivf::probe_by`]: the home, then the cells
//! within half the bound that guarantees every neighbour, [`PROBES`] at most), and only the rows
//! at home there are read and measured. So an incremental run finds a face's neighbours as a full
//! run's graph does, at a cost that grows with the cells' size (√n), not with n. Every hit is
//! still measured again with its stored half floats: the index decides which rows are read,
//! never what a hit is.
//!
//! Like the vector file it is a cache: written whole (a temporary file renamed over it), made
//! again when it is missing, made for another database file, or when the rows it was made from
//! are no longer those of the vector file (a digest of eight of them). Rows the vector file
//! gained since are searched directly, one pass over them; once they are [`EXTEND`] rows, they
//! are given their homes (the nearest centre) and the file is written again. Clustering runs make
//! and extend it (a full run at its end, an incremental run at its start); other searches only
//! read it. A library of fewer than [`MIN_ROWS`] faces has none: a pass over every row is as
//! quick there, and exact.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::SCAN_CHUNK;
use super::file::{VectorFile, WholeFile};
use crate::embedding::EMBEDDING_DIM as DIM;
use crate::graph::ivf::{self, IvfParams, IvfStats, Partition};
use crate::graph::range::RangeQuery;
use crate::graph::rows::squared_norms;
use crate::graph::{Control, GraphError};

const MAGIC: &[u8; 8] = b"VISAGEC1";
/// Magic; dimension, cells, rows covered, rows the centres were found from, the database file's
/// device, inode and birth time, the partition's own number; the digest of the rows covered.
const HEADER: usize = 8 + 8 * 8 + 32;

/// Faces from which a library's vector file gets a cell file.
pub const MIN_ROWS: u64 = 200_000;

/// Rows the vector file may gain before they are given their homes (until then they are read in
/// one pass: a few MiB).
pub const EXTEND: u64 = SCAN_CHUNK as u64;

/// Cells a query probes at most, its home included: the full graph's share of its bound and
/// its most probes ([`IvfParams::default`]).
pub const PROBES: usize = 24;

/// Where the cell file of the database at `db` lives.
pub fn path_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-cells");
    PathBuf::from(name)
}

/// Why a cell file could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CellsError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("partitioning the vector file: {0}")]
    Partition(#[from] GraphError),
}

/// The cell file of a vector file, in memory: the centres and every covered row's home.
pub struct Cells {
    centroids: Vec<f32>,
    cn: Vec<f32>,
    homes: Vec<u16>,
    /// Rows the centres were found from (a library four times larger is partitioned again).
    built: u64,
    /// A number of its own, drawn when the centres were found: what numbers cells elsewhere
    /// (the clusters' cells) are numbered for.
    partition: u64,
}

impl Cells {
    /// The cell file of the database at `db`, for `file` (its vector file, open). With `make`
    /// (a clustering run), made or brought up to date as needed; without (any other search: a
    /// review call must not spend minutes partitioning), only read. `None` when there is none
    /// and it is not to be made, the library is too small to need one, or it cannot be made (the
    /// search then reads every row, as correct and slower).
    pub fn open(db: &Path, file: &mut VectorFile, make: bool) -> Option<Cells> {
        if !make {
            return Self::read(&path_of(db), file).ok().flatten();
        }
        match Self::try_open(db, file) {
            Ok(c) => c,
            Err(e) => {
                log::debug!("cell file of {}: {e}; reading every row", db.display());
                None
            }
        }
    }

    fn try_open(db: &Path, file: &mut VectorFile) -> Result<Option<Cells>, CellsError> {
        let path = path_of(db);
        match Self::read(&path, file)? {
            // Grown fourfold since its centres were found: the cells are too large now.
            Some(c) if c.built * 4 >= file.len() => {
                if file.len() - c.len() < EXTEND {
                    return Ok(Some(c));
                }
                let mut c = c;
                c.extend(file)?;
                c.write(&path, file)?;
                Ok(Some(c))
            }
            _ if file.len() < MIN_ROWS => Ok(None),
            _ => {
                log::info!(
                    "partitioning the {} faces of {} into cells (once; it makes searching \
                     around new faces quick)",
                    file.len(),
                    db.display()
                );
                Self::make(db, file, 0).map(Some)
            }
        }
    }

    /// Partition every row of `file` (the vector file of the database at `db`) into `cells`
    /// cells (0: as many as the full graph would make for that many rows), and write the cell
    /// file.
    pub fn make(db: &Path, file: &mut VectorFile, cells: usize) -> Result<Cells, CellsError> {
        let c = Self::build(file, cells)?;
        c.write(&path_of(db), file)?;
        Ok(c)
    }

    /// Rows covered: the file's rows after these are read in one pass.
    pub fn len(&self) -> u64 {
        self.homes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.homes.is_empty()
    }

    /// Cells.
    pub fn cells(&self) -> usize {
        self.centroids.len() / DIM
    }

    /// A partition of every row of `file` into `cells` cells.
    fn build(file: &mut VectorFile, cells: usize) -> Result<Cells, CellsError> {
        let rows = file.len();
        let params = IvfParams {
            cells,
            max_probes: 1,
            refine_degree: 0,
            ..IvfParams::default()
        };
        let source = WholeFile(Mutex::new(file));
        let part = Partition::build(
            &source,
            0.0,
            &params,
            &Control::quiet(),
            &mut IvfStats::default(),
        )?;
        source.0.into_inner().expect("vector file").rewind();
        let centroids = part.centroids().to_vec();
        let homes = (0..rows as usize).map(|i| part.home_of(i) as u16).collect();
        let mut cn = Vec::new();
        squared_norms(&centroids, DIM, &mut cn);
        // Distinct for each partition made: the time, and where this process is.
        let partition = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ ((std::process::id() as u64) << 40);
        Ok(Cells {
            centroids,
            cn,
            homes,
            built: rows,
            partition,
        })
    }

    /// Give the rows the file gained since its homes: the nearest centre.
    fn extend(&mut self, file: &mut VectorFile) -> Result<(), CellsError> {
        file.seek(self.len());
        let (mut ids, mut rows) = (Vec::new(), crate::graph::quantised::QuantisedRows::new(DIM));
        let mut back = Vec::new();
        let mut nearest = Vec::new();
        loop {
            ids.clear();
            rows.clear();
            file.read_chunk(&mut ids, &mut rows)?;
            if ids.is_empty() {
                break;
            }
            back.resize(ids.len() * DIM, 0.0);
            rows.rows().copy_to(DIM, 0, &mut back);
            nearest.resize(ids.len(), 0);
            ivf::nearest_cells(&back, DIM, &self.centroids, &mut nearest);
            self.homes.extend(nearest.iter().map(|&c| c as u16));
        }
        file.rewind();
        Ok(())
    }

    /// The cell file at `path`, if it was made from `file`'s rows as they stand.
    fn read(path: &Path, file: &VectorFile) -> Result<Option<Cells>, CellsError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if bytes.len() < HEADER || &bytes[..8] != MAGIC {
            return Ok(None);
        }
        let word = |k: usize| u64::from_le_bytes(bytes[8 + 8 * k..16 + 8 * k].try_into().unwrap());
        let (dim, cells, rows, built) = (word(0), word(1), word(2), word(3));
        let identity = [word(4), word(5), word(6)];
        let partition = word(7);
        let digest = &bytes[HEADER - 32..HEADER];
        let expected = HEADER as u64 + cells * dim * 4 + rows * 2;
        if dim != DIM as u64
            || identity != file.identity()
            || rows > file.len()
            || bytes.len() as u64 != expected
            || cells == 0
            || cells > ivf::MAX_CELLS as u64
            || file.digest(rows)?[..] != *digest
        {
            return Ok(None);
        }
        let mut at = HEADER;
        let centroids: Vec<f32> = bytes[at..at + (cells * dim * 4) as usize]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        at += centroids.len() * 4;
        let homes: Vec<u16> = bytes[at..]
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        if homes.iter().any(|&h| h as u64 >= cells) {
            return Ok(None);
        }
        let mut cn = Vec::new();
        squared_norms(&centroids, DIM, &mut cn);
        Ok(Some(Cells {
            centroids,
            cn,
            homes,
            built,
            partition,
        }))
    }

    /// Written whole beside `path`, then renamed over it.
    fn write(&self, path: &Path, file: &VectorFile) -> Result<(), CellsError> {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut out =
            std::io::BufWriter::with_capacity(1 << 20, tempfile::NamedTempFile::new_in(dir)?);
        out.write_all(MAGIC)?;
        let [device, inode, born] = file.identity();
        for w in [
            DIM as u64,
            self.cells() as u64,
            self.len(),
            self.built,
            device,
            inode,
            born,
            self.partition,
        ] {
            out.write_all(&w.to_le_bytes())?;
        }
        out.write_all(&file.digest(self.len())?)?;
        for x in &self.centroids {
            out.write_all(&x.to_le_bytes())?;
        }
        for h in &self.homes {
            out.write_all(&h.to_le_bytes())?;
        }
        let tmp = out.into_inner().map_err(|e| e.into_error())?;
        // Readable by whoever may read the vector file it indexes.
        if let Ok(meta) = file.metadata() {
            tmp.as_file().set_permissions(meta.permissions())?;
        }
        tmp.as_file().sync_data()?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// The partition's own number, as the clusters' cells name it.
    pub fn partition(&self) -> String {
        format!("{:016x}", self.partition)
    }

    /// The home cell of each of these rows (`dim` floats each): the nearest centre.
    pub fn homes_of(&self, rows: &[f32]) -> Vec<u16> {
        let mut nearest = vec![0u32; rows.len() / DIM];
        ivf::nearest_cells(rows, DIM, &self.centroids, &mut nearest);
        nearest.into_iter().map(|c| c as u16).collect()
    }

    /// The cells that queries (rows of `dim` floats), query `k` reaching `reach(k)`, probe: for
    /// each, its home and the cells within half the bound that guarantees every row within its
    /// reach, [`PROBES`] at most. Ascending.
    pub fn probed(&self, queries: &[f32], reach: impl Fn(usize) -> f32) -> Vec<u16> {
        let cells = self.cells();
        let ratio = IvfParams::default().probe_ratio;
        let mut probed = vec![false; cells];
        let (mut line, mut near, mut out) = (vec![0f32; cells], Vec::new(), [0u16; PROBES]);
        for (k, q) in queries.chunks_exact(DIM).enumerate() {
            for (d, c) in line.iter_mut().zip(self.centroids.chunks_exact(DIM)) {
                *d = q.iter().zip(c).map(|(a, b)| a * b).sum();
            }
            out.fill(ivf::NONE);
            ivf::probe_by(
                &mut line,
                &self.cn,
                |home| ivf::home_distances(&self.centroids, &self.cn, DIM, home),
                2.0 * reach(k) * ratio,
                &mut near,
                &mut out,
            );
            for &c in out.iter().filter(|&&c| c != ivf::NONE) {
                probed[c as usize] = true;
            }
        }
        (0..cells as u16).filter(|&c| probed[c as usize]).collect()
    }

    /// The covered rows (positions in the vector file, ascending) at home in the cells that
    /// `queries`, each reaching `widen` further, probe; and how many cells that is.
    pub fn rows_for(&self, queries: &RangeQuery, widen: f32) -> (Vec<u64>, usize) {
        let cells = self.probed(queries.rows(), |k| queries.reach(k) + widen);
        let mut probed = vec![false; self.cells()];
        for &c in &cells {
            probed[c as usize] = true;
        }
        let rows = self
            .homes
            .iter()
            .enumerate()
            .filter(|&(_, &h)| probed[h as usize])
            .map(|(k, _)| k as u64)
            .collect();
        (rows, cells.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::synthetic::People;
    use crate::store::{Store, StoreError, photos};
    use std::collections::BTreeMap;

    /// Faces within `reach` of each query, as `search` finds them: (query, face) -> d2.
    fn near(db: &Path, queries: &[f32], reach: f32) -> BTreeMap<(u32, i64), f32> {
        let conn = rusqlite::Connection::open(db).unwrap();
        let mut q = RangeQuery::new(queries, DIM, reach);
        let mut out = BTreeMap::new();
        super::super::search(&conn, &mut q, &[], "1", |f| {
            out.insert((f.query, f.id), f.d2);
        })
        .unwrap();
        out
    }

    fn add(store: &mut Store, people: &People, range: std::ops::Range<usize>, tag: &str) {
        store
            .write(|tx| -> Result<(), StoreError> {
                let mut v = vec![0f32; DIM];
                for i in range.clone() {
                    people.face(i, &mut v);
                    photos::store_vector(tx, &format!("/{tag}/{i}.jpg"), &v)?;
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_search_through_the_cells_finds_what_a_pass_over_every_row_finds() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("library.db");
        let mut store = Store::open_or_create(&db).unwrap();
        // Synthetic people (faces of a person within the cluster distance of each other), far
        // below the size that gets a cell file made: none is made, every row is read.
        let people = People::new(8_000, 27);
        add(&mut store, &people, 0..6_000, "a");
        let mut queries = vec![0f32; 40 * DIM];
        for k in 0..40 {
            people.face(k * 150 + 3, &mut queries[k * DIM..(k + 1) * DIM]);
        }
        let exact = near(&db, &queries, 0.64);
        assert!(!path_of(&db).exists());
        assert!(exact.len() > 400, "{} pairs", exact.len());

        // Cells made for it: every hit is an exact one, with the same distance, and almost all
        // are found, from a share of the rows.
        let mut file = VectorFile::open(&db).unwrap();
        let cells = Cells::make(&db, &mut file, 120).unwrap();
        assert!(
            cells.cells() > 60 && cells.len() == 6_000,
            "{}",
            cells.cells()
        );
        let (rows, probed) = cells.rows_for(&RangeQuery::new(&queries[..DIM], DIM, 0.64), 0.0);
        assert!(
            probed <= PROBES && rows.len() < 6_000 / 3,
            "{probed} {}",
            rows.len()
        );
        drop(file);
        let found = near(&db, &queries, 0.64);
        for (k, d2) in &found {
            assert_eq!(exact.get(k), Some(d2), "{k:?} is not an exact hit");
        }
        let recall = found.len() as f64 / exact.len() as f64;
        assert!(recall > 0.97, "recall {recall}");

        // Faces added since are found (read in one pass after the cells' rows): the people's
        // other faces, near the queries.
        add(&mut store, &people, 6_000..8_000, "b");
        let mut file = VectorFile::open(&db).unwrap();
        assert_eq!(Cells::open(&db, &mut file, true).unwrap().len(), 6_000);
        drop(file);
        let exact_now = {
            // Every row read: the cell file set aside.
            std::fs::rename(path_of(&db), dir.path().join("aside")).unwrap();
            let e = near(&db, &queries, 0.64);
            std::fs::rename(dir.path().join("aside"), path_of(&db)).unwrap();
            e
        };
        let added: Vec<_> = exact_now
            .keys()
            .filter(|k| !exact.contains_key(k))
            .collect();
        assert!(added.len() > 50, "{}", added.len());
        let found = near(&db, &queries, 0.64);
        assert!(added.iter().all(|k| found.contains_key(k)));

        // A cell file whose rows are not the vector file's any more (another database at the
        // same path, with as many faces) is not used.
        drop(store);
        for end in ["", "-wal", "-shm", "-vectors"] {
            let _ = std::fs::remove_file(format!("{}{end}", db.display()));
        }
        let mut store = Store::open_or_create(&db).unwrap();
        add(&mut store, &People::new(8_000, 28), 0..8_000, "c");
        let mut file = VectorFile::open(&db).unwrap();
        assert!(path_of(&db).exists() && Cells::open(&db, &mut file, true).is_none());
        // Nor is a damaged one.
        let c = Cells::make(&db, &mut file, 100).unwrap();
        assert!(Cells::open(&db, &mut file, false).is_some_and(|o| o.len() == c.len()));
        let mut bytes = std::fs::read(path_of(&db)).unwrap();
        let at = bytes.len() - 2;
        bytes[at..].copy_from_slice(&u16::MAX.to_le_bytes());
        std::fs::write(path_of(&db), &bytes).unwrap();
        assert!(Cells::open(&db, &mut file, false).is_none());
        assert!(Cells::open(&db, &mut file, true).is_none());
    }
}
