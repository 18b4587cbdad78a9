//! Face verification: MTCNN's O-Net looks at each detection candidate and gives the probability
//! that it is a face, a refined box and 5 landmarks (eyes, nose, mouth corners).
//!
//! Input is candidate boxes on a decoded photo; output is one [`Verified`] per candidate, in the
//! same order. Dropping candidates below a threshold is the caller's choice; this module neither
//! detects nor embeds.

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use rayon::prelude::*;

use super::layers::{floats, normalise};
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
    device: InferenceDevice,
}

impl Verifier {
    pub fn load(path: &Path, device: &InferenceDevice) -> Result<Self, WeightsError> {
        Ok(Verifier {
            net: weights::load_onet(path, &device.device)?,
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
            let side = INPUT_SIDE;
            let mut input = vec![0f32; chunk.len() * 3 * side * side];
            for (((image, _), square), dst) in chunk
                .iter()
                .zip(&squares)
                .zip(input.chunks_exact_mut(3 * side * side))
            {
                let pixels = alignment::crop(image, *square, side as u32);
                alignment::to_chw(&pixels, dst, normalise);
            }
            let x = Tensor::<4>::from_data(
                TensorData::new(input, [chunk.len(), 3, side, side]),
                &self.device.device,
            );
            let y = self.net.forward(x);
            let prob = floats(y.probability);
            let reg = floats(y.regression);
            let marks = floats(y.landmarks);
            for (i, b) in squares.iter().enumerate() {
                let r = &reg[i * 4..i * 4 + 4];
                let (x1, y1) = (b.x + r[0] * b.w, b.y + r[1] * b.h);
                let (x2, y2) = (b.x + b.w + r[2] * b.w, b.y + b.h + r[3] * b.h);
                let m = &marks[i * 10..i * 10 + 10];
                let mut landmarks = [[0f32; 2]; 5];
                for (k, p) in landmarks.iter_mut().enumerate() {
                    *p = [b.x + m[k] * b.w, b.y + m[k + 5] * b.h];
                }
                out.push(Verified {
                    probability: prob[i * 2 + 1],
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
