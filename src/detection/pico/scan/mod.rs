//! Running the cascade over every window of a [`ScanPlan`]: the WGSL shader (`shaders/pico_scan.wgsl`)
//! with its host code in [`gpu`], and its CPU twin in [`cpu`], which is the reference.
//!
//! Both return the same surviving windows ([`Hit`]s) in the same order; merging them into faces is
//! done elsewhere (`detection::pico::merge`). Nothing here decodes images or knows about settings.

pub mod cpu;
pub mod gpu;

use super::windows::ScanPlan;
use crate::photo::Photo;

/// A window that passed every tree of the cascade.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Index into the plan's levels.
    pub level: u32,
    pub row: u32,
    pub col: u32,
    /// Sum of the leaves minus the last threshold (PICO's confidence), > 0.
    pub score: f32,
}

/// An 8-bit luminance image with the windows to scan in it.
#[derive(Debug, Clone)]
pub struct ScanInput<'a> {
    pub pixels: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub plan: &'a ScanPlan,
}

impl<'a> ScanInput<'a> {
    /// The luminance image of a decoded photo, with its plan.
    pub fn new(photo: &'a Photo, plan: &'a ScanPlan) -> Self {
        ScanInput {
            pixels: &photo.gray,
            width: photo.width,
            height: photo.height,
            plan,
        }
    }
}

/// Hits in the canonical order both scanners return: level, then row, then column.
pub fn sort_hits(hits: &mut [Hit]) {
    hits.sort_unstable_by_key(|h| (h.level, h.row, h.col));
}
