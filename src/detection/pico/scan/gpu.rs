//! Host code of `shaders/pico_scan.wgsl`: uploads the cascade once, then scans batches of images
//! (all levels of all images in one dispatch) and returns each image's hits in canonical order.
//! Its CPU twin is [`super::cpu`].

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};

use super::{Hit, ScanInput, sort_hits};
use crate::detection::pico::cascade::Cascade;
use crate::gpu::{Gpu, GpuError, dispatch_grid};

const SHADER: &str = include_str!("../../../../shaders/pico_scan.wgsl");
const WORKGROUP: u32 = 64;
/// Hits room reserved before the first try; a batch with more is rerun with exactly enough room.
const MIN_CAPACITY: u32 = 1 << 16;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params {
    total_windows: u32,
    level_count: u32,
    capacity: u32,
    tree_count: u32,
    depth: u32,
    groups_x: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GpuLevel {
    first_window: u32,
    cols: u32,
    size: u32,
    step: u32,
    offset: u32,
    qcos: i32,
    qsin: i32,
    image: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GpuImage {
    word_offset: u32,
    width: u32,
    height: u32,
    /// `Padding::code` of the image's plan.
    padding: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GpuHit {
    level: u32,
    row: u32,
    col: u32,
    score: f32,
}

/// The cascade on the GPU, ready to scan.
pub struct GpuScanner {
    gpu: Arc<Gpu>,
    pipeline: wgpu::ComputePipeline,
    codes: wgpu::Buffer,
    leaves: wgpu::Buffer,
    thresholds: wgpu::Buffer,
    tree_count: u32,
    depth: u32,
    initial_capacity: u32,
}

impl GpuScanner {
    pub fn new(gpu: Arc<Gpu>, cascade: &Cascade) -> Self {
        let pipeline = gpu.pipeline("pico_scan.wgsl", SHADER);
        GpuScanner {
            codes: gpu.storage("cascade codes", bytemuck::cast_slice(&cascade.codes)),
            leaves: gpu.storage("cascade leaves", bytemuck::cast_slice(&cascade.leaves)),
            thresholds: gpu.storage(
                "cascade thresholds",
                bytemuck::cast_slice(&cascade.thresholds),
            ),
            tree_count: cascade.tree_count() as u32,
            depth: cascade.depth,
            initial_capacity: MIN_CAPACITY,
            pipeline,
            gpu,
        }
    }

    /// Room for hits reserved before the first try (a larger count is rerun with enough room).
    pub fn set_initial_capacity(&mut self, hits: u32) {
        self.initial_capacity = hits.max(1);
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// Scan several images in one submission; one hit list per input, in canonical order.
    pub fn scan_batch(&self, inputs: &[ScanInput]) -> Result<Vec<Vec<Hit>>, GpuError> {
        let mut pixels: Vec<u32> = Vec::new();
        let mut images = Vec::with_capacity(inputs.len());
        let mut levels = Vec::new();
        // Batch-wide level index -> (image, level of that image's plan).
        let mut owners = Vec::new();
        let mut total: u64 = 0;
        for (i, input) in inputs.iter().enumerate() {
            assert_eq!(input.pixels.len(), (input.width * input.height) as usize);
            images.push(GpuImage {
                word_offset: pixels.len() as u32,
                width: input.width,
                height: input.height,
                padding: input.plan.padding.code(),
            });
            pixels.extend(input.pixels.chunks(4).map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(w)
            }));
            for (l, level) in input.plan.levels.iter().enumerate() {
                levels.push(GpuLevel {
                    first_window: total as u32,
                    cols: level.cols,
                    size: level.size,
                    step: level.step,
                    offset: level.offset,
                    qcos: level.qcos,
                    qsin: level.qsin,
                    image: i as u32,
                });
                owners.push((i, l as u32));
                total += level.windows();
            }
        }
        let mut out = vec![Vec::new(); inputs.len()];
        if total == 0 {
            return Ok(out);
        }
        if total > u32::MAX as u64 / 2 {
            return Err(GpuError::TooLarge(format!("{total} windows in one batch")));
        }
        let pixel_bytes = pixels.len() as u64 * 4;
        if pixel_bytes > self.gpu.limits.max_storage_buffer_binding_size {
            return Err(GpuError::TooLarge(format!(
                "{pixel_bytes} bytes of pixels in one batch"
            )));
        }
        let total = total as u32;
        let pixels = self.gpu.storage("pixels", bytemuck::cast_slice(&pixels));
        let levels_buf = self.gpu.storage("levels", bytemuck::cast_slice(&levels));
        let images_buf = self.gpu.storage("images", bytemuck::cast_slice(&images));

        let mut capacity = self.initial_capacity;
        let hits = loop {
            let (count, raw) = self.dispatch(
                total,
                levels.len() as u32,
                capacity,
                &pixels,
                &levels_buf,
                &images_buf,
            )?;
            if count <= capacity {
                break raw;
            }
            capacity = count;
        };
        for h in hits {
            let (image, level) = owners[h.level as usize];
            out[image].push(Hit {
                level,
                row: h.row,
                col: h.col,
                score: h.score,
            });
        }
        for hits in &mut out {
            sort_hits(hits);
        }
        Ok(out)
    }

    fn dispatch(
        &self,
        total: u32,
        level_count: u32,
        capacity: u32,
        pixels: &wgpu::Buffer,
        levels: &wgpu::Buffer,
        images: &wgpu::Buffer,
    ) -> Result<(u32, Vec<GpuHit>), GpuError> {
        let gpu = &self.gpu;
        let groups = total.div_ceil(WORKGROUP);
        let (gx, gy) = dispatch_grid(groups, gpu.limits.max_compute_workgroups_per_dimension);
        let params = Params {
            total_windows: total,
            level_count,
            capacity,
            tree_count: self.tree_count,
            depth: self.depth,
            groups_x: gx,
            _pad: [0; 2],
        };
        let params_buf = wgpu::util::DeviceExt::create_buffer_init(
            &gpu.device,
            &wgpu::util::BufferInitDescriptor {
                label: Some("scan params"),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            },
        );
        let (counter, hits) = gpu.append_buffers::<GpuHit>(capacity);
        gpu.dispatch(
            &self.pipeline,
            &[
                &params_buf,
                &self.codes,
                &self.leaves,
                &self.thresholds,
                pixels,
                levels,
                images,
                &counter,
                &hits,
            ],
            (gx, gy),
        );
        gpu.read_appended(&counter, &hits, capacity)
    }
}
