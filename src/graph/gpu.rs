//! Host code of `shaders/distance_graph.wgsl`: streams the embeddings through two block buffers
//! of bounded size (whatever N), dispatches every pair of blocks (a block with itself computes
//! only `i < j`), and reads back only the close pairs, rerunning a pair of blocks with more room if
//! its edges overflowed. f16 rows are converted to f32 on the host as each block is uploaded.
//! Device memory: two blocks, the edge buffer and one readback; host memory: one converted block
//! and the edges. Its CPU twin is [`super::cpu`].

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
}

/// The distance-graph kernel, compiled on a device.
pub struct GpuGraph {
    gpu: Arc<Gpu>,
    pipeline: wgpu::ComputePipeline,
    initial_capacity: u32,
    /// Most rows in one block (set by the device's limits; smaller in tests).
    pub block_rows: usize,
}

impl GpuGraph {
    pub fn new(gpu: Arc<Gpu>) -> Self {
        let pipeline = gpu.pipeline("distance_graph.wgsl", SHADER);
        let per_dim = gpu.limits.max_compute_workgroups_per_dimension as usize * TILE;
        GpuGraph {
            block_rows: per_dim.min(1 << 20),
            pipeline,
            initial_capacity: MIN_CAPACITY,
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
        assert!(dim.is_multiple_of(TILE) && dim > 0 && rows.values().is_multiple_of(dim));
        let n = rows.count(dim);
        if n > u32::MAX as usize / 2 {
            return Err(GpuError::TooLarge(format!("{n} embeddings")));
        }
        if n < 2 {
            return Ok(Vec::new());
        }
        let binding = self.gpu.limits.max_storage_buffer_binding_size as usize;
        let block = self
            .block_rows
            .min(binding / (dim * 4))
            .min(BLOCK_BYTES / (dim * 4))
            .max(TILE)
            .min(n);
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
        let mut capacity = self.initial_capacity;
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
        let total = blocks * (blocks + 1) / 2;
        let mut done = 0;
        let mut out = Vec::new();
        for x in 0..blocks {
            let start_a = x * block;
            let rows_a = upload(&buffer_a, start_a);
            for y in x..blocks {
                let start_b = y * block;
                let (b, rows_b) = match &buffer_b {
                    Some(buffer) if y != x => (buffer, upload(buffer, start_b)),
                    _ => (&buffer_a, rows_a),
                };
                let mut params = Params {
                    rows_a: rows_a as u32,
                    rows_b: rows_b as u32,
                    dim: dim as u32,
                    same: (x == y) as u32,
                    base_a: start_a as u32,
                    base_b: start_b as u32,
                    capacity,
                    max_d2,
                };
                let (count, edges) = self.dispatch(params, &buffer_a, b, &counter, &items)?;
                if count > capacity {
                    // Rerun with room for all of them; the larger buffer is kept for the rest.
                    capacity = count;
                    items = self.edge_buffer(capacity);
                    params.capacity = capacity;
                    out.extend(self.dispatch(params, &buffer_a, b, &counter, &items)?.1);
                } else {
                    out.extend(edges);
                }
                done += 1;
                progress(done, total);
            }
        }
        sort_edges(&mut out);
        Ok(out)
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
                (params.rows_a as usize).div_ceil(TILE) as u32,
            ),
        );
        gpu.read_appended(counter, items, params.capacity)
    }
}
