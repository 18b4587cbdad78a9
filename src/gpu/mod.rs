//! GPU plumbing: finding a wgpu adapter, opening a device, and the small helpers every compute
//! kernel's host code shares (buffers, readback). It holds no kernel and no algorithm, and does
//! not decide which adapter a run uses (`device` does, once).

use std::sync::mpsc;

use thiserror::Error;
use wgpu::util::DeviceExt;

// The messages carry wgpu's error itself, and no variant has a `source`, so a printed chain
// (`{:#}`) says it once.
#[derive(Debug, Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found (wgpu saw none; on Linux install a Vulkan driver, e.g. mesa-vulkan-drivers)"
    )]
    NoAdapter,
    #[error("could not open the GPU device {adapter}: {error}")]
    Device {
        adapter: String,
        error: wgpu::RequestDeviceError,
    },
    #[error("GPU work failed: {0}")]
    Poll(wgpu::PollError),
    #[error("reading GPU results failed: {0}")]
    Map(wgpu::BufferAsyncError),
    #[error("reading GPU results failed: {0}")]
    MapRange(wgpu::MapRangeError),
    #[error("GPU input too large: {0}")]
    TooLarge(String),
}

impl From<wgpu::PollError> for GpuError {
    fn from(e: wgpu::PollError) -> Self {
        GpuError::Poll(e)
    }
}

impl From<wgpu::BufferAsyncError> for GpuError {
    fn from(e: wgpu::BufferAsyncError) -> Self {
        GpuError::Map(e)
    }
}

impl From<wgpu::MapRangeError> for GpuError {
    fn from(e: wgpu::MapRangeError) -> Self {
        GpuError::MapRange(e)
    }
}

/// An open GPU device and its queue.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
}

impl Gpu {
    /// Open the best adapter wgpu finds: a discrete GPU, then an integrated or virtual one, then a
    /// software rasteriser such as Mesa's lavapipe. Vulkan, Metal and DX12 are asked (not OpenGL,
    /// whose probing prints driver errors on machines without a display); `WGPU_BACKEND` chooses
    /// others.
    pub fn open() -> Result<Self, GpuError> {
        let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
        adapters.retain(|a| {
            a.get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
        });
        adapters.sort_by_key(|a| rank(a.get_info().device_type));
        let adapter = adapters.into_iter().next().ok_or(GpuError::NoAdapter)?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("visage"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|error| GpuError::Device {
            adapter: info.name.clone(),
            error,
        })?;
        Ok(Gpu {
            device,
            queue,
            info,
            limits,
        })
    }

    /// True for a CPU-emulated adapter (lavapipe, SwiftShader, WARP).
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// "name (backend, kind)" for log lines.
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }

    /// A read-only storage buffer holding `data` (at least 4 bytes, as bindings need).
    pub fn storage(&self, label: &str, data: &[u8]) -> wgpu::Buffer {
        let padded;
        let contents = if data.len() < 4 {
            padded = [data, &[0u8; 4][data.len()..]].concat();
            &padded[..]
        } else {
            data
        };
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            })
    }

    /// Compile a WGSL compute shader whose entry point is `main`.
    pub fn pipeline(&self, label: &str, wgsl: &str) -> wgpu::ComputePipeline {
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(wgsl.into()),
            });
        self.device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(label),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            })
    }

    /// Bind `buffers` in order as bindings 0, 1, ... of group 0 and dispatch `groups` (x, y)
    /// workgroups of `pipeline`.
    pub fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[&wgpu::Buffer],
        groups: (u32, u32),
    ) {
        let layout = pipeline.get_bind_group_layout(0);
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, 1);
        }
        self.queue.submit([encoder.finish()]);
    }

    /// A zeroed `u32` counter and room for `capacity` items of `T`, for a kernel that appends its
    /// results through an atomic counter.
    pub fn append_buffers<T: bytemuck::Pod>(&self, capacity: u32) -> (wgpu::Buffer, wgpu::Buffer) {
        let counter = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("append count"),
                contents: &[0u8; 4],
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            });
        let items = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("appended items"),
            size: (capacity.max(1) as u64) * size_of::<T>() as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        (counter, items)
    }

    /// What a kernel appended: the count it reached (which may exceed `capacity`: then rerun with
    /// more room) and the items that fitted.
    pub fn read_appended<T: bytemuck::Pod>(
        &self,
        counter: &wgpu::Buffer,
        items: &wgpu::Buffer,
        capacity: u32,
    ) -> Result<(u32, Vec<T>), GpuError> {
        let count = u32::from_le_bytes(self.read(counter, 4)?.try_into().expect("4 bytes"));
        let kept = count.min(capacity) as u64;
        let raw = self.read(items, kept * size_of::<T>() as u64)?;
        Ok((count, bytemuck::pod_collect_to_vec(&raw)))
    }

    /// Copy the first `bytes` of `buffer` back to the host (waits for the queue).
    pub fn read(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>, GpuError> {
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.device.poll(wgpu::PollType::wait_indefinitely())?;
        rx.recv().expect("map callback ran")?;
        let out = staging.get_mapped_range(..)?.to_vec();
        staging.unmap();
        Ok(out)
    }
}

fn rank(kind: wgpu::DeviceType) -> u8 {
    match kind {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Workgroup counts (x, y) covering `groups` workgroups within the per-dimension limit.
pub fn dispatch_grid(groups: u32, max_per_dim: u32) -> (u32, u32) {
    let x = groups.clamp(1, max_per_dim);
    (x, groups.div_ceil(x).max(1))
}
