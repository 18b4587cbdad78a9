//! Host code of `shaders/distance_graph.wgsl`: uploads the embeddings in blocks that fit a storage
//! binding, dispatches every pair of blocks (a block with itself computes only `i < j`), and reads
//! back only the close pairs, rerunning a pair of blocks with more room if its edges overflowed.
//! Its CPU twin is [`super::cpu`].

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use super::{Edge, sort_edges};
use crate::gpu::{Gpu, GpuError};

const SHADER: &str = include_str!("../../shaders/distance_graph.wgsl");
/// Rows per workgroup side, and the granularity of `dim`.
const TILE: usize = 16;
/// Edges reserved per dispatch before the first try.
const MIN_CAPACITY: u32 = 1 << 18;

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

    /// All pairs `i < j` of the `dim`-float rows with squared distance below `max_d2`, in
    /// canonical order.
    pub fn edges(&self, rows: &[f32], dim: usize, max_d2: f32) -> Result<Vec<Edge>, GpuError> {
        assert!(dim.is_multiple_of(TILE) && dim > 0 && rows.len().is_multiple_of(dim));
        let n = rows.len() / dim;
        if n > u32::MAX as usize / 2 {
            return Err(GpuError::TooLarge(format!("{n} embeddings")));
        }
        let binding = self.gpu.limits.max_storage_buffer_binding_size as usize;
        let block = self.block_rows.min(binding / (dim * 4)).max(TILE);
        let blocks: Vec<(usize, wgpu::Buffer)> = rows
            .chunks(block * dim)
            .enumerate()
            .map(|(b, chunk)| {
                (
                    b * block,
                    self.gpu.storage("embeddings", bytemuck::cast_slice(chunk)),
                )
            })
            .collect();
        let rows_in = |start: usize| (n - start).min(block);
        let mut out = Vec::new();
        for (x, (start_a, a)) in blocks.iter().enumerate() {
            for (start_b, b) in &blocks[x..] {
                let params = Params {
                    rows_a: rows_in(*start_a) as u32,
                    rows_b: rows_in(*start_b) as u32,
                    dim: dim as u32,
                    same: (start_a == start_b) as u32,
                    base_a: *start_a as u32,
                    base_b: *start_b as u32,
                    capacity: self.initial_capacity,
                    max_d2,
                };
                let (count, edges) = self.dispatch(params, a, b)?;
                if count > params.capacity {
                    let retry = Params {
                        capacity: count,
                        ..params
                    };
                    out.extend(self.dispatch(retry, a, b)?.1);
                } else {
                    out.extend(edges);
                }
            }
        }
        sort_edges(&mut out);
        Ok(out)
    }

    fn dispatch(
        &self,
        params: Params,
        a: &wgpu::Buffer,
        b: &wgpu::Buffer,
    ) -> Result<(u32, Vec<Edge>), GpuError> {
        let gpu = &self.gpu;
        let params_buf = gpu
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("graph params"),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let (counter, edges) = gpu.append_buffers::<Edge>(params.capacity);
        gpu.dispatch(
            &self.pipeline,
            &[&params_buf, a, b, &counter, &edges],
            (
                (params.rows_b as usize).div_ceil(TILE) as u32,
                (params.rows_a as usize).div_ceil(TILE) as u32,
            ),
        );
        gpu.read_appended(&counter, &edges, params.capacity)
    }
}
