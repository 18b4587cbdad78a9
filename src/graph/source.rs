//! Where a full-graph search reads its rows: all in memory ([`InMemory`], as f32 or f16 rows), or
//! streamed from somewhere larger than memory (the store's vector file: 8-bit rows read a chunk
//! at a time, with the exact rows looked up for the pairs found). A search that streams never
//! holds more than a chunk and the rows of the cells it is working on.
//!
//! Rows are numbered `0..len()` in the graph's own order (the order of the faces the caller
//! asked for), whatever order the source reads them in.

use std::sync::atomic::{AtomicBool, Ordering};

use super::Rows;
use crate::gpu::GpuError;

/// What can stop a graph search.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// The rows could not be read.
    #[error("reading the embeddings: {0}")]
    Source(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file of edges is not one this search can use (named, with why).
    #[error("{path}: {why}")]
    Parts { path: String, why: String },
    /// The caller asked it to stop (Ctrl-C).
    #[error("stopped before the end")]
    Stopped,
}

impl GraphError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        GraphError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// What [`RowSource::scan`] hands each chunk to: the rows' indices and the rows.
pub type Chunks<'a> = dyn FnMut(&[u32], Rows) -> Result<(), GraphError> + 'a;

/// Rows to search: read in chunks, and exactly on demand.
pub trait RowSource: Sync {
    fn dim(&self) -> usize;

    /// How many rows.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All rows, in memory as they are: searches read them in place. `None` for a source that
    /// streams.
    fn in_memory(&self) -> Option<Rows<'_>> {
        None
    }

    /// How far a row as [`Self::scan`] gives it may lie from the exact row (0 when they are the
    /// exact rows).
    fn margin(&self) -> f32;

    /// Every row once, a chunk at a time, in the order the source reads fastest:
    /// `each(indices, rows)`, where row `k` of the chunk is row `indices[k]`.
    fn scan(&self, each: &mut Chunks) -> Result<(), GraphError>;

    /// The exact rows at these indices (any order), as f32, one after another in `out` (resized
    /// to `indices.len() * dim`). Called from several threads at once.
    fn exact(&self, indices: &[u32], out: &mut Vec<f32>) -> Result<(), GraphError>;
}

/// Rows that are all in memory: scanned in order, exact as they are.
pub struct InMemory<'a> {
    pub rows: Rows<'a>,
    pub dim: usize,
}

/// Rows per chunk of an in-memory scan.
const CHUNK: usize = 16 * 1024;

impl RowSource for InMemory<'_> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.rows.count(self.dim)
    }

    fn in_memory(&self) -> Option<Rows<'_>> {
        Some(self.rows)
    }

    fn margin(&self) -> f32 {
        0.0
    }

    fn scan(&self, each: &mut Chunks) -> Result<(), GraphError> {
        let n = self.len();
        let mut indices = Vec::with_capacity(CHUNK);
        for start in (0..n).step_by(CHUNK) {
            let count = CHUNK.min(n - start);
            indices.clear();
            indices.extend(start as u32..(start + count) as u32);
            each(&indices, self.rows.slice(self.dim, start, count))?;
        }
        Ok(())
    }

    fn exact(&self, indices: &[u32], out: &mut Vec<f32>) -> Result<(), GraphError> {
        out.resize(indices.len() * self.dim, 0.0);
        self.rows.gather(self.dim, indices, out);
        Ok(())
    }
}

/// What a long search reports to, and hears from, its caller.
#[derive(Clone, Copy)]
pub struct Control<'a> {
    /// `progress(done, total)`, in the search's own units; called from several threads.
    pub progress: &'a (dyn Fn(usize, usize) + Sync),
    /// Set (by a Ctrl-C handler) to ask the search to stop; it then returns
    /// [`GraphError::Stopped`] at its next check.
    pub stop: &'a AtomicBool,
}

/// A flag nobody sets, for searches that are never stopped.
static NEVER: AtomicBool = AtomicBool::new(false);

impl Control<'_> {
    /// No progress and no stopping.
    pub fn quiet() -> Control<'static> {
        Control {
            progress: &|_, _| {},
            stop: &NEVER,
        }
    }

    /// `Err(Stopped)` once a stop was asked for.
    pub fn check(&self) -> Result<(), GraphError> {
        if self.stop.load(Ordering::Relaxed) {
            Err(GraphError::Stopped)
        } else {
            Ok(())
        }
    }
}
