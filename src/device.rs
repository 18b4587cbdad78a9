//! Where compute runs, decided once per run: `--device` ([`DeviceChoice`]) becomes a [`Device`],
//! which holds the opened GPU (if any) for visage's own WGSL kernels (PICO's scan, the distance
//! graph) and the Burn device ([`InferenceDevice`]) for the neural networks (MTCNN's P-Net, R-Net
//! and O-Net, and FaceNet): Burn's `flex` CPU backend, or its `wgpu` backend on the same adapter.
//! The stages receive it; none of them opens a GPU of its own.
//!
//! `auto` takes a hardware GPU when wgpu finds one and the CPU otherwise: a software adapter
//! (Mesa's lavapipe, SwiftShader, WARP) is far slower than the CPU paths, so only `gpu` uses one.
//! It chooses a device only; it runs no kernel or network and holds no weights.

use std::sync::Arc;

use burn::tensor::DeviceKind;

use crate::config::DeviceChoice;
use crate::gpu::{Gpu, GpuError};

/// The device a run computes on: the GPU for the kernels and the Burn device for the networks.
#[derive(Clone)]
pub struct Device {
    /// The GPU visage's kernels run on; `None`: their CPU twins.
    pub gpu: Option<Arc<Gpu>>,
    /// Where the networks run (Burn wgpu on [`Device::gpu`]'s adapter, or Burn flex).
    pub networks: InferenceDevice,
}

impl Device {
    /// `cpu`, `gpu` (fails when wgpu finds no adapter), or `auto`: a hardware GPU if there is
    /// one, else the CPU (saying which, once per process).
    pub fn choose(choice: DeviceChoice) -> Result<Self, GpuError> {
        Ok(match choice {
            DeviceChoice::Cpu => Self::cpu(),
            DeviceChoice::Gpu => Self::on(Gpu::open()?),
            DeviceChoice::Auto => hardware().map(Self::on).unwrap_or_else(Self::cpu),
        })
    }

    /// The CPU twins and Burn flex.
    pub fn cpu() -> Self {
        Device {
            gpu: None,
            networks: InferenceDevice::cpu(),
        }
    }

    /// Everything on this GPU.
    pub fn on(gpu: Gpu) -> Self {
        Device {
            networks: InferenceDevice::on(&gpu),
            gpu: Some(Arc::new(gpu)),
        }
    }
}

/// What `auto` runs on: a hardware adapter, or `None` when there is only a software one or none.
fn hardware() -> Option<Gpu> {
    static SAID: std::sync::Once = std::sync::Once::new();
    match Gpu::open() {
        Ok(gpu) if !gpu.is_software() => Some(gpu),
        Ok(gpu) => {
            SAID.call_once(|| {
                log::info!(
                    "only a software GPU adapter ({}): running on the CPU (--device gpu uses it anyway)",
                    gpu.info.name
                )
            });
            None
        }
        Err(e) => {
            SAID.call_once(|| log::info!("no GPU: running on the CPU ({e})"));
            None
        }
    }
}

/// A Burn device for the networks and a description for logs and reports.
#[derive(Clone, Debug)]
pub struct InferenceDevice {
    pub device: burn::tensor::Device,
    pub description: String,
    pub is_gpu: bool,
}

impl InferenceDevice {
    pub fn cpu() -> Self {
        InferenceDevice {
            device: burn::tensor::Device::flex(),
            description: format!("CPU (Burn flex, {} threads)", rayon::current_num_threads()),
            is_gpu: false,
        }
    }

    /// Burn's wgpu backend on the adapter [`Gpu::open`] ranks first.
    pub fn gpu() -> Result<Self, GpuError> {
        Ok(Self::on(&Gpu::open()?))
    }

    /// Burn's wgpu backend on the kind of adapter `gpu` is.
    pub fn on(gpu: &Gpu) -> Self {
        use wgpu::DeviceType as T;
        let kind = match gpu.info.device_type {
            T::DiscreteGpu => DeviceKind::DiscreteGpu(0),
            T::IntegratedGpu => DeviceKind::IntegratedGpu(0),
            T::VirtualGpu => DeviceKind::VirtualGpu(0),
            T::Cpu => DeviceKind::Cpu,
            T::Other => DeviceKind::DefaultDevice,
        };
        InferenceDevice {
            device: burn::tensor::Device::wgpu(kind),
            description: format!("{} (Burn wgpu)", gpu.describe()),
            is_gpu: true,
        }
    }
}
