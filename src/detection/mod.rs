//! The detection stage: where the faces of a photo are. The PICO cascade ([`pico`]) scans every
//! photo, MTCNN's P-Net and R-Net ([`mtcnn`]) propose the faces PICO's verified candidates do not
//! cover (cut by the frame, filling it, turned heads), and O-Net ([`mtcnn`]) gives every candidate
//! its face probability, a refined box and 5 landmarks. Candidates below `--face-verify` are
//! dropped, and verified boxes that landed on one face become one ([`Detector`]'s dedupe rule).
//!
//! Input is decoded photos, in batches; output is one [`Detection`] per face in the photo's
//! original pixels (and, for the pipeline, the same faces in detection pixels: [`Candidate`]). It
//! reads no files, opens no device of its own (the device is chosen once and passed in) and does
//! not cut or embed faces.

pub mod mtcnn;
pub mod pico;

use std::time::Instant;

use image::RgbImage;
use serde::Serialize;

use crate::alignment::Landmarks;
use crate::config::{Proposals, Settings};
use crate::device::Device;
use crate::geometry::Rect;
use crate::gpu::GpuError;
use crate::models::{self, ModelError, Models, WeightsError};
use crate::photo::Photo;
use mtcnn::{Proposer, Verifier};
use pico::Pico;
use pico::cascade::{CascadeError, FACEFINDER_FILE};

/// Two verified faces overlapping more than this (IoU) are one face.
const DUPLICATE_IOU: f32 = 0.5;
/// A proposal with more than this share of its box on a face PICO found is dropped.
const ON_A_FACE: f32 = 1.0 / 3.0;

/// Which detector put a face forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The PICO cascade (its score is the cascade's).
    Pico,
    /// MTCNN's P-Net and R-Net, where PICO found nothing (score: 100 x O-Net's probability).
    Mtcnn,
}

/// A face found and verified (what `visage detect` prints), in the original (EXIF-oriented)
/// image's pixels. Serialised, the box's `x`, `y`, `w`, `h` come first, beside the other fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    #[serde(flatten)]
    pub rect: Rect,
    /// Side of the face in detection-image pixels (longest side 1280), as `--face-size` counts.
    pub size: u32,
    /// Detection quality score: PICO's, or 100 x O-Net's probability for MTCNN's proposals.
    pub score: f32,
    pub source: Source,
    /// O-Net face probability (1 when O-Net is off).
    pub probability: f32,
    /// Left eye, right eye, nose, left and right mouth corner, `[x, y]` (empty without O-Net).
    pub landmarks: Vec<[f32; 2]>,
}

/// A face found, verified and embedded (what the pipeline gives the store). Serialised, the
/// detection's fields come first, then `embedding`.
#[derive(Debug, Clone, Serialize)]
pub struct FoundFace {
    #[serde(flatten)]
    pub detection: Detection,
    /// Its FaceNet vector: 512 floats of unit length.
    pub embedding: Vec<f32>,
}

/// A face of one photo of a batch on its way through the stage, in detection-image pixels (what
/// the pipeline cuts for FaceNet).
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Index of its photo in the batch.
    pub photo: usize,
    pub region: Rect,
    pub score: f32,
    pub source: Source,
    pub probability: f32,
    /// O-Net's landmarks (`None` without O-Net).
    pub landmarks: Option<Landmarks>,
}

impl Candidate {
    /// The face in the photo's original pixels. The box is cut to the photo (O-Net's box of a face
    /// that fills the frame or is cut by it reaches past the border; the crop for FaceNet does not
    /// cut it).
    pub fn detection(&self, photo: &Photo) -> Detection {
        let (sx, sy) = photo.scale();
        Detection {
            rect: self
                .region
                .scaled(sx, sy)
                .clamped(photo.original_width, photo.original_height),
            size: self.region.w.max(self.region.h).round() as u32,
            score: self.score,
            source: self.source,
            probability: self.probability,
            landmarks: self
                .landmarks
                .map(|l| l.iter().map(|p| [p[0] * sx, p[1] * sy]).collect())
                .unwrap_or_default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The built-in cascade is not the one this build expects. The message carries the reason itself
    /// and the variant has no `source`, so a printed error chain (`{:#}`) says it once.
    #[error("face cascade {FACEFINDER_FILE} (built into visage): {0}")]
    Cascade(CascadeError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Models(#[from] ModelError),
    /// As `Cascade`: the message carries the reason, and there is no `source`.
    #[error("MTCNN: {0}")]
    Weights(WeightsError),
}

impl From<CascadeError> for DetectError {
    fn from(e: CascadeError) -> Self {
        DetectError::Cascade(e)
    }
}

impl From<WeightsError> for DetectError {
    fn from(e: WeightsError) -> Self {
        DetectError::Weights(e)
    }
}

/// Seconds a batch spent in each part of the stage (wall time; each part uses every core).
#[derive(Debug, Clone, Copy, Default)]
pub struct DetectTimes {
    /// PICO scan and merge.
    pub pico: f64,
    /// MTCNN's P-Net and R-Net proposals.
    pub propose: f64,
    /// O-Net verification, landmarks and box refinement, and the dedupe rule.
    pub onet: f64,
}

/// The detection stage: PICO's candidates, MTCNN's proposals for what they miss, O-Net's verdict.
pub struct Detector {
    pub pico: Pico,
    /// `None` runs without O-Net: the detection box is kept as it is.
    pub verifier: Option<Verifier>,
    /// MTCNN's proposals (only with O-Net, which verifies them).
    pub proposer: Option<Proposer>,
    pub min_probability: f32,
}

impl Detector {
    /// Load the stage's cascade and networks for these settings on `device`, fetching files that
    /// are missing. Without `use_onet`, PICO alone.
    pub fn new(
        settings: &Settings,
        use_onet: bool,
        models: &Models,
        device: &Device,
    ) -> Result<Self, DetectError> {
        let networks = &device.networks;
        log::info!("networks run on {}", networks.description);
        let verifier = if use_onet {
            Some(Verifier::load(&models.get(&models::ONET)?, networks)?)
        } else {
            None
        };
        let proposer = match (&verifier, settings.face_proposals) {
            (Some(_), Proposals::On) => Some(Proposer::load(
                &models.get(&models::PNET)?,
                &models.get(&models::RNET)?,
                networks,
            )?),
            _ => None,
        };
        Ok(Detector {
            pico: Pico::new(settings, device)?,
            verifier,
            proposer,
            min_probability: settings.face_verify,
        })
    }

    /// Find and verify the faces of each photo.
    pub fn detect(&self, photos: &[&Photo]) -> Result<Vec<Vec<Detection>>, DetectError> {
        let candidates = self.candidates(photos, &mut DetectTimes::default())?;
        let mut out: Vec<Vec<Detection>> = vec![Vec::new(); photos.len()];
        for c in candidates {
            out[c.photo].push(c.detection(photos[c.photo]));
        }
        Ok(out)
    }

    /// The faces of a batch, in detection pixels, ordered by photo; `times` gets the time each
    /// part took.
    pub fn candidates(
        &self,
        photos: &[&Photo],
        times: &mut DetectTimes,
    ) -> Result<Vec<Candidate>, DetectError> {
        let clock = Instant::now();
        let detected = self.pico.detect_batch(photos)?;
        times.pico = clock.elapsed().as_secs_f64();
        let mut candidates = Vec::new();
        for (i, (photo, faces)) in photos.iter().zip(&detected).enumerate() {
            let (sx, sy) = photo.scale();
            for f in faces {
                let region = f.rect().scaled(1.0 / sx, 1.0 / sy);
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
            let min_size = self.pico.params().min_size;
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

    /// Boxes a person marked on one photo (in detection pixels), as candidates of photo 0: O-Net
    /// gives their probability and landmarks, but each box is kept as marked and none is dropped.
    pub fn marked(&self, photo: &Photo, boxes: &[Rect]) -> Vec<Candidate> {
        let mut candidates: Vec<Candidate> = boxes
            .iter()
            .map(|&region| Candidate {
                photo: 0,
                region,
                score: 0.0,
                source: Source::Pico,
                probability: 1.0,
                landmarks: None,
            })
            .collect();
        if let Some(verifier) = &self.verifier {
            let inputs: Vec<(&RgbImage, Rect)> =
                candidates.iter().map(|c| (&photo.rgb, c.region)).collect();
            for (c, v) in candidates.iter_mut().zip(verifier.verify(&inputs)) {
                c.probability = v.probability;
                c.landmarks = Some(v.landmarks);
            }
        }
        candidates
    }

    /// O-Net on candidates: each takes O-Net's box, probability and landmarks (a proposal also
    /// takes its score from the probability), and those below `--face-verify` are dropped.
    fn verify(&self, verifier: &Verifier, photos: &[&Photo], candidates: &mut Vec<Candidate>) {
        let inputs: Vec<(&RgbImage, Rect)> = candidates
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
    let pico: Vec<(usize, Rect)> = kept
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::PipelineError;
    use pico::cascade::{Cascade, FACEFINDER, FACEFINDER_SHA256};

    /// A wrong cascade file is reported once, with the file and the reason, however the error is
    /// printed: alone, through the pipeline's error, and as the CLI prints a chain (`{:#}`).
    #[test]
    fn a_wrong_cascade_is_reported_once_with_its_file_and_reason() {
        let mut wrong = FACEFINDER.to_vec();
        wrong[16] ^= 1;
        let actual = crate::models::sha256_hex(&wrong);
        let cascade = Cascade::from_bytes_checked(&wrong, FACEFINDER_SHA256).unwrap_err();
        let detect = DetectError::from(cascade);
        let stage = PipelineError::from(DetectError::from(
            Cascade::from_bytes_checked(&wrong, FACEFINDER_SHA256).unwrap_err(),
        ));
        let detect_chain = format!(
            "{:#}",
            anyhow::Error::new(detect).context("cannot start the face detector")
        );
        let stage_chain = format!("{:#}", anyhow::Error::new(stage));
        for text in [&detect_chain, &stage_chain] {
            assert_eq!(text.matches(&actual).count(), 1, "{text}");
            assert_eq!(text.matches(FACEFINDER_SHA256).count(), 1, "{text}");
            assert_eq!(text.matches("sha256").count(), 1, "{text}");
            assert!(text.contains("models/facefinder"), "{text}");
        }
        assert_eq!(
            detect_chain,
            format!(
                "cannot start the face detector: face cascade models/facefinder (built into visage): \
                 sha256 is {actual}, expected {FACEFINDER_SHA256} (a different cascade file)"
            )
        );
    }
}
