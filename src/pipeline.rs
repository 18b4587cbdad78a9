//! The chain photo → detection → alignment → embedding: the detection stage's faces
//! ([`Detector`]) are cut out (box with margin, or landmark alignment) and embedded by FaceNet, in
//! batches across photos, each coming out as a [`FoundFace`]; [`Pipeline::embed_boxes`] does the
//! same for boxes a person marked. Every stage runs on the one [`Device`] it is given.
//!
//! This is the composition of the stages and nothing more: each stage's algorithm lives in its own
//! module, and nothing here reads files or stores results.

use std::time::Instant;

use image::RgbImage;
use rayon::prelude::*;
use serde::Serialize;

use crate::alignment::{self, Landmarks};
use crate::config::{CropMethod, Settings};
use crate::detection::{Candidate, DetectError, DetectTimes, Detector, FoundFace};
use crate::device::Device;
use crate::embedding::{Embedder, Embedding, INPUT_SIDE};
use crate::geometry::Rect;
use crate::models::{self, ModelError, Models};
use crate::photo::{Detail, Photo};

/// Total margin added around the O-Net box before cutting (0.2: 10% each side).
pub const BOX_MARGIN: f32 = 0.2;

/// Where the landmarks sit in a 160x160 [`CropMethod::Landmarks`] crop: the mean positions they
/// take in [`CropMethod::Box`] crops of the 5-celebrity set and the group photo (109 faces),
/// mirrored to be symmetric, so both crops frame a face alike (`benches/peers/verify_threshold.py
/// template`).
pub const LANDMARK_TEMPLATE: Landmarks = [
    [50.3, 65.0],
    [109.7, 65.0],
    [80.0, 93.0],
    [53.2, 113.2],
    [106.8, 113.2],
];

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Models(#[from] ModelError),
    /// Transparent: [`DetectError`] names the cascade file or the GPU itself.
    #[error(transparent)]
    Detect(#[from] DetectError),
    /// These two carry their error in the message and have no `source`, so a printed chain
    /// (`{:#}`) says it once.
    #[error("FaceNet: {0}")]
    Embed(crate::models::WeightsError),
    #[error("GPU: {0}")]
    Gpu(crate::gpu::GpuError),
}

impl From<crate::models::WeightsError> for PipelineError {
    fn from(e: crate::models::WeightsError) -> Self {
        PipelineError::Embed(e)
    }
}

impl From<crate::gpu::GpuError> for PipelineError {
    fn from(e: crate::gpu::GpuError) -> Self {
        PipelineError::Gpu(e)
    }
}

/// Seconds a batch spent in each stage (wall time; each stage uses every core).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StageTimes {
    /// PICO scan and merge.
    pub detect: f64,
    /// MTCNN's P-Net and R-Net proposals.
    pub propose: f64,
    /// O-Net verification, landmarks and box refinement.
    pub onet: f64,
    /// Cutting the crops and FaceNet.
    pub facenet: f64,
    /// Reading finer parts of photos for faces too small in the detection image (part of
    /// `facenet`'s time, and of decoding's cost).
    pub detail: f64,
}

/// The detection stage, then FaceNet.
pub struct Pipeline {
    pub detector: Detector,
    pub embedder: Embedder,
    pub crop: CropMethod,
}

impl Pipeline {
    /// Load every stage for these settings on the device they ask for (see [`Pipeline::on`]).
    pub fn new(settings: &Settings, use_onet: bool) -> Result<Self, PipelineError> {
        Self::on(settings, use_onet, &Device::choose(settings.device)?)
    }

    /// Load every stage for these settings on `device`, fetching model files that are missing.
    pub fn on(settings: &Settings, use_onet: bool, device: &Device) -> Result<Self, PipelineError> {
        let models = Models::new(settings.models.clone());
        let detector = Detector::new(settings, use_onet, &models, device)?;
        let embedder = Embedder::load_with(
            &models.get(&models::FACENET)?,
            &device.networks,
            settings.facenet_precision,
        )?;
        Ok(Pipeline {
            detector,
            embedder,
            crop: settings.face_crop,
        })
    }

    /// Find, verify and embed the faces of each photo.
    pub fn run(&self, photos: &[&Photo]) -> Result<Vec<Vec<FoundFace>>, PipelineError> {
        Ok(self.run_timed(photos)?.0)
    }

    /// [`Pipeline::run`], with the time each stage took.
    pub fn run_timed(
        &self,
        photos: &[&Photo],
    ) -> Result<(Vec<Vec<FoundFace>>, StageTimes), PipelineError> {
        let mut detect = DetectTimes::default();
        let candidates = self.detector.candidates(photos, &mut detect)?;
        let clock = Instant::now();
        // The faces the detection image gives enough pixels are cut from it and embedded while
        // the finer parts of the others are read (FaceNet's vector of a face does not depend on
        // the faces it runs beside), then those are.
        let (mut plain, mut finer) = (Vec::new(), Vec::new());
        for (j, c) in candidates.iter().enumerate() {
            match self.upscale(c) {
                k if k > 1.0 => finer.push((j, k)),
                _ => plain.push(j),
            }
        }
        let (plain_embeddings, (finer_crops, detail)) = rayon::join(
            || {
                let crops: Vec<Vec<u8>> = plain
                    .iter()
                    .map(|&j| self.cut(&photos[candidates[j].photo].rgb, &candidates[j]))
                    .collect();
                self.embedder.embed(&crops)
            },
            || {
                let clock = Instant::now();
                let crops = self.cut_finer(photos, &candidates, &finer);
                (crops, clock.elapsed().as_secs_f64())
            },
        );
        let finer_embeddings = self.embedder.embed(&finer_crops);
        let mut embeddings: Vec<Option<Embedding>> = vec![None; candidates.len()];
        for (j, e) in plain
            .into_iter()
            .chain(finer.into_iter().map(|(j, _)| j))
            .zip(plain_embeddings.into_iter().chain(finer_embeddings))
        {
            embeddings[j] = Some(e);
        }
        let mut out: Vec<Vec<FoundFace>> = vec![Vec::new(); photos.len()];
        for (c, embedding) in candidates.into_iter().zip(embeddings) {
            let i = c.photo;
            out[i].push(found(c, embedding.expect("every face embedded"), photos[i]));
        }
        let times = StageTimes {
            detect: detect.pico,
            propose: detect.propose,
            onet: detect.onet,
            facenet: clock.elapsed().as_secs_f64(),
            detail,
        };
        Ok((out, times))
    }

    /// Embed faces a person marked by hand (boxes in original pixels): O-Net gives their
    /// probability and landmarks, but the box is kept as marked and nothing is dropped.
    pub fn embed_boxes(&self, photo: &Photo, boxes: &[Rect]) -> Vec<FoundFace> {
        let (sx, sy) = photo.scale();
        let scaled: Vec<Rect> = boxes.iter().map(|b| b.scaled(1.0 / sx, 1.0 / sy)).collect();
        let candidates = self.detector.marked(photo, &scaled);
        let crops: Vec<Vec<u8>> = candidates.iter().map(|c| self.cut(&photo.rgb, c)).collect();
        let embeddings = self.embedder.embed(&crops);
        candidates
            .into_iter()
            .zip(embeddings)
            .map(|(c, embedding)| found(c, embedding, photo))
            .collect()
    }

    /// The FaceNet inputs of the faces `faces` of a batch, each with how much its cut magnifies
    /// the detection image (`upscale`, above 1: the crop would be upscaled): cut, where the
    /// original has more, from a finer decode of the part of its photo such faces cover (one per
    /// photo, at the scale the smallest needs; cut from the photo's whole decode where it kept
    /// one, which is then dropped): the same crop, from more pixels.
    fn cut_finer(
        &self,
        photos: &[&Photo],
        candidates: &[Candidate],
        faces: &[(usize, f32)],
    ) -> Vec<Vec<u8>> {
        let details: Vec<Option<(Detail, Vec<usize>)>> = photos
            .par_iter()
            .enumerate()
            .map(|(i, photo)| {
                let small: Vec<(usize, f32)> = faces
                    .iter()
                    .filter(|(j, _)| candidates[*j].photo == i)
                    .copied()
                    .collect();
                let k = small.iter().map(|(_, k)| *k).reduce(f32::max)?;
                let cover = small
                    .iter()
                    .map(|(j, _)| self.footprint(&candidates[*j]))
                    .reduce(|a, b| a.union(&b))?;
                let detail = photo.detail(cover, k)?;
                Some((detail, small.into_iter().map(|(j, _)| j).collect()))
            })
            .collect();
        // The faces are cut from here on: a photo's whole decode, kept for the finer parts, goes.
        for photo in photos {
            photo.forget_finer();
        }
        let mut crops: Vec<Option<Vec<u8>>> = vec![None; candidates.len()];
        for (detail, found) in details.iter().flatten() {
            for &j in found {
                let c = &candidates[j];
                let mapped = Candidate {
                    region: detail.map(c.region),
                    landmarks: c.landmarks.map(|l| l.map(|p| detail.map_point(p))),
                    ..c.clone()
                };
                crops[j] = Some(self.cut(&detail.rgb, &mapped));
            }
        }
        faces
            .iter()
            .map(|&(j, _)| {
                crops[j]
                    .take()
                    .unwrap_or_else(|| self.cut(&photos[candidates[j].photo].rgb, &candidates[j]))
            })
            .collect()
    }

    /// How much the cut for FaceNet magnifies the detection image's pixels (above 1: it has
    /// fewer pixels than FaceNet's input).
    fn upscale(&self, c: &Candidate) -> f32 {
        let side = INPUT_SIDE as f32;
        match (self.crop, &c.landmarks) {
            (CropMethod::Landmarks, Some(l)) => {
                let m = alignment::similarity(&LANDMARK_TEMPLATE, l);
                // Image pixels per output pixel.
                1.0 / (m[0] * m[0] + m[3] * m[3]).sqrt().max(1e-6)
            }
            _ => {
                let r = c.region.grown(BOX_MARGIN);
                side / r.w.max(r.h).max(1e-6)
            }
        }
    }

    /// The part of the detection image the cut for FaceNet reads (with a few pixels to spare
    /// for the resampling filters).
    fn footprint(&self, c: &Candidate) -> Rect {
        let spare = 2.0;
        let mut cover = c.region.grown(BOX_MARGIN);
        if let (CropMethod::Landmarks, Some(l)) = (self.crop, &c.landmarks) {
            let m = alignment::similarity(&LANDMARK_TEMPLATE, l);
            let side = INPUT_SIDE as f32;
            for (u, v) in [(0.0, 0.0), (side, 0.0), (0.0, side), (side, side)] {
                let (x, y) = (m[0] * u + m[1] * v + m[2], m[3] * u + m[4] * v + m[5]);
                cover = cover.union(&Rect {
                    x,
                    y,
                    w: 0.0,
                    h: 0.0,
                });
            }
        }
        Rect {
            x: cover.x - spare,
            y: cover.y - spare,
            w: cover.w + 2.0 * spare,
            h: cover.h + 2.0 * spare,
        }
    }

    /// The FaceNet input for one face.
    fn cut(&self, image: &RgbImage, c: &Candidate) -> Vec<u8> {
        let side = INPUT_SIDE as u32;
        match (self.crop, &c.landmarks) {
            (CropMethod::Landmarks, Some(l)) => {
                alignment::aligned_crop(image, l, &LANDMARK_TEMPLATE, side)
            }
            _ => alignment::crop(
                image,
                c.region
                    .grown(BOX_MARGIN)
                    .clamped(image.width(), image.height()),
                side,
            ),
        }
    }
}

/// A candidate's result in original pixels, with its embedding.
fn found(c: Candidate, embedding: Embedding, photo: &Photo) -> FoundFace {
    FoundFace {
        detection: c.detection(photo),
        embedding,
        moment: None,
    }
}

/// The largest face of a photo (by box area), if any.
pub fn largest(faces: Vec<FoundFace>) -> Option<FoundFace> {
    faces.into_iter().max_by(|a, b| {
        let (a, b) = (&a.detection.rect, &b.detection.rect);
        (a.w * a.h).total_cmp(&(b.w * b.h))
    })
}
