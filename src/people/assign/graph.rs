//! The neighbour graph of a full run, over the faces DBSCAN may take: the eligible faces that are
//! open once the automatic side is dropped ([`store::dbscan::graph_faces`]), in face id order.
//! Computed here into a scratch file beside the database, or by several processes in parts
//! (`visage cluster --graph-shard I/N --graphs DIR`), each part a file of its own that a run then
//! reads ([`Plan::Parts`]). A part's header names the faces it was computed for (their count and
//! a digest of their ids), the distance and the method, so a part of another library, of another
//! state of it, or of other settings is refused by name. The parts of the approximate graph share
//! one IVF partition, saved in the folder by the first part that builds it
//! ([`PartitionFile`]), under a header of the same kind.
//!
//! The rows are streamed from the vector file beside the database (8 bits a component, pairs
//! measured again on the stored half floats) for the approximate graph; the exact graphs hold the
//! faces' half floats in memory, as they always did.

use std::path::{Path, PathBuf};

use half::f16;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::embedding::EMBEDDING_DIM as DIM;
use crate::graph::ivf::IvfParams;
use crate::graph::partition_file::{Origin, PartitionFile};
use crate::graph::parts::{self, Edges, PairFile, PairWriter, PartReport, Split};
use crate::graph::source::InMemory;
use crate::graph::{Control, GraphBackend, GraphError, Method, RowSource, Rows, Search};
use crate::people::PeopleError;
use crate::store::SqlResult;
use crate::store::dbscan;
use crate::store::embeddings::file::FileRows;

/// Where a full run's graph comes from.
#[derive(Debug, Clone, Default)]
pub enum Plan {
    /// Computed by this process.
    #[default]
    Here,
    /// Read from the parts in this folder, computed before by `--graph-shard`.
    Parts(PathBuf),
}

/// Bytes of rows a streamed search holds at a time (one group of the partition's cells; each group
/// is one pass over the vector file, so fewer passes at ten million faces): the
/// bound on a re-cluster's memory that does not grow with the library.
const MEMORY: usize = 2 << 30;

/// The graph's faces (face ids, in id order).
pub fn faces(conn: &Connection, settings: &Settings) -> SqlResult<Vec<i64>> {
    Ok(dbscan::graph_faces(conn)?
        .into_iter()
        .filter(|c| settings.eligible(c.size, c.score))
        .map(|c| c.id)
        .collect())
}

/// What a part was computed for: it must match the run that reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Header {
    faces: usize,
    /// SHA-256 of the face ids (little-endian i64, in order), hex.
    ids: String,
    distance: f32,
    method: String,
}

impl Header {
    fn of(ids: &[i64], settings: &Settings, method: Method) -> Self {
        let mut h = Sha256::new();
        for id in ids {
            h.update(id.to_le_bytes());
        }
        let ids_digest = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Header {
            faces: ids.len(),
            ids: ids_digest,
            distance: settings.face_cluster_dist,
            method: format!("{method:?}"),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a header serialises")
    }

    /// What the IVF partition the parts share was built for: these faces and distance, and the
    /// partition's own settings.
    fn partition(&self, method: Method) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "graph": self,
            "ivf": format!("{:?}", params(method)),
        }))
        .expect("a header serialises")
    }

    /// Why a part with header `found` cannot be read for this one, if it cannot.
    fn refuse(&self, found: &[u8]) -> Result<(), String> {
        let Ok(other) = serde_json::from_slice::<Header>(found) else {
            return Err("not a part of a visage graph".into());
        };
        if other == *self {
            return Ok(());
        }
        let mut why = Vec::new();
        if other.faces != self.faces || other.ids != self.ids {
            why.push(format!(
                "computed for another set of faces ({} then, {} now: the library changed since, \
                 or it is another library)",
                other.faces, self.faces
            ));
        }
        if other.distance != self.distance {
            why.push(format!(
                "computed at --face-cluster-dist {} (now {})",
                other.distance, self.distance
            ));
        }
        if other.method != self.method {
            why.push(format!(
                "computed by {} (now {}: see --graph and --device)",
                other.method, self.method
            ));
        }
        Err(format!("{}; compute it again", why.join(", ")))
    }
}

/// The rows a graph reads: streamed from the vector file, or held in memory.
pub enum Source {
    File(FileRows),
    Memory(Vec<f16>),
}

impl Source {
    /// The rows of `ids` (in order) of the database at `db` (`None`: in memory): the vector
    /// file's for the approximate graph where it can be used, else the half floats in memory.
    pub fn open(
        conn: &Connection,
        db: Option<&Path>,
        ids: &[i64],
        method: Method,
    ) -> SqlResult<Self> {
        if method == Method::CpuApproximate
            && let Some(rows) = db.and_then(|db| FileRows::open(db, ids.to_vec()))
        {
            return Ok(Source::File(rows));
        }
        let mut rows = vec![f16::ZERO; ids.len() * DIM];
        dbscan::scan_graph_faces(conn, |chunk| {
            for (k, id) in chunk.ids.iter().enumerate() {
                if let Ok(g) = ids.binary_search(id) {
                    rows[g * DIM..(g + 1) * DIM]
                        .copy_from_slice(&chunk.rows[k * DIM..(k + 1) * DIM]);
                }
            }
            Ok(())
        })?;
        Ok(Source::Memory(rows))
    }

    /// Run `f` over the rows as a [`RowSource`].
    pub fn with<T>(&self, f: impl FnOnce(&dyn RowSource) -> T) -> T {
        match self {
            Source::File(rows) => f(rows),
            Source::Memory(rows) => f(&InMemory {
                rows: Rows::F16(rows),
                dim: DIM,
            }),
        }
    }
}

/// The graph's settings: the IVF partition's (approximate), or none (exact: no second pass).
fn params(method: Method) -> IvfParams {
    match method {
        Method::CpuApproximate => IvfParams::default(),
        _ => IvfParams {
            refine_degree: 0,
            ..IvfParams::default()
        },
    }
}

/// The method for `n` faces under these settings.
pub fn method(backend: &GraphBackend, n: usize, settings: &Settings) -> Method {
    backend.method(n, Search::from(settings.graph))
}

/// Part `split` of the graph of `ids` into `out`.
#[allow(clippy::too_many_arguments)]
fn compute(
    backend: &GraphBackend,
    source: &dyn RowSource,
    method: Method,
    settings: &Settings,
    split: Split,
    shared: Option<&PartitionFile>,
    out: &mut PairWriter,
    ctl: &Control,
) -> Result<PartReport, GraphError> {
    let d = settings.face_cluster_dist;
    parts::compute(
        backend,
        source,
        d * d,
        method,
        &params(method),
        split,
        shared,
        MEMORY,
        &mut |e| out.push(e.iter().map(|e| (e.i, e.j))),
        ctl,
    )
}

/// What computing one part did.
#[derive(Debug, Clone, Serialize)]
pub struct PartOutcome {
    pub part: String,
    pub path: PathBuf,
    /// It was there already, computed for this state of the library: nothing was done.
    pub already: bool,
    pub faces: usize,
    pub edges: u64,
    pub method: Method,
    /// The IVF partition: built here (and saved beside the parts), or read from there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<Origin>,
    pub seconds: f64,
}

/// `visage cluster --graph-shard I/N --graphs DIR`: part `split` of the graph a full run of the
/// library at `db` (open as `conn`) would compute, written to its own file in `dir` whole or not
/// at all. Reads the library only (any number of parts run at once), and does nothing when the
/// part is there already for the library as it is.
pub fn compute_part(
    conn: &Connection,
    db: &Path,
    settings: &Settings,
    backend: &GraphBackend,
    split: Split,
    dir: &Path,
    ctl: &Control,
) -> Result<PartOutcome, PeopleError> {
    let started = std::time::Instant::now();
    let ids = faces(conn, settings)?;
    let method = method(backend, ids.len(), settings);
    let header = Header::of(&ids, settings, method);
    let path = dir.join(split.file_name());
    let mut outcome = PartOutcome {
        part: format!("{}/{}", split.index, split.count),
        path: path.clone(),
        already: false,
        faces: ids.len(),
        edges: 0,
        method,
        partition: None,
        seconds: 0.0,
    };
    if let Ok(done) = PairFile::open(&path)
        && header.refuse(done.header()).is_ok()
    {
        outcome.already = true;
        outcome.edges = done.count();
        return Ok(outcome);
    }
    std::fs::create_dir_all(dir).map_err(|e| GraphError::io(dir, e))?;
    let source = Source::open(conn, Some(db), &ids, method)?;
    let mut out = PairWriter::create(&path, &header.bytes())?;
    let shared = PartitionFile::new(dir, header.partition(method));
    let report = source.with(|s| {
        compute(
            backend,
            s,
            method,
            settings,
            split,
            Some(&shared),
            &mut out,
            ctl,
        )
    })?;
    out.finish()?;
    outcome.edges = report.edges;
    outcome.partition = report.partition;
    outcome.seconds = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// The whole graph of `ids` (rows from `source`, [`Source::open`]) for a full run: computed here
/// (into a scratch file beside the database, or in the system's temporary folder for a database
/// in memory), or read from the parts in a folder; the approximate graph's second pass done over
/// it.
#[allow(clippy::too_many_arguments)]
pub fn whole(
    source: &Source,
    db: Option<&Path>,
    ids: &[i64],
    method: Method,
    settings: &Settings,
    backend: &GraphBackend,
    plan: &Plan,
    ctl: &Control,
) -> Result<Edges, GraphError> {
    let header = Header::of(ids, settings, method);
    let mut edges = match plan {
        Plan::Parts(dir) => Edges::open_parts(dir, &|_, found: &[u8]| header.refuse(found))?,
        Plan::Here => {
            let scratch = db
                .and_then(Path::parent)
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(std::env::temp_dir, Path::to_path_buf);
            let mut out = PairWriter::scratch(&scratch, &header.bytes())?;
            let started = std::time::Instant::now();
            let report = source.with(|s| {
                compute(
                    backend,
                    s,
                    method,
                    settings,
                    Split::WHOLE,
                    None,
                    &mut out,
                    ctl,
                )
            })?;
            log_part(&report, started.elapsed().as_secs_f64());
            Edges::new(vec![out.into_reader()?])
        }
    };
    let params = params(method);
    if params.refine_degree > 0 {
        let started = std::time::Instant::now();
        let mut degree = edges.degrees(ids.len())?;
        let d = settings.face_cluster_dist;
        let added = source.with(|s| edges.two_hop(s, &mut degree, &params, d * d, ctl))?;
        log::debug!(
            "two hops: {added} edges added in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(edges)
}

/// What the search of a graph computed here did, for the log.
fn log_part(report: &PartReport, seconds: f64) {
    match &report.ivf {
        Some(s) => log::debug!(
            "neighbour graph: {} edges in {seconds:.0} s (k-means {:.0} s, probes {:.0} s, \
             search {:.0} s over {} groups of {} rows, {:.1} probes a face, largest cell {})",
            report.edges,
            s.kmeans_seconds,
            s.assign_seconds,
            s.search_seconds,
            s.groups,
            s.group_rows,
            s.mean_probes,
            s.largest_cell
        ),
        None => log::debug!("neighbour graph: {} edges in {seconds:.0} s", report.edges),
    }
}

/// The exact rows (f32, from the stored half floats) of these graph indices, in order.
pub fn exact_rows(source: &Source, indices: &[u32], out: &mut Vec<f32>) -> Result<(), GraphError> {
    source.with(|s| s.exact(indices, out))
}
