//! Host code of `shaders/distance_graph.wgsl`: streams the embeddings through two block buffers
//! of bounded size (whatever N), dispatches every pair of blocks (a block with itself computes
//! only `i < j`), and reads back only the close pairs, rerunning a pair of blocks with more room if
//! its edges overflowed. f16 rows are converted to f32 on the host as each block is uploaded.
//!
//! Sized for ten million faces: a block is at most 256 MiB of rows (131,072 of 512 floats, so 77
//! blocks and 3,003 block pairs at 10M), the edge buffer grows to what the device allows at most,
//! and a block pair whose edges would not fit even then (one person's thousands of faces in one
//! block) is dispatched again in halves of block a's rows until each fits. The edges go to a sink
//! a block pair at a time ([`GpuGraph::edges_into`]: on to a file of pairs at that size), and a
//! part of the work takes the block pairs it is dealt. Device memory: two blocks, the edge buffer
//! and one readback; host memory: one converted block and one block pair's edges. Its CPU twin is
//! [`super::cpu`].

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use super::rows::Rows;
use super::{Edge, sort_edges};
use crate::gpu::{Gpu, GpuError};

const SHADER: &str = include_str!("../../shaders/distance_graph.wgsl");
/// Rows per workgroup side, and the granularity of `dim`.
const TILE: usize = 16;
/// Edges reserved per dispatch before the first try.
const MIN_CAPACITY: u32 = 1 << 18;
/// Most bytes of one block of rows on the device (two are resident).
const BLOCK_BYTES: usize = 256 << 20;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    rows_a: u32,
    rows_b: u32,
    dim: u32,
    same: u32,
    base_a: u32,
    base_b: u32,
    capacity: u32,
    max_d2: f32,
    /// The first row of block a this dispatch computes (a multiple of [`TILE`]).
    first_a: u32,
    _pad: [u32; 3],
}

/// The distance-graph kernel, compiled on a device.
pub struct GpuGraph {
    gpu: Arc<Gpu>,
    pipeline: wgpu::ComputePipeline,
    initial_capacity: u32,
    /// Most rows in one block (set by the device's limits; smaller in tests).
    pub block_rows: usize,
    /// Most edges one dispatch may return (set by the device's limits; smaller in tests): a
    /// block pair with more is dispatched in parts.
    pub max_capacity: u32,
}

impl GpuGraph {
    pub fn new(gpu: Arc<Gpu>) -> Self {
        let pipeline = gpu.pipeline("distance_graph.wgsl", SHADER);
        let per_dim = gpu.limits.max_compute_workgroups_per_dimension as usize * TILE;
        let buffer = gpu
            .limits
            .max_storage_buffer_binding_size
            .min(gpu.limits.max_buffer_size);
        GpuGraph {
            block_rows: per_dim.min(1 << 20),
            pipeline,
            initial_capacity: MIN_CAPACITY,
            max_capacity: (buffer / size_of::<Edge>() as u64).min(u32::MAX as u64) as u32,
            gpu,
        }
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Room for edges reserved before the first try (a larger count is rerun with enough room).
    pub fn set_initial_capacity(&mut self, edges: u32) {
        self.initial_capacity = edges.max(1);
    }

    /// All pairs `i < j` of the `dim`-value rows with squared distance below `max_d2`, in
    /// canonical order.
    pub fn edges(&self, rows: Rows, dim: usize, max_d2: f32) -> Result<Vec<Edge>, GpuError> {
        self.edges_with_progress(rows, dim, max_d2, &|_, _| {})
    }

    /// [`Self::edges`], calling `progress(block pairs done, block pairs)` as it goes.
    pub fn edges_with_progress(
        &self,
        rows: Rows,
        dim: usize,
        max_d2: f32,
        progress: &dyn Fn(usize, usize),
    ) -> Result<Vec<Edge>, GpuError> {
        let mut out = Vec::new();
        self.edges_into(
            rows,
            dim,
            max_d2,
            &|_| true,
            &mut |e| {
                out.extend_from_slice(e);
                true
            },
            progress,
        )?;
        sort_edges(&mut out);
        Ok(out)
    }

    /// The edges of the block pairs `take` chooses (by their number, in the order `(0, 0), (0,
    /// 1), .., (1, 1), ..`), handed to `sink` a dispatch at a time (in no set order); progress
    /// counts the block pairs taken. Returns the dispatches that returned edges (more than the
    /// block pairs where one was split). It stops after a dispatch when `sink` returns `false`.
    pub fn edges_into(
        &self,
        rows: Rows,
        dim: usize,
        max_d2: f32,
        take: &dyn Fn(usize) -> bool,
        sink: &mut dyn FnMut(&[Edge]) -> bool,
        progress: &dyn Fn(usize, usize),
    ) -> Result<usize, GpuError> {
        assert!(dim.is_multiple_of(TILE) && dim > 0 && rows.values().is_multiple_of(dim));
        let n = rows.count(dim);
        if n > u32::MAX as usize / 2 {
            return Err(GpuError::TooLarge(format!("{n} embeddings")));
        }
        if n < 2 {
            return Ok(0);
        }
        let binding = self.gpu.limits.max_storage_buffer_binding_size as usize;
        let block = self
            .block_rows
            .min(binding / (dim * 4))
            .min(BLOCK_BYTES / (dim * 4))
            .max(TILE)
            .min(n)
            / TILE
            * TILE;
        let block = block.max(TILE);
        let blocks = n.div_ceil(block);
        let device = &self.gpu.device;
        let rows_buffer = |label| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (block * dim * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        let buffer_a = rows_buffer("graph block a");
        let buffer_b = if blocks > 1 {
            Some(rows_buffer("graph block b"))
        } else {
            None
        };
        let counter = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("graph edge count"),
            size: 4,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let max_capacity = self.max_capacity.max(1);
        let mut capacity = self.initial_capacity.min(max_capacity);
        let mut items = self.edge_buffer(capacity);
        let mut staging = Vec::new();
        let mut upload = |buffer: &wgpu::Buffer, start: usize| -> usize {
            let count = block.min(n - start);
            let values = rows.f32_rows(dim, start, count, &mut staging);
            self.gpu
                .queue
                .write_buffer(buffer, 0, bytemuck::cast_slice(values));
            count
        };
        let pairs: Vec<(usize, usize)> = (0..blocks)
            .flat_map(|x| (x..blocks).map(move |y| (x, y)))
            .enumerate()
            .filter(|&(k, _)| take(k))
            .map(|(_, p)| p)
            .collect();
        let total = pairs.len();
        let mut uploaded_a = usize::MAX;
        let mut dispatches = 0;
        for (done, &(x, y)) in pairs.iter().enumerate() {
            let start_a = x * block;
            let rows_a = block.min(n - start_a);
            if uploaded_a != x {
                upload(&buffer_a, start_a);
                uploaded_a = x;
            }
            let start_b = y * block;
            let (b, rows_b) = match &buffer_b {
                Some(buffer) if y != x => (buffer, upload(buffer, start_b)),
                _ => (&buffer_a, rows_a),
            };
            // Rows of block a still to dispatch, as (first, count): halved while the edges of a
            // range would not fit in the largest edge buffer the device allows.
            let mut ranges = vec![(0usize, rows_a)];
            while let Some((first, count)) = ranges.pop() {
                let mut params = Params {
                    rows_a: (first + count) as u32,
                    rows_b: rows_b as u32,
                    dim: dim as u32,
                    same: (x == y) as u32,
                    base_a: start_a as u32,
                    base_b: start_b as u32,
                    capacity,
                    max_d2,
                    first_a: first as u32,
                    _pad: [0; 3],
                };
                let (count_found, edges) = self.dispatch(params, &buffer_a, b, &counter, &items)?;
                let more = if count_found <= capacity {
                    dispatches += 1;
                    sink(&edges)
                } else if count_found <= max_capacity {
                    // Rerun with room for all of them; the larger buffer is kept for the rest.
                    capacity = count_found;
                    items = self.edge_buffer(capacity);
                    params.capacity = capacity;
                    dispatches += 1;
                    sink(&self.dispatch(params, &buffer_a, b, &counter, &items)?.1)
                } else if count > TILE {
                    let half = count.div_ceil(2).div_ceil(TILE) * TILE;
                    ranges.push((first + half, count - half));
                    ranges.push((first, half));
                    true
                } else {
                    return Err(GpuError::TooLarge(format!(
                        "{count_found} edges among {TILE} rows: more than the device's largest \
                         edge buffer ({max_capacity} edges)"
                    )));
                };
                if !more {
                    return Ok(dispatches);
                }
            }
            progress(done + 1, total);
        }
        Ok(dispatches)
    }

    fn edge_buffer(&self, capacity: u32) -> wgpu::Buffer {
        self.gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("graph edges"),
            size: capacity.max(1) as u64 * size_of::<Edge>() as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    fn dispatch(
        &self,
        params: Params,
        a: &wgpu::Buffer,
        b: &wgpu::Buffer,
        counter: &wgpu::Buffer,
        items: &wgpu::Buffer,
    ) -> Result<(u32, Vec<Edge>), GpuError> {
        let gpu = &self.gpu;
        let params_buf = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("graph params"),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        gpu.queue.write_buffer(counter, 0, &[0u8; 4]);
        gpu.dispatch(
            &self.pipeline,
            &[&params_buf, a, b, counter, items],
            (
                (params.rows_b as usize).div_ceil(TILE) as u32,
                (params.rows_a - params.first_a).div_ceil(TILE as u32),
            ),
        );
        gpu.read_appended(counter, items, params.capacity)
    }
}
