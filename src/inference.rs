//! Which Burn device runs the neural networks (O-Net and FaceNet): Burn's `flex` CPU backend, or
//! its `wgpu` backend on the adapter visage's own GPU plumbing would pick.
//!
//! It chooses a device only; it runs no network and holds no weights.

use burn::tensor::{Device, DeviceKind};

use crate::config::DeviceChoice;
use crate::gpu::{Gpu, GpuError};

/// A Burn device and a description for logs and reports.
#[derive(Clone, Debug)]
pub struct InferenceDevice {
    pub device: Device,
    pub description: String,
    pub is_gpu: bool,
}

impl InferenceDevice {
    pub fn cpu() -> Self {
        InferenceDevice {
            device: Device::flex(),
            description: format!("CPU (Burn flex, {} threads)", rayon::current_num_threads()),
            is_gpu: false,
        }
    }

    /// Burn's wgpu backend on the adapter [`Gpu::open`] ranks first.
    pub fn gpu() -> Result<Self, GpuError> {
        let gpu = Gpu::open()?;
        Ok(Self::on(&gpu))
    }

    fn on(gpu: &Gpu) -> Self {
        use wgpu::DeviceType as T;
        let kind = match gpu.info.device_type {
            T::DiscreteGpu => DeviceKind::DiscreteGpu(0),
            T::IntegratedGpu => DeviceKind::IntegratedGpu(0),
            T::VirtualGpu => DeviceKind::VirtualGpu(0),
            T::Cpu => DeviceKind::Cpu,
            T::Other => DeviceKind::DefaultDevice,
        };
        InferenceDevice {
            device: Device::wgpu(kind),
            description: format!("{} (Burn wgpu)", gpu.describe()),
            is_gpu: true,
        }
    }

    /// `cpu`, `gpu`, or `auto`: a hardware GPU if there is one, else the CPU. A software adapter
    /// (lavapipe) is only used when asked for with `gpu`: networks run far faster on the CPU there.
    pub fn choose(choice: DeviceChoice) -> Result<Self, GpuError> {
        match choice {
            DeviceChoice::Cpu => Ok(Self::cpu()),
            DeviceChoice::Gpu => Self::gpu(),
            DeviceChoice::Auto => Ok(Gpu::open_hardware()
                .map(|gpu| Self::on(&gpu))
                .unwrap_or_else(Self::cpu)),
        }
    }
}
