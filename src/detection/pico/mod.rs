//! The PICO cascade (Pigo's `core/`): the cascade ([`cascade`]) evaluated over a window plan
//! ([`windows`]) by the GPU shader or its CPU twin ([`scan`]), then merged into one box per face
//! ([`merge`]).
//!
//! Input is a decoded [`Photo`]; output is boxes in the original image's pixels with the cascade's
//! score. It does not read files, propose with MTCNN, verify faces or embed them: the detection
//! stage (`detection::Detector`) joins PICO with MTCNN.

pub mod cascade;
pub mod merge;
pub mod scan;
pub mod windows;

use rayon::prelude::*;

use serde::Serialize;

use super::DetectError;
use crate::config::{PaddingChoice, Settings};
use crate::device::Device;
use crate::geometry::Rect;
use crate::photo::Photo;
use cascade::Cascade;
use merge::Candidate;
use scan::gpu::GpuScanner;
use scan::{Hit, ScanInput};
use windows::{Border, Padding, ScanPlan};

/// A detected face, in the original (EXIF-oriented) image's pixels, top-left origin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Face {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    /// Quality: the summed cascade confidence of the windows that make up the face.
    pub score: f32,
}

impl Face {
    /// The box, in floating point.
    pub fn rect(&self) -> Rect {
        Rect {
            x: self.x as f32,
            y: self.y as f32,
            w: self.w as f32,
            h: self.h as f32,
        }
    }
}

/// The detection settings, taken from [`Settings`].
#[derive(Debug, Clone, PartialEq)]
pub struct DetectParams {
    pub min_size: u32,
    pub face_score: f32,
    /// Overlap above which two boxes are one face, as a fraction.
    pub overlap: f32,
    pub angles: Vec<f32>,
    /// How far windows reach past the border, and what they read there.
    pub border: Border,
}

impl From<&Settings> for DetectParams {
    fn from(s: &Settings) -> Self {
        DetectParams {
            min_size: s.face_size,
            face_score: s.face_score,
            overlap: s.face_overlap as f32 / 100.0,
            angles: s.face_angles.clone(),
            border: Border {
                overhang: s.face_border as f32 / 100.0,
                padding: match s.face_padding {
                    PaddingChoice::Replicate => Padding::Replicate,
                    PaddingChoice::Mirror => Padding::Mirror,
                    PaddingChoice::Grey => Padding::Constant(128),
                    PaddingChoice::Black => Padding::Constant(0),
                },
            },
        }
    }
}

impl DetectParams {
    /// Windows whose IoU exceeds this are merged into one candidate (PhotoPrism: overlap - 1 %).
    pub fn merge_iou(&self) -> f32 {
        (self.overlap - 0.01).max(0.0)
    }

    pub fn plan(&self, width: u32, height: u32) -> ScanPlan {
        ScanPlan::with_border(width, height, self.min_size, &self.angles, self.border)
    }
}

/// Where the cascade runs.
pub enum Backend {
    Cpu,
    Gpu(GpuScanner),
}

/// The PICO detector: its cascade loaded on its device, and its settings.
pub struct Pico {
    cascade: Cascade,
    params: DetectParams,
    backend: Backend,
}

impl Pico {
    /// Load the built-in cascade onto `device`'s GPU (the shader), or the CPU twin without one.
    pub fn new(settings: &Settings, device: &Device) -> Result<Self, DetectError> {
        let cascade = Cascade::facefinder()?;
        let backend = match &device.gpu {
            Some(gpu) => Backend::Gpu(GpuScanner::new(gpu.clone(), &cascade)),
            None => Backend::Cpu,
        };
        if let Backend::Gpu(s) = &backend {
            log::info!("detecting on {}", s.gpu().describe());
        }
        Ok(Pico {
            cascade,
            params: DetectParams::from(settings),
            backend,
        })
    }

    /// PICO on an already opened backend (used by tests and benchmarks to compare them).
    pub fn with_backend(cascade: Cascade, params: DetectParams, backend: Backend) -> Self {
        Pico {
            cascade,
            params,
            backend,
        }
    }

    pub fn params(&self) -> &DetectParams {
        &self.params
    }

    pub fn cascade(&self) -> &Cascade {
        &self.cascade
    }

    /// "cpu" or the GPU adapter's description.
    pub fn device(&self) -> String {
        match &self.backend {
            Backend::Cpu => format!("cpu ({} threads)", rayon::current_num_threads()),
            Backend::Gpu(s) => s.gpu().describe(),
        }
    }

    /// Detect faces in several photos (one GPU submission for all of them).
    pub fn detect_batch(&self, photos: &[&Photo]) -> Result<Vec<Vec<Face>>, DetectError> {
        let plans: Vec<ScanPlan> = photos
            .iter()
            .map(|p| self.params.plan(p.width, p.height))
            .collect();
        let hits = self.scan(photos, &plans)?;
        Ok(photos
            .iter()
            .zip(&plans)
            .zip(hits)
            .map(|((photo, plan), hits)| self.faces(photo, plan, &hits))
            .collect())
    }

    /// Detect faces in one photo.
    pub fn detect(&self, photo: &Photo) -> Result<Vec<Face>, DetectError> {
        Ok(self.detect_batch(&[photo])?.pop().unwrap_or_default())
    }

    /// The raw surviving windows of each photo (what the GPU/CPU parity tests compare).
    pub fn scan(
        &self,
        photos: &[&Photo],
        plans: &[ScanPlan],
    ) -> Result<Vec<Vec<Hit>>, DetectError> {
        let inputs: Vec<ScanInput> = photos
            .iter()
            .zip(plans)
            .map(|(p, plan)| ScanInput::new(p, plan))
            .collect();
        Ok(match &self.backend {
            // Photos side by side as well as rows within each: small photos leave cores idle
            // otherwise.
            Backend::Cpu => inputs
                .par_iter()
                .map(|i| scan::cpu::scan(&self.cascade, i))
                .collect(),
            Backend::Gpu(s) => s.scan_batch(&inputs)?,
        })
    }

    fn faces(&self, photo: &Photo, plan: &ScanPlan, hits: &[Hit]) -> Vec<Face> {
        let windows = hits
            .iter()
            .map(|h| Candidate {
                row: h.row as f32,
                col: h.col as f32,
                size: plan.levels[h.level as usize].size as f32,
                score: h.score,
            })
            .collect();
        let candidates = merge::cluster(windows, self.params.merge_iou());
        let faces = merge::select(candidates, self.params.face_score, self.params.overlap);
        let (sx, sy) = photo.scale();
        faces
            .iter()
            .map(|c| to_original(c, sx, sy, photo))
            .collect()
    }
}

/// The facefinder's windows are about 1.2x the face and centred a little above it (they include
/// the forehead). Reported boxes are the window scaled by this factor...
pub const BOX_SCALE: f32 = 0.83;
/// ...and moved down by this fraction of the window size, so that they cover brows to chin.
/// Both measured against independent (MediaPipe) boxes on the test photos: see BENCHMARKS.md.
pub const BOX_SHIFT: f32 = 0.115;

/// Map a square candidate in detection pixels to a tight box in original pixels, clipped to the
/// image.
fn to_original(c: &Candidate, sx: f32, sy: f32, photo: &Photo) -> Face {
    let half = c.size * BOX_SCALE / 2.0;
    let row = c.row + BOX_SHIFT * c.size;
    let x0 = ((c.col - half) * sx).round().max(0.0);
    let y0 = ((row - half) * sy).round().max(0.0);
    let x1 = ((c.col + half) * sx)
        .round()
        .min(photo.original_width as f32);
    let y1 = ((row + half) * sy)
        .round()
        .min(photo.original_height as f32);
    Face {
        x: x0 as u32,
        y: y0 as u32,
        w: (x1 - x0).max(1.0) as u32,
        h: (y1 - y0).max(1.0) as u32,
        score: c.score,
    }
}
