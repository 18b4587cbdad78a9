//! From decoded photos to embedded faces: PICO's detections and MTCNN's proposals are verified by
//! O-Net (probability, refined box, landmarks), cut out (box with margin, or landmark alignment)
//! and embedded by FaceNet, all in batches across photos.
//!
//! This is the composition of the stages and nothing more: each stage's algorithm lives in its own
//! module, and nothing here reads files or stores results.

use std::time::Instant;

use image::RgbImage;
use rayon::prelude::*;
use serde::Serialize;

use crate::alignment::{self, FaceBox, Landmarks};
use crate::config::{CropMethod, Proposals, Settings};
use crate::detection::{DetectError, Detector};
use crate::embedding::{Embedder, Embedding, INPUT_SIDE};
use crate::inference::InferenceDevice;
use crate::models::{self, ModelError, Models};
use crate::photo::Photo;
use crate::proposal::Proposer;
use crate::verification::Verifier;

/// Total margin added around the O-Net box before cutting (0.2: 10% each side).
pub const BOX_MARGIN: f32 = 0.2;
/// Two verified faces overlapping more than this (IoU) are one face.
const DUPLICATE_IOU: f32 = 0.5;
/// A proposal with more than this share of its box on a face PICO found is dropped.
const ON_A_FACE: f32 = 1.0 / 3.0;

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

/// Which detector put a face forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The PICO cascade (its score is the cascade's).
    Pico,
    /// MTCNN's P-Net and R-Net, where PICO found nothing (score: 100 x O-Net's probability).
    Mtcnn,
}

/// One face found, verified and embedded. Coordinates are the original (oriented) image's pixels.
#[derive(Debug, Clone, Serialize)]
pub struct FoundFace {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    /// Side of the face in detection-image pixels (longest side 1280), as `--face-size` counts.
    pub size: u32,
    /// Detection quality score: PICO's, or 100 x O-Net's probability for MTCNN's proposals.
    pub score: f32,
    pub source: Source,
    /// O-Net face probability (1 when O-Net is off).
    pub probability: f32,
    /// Left eye, right eye, nose, left and right mouth corner, `[x, y]` (empty without O-Net).
    pub landmarks: Vec<[f32; 2]>,
    pub embedding: Embedding,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Models(#[from] ModelError),
    /// Transparent: [`DetectError`] names the cascade file or the GPU itself.
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error("MTCNN: {0}")]
    Verify(#[from] crate::verification::WeightsError),
    #[error("FaceNet: {0}")]
    Embed(#[from] crate::embedding::WeightsError),
    #[error("GPU: {0}")]
    Gpu(#[from] crate::gpu::GpuError),
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

/// The detection stage: PICO's candidates, MTCNN's proposals for what they miss, O-Net's verdict.
pub struct Finder {
    pub detector: Detector,
    /// `None` runs without O-Net: the detection box is cut as it is.
    pub verifier: Option<Verifier>,
    /// MTCNN's proposals (only with O-Net, which verifies them).
    pub proposer: Option<Proposer>,
    pub min_probability: f32,
}

/// A face found and verified, not embedded (what `visage detect` prints), in original pixels.
#[derive(Debug, Clone, Serialize)]
pub struct Detected {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    /// Side of the face in detection-image pixels (longest side 1280), as `--face-size` counts.
    pub size: u32,
    pub score: f32,
    pub source: Source,
    pub probability: f32,
    pub landmarks: Vec<[f32; 2]>,
}

/// The detection stage, then FaceNet.
pub struct Pipeline {
    pub finder: Finder,
    pub embedder: Embedder,
    pub crop: CropMethod,
}

/// A face on its way through the stages, in detection-image pixels.
#[derive(Clone, Copy)]
struct Candidate {
    photo: usize,
    region: FaceBox,
    score: f32,
    source: Source,
    probability: f32,
    landmarks: Option<Landmarks>,
}

impl Finder {
    /// Load the detection stage's networks for these settings, fetching files that are missing.
    pub fn new(settings: &Settings, use_onet: bool) -> Result<Self, PipelineError> {
        let models = Models::new(settings.models.clone());
        let device = InferenceDevice::choose(settings.device)?;
        Self::on(settings, use_onet, &models, &device)
    }

    fn on(
        settings: &Settings,
        use_onet: bool,
        models: &Models,
        device: &InferenceDevice,
    ) -> Result<Self, PipelineError> {
        log::info!("networks run on {}", device.description);
        let verifier = if use_onet {
            Some(Verifier::load(&models.get(&models::ONET)?, device)?)
        } else {
            None
        };
        let proposer = match (&verifier, settings.face_proposals) {
            (Some(_), Proposals::On) => Some(Proposer::load(
                &models.get(&models::PNET)?,
                &models.get(&models::RNET)?,
                device,
            )?),
            _ => None,
        };
        Ok(Finder {
            detector: Detector::new(settings)?,
            verifier,
            proposer,
            min_probability: settings.face_verify,
        })
    }

    /// Find and verify the faces of each photo.
    pub fn find(&self, photos: &[&Photo]) -> Result<Vec<Vec<Detected>>, PipelineError> {
        let candidates = self.candidates(photos, &mut StageTimes::default())?;
        let mut out: Vec<Vec<Detected>> = vec![Vec::new(); photos.len()];
        for c in candidates {
            let i = c.photo;
            out[i].push(detected(c, photos[i]));
        }
        Ok(out)
    }

    /// The faces of a batch, in detection pixels, ordered by photo.
    fn candidates(
        &self,
        photos: &[&Photo],
        times: &mut StageTimes,
    ) -> Result<Vec<Candidate>, PipelineError> {
        let clock = Instant::now();
        let detected = self.detector.detect_batch(photos)?;
        times.detect = clock.elapsed().as_secs_f64();
        let mut candidates = Vec::new();
        for (i, (photo, faces)) in photos.iter().zip(&detected).enumerate() {
            let (sx, sy) = photo.scale();
            for f in faces {
                let region = FaceBox {
                    x: f.x as f32,
                    y: f.y as f32,
                    w: f.w as f32,
                    h: f.h as f32,
                }
                .scaled(1.0 / sx, 1.0 / sy);
                candidates.push(Candidate {
                    photo: i,
                    region,
                    score: f.score,
                    source: Source::Pico,
                    probability: 1.0,
                    landmarks: None,
                });
            }
        }
        let clock = Instant::now();
        if let Some(verifier) = &self.verifier {
            self.verify(verifier, photos, &mut candidates);
        }
        times.onet = clock.elapsed().as_secs_f64();
        if let (Some(proposer), Some(verifier)) = (&self.proposer, &self.verifier) {
            // MTCNN looks for the faces PICO's verified candidates do not cover.
            let clock = Instant::now();
            let images: Vec<&RgbImage> = photos.iter().map(|p| &p.rgb).collect();
            let mut known = vec![Vec::new(); photos.len()];
            for c in &candidates {
                known[c.photo].push(c.region);
            }
            let min_size = self.detector.params().min_size;
            let mut proposed = Vec::new();
            for (i, proposals) in proposer
                .propose(&images, min_size, &known)
                .into_iter()
                .enumerate()
            {
                proposed.extend(proposals.into_iter().map(|p| Candidate {
                    photo: i,
                    region: p.region,
                    score: 0.0,
                    source: Source::Mtcnn,
                    probability: 1.0,
                    landmarks: None,
                }));
            }
            times.propose = clock.elapsed().as_secs_f64();
            let clock = Instant::now();
            self.verify(verifier, photos, &mut proposed);
            candidates.extend(proposed);
            times.onet += clock.elapsed().as_secs_f64();
        }
        let clock = Instant::now();
        if self.verifier.is_some() {
            candidates = remove_duplicates(candidates);
        }
        times.onet += clock.elapsed().as_secs_f64();
        Ok(candidates)
    }

    /// O-Net on candidates: each takes O-Net's box, probability and landmarks (a proposal also
    /// takes its score from the probability), and those below `--face-verify` are dropped.
    fn verify(&self, verifier: &Verifier, photos: &[&Photo], candidates: &mut Vec<Candidate>) {
        let inputs: Vec<(&RgbImage, FaceBox)> = candidates
            .iter()
            .map(|c| (&photos[c.photo].rgb, c.region))
            .collect();
        let verdicts = verifier.verify(&inputs);
        for (c, v) in candidates.iter_mut().zip(verdicts) {
            c.region = v.refined;
            c.probability = v.probability;
            c.landmarks = Some(v.landmarks);
            if c.source == Source::Mtcnn {
                c.score = 100.0 * v.probability;
            }
        }
        candidates.retain(|c| c.probability >= self.min_probability);
    }
}

impl Pipeline {
    /// Load every stage for these settings, fetching model files that are missing.
    pub fn new(settings: &Settings, use_onet: bool) -> Result<Self, PipelineError> {
        let models = Models::new(settings.models.clone());
        let device = InferenceDevice::choose(settings.device)?;
        let finder = Finder::on(settings, use_onet, &models, &device)?;
        let embedder = Embedder::load(&models.get(&models::FACENET)?, &device)?;
        Ok(Pipeline {
            finder,
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
        let mut times = StageTimes::default();
        let candidates = self.finder.candidates(photos, &mut times)?;
        let clock = Instant::now();
        let crops = self.cut_all(photos, &candidates, &mut times);
        let embeddings = self.embedder.embed(&crops);
        let mut out: Vec<Vec<FoundFace>> = vec![Vec::new(); photos.len()];
        for (c, embedding) in candidates.into_iter().zip(embeddings) {
            let i = c.photo;
            out[i].push(found(c, embedding, photos[i]));
        }
        times.facenet = clock.elapsed().as_secs_f64();
        Ok((out, times))
    }

    /// Embed faces a person marked by hand (boxes in original pixels): O-Net gives their
    /// probability and landmarks, but the box is kept as marked and nothing is dropped.
    pub fn embed_boxes(&self, photo: &Photo, boxes: &[FaceBox]) -> Vec<FoundFace> {
        let (sx, sy) = photo.scale();
        let mut candidates: Vec<Candidate> = boxes
            .iter()
            .map(|b| Candidate {
                photo: 0,
                region: b.scaled(1.0 / sx, 1.0 / sy),
                score: 0.0,
                source: Source::Pico,
                probability: 1.0,
                landmarks: None,
            })
            .collect();
        if let Some(verifier) = &self.finder.verifier {
            let inputs: Vec<(&RgbImage, FaceBox)> =
                candidates.iter().map(|c| (&photo.rgb, c.region)).collect();
            for (c, v) in candidates.iter_mut().zip(verifier.verify(&inputs)) {
                c.probability = v.probability;
                c.landmarks = Some(v.landmarks);
            }
        }
        let crops: Vec<Vec<u8>> = candidates.iter().map(|c| self.cut(&photo.rgb, c)).collect();
        let embeddings = self.embedder.embed(&crops);
        candidates
            .into_iter()
            .zip(embeddings)
            .map(|(c, embedding)| found(c, embedding, photo))
            .collect()
    }

    /// The FaceNet inputs of a batch's faces. A face the detection image gives fewer pixels than
    /// FaceNet's input (the crop would be upscaled) is cut, where the original has more, from a
    /// finer decode of the part of its photo such faces cover (one per photo, at the scale the
    /// smallest needs): the same crop, from more pixels.
    fn cut_all(
        &self,
        photos: &[&Photo],
        candidates: &[Candidate],
        times: &mut StageTimes,
    ) -> Vec<Vec<u8>> {
        let clock = Instant::now();
        let details: Vec<Option<(crate::photo::Detail, Vec<usize>)>> = photos
            .par_iter()
            .enumerate()
            .map(|(i, photo)| {
                let small: Vec<(usize, f32)> = candidates
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.photo == i)
                    .map(|(j, c)| (j, self.upscale(c)))
                    .filter(|(_, k)| *k > 1.0)
                    .collect();
                let k = small.iter().map(|(_, k)| *k).reduce(f32::max)?;
                let cover = small
                    .iter()
                    .map(|(j, _)| self.footprint(&candidates[*j]))
                    .reduce(|a, b| union(&a, &b))?;
                let detail = photo.detail(cover, k)?;
                Some((detail, small.into_iter().map(|(j, _)| j).collect()))
            })
            .collect();
        times.detail = clock.elapsed().as_secs_f64();
        let mut crops: Vec<Option<Vec<u8>>> = vec![None; candidates.len()];
        for (detail, faces) in details.iter().flatten() {
            for &j in faces {
                let c = &candidates[j];
                let mapped = Candidate {
                    region: detail.map(c.region),
                    landmarks: c.landmarks.map(|l| l.map(|p| detail.map_point(p))),
                    ..*c
                };
                crops[j] = Some(self.cut(&detail.rgb, &mapped));
            }
        }
        candidates
            .iter()
            .zip(crops)
            .map(|(c, crop)| crop.unwrap_or_else(|| self.cut(&photos[c.photo].rgb, c)))
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
    fn footprint(&self, c: &Candidate) -> FaceBox {
        let spare = 2.0;
        let b = c.region.grown(BOX_MARGIN);
        let mut cover = b;
        if let (CropMethod::Landmarks, Some(l)) = (self.crop, &c.landmarks) {
            let m = alignment::similarity(&LANDMARK_TEMPLATE, l);
            let side = INPUT_SIDE as f32;
            for (u, v) in [(0.0, 0.0), (side, 0.0), (0.0, side), (side, side)] {
                let (x, y) = (m[0] * u + m[1] * v + m[2], m[3] * u + m[4] * v + m[5]);
                cover = union(
                    &cover,
                    &FaceBox {
                        x,
                        y,
                        w: 0.0,
                        h: 0.0,
                    },
                );
            }
        }
        FaceBox {
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

/// A candidate in the photo's original pixels. The box is cut to the photo (O-Net's box of a face
/// that fills the frame or is cut by it reaches past the border; the crop for FaceNet does not
/// cut it).
fn detected(c: Candidate, photo: &Photo) -> Detected {
    let (sx, sy) = photo.scale();
    let b = c
        .region
        .scaled(sx, sy)
        .clamped(photo.original_width, photo.original_height);
    Detected {
        x: b.x,
        y: b.y,
        w: b.w,
        h: b.h,
        size: c.region.w.max(c.region.h).round() as u32,
        score: c.score,
        source: c.source,
        probability: c.probability,
        landmarks: c
            .landmarks
            .map(|l| l.iter().map(|p| [p[0] * sx, p[1] * sy]).collect())
            .unwrap_or_default(),
    }
}

/// A candidate's result in original pixels, with its embedding.
fn found(c: Candidate, embedding: Embedding, photo: &Photo) -> FoundFace {
    let d = detected(c, photo);
    FoundFace {
        x: d.x,
        y: d.y,
        w: d.w,
        h: d.h,
        size: d.size,
        score: d.score,
        source: d.source,
        probability: d.probability,
        landmarks: d.landmarks,
        embedding,
    }
}

/// The smallest box holding both.
fn union(a: &FaceBox, b: &FaceBox) -> FaceBox {
    let (x0, y0) = (a.x.min(b.x), a.y.min(b.y));
    let (x1, y1) = ((a.x + a.w).max(b.x + b.w), (a.y + a.h).max(b.y + b.h));
    FaceBox {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    }
}

/// The largest face of a photo (by box area), if any.
pub fn largest(faces: Vec<FoundFace>) -> Option<FoundFace> {
    faces
        .into_iter()
        .max_by(|a, b| (a.w * a.h).total_cmp(&(b.w * b.h)))
}

/// Keep the most probable of verified faces that O-Net moved onto the same face. A face PICO also
/// found keeps PICO's score and source, so that a proposal only ever adds faces.
fn remove_duplicates(mut faces: Vec<Candidate>) -> Vec<Candidate> {
    faces.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    let mut kept: Vec<Candidate> = Vec::with_capacity(faces.len());
    for f in faces {
        match kept
            .iter_mut()
            .find(|k| k.photo == f.photo && k.region.iou(&f.region) > DUPLICATE_IOU)
        {
            Some(k) => {
                if k.source == Source::Mtcnn && f.source == Source::Pico {
                    (k.score, k.source) = (f.score, Source::Pico);
                }
            }
            None => kept.push(f),
        }
    }
    // A proposal that lies largely on a face PICO found is a part of that face (O-Net can take a
    // chin for a face), not another one: proposals add faces only where there was none.
    let pico: Vec<(usize, FaceBox)> = kept
        .iter()
        .filter(|k| k.source == Source::Pico)
        .map(|k| (k.photo, k.region))
        .collect();
    kept.retain(|f| {
        f.source == Source::Pico
            || !pico.iter().any(|(p, b)| {
                *p == f.photo && b.intersection(&f.region) > ON_A_FACE * f.region.area()
            })
    });
    kept.sort_by_key(|c| c.photo);
    kept
}
