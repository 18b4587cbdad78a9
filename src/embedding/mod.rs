//! Embedding: a 160x160 face crop becomes a 512-d unit vector, computed by FaceNet
//! ([`facenet`]) with weights imported from the pretrained TensorFlow graph ([`weights`],
//! [`graphdef`]) on the chosen Burn device, in batches.
//!
//! On the CPU the forward pass runs through [`cpu`], the same network prepared once for fast
//! matrix products; elsewhere through Burn. Input is already cut faces (see `alignment`); this
//! module does not detect, verify or crop.

pub mod cpu;
pub mod facenet;
pub mod graphdef;
pub mod weights;

use std::path::{Path, PathBuf};

use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use crate::alignment::to_chw;
pub use crate::config::Precision;
use crate::device::InferenceDevice;
use crate::models::WeightsError;
use facenet::FaceNet;
pub use facenet::{EMBEDDING_DIM, INPUT_SIDE};

/// A face's embedding: 512 floats of unit length.
pub type Embedding = Vec<f32>;

/// Faces embedded in one forward pass.
pub const BATCH: usize = 32;

/// Version of the cached Burn record's layout; bump it when [`FaceNet`]'s modules change.
const RECORD_VERSION: u32 = 1;

/// How crop pixels are scaled before the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
pub enum Standardisation {
    /// `(x - 127.5) / 128`, the same for every face.
    #[default]
    Fixed,
    /// Per face: subtract its mean, divide by its standard deviation (davidsandberg's prewhiten).
    Prewhiten,
}

impl Standardisation {
    /// HWC RGB bytes to CHW floats.
    pub fn apply(self, pixels: &[u8], dst: &mut [f32]) {
        match self {
            Standardisation::Fixed => to_chw(pixels, dst, |v| (v - 127.5) / 128.0),
            Standardisation::Prewhiten => {
                let n = pixels.len() as f64;
                let mean = pixels.iter().map(|&v| v as f64).sum::<f64>() / n;
                let var = pixels
                    .iter()
                    .map(|&v| (v as f64 - mean).powi(2))
                    .sum::<f64>()
                    / n;
                let std = var.sqrt().max(1.0 / n.sqrt());
                let (mean, std) = (mean as f32, std as f32);
                to_chw(pixels, dst, |v| (v - mean) / std)
            }
        }
    }
}

pub struct Embedder {
    net: Net,
    device: InferenceDevice,
    pub standardisation: Standardisation,
}

/// What runs the network.
enum Net {
    /// Burn's module: on a GPU, and as the reference on the CPU ([`Embedder::load_burn`]).
    Burn(Box<FaceNet>),
    /// The forward pass prepared for the CPU. The Burn module it was built from is not kept:
    /// its weights would be held twice (90 MB).
    Cpu(Box<cpu::CpuFaceNet>),
}

impl Embedder {
    /// Load FaceNet from the cached Burn record next to `graph`, or import the graph and write
    /// that record for next time; on the CPU, from the network kept packed beside it, its
    /// products in bf16 where the CPU has AVX-512 BF16 ([`Precision::Auto`]).
    pub fn load(graph: &Path, device: &InferenceDevice) -> Result<Self, WeightsError> {
        Self::load_with(graph, device, Precision::default())
    }

    /// [`Embedder::load`], its products on the CPU in `precision`.
    pub fn load_with(
        graph: &Path,
        device: &InferenceDevice,
        precision: Precision,
    ) -> Result<Self, WeightsError> {
        if device.is_gpu {
            return Ok(Self::with_net(Self::load_net(graph, device)?, device));
        }
        // On the CPU, the network as packed for it is kept beside the record: packing it again
        // at every start (reading the record and reordering 90 MB) took a tenth of a second. In
        // bf16 where the CPU runs it so (half the bytes, nothing to pack at the start), in f32
        // elsewhere: two files, so machines of both kinds can share a models folder.
        let precision = precision.on_this_cpu();
        let (record, prepared) = (record_path(graph), prepared_path(graph, precision));
        let kept = stamp(&record).and_then(|s| cpu::CpuFaceNet::open(&prepared, s));
        let net = match kept {
            Ok(net) => net,
            Err(e) => {
                if prepared.exists() {
                    log::debug!("{}: {e}; preparing FaceNet again", prepared.display());
                }
                let mut net = cpu::CpuFaceNet::new(Self::load_net(graph, device)?);
                if precision == Precision::Bf16 {
                    net.to_bf16();
                }
                if let Err(e) = stamp(&record).and_then(|s| net.save(&prepared, s)) {
                    log::debug!(
                        "cannot keep FaceNet prepared in {}: {e}",
                        prepared.display()
                    );
                }
                net
            }
        };
        Ok(Embedder {
            net: Net::Cpu(Box::new(net)),
            device: device.clone(),
            standardisation: Standardisation::Fixed,
        })
    }

    /// [`Embedder::load`], running Burn's own forward pass even on the CPU: the reference the
    /// prepared CPU pass is tested against.
    pub fn load_burn(graph: &Path, device: &InferenceDevice) -> Result<Self, WeightsError> {
        Ok(Embedder {
            net: Net::Burn(Box::new(Self::load_net(graph, device)?)),
            device: device.clone(),
            standardisation: Standardisation::Fixed,
        })
    }

    fn load_net(graph: &Path, device: &InferenceDevice) -> Result<FaceNet, WeightsError> {
        let record = record_path(graph);
        let net = match weights::load_record(&record, &device.device) {
            Ok(net) => net,
            Err(e) => {
                if record.exists() {
                    log::warn!("{e}; importing the graph again");
                }
                let net = weights::import_graph(graph, &device.device)?;
                // Burn writes a record aside and renames it into place: a concurrent reader
                // never sees half a record.
                if let Err(e) = weights::save_record(&net, &record) {
                    log::warn!("cannot cache the imported FaceNet: {e}");
                }
                net
            }
        };
        Ok(net)
    }

    /// Import straight from the graph, bypassing the cached record (for tests).
    pub fn import(graph: &Path, device: &InferenceDevice) -> Result<Self, WeightsError> {
        Ok(Self::with_net(
            weights::import_graph(graph, &device.device)?,
            device,
        ))
    }

    fn with_net(net: FaceNet, device: &InferenceDevice) -> Self {
        Embedder {
            net: if device.is_gpu {
                Net::Burn(Box::new(net))
            } else {
                Net::Cpu(Box::new(cpu::CpuFaceNet::new(net)))
            },
            device: device.clone(),
            standardisation: Standardisation::Fixed,
        }
    }

    pub fn device(&self) -> &InferenceDevice {
        &self.device
    }

    /// The arithmetic the network's products run in.
    pub fn precision(&self) -> Precision {
        match &self.net {
            Net::Cpu(net) if net.is_bf16() => Precision::Bf16,
            _ => Precision::F32,
        }
    }

    /// FaceNet with Burn's random initial weights: for measuring speed where the real weights
    /// cannot be had (a lent GPU machine reaches no package registry); its vectors mean nothing.
    pub fn untrained(device: &InferenceDevice) -> Self {
        Self::with_net(FaceNet::new(&device.device), device)
    }

    /// Embed 160x160 RGB crops (HWC bytes), [`BATCH`] at a time.
    pub fn embed(&self, crops: &[Vec<u8>]) -> Vec<Embedding> {
        self.embed_in_batches(crops, BATCH)
    }

    /// [`Embedder::embed`] with `batch` crops per forward pass.
    pub fn embed_in_batches(&self, crops: &[Vec<u8>], batch: usize) -> Vec<Embedding> {
        let mut out = Vec::with_capacity(crops.len());
        for chunk in crops.chunks(batch.max(1)) {
            // On the CPU, one sub-batch per thread, run side by side: flex parallelises inside each
            // operation, but its single-threaded passes (bias, activations, layout copies) leave
            // cores idle; two forward passes fill each other's gaps (47 -> 71 faces/s on 2 cores,
            // BENCHMARKS.md).
            let parts = rayon::current_num_threads().min(chunk.len());
            if parts > 1 && !self.device.is_gpu {
                let per = chunk.len().div_ceil(parts);
                let ys: Vec<Vec<Embedding>> =
                    chunk.par_chunks(per).map(|c| self.forward(c)).collect();
                out.extend(ys.into_iter().flatten());
            } else {
                out.extend(self.forward(chunk));
            }
        }
        out
    }

    /// One forward pass over `chunk`.
    fn forward(&self, chunk: &[Vec<u8>]) -> Vec<Embedding> {
        let side = INPUT_SIDE;
        let plane = 3 * side * side;
        let mut input = vec![0f32; chunk.len() * plane];
        for (crop, dst) in chunk.iter().zip(input.chunks_exact_mut(plane)) {
            assert_eq!(crop.len(), plane, "FaceNet crops are 160x160 RGB");
            self.standardisation.apply(crop, dst);
        }
        let net = match &self.net {
            Net::Cpu(cpu) => return cpu.forward(&input, chunk.len()),
            Net::Burn(net) => net,
        };
        let x = Tensor::<4>::from_data(
            TensorData::new(input, [chunk.len(), 3, side, side]),
            &self.device.device,
        );
        let y = net
            .forward(x)
            .into_data()
            .try_into_vec::<f32>()
            .expect("FaceNet computes in f32");
        y.chunks_exact(EMBEDDING_DIM).map(|e| e.to_vec()).collect()
    }
}

/// Where the imported network is cached: next to the graph.
pub fn record_path(graph: &Path) -> PathBuf {
    graph.with_file_name(format!("facenet-burn-v{RECORD_VERSION}.bpk"))
}

/// Where FaceNet prepared for the CPU is kept, per precision it runs in: beside the record it is
/// packed from.
pub fn prepared_path(graph: &Path, precision: Precision) -> PathBuf {
    graph.with_file_name(match precision {
        Precision::F32 => "facenet-cpu.bin",
        Precision::Bf16 => "facenet-cpu-bf16.bin",
        Precision::Auto => return prepared_path(graph, precision.on_this_cpu()),
    })
}

/// What identifies the record a prepared network was packed from: its length and when it was
/// written (a record written again, even with the same weights, is packed again).
fn stamp(record: &Path) -> std::io::Result<[u64; 2]> {
    let meta = std::fs::metadata(record)?;
    let written = meta
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(std::io::Error::other)?;
    Ok([meta.len(), written.as_nanos() as u64])
}

/// Euclidean distance between two embeddings.
pub fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}
