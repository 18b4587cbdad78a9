//! The second proposal source: MTCNN's P-Net slides over an image pyramid and R-Net re-scores what
//! it proposes. It finds what the PICO cascade cannot reach (faces cut by the frame or filling it,
//! turned heads); its boxes go to O-Net ([`super::verify`]) with PICO's, which decides what is a
//! face.
//!
//! Input is decoded photos in detection pixels; output is candidate boxes with R-Net's probability.
//! It does not verify, merge with PICO's candidates, or embed.

use std::path::Path;

use burn::tensor::{Tensor, TensorData};
use image::RgbImage;
use rayon::prelude::*;

use super::cpu::{CpuPNet, CpuRefiner, Rows};
use super::layers::{batch, floats, normalise};
use super::pnet::{self, PNet};
use super::rnet::{self, RNet};
use super::weights;
use crate::alignment;
use crate::device::InferenceDevice;
use crate::geometry::Rect;
use crate::models::WeightsError;

/// Each pyramid level is this factor of the one before (MTCNN's).
pub const PYRAMID_FACTOR: f32 = 0.709;
/// P-Net and R-Net probability a proposal needs at each stage (MTCNN's 0.6 and 0.7).
pub const PNET_THRESHOLD: f32 = 0.6;
pub const RNET_THRESHOLD: f32 = 0.7;
/// Overlapping proposals are reduced by non-maximum suppression at these IoUs: within a pyramid
/// level, across levels, and after R-Net (MTCNN's).
const LEVEL_NMS: f32 = 0.5;
const PHOTO_NMS: f32 = 0.7;
/// Overlap (IoU of the squared boxes) above which a candidate is a face already known.
pub const KNOWN_IOU: f32 = 0.3;
/// R-Net candidates per forward pass.
const BATCH: usize = 128;

/// A face candidate from MTCNN, in the photo's (detection) pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal {
    pub region: Rect,
    /// R-Net's face probability.
    pub probability: f32,
}

/// P-Net and R-Net on their device.
pub struct Proposer {
    pnet: PNet,
    rnet: RNet,
    /// The two prepared for the CPU, where the device is the CPU.
    cpu: Option<(CpuPNet, CpuRefiner)>,
    device: InferenceDevice,
}

impl Proposer {
    pub fn load(pnet: &Path, rnet: &Path, device: &InferenceDevice) -> Result<Self, WeightsError> {
        let (pnet, rnet) = (
            weights::load_pnet(pnet, &device.device)?,
            weights::load_rnet(rnet, &device.device)?,
        );
        Ok(Proposer {
            cpu: (!device.is_gpu).then(|| (CpuPNet::new(&pnet), CpuRefiner::rnet(&rnet))),
            pnet,
            rnet,
            device: device.clone(),
        })
    }

    /// Proposals for faces of at least `min_size` px in each image, best first. Faces another
    /// detector already put forward (`known`, per image) are not proposed again: candidates that
    /// overlap one by more than [`KNOWN_IOU`] are dropped before R-Net and after it.
    pub fn propose(
        &self,
        images: &[&RgbImage],
        min_size: u32,
        known: &[Vec<Rect>],
    ) -> Vec<Vec<Proposal>> {
        let new = |i: usize, b: &Rect| {
            known
                .get(i)
                .is_none_or(|k| k.iter().all(|k| k.square().iou(&b.square()) <= KNOWN_IOU))
        };
        // P-Net: one task per (image, pyramid level), side by side.
        let tasks: Vec<(usize, f32)> = images
            .iter()
            .enumerate()
            .flat_map(|(i, im)| pyramid(im.width(), im.height(), min_size).map(move |s| (i, s)))
            .collect();
        let found: Vec<(usize, Vec<Proposal>)> = tasks
            .par_iter()
            .map(|&(i, scale)| (i, self.pnet_level(images[i], scale)))
            .collect();
        let mut per_image: Vec<Vec<Proposal>> = vec![Vec::new(); images.len()];
        for (i, p) in found {
            per_image[i].extend(p);
        }
        // One list of squared boxes for R-Net across all images.
        let mut candidates: Vec<(usize, Rect)> = Vec::new();
        for (i, p) in per_image.into_iter().enumerate() {
            candidates.extend(
                nms(p, PHOTO_NMS)
                    .into_iter()
                    .filter(|p| new(i, &p.region))
                    .map(|p| (i, p.region.square())),
            );
        }
        let scored: Vec<Proposal> = if self.device.is_gpu {
            candidates
                .chunks(BATCH)
                .flat_map(|c| self.rnet_batch(images, c))
                .collect()
        } else {
            let per = candidates
                .len()
                .div_ceil(rayon::current_num_threads())
                .clamp(1, BATCH);
            candidates
                .par_chunks(per)
                .flat_map_iter(|c| self.rnet_batch(images, c))
                .collect()
        };
        let mut out: Vec<Vec<Proposal>> = vec![Vec::new(); images.len()];
        for ((i, _), p) in candidates.iter().zip(scored) {
            if p.probability > RNET_THRESHOLD && new(*i, &p.region) {
                out[*i].push(p);
            }
        }
        out.into_iter().map(|p| nms(p, PHOTO_NMS)).collect()
    }

    /// P-Net over one pyramid level: the cells that pass, as boxes in the image's pixels with
    /// P-Net's correction applied, reduced by NMS.
    fn pnet_level(&self, image: &RgbImage, scale: f32) -> Vec<Proposal> {
        let (w, h) = image.dimensions();
        // MTCNN's level size: int(side * scale + 1).
        let (sw, sh) = (
            (w as f32 * scale + 1.0) as usize,
            (h as f32 * scale + 1.0) as usize,
        );
        if pnet::output_side(sw) == 0 || pnet::output_side(sh) == 0 {
            return Vec::new();
        }
        let whole = Rect {
            x: 0.0,
            y: 0.0,
            w: w as f32,
            h: h as f32,
        };
        let pixels = alignment::crop_rect(image, whole, sw as u32, sh as u32);
        let (oh, ow) = (pnet::output_side(sh), pnet::output_side(sw));
        let rows = match &self.cpu {
            Some((cpu, _)) => cpu.forward(&pixels, sh, sw),
            None => {
                let mut input = vec![0f32; 3 * sw * sh];
                alignment::to_chw(&pixels, &mut input, normalise);
                let x = Tensor::<4>::from_data(
                    TensorData::new(input, [1, 3, sh, sw]),
                    &self.device.device,
                );
                let y = self.pnet.forward(x);
                debug_assert_eq!(y.probability.dims(), [1, 2, oh, ow]);
                let (prob, reg) = (floats(y.probability), floats(y.regression));
                Rows::from_planes(oh * ow, &[(&prob, 2), (&reg, 4)])
            }
        };
        let mut out = Vec::new();
        for cy in 0..oh {
            for cx in 0..ow {
                let k = cy * ow + cx;
                let p = rows.face(k);
                if p < PNET_THRESHOLD {
                    continue;
                }
                // The cell's window in the image (MTCNN's generateBoundingBox), then corrected.
                let x1 = ((pnet::STRIDE * cx as f32 + 1.0) / scale).floor();
                let y1 = ((pnet::STRIDE * cy as f32 + 1.0) / scale).floor();
                let x2 = ((pnet::STRIDE * cx as f32 + pnet::CELL) / scale).floor();
                let y2 = ((pnet::STRIDE * cy as f32 + pnet::CELL) / scale).floor();
                let r = rows.regression(k);
                out.push(Proposal {
                    region: corrected([x1, y1, x2, y2], [r[0], r[1], r[2], r[3]]),
                    probability: p,
                });
            }
        }
        nms(out, LEVEL_NMS)
    }

    /// R-Net on squared candidates: its probability and corrected box for each, in order.
    fn rnet_batch(&self, images: &[&RgbImage], chunk: &[(usize, Rect)]) -> Vec<Proposal> {
        let side = rnet::INPUT_SIDE as u32;
        let crops: Vec<Vec<u8>> = chunk
            .iter()
            .map(|(i, b)| alignment::crop(images[*i], *b, side))
            .collect();
        let rows = match &self.cpu {
            Some((_, cpu)) => cpu.forward(&crops.concat(), chunk.len()),
            None => {
                let x = batch(&crops, side as usize, &self.device.device);
                let y = self.rnet.forward(x);
                let (prob, reg) = (floats(y.probability), floats(y.regression));
                Rows::from_rows(chunk.len(), &[(&prob, 2), (&reg, 4)])
            }
        };
        chunk
            .iter()
            .enumerate()
            .map(|(k, (_, b))| {
                let r = rows.regression(k);
                Proposal {
                    region: corrected([b.x, b.y, b.x + b.w, b.y + b.h], [r[0], r[1], r[2], r[3]]),
                    probability: rows.face(k),
                }
            })
            .collect()
    }
}

/// Pyramid scales for faces of at least `min_size` px: the first maps `min_size` onto P-Net's
/// 12 px cell, each next one is [`PYRAMID_FACTOR`] smaller, while the image's short side is at
/// least 12 px.
pub fn pyramid(width: u32, height: u32, min_size: u32) -> impl Iterator<Item = f32> {
    let first = pnet::CELL / min_size.max(12) as f32;
    let short = width.min(height) as f32;
    std::iter::successors(Some(first), |s| Some(s * PYRAMID_FACTOR))
        .take_while(move |s| short * s >= pnet::CELL)
}

/// A box `[x1, y1, x2, y2]` moved by a network's regression, in units of its width and height.
fn corrected([x1, y1, x2, y2]: [f32; 4], r: [f32; 4]) -> Rect {
    let (w, h) = (x2 - x1, y2 - y1);
    let (a, b) = (x1 + r[0] * w, y1 + r[1] * h);
    let (c, d) = (x2 + r[2] * w, y2 + r[3] * h);
    Rect {
        x: a,
        y: b,
        w: c - a,
        h: d - b,
    }
}

/// Greedy non-maximum suppression: most probable first, dropping any that overlaps a kept one
/// by more than `iou`.
pub fn nms(mut boxes: Vec<Proposal>, iou: f32) -> Vec<Proposal> {
    boxes.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    let mut kept: Vec<Proposal> = Vec::with_capacity(boxes.len());
    for b in boxes {
        if kept.iter().all(|k| k.region.iou(&b.region) <= iou) {
            kept.push(b);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyramid_maps_the_minimum_face_onto_a_cell_and_stops_at_the_cell() {
        let scales: Vec<f32> = pyramid(640, 480, 48).collect();
        assert!((scales[0] - 0.25).abs() < 1e-6);
        let last = *scales.last().unwrap();
        assert!(480.0 * last >= 12.0 && 480.0 * last * PYRAMID_FACTOR < 12.0);
        assert_eq!(pyramid(11, 100, 20).count(), 0);
        assert_eq!(pnet::output_side(12), 1);
        assert_eq!(pnet::output_side(14), 2);
        assert_eq!(pnet::output_side(11), 0);
    }

    #[test]
    fn nms_keeps_the_most_probable_of_overlapping_boxes() {
        let b = |x: f32, p: f32| Proposal {
            region: Rect {
                x,
                y: 0.0,
                w: 10.0,
                h: 10.0,
            },
            probability: p,
        };
        let kept = nms(vec![b(0.0, 0.7), b(1.0, 0.9), b(30.0, 0.8)], 0.5);
        assert_eq!(kept, vec![b(1.0, 0.9), b(30.0, 0.8)]);
    }
}
