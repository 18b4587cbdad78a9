//! The distance graph: which faces lie closer than the cluster distance to each other. A WGSL
//! kernel (`shaders/distance_graph.wgsl`, host code in [`gpu`]) or its CPU twin ([`cpu`]) computes
//! squared distances between all pairs in tiles and keeps only the close pairs as edges; on the
//! CPU, [`product`] finds the same edges faster through matrix products, and above
//! [`EXACT_UP_TO`] rows [`ivf`] finds almost all of them (never a wrong one) through a partition.
//! [`range`] answers a few queries against rows streamed in chunks (the incremental path). The
//! edges become a symmetric CSR neighbour list ([`NeighbourGraph`]). Memory grows with the
//! edges, never with N x N. Rows may be f32 or f16 ([`Rows`]).
//!
//! Input is embeddings and a distance; output is edges. This module does not cluster (see
//! `clustering`) and knows nothing of photos or people.

pub mod cpu;
pub mod gpu;
pub mod int8;
pub mod ivf;
pub mod partition_file;
pub mod parts;
pub mod product;
pub mod quantised;
pub mod random;
pub mod range;
pub mod reach;
pub mod rows;
pub mod source;
pub mod synthetic;

pub use rows::Rows;
pub use source::{Control, GraphError, InMemory, RowSource};

use bytemuck::{Pod, Zeroable};

use crate::config::{DeviceChoice, GraphChoice};
use crate::device::Device;
use crate::gpu::GpuError;

/// Dimensions are summed in this many interleaved partial sums, combined pairwise; the shader
/// and the CPU twin add in the same order.
pub const LANES: usize = 8;

/// A pair of rows closer than the threshold: `i < j`, `d2` the squared Euclidean distance.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub struct Edge {
    pub i: u32,
    pub j: u32,
    pub d2: f32,
}

/// Up to this many rows the CPU computes the full graph exactly ([`product`]: about 4 s at 50,000
/// 512-d rows on 2 cores, growing as N^2); above it, through the partition ([`ivf`]).
pub const EXACT_UP_TO: usize = 50_000;

/// How the full graph is searched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Search {
    /// Exact up to [`EXACT_UP_TO`] rows (and always on a GPU), approximate above it on the CPU.
    #[default]
    Auto,
    /// Every pair, whatever N.
    Exact,
    /// Through the partition on the CPU, whatever N (every pair on a GPU).
    Approximate,
}

impl From<GraphChoice> for Search {
    fn from(choice: GraphChoice) -> Self {
        match choice {
            GraphChoice::Auto => Search::Auto,
            GraphChoice::Exact => Search::Exact,
            GraphChoice::Approximate => Search::Approximate,
        }
    }
}

/// The method a full-graph search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// All pairs on the CPU, through matrix products.
    CpuExact,
    /// The IVF partition on the CPU: at least 99.9% of the edges, never a false one.
    CpuApproximate,
    /// All pairs in the WGSL kernel.
    GpuExact,
}

/// Where the pairwise distances are computed.
pub enum GraphBackend {
    Cpu,
    Gpu(gpu::GpuGraph),
}

impl GraphBackend {
    /// The kernel on `device`'s GPU, or the CPU without one.
    pub fn on(device: &Device) -> Self {
        match &device.gpu {
            Some(g) => GraphBackend::Gpu(gpu::GpuGraph::new(g.clone())),
            None => GraphBackend::Cpu,
        }
    }

    /// [`Self::on`] the device `choice` gives (for commands that run no other stage).
    pub fn choose(choice: DeviceChoice) -> Result<Self, GpuError> {
        Ok(Self::on(&Device::choose(choice)?))
    }

    pub fn describe(&self) -> String {
        match self {
            GraphBackend::Cpu => format!("CPU ({} threads)", rayon::current_num_threads()),
            GraphBackend::Gpu(g) => g.gpu().describe(),
        }
    }

    /// All pairs `i < j` of the `dim`-float rows closer than `max_distance`, in canonical order
    /// (exact, whatever N).
    pub fn edges(
        &self,
        rows: &[f32],
        dim: usize,
        max_distance: f32,
    ) -> Result<Vec<Edge>, GpuError> {
        self.search(
            Rows::F32(rows),
            dim,
            max_distance,
            Search::Exact,
            &|_, _| {},
        )
    }

    /// The method [`Self::search`] uses for `n` rows.
    pub fn method(&self, n: usize, search: Search) -> Method {
        match (self, search) {
            (GraphBackend::Gpu(_), _) => Method::GpuExact,
            (GraphBackend::Cpu, Search::Auto) if n > EXACT_UP_TO => Method::CpuApproximate,
            (GraphBackend::Cpu, Search::Approximate) => Method::CpuApproximate,
            (GraphBackend::Cpu, _) => Method::CpuExact,
        }
    }

    /// The full graph: pairs `i < j` of the `dim`-value rows closer than `max_distance`, in
    /// canonical order, by [`Self::method`]. `progress(done, total)` is called as the work goes
    /// (from several threads; its units are the method's own).
    pub fn search(
        &self,
        rows: Rows,
        dim: usize,
        max_distance: f32,
        search: Search,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Vec<Edge>, GpuError> {
        let max_d2 = max_distance * max_distance;
        let n = rows.count(dim);
        Ok(match (self, self.method(n, search)) {
            (GraphBackend::Gpu(g), _) => g.edges_with_progress(rows, dim, max_d2, progress)?,
            (_, Method::CpuApproximate) => {
                ivf::edges(rows, dim, max_d2, &ivf::IvfParams::default(), progress).0
            }
            _ => product::edges_with_progress(rows, dim, max_d2, progress),
        })
    }

    /// The neighbour graph of these embeddings at `max_distance` (exact).
    pub fn graph(
        &self,
        embeddings: &[Vec<f32>],
        max_distance: f32,
    ) -> Result<NeighbourGraph, GpuError> {
        let dim = embeddings.first().map_or(LANES, Vec::len);
        let rows: Vec<f32> = embeddings.iter().flatten().copied().collect();
        let edges = self.edges(&rows, dim, max_distance)?;
        Ok(NeighbourGraph::from_edges(embeddings.len(), &edges))
    }
}

/// Edges in canonical order (by `i`, then `j`).
pub fn sort_edges(edges: &mut [Edge]) {
    edges.sort_unstable_by_key(|e| (e.i, e.j));
}

/// Neighbour lists in compressed sparse row form: the neighbours of `i` are
/// `neighbours[offsets[i]..offsets[i + 1]]`, ascending, each with its distance.
#[derive(Debug, Clone, PartialEq)]
pub struct NeighbourGraph {
    pub offsets: Vec<usize>,
    pub neighbours: Vec<u32>,
    pub distances: Vec<f32>,
}

impl NeighbourGraph {
    /// The symmetric graph of `n` nodes holding each edge in both directions.
    pub fn from_edges(n: usize, edges: &[Edge]) -> Self {
        let mut offsets = vec![0usize; n + 1];
        for e in edges {
            offsets[e.i as usize + 1] += 1;
            offsets[e.j as usize + 1] += 1;
        }
        for k in 0..n {
            offsets[k + 1] += offsets[k];
        }
        let mut fill = offsets[..n].to_vec();
        let mut neighbours = vec![0u32; offsets[n]];
        let mut distances = vec![0f32; offsets[n]];
        for e in edges {
            let d = e.d2.max(0.0).sqrt();
            for (from, to) in [(e.i, e.j), (e.j, e.i)] {
                let slot = &mut fill[from as usize];
                neighbours[*slot] = to;
                distances[*slot] = d;
                *slot += 1;
            }
        }
        drop(fill);
        // Each list ascending by neighbour, so the graph does not depend on edge order. Edges in
        // canonical order already give that: a node receives its lower neighbours (as `j`) in
        // order of `i`, then its higher ones (as `i`) in order of `j`.
        if !edges
            .windows(2)
            .all(|w| (w[0].i, w[0].j) < (w[1].i, w[1].j))
        {
            let mut pairs: Vec<(u32, f32)> = Vec::new();
            for i in 0..n {
                let range = offsets[i]..offsets[i + 1];
                pairs.clear();
                pairs.extend(
                    neighbours[range.clone()]
                        .iter()
                        .copied()
                        .zip(distances[range.clone()].iter().copied()),
                );
                pairs.sort_unstable_by_key(|p| p.0);
                for (k, &(nb, d)) in range.zip(&pairs) {
                    neighbours[k] = nb;
                    distances[k] = d;
                }
            }
        }
        NeighbourGraph {
            offsets,
            neighbours,
            distances,
        }
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn neighbours(&self, i: usize) -> &[u32] {
        &self.neighbours[self.offsets[i]..self.offsets[i + 1]]
    }

    pub fn distances(&self, i: usize) -> &[f32] {
        &self.distances[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Undirected edges.
    pub fn edge_count(&self) -> usize {
        self.neighbours.len() / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_holds_each_edge_both_ways_in_order() {
        let edges = [
            Edge {
                i: 2,
                j: 3,
                d2: 4.0,
            },
            Edge {
                i: 0,
                j: 2,
                d2: 1.0,
            },
            Edge {
                i: 0,
                j: 1,
                d2: 0.25,
            },
        ];
        let g = NeighbourGraph::from_edges(5, &edges);
        let mut sorted = edges;
        sort_edges(&mut sorted);
        assert_eq!(NeighbourGraph::from_edges(5, &sorted), g);
        assert_eq!(g.len(), 5);
        assert_eq!(g.edge_count(), 3);
        assert_eq!(g.neighbours(0), &[1, 2]);
        assert_eq!(g.distances(0), &[0.5, 1.0]);
        assert_eq!(g.neighbours(2), &[0, 3]);
        assert_eq!(g.distances(3), &[2.0]);
        assert!(g.neighbours(4).is_empty());
    }
}
