//! Face verification: MTCNN's O-Net looks at each detection candidate and gives the probability
//! that it is a face, a refined box and 5 landmarks (eyes, nose, mouth corners).
//!
//! Input is candidate boxes on a decoded photo; output is one [`Verified`] per candidate, in the
//! same order. Dropping candidates below a threshold is the caller's choice; this module neither
//! detects nor embeds.

use std::path::Path;

use image::RgbImage;
use rayon::prelude::*;

use super::cpu::{CpuRefiner, Rows};
use super::layers::{batch, floats};
use super::onet::{INPUT_SIDE, ONet};
use super::weights;
use crate::alignment::{self, Landmarks};
use crate::device::InferenceDevice;
use crate::geometry::Rect;
use crate::models::WeightsError;

/// O-Net's verdict on one candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verified {
    /// Probability that the candidate is a face, 0 to 1.
    pub probability: f32,
    /// The box after O-Net's correction, in the photo's pixels.
    pub refined: Rect,
    pub landmarks: Landmarks,
}

/// Candidates verified in one forward pass.
const BATCH: usize = 64;

pub struct Verifier {
    net: ONet,
    /// O-Net prepared for the CPU, where the device is the CPU.
    cpu: Option<CpuRefiner>,
    device: InferenceDevice,
}

impl Verifier {
    pub fn load(path: &Path, device: &InferenceDevice) -> Result<Self, WeightsError> {
        let net = weights::load_onet(path, &device.device)?;
        Ok(Verifier {
            cpu: (!device.is_gpu).then(|| CpuRefiner::onet(&net)),
            net,
            device: device.clone(),
        })
    }

    /// Verify candidate boxes, each on its own image. On the CPU, the candidates are split into
    /// one batch per thread, run side by side (as FaceNet's are).
    pub fn verify(&self, candidates: &[(&RgbImage, Rect)]) -> Vec<Verified> {
        if self.device.is_gpu || candidates.len() < 2 {
            return candidates
                .chunks(BATCH)
                .flat_map(|c| self.verify_batch(c))
                .collect();
        }
        let per = candidates
            .len()
            .div_ceil(rayon::current_num_threads())
            .clamp(1, BATCH);
        let parts: Vec<Vec<Verified>> = candidates
            .par_chunks(per)
            .map(|c| self.verify_batch(c))
            .collect();
        parts.into_iter().flatten().collect()
    }

    fn verify_batch(&self, chunk: &[(&RgbImage, Rect)]) -> Vec<Verified> {
        let mut out = Vec::with_capacity(chunk.len());
        {
            let squares: Vec<Rect> = chunk.iter().map(|(_, b)| b.square()).collect();
            let crops: Vec<Vec<u8>> = chunk
                .iter()
                .zip(&squares)
                .map(|((image, _), square)| alignment::crop(image, *square, INPUT_SIDE as u32))
                .collect();
            let rows = match &self.cpu {
                Some(cpu) => cpu.forward(&crops.concat(), chunk.len()),
                None => {
                    let x = batch(&crops, INPUT_SIDE, &self.device.device);
                    let y = self.net.forward(x);
                    let (prob, reg) = (floats(y.probability), floats(y.regression));
                    let marks = floats(y.landmarks);
                    Rows::from_rows(chunk.len(), &[(&prob, 2), (&reg, 4), (&marks, 10)])
                }
            };
            for (i, b) in squares.iter().enumerate() {
                let r = rows.regression(i);
                let (x1, y1) = (b.x + r[0] * b.w, b.y + r[1] * b.h);
                let (x2, y2) = (b.x + b.w + r[2] * b.w, b.y + b.h + r[3] * b.h);
                let m = rows.landmarks(i);
                let mut landmarks = [[0f32; 2]; 5];
                for (k, p) in landmarks.iter_mut().enumerate() {
                    *p = [b.x + m[k] * b.w, b.y + m[k + 5] * b.h];
                }
                out.push(Verified {
                    probability: rows.face(i),
                    refined: Rect {
                        x: x1,
                        y: y1,
                        w: x2 - x1,
                        h: y2 - y1,
                    },
                    landmarks,
                });
            }
        }
        out
    }
}
