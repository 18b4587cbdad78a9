//! The sliding-window plan: which window sizes, positions and angles the cascade is evaluated at.
//!
//! Pigo's scan, made explicit so that the CPU twin and the GPU shader enumerate exactly the same
//! windows: sizes grow from the minimum by 1.1 (integer sizes, always at least +1) and the stride
//! is 0.1 x size. Every window's centre lies inside the image; a window may reach past the border
//! by a [`Border`] share of its size, and the samples out there are filled by its [`Padding`]
//! (Pigo keeps every window inside the image: that is `Border::NONE`). It must not evaluate
//! anything.

/// Window sizes grow by this factor (Pigo's `ScaleFactor`, as PhotoPrism sets it).
pub const SCALE_FACTOR: f64 = 1.1;
/// The stride is this fraction of the window size (Pigo's `ShiftFactor`).
pub const SHIFT_FACTOR: f64 = 0.1;
/// No window is smaller than this, whatever the settings say.
pub const MIN_WINDOW: u32 = 20;

/// What a sample outside the image reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// The nearest border pixel (the coordinates are clamped).
    Replicate,
    /// The image mirrored at its border (then clamped, for samples farther out than the image).
    Mirror,
    /// One grey level.
    Constant(u8),
}

impl Padding {
    /// How the shader is told: the mode in the low byte, a constant's value in the next.
    pub fn code(self) -> u32 {
        match self {
            Padding::Replicate => 0,
            Padding::Mirror => 1,
            Padding::Constant(v) => 2 | (v as u32) << 8,
        }
    }

    /// The pixel an image `w x h` gives at `(r, c)`, which may lie outside it.
    #[inline]
    pub fn fetch(self, px: &[u8], w: i32, h: i32, r: i32, c: i32) -> u8 {
        match (self.source(r, h), self.source(c, w)) {
            (Some(r), Some(c)) => px[(r * w + c) as usize],
            _ => self.fill(),
        }
    }

    /// Which of `n` rows (or columns) a sample at row (or column) `i` reads, or `None` where it
    /// reads [`Padding::fill`]. Rows and columns are mapped each on its own.
    #[inline]
    pub fn source(self, i: i32, n: i32) -> Option<i32> {
        match self {
            Padding::Constant(_) => (0..n).contains(&i).then_some(i),
            // In this order, as the shader does: a sample reflected past the far side is
            // reflected again there, then clamped.
            Padding::Mirror => {
                let i = if i < 0 { -i - 1 } else { i };
                let i = if i >= n { 2 * n - 1 - i } else { i };
                Some(i.clamp(0, n - 1))
            }
            Padding::Replicate => Some(i.clamp(0, n - 1)),
        }
    }

    /// What a sample reads where [`Padding::source`] maps it to no pixel: the constant.
    pub fn fill(self) -> u8 {
        match self {
            Padding::Constant(v) => v,
            Padding::Replicate | Padding::Mirror => 0,
        }
    }
}

/// How far windows may reach past the image's border, and what they read there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Border {
    /// Share of the window's side that may lie outside the image on each side, 0 to 0.45.
    pub overhang: f32,
    pub padding: Padding,
}

impl Border {
    /// Every window inside the image (Pigo's scan).
    pub const NONE: Border = Border {
        overhang: 0.0,
        padding: Padding::Replicate,
    };

    /// Pixels a window of `size` may reach past the border.
    pub fn reach(&self, size: u32) -> u32 {
        (self.overhang.clamp(0.0, MAX_OVERHANG) as f64 * size as f64) as u32
    }
}

/// The most a window may overhang each border (its centre stays inside the image).
pub const MAX_OVERHANG: f32 = 0.45;

/// One window size at one angle, laid over one image as a `rows x cols` grid of centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// Window side in pixels of the scanned image.
    pub size: u32,
    /// Distance between neighbouring window centres.
    pub step: u32,
    /// Row and column of the first centre (`size / 2 + 1`, less the border reach).
    pub offset: u32,
    pub rows: u32,
    pub cols: u32,
    /// Index into [`ScanPlan::angles`].
    pub angle: u32,
    /// Rotation of the comparisons, 256 x cos and 256 x sin of the angle, rounded.
    pub qcos: i32,
    pub qsin: i32,
}

impl Level {
    pub fn windows(&self) -> u64 {
        self.rows as u64 * self.cols as u64
    }
    /// Centre (row, col) of window `(i, j)` of the grid.
    pub fn centre(&self, i: u32, j: u32) -> (u32, u32) {
        (self.offset + i * self.step, self.offset + j * self.step)
    }
}

/// All levels of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanPlan {
    pub width: u32,
    pub height: u32,
    /// Angles in degrees, counter-clockwise head tilt that each level looks for.
    pub angles: Vec<f32>,
    pub padding: Padding,
    pub levels: Vec<Level>,
}

impl ScanPlan {
    /// Sizes from `max(20, min_size)` up to `min(width, height) - 4`, each at every angle, every
    /// window inside the image.
    pub fn new(width: u32, height: u32, min_size: u32, angles: &[f32]) -> Self {
        Self::with_border(width, height, min_size, angles, Border::NONE)
    }

    /// Like [`ScanPlan::new`], with windows that reach past the border by up to
    /// `border.reach(size)` on each side: so sizes go up to the largest whose part inside the
    /// image is at most `min(width, height) - 4`.
    pub fn with_border(
        width: u32,
        height: u32,
        min_size: u32,
        angles: &[f32],
        border: Border,
    ) -> Self {
        let inside = width.min(height).saturating_sub(4) as f64;
        let overhang = border.overhang.clamp(0.0, MAX_OVERHANG) as f64;
        let max_size = (inside / (1.0 - 2.0 * overhang)) as u32;
        let mut levels = Vec::new();
        let mut size = min_size.max(MIN_WINDOW);
        while size <= max_size {
            let step = ((SHIFT_FACTOR * size as f64) as u32).max(1);
            let reach = border.reach(size);
            // The first centre sits `size / 2 + 1 - reach` in, the last as far from the far
            // border; both stay inside the image since the reach is under half the size.
            let offset = size / 2 + 1 - reach;
            let span = |extent: u32| {
                if extent >= 2 * offset {
                    (extent - 2 * offset) / step + 1
                } else {
                    0
                }
            };
            let (rows, cols) = (span(height), span(width));
            for (a, &deg) in angles.iter().enumerate() {
                let (qcos, qsin) = rotation(deg);
                if rows > 0 && cols > 0 {
                    levels.push(Level {
                        size,
                        step,
                        offset,
                        rows,
                        cols,
                        angle: a as u32,
                        qcos,
                        qsin,
                    });
                }
            }
            size = ((size as f64 * SCALE_FACTOR) as u32).max(size + 1);
        }
        ScanPlan {
            width,
            height,
            angles: angles.to_vec(),
            padding: border.padding,
            levels,
        }
    }

    pub fn windows(&self) -> u64 {
        self.levels.iter().map(Level::windows).sum()
    }
}

/// 256 x (cos, sin) of an angle in degrees, rounded to integers so that every device computes the
/// same sample positions.
pub fn rotation(degrees: f32) -> (i32, i32) {
    let r = (degrees as f64).to_radians();
    (
        (256.0 * r.cos()).round() as i32,
        (256.0 * r.sin()).round() as i32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_pigo_and_windows_stay_inside() {
        let plan = ScanPlan::new(300, 200, 20, &[0.0]);
        let sizes: Vec<u32> = plan.levels.iter().map(|l| l.size).collect();
        assert_eq!(&sizes[..6], &[20, 22, 24, 26, 28, 30]);
        let last = *sizes.last().unwrap();
        assert!(
            last <= 196 && (last as f64 * 1.1) as u32 > 196,
            "largest size {last}"
        );
        for l in &plan.levels {
            let (r, c) = l.centre(l.rows - 1, l.cols - 1);
            assert!(r + l.size / 2 < 200 && c + l.size / 2 < 300, "{l:?}");
            assert_eq!(l.step, (l.size / 10).max(1));
        }
    }

    #[test]
    fn face_size_raises_the_smallest_window_and_angles_multiply_levels() {
        let one = ScanPlan::new(640, 480, 50, &[0.0]);
        assert_eq!(one.levels[0].size, 50);
        let three = ScanPlan::new(640, 480, 50, &[0.0, -20.0, 20.0]);
        assert_eq!(three.levels.len(), 3 * one.levels.len());
        assert_eq!(three.windows(), 3 * one.windows());
        assert!(ScanPlan::new(20, 20, 20, &[0.0]).levels.is_empty());
    }

    #[test]
    fn border_windows_keep_their_centre_inside_and_reach_out_by_their_share() {
        let border = Border {
            overhang: 0.25,
            padding: Padding::Replicate,
        };
        let (w, h) = (115, 170);
        let plain = ScanPlan::new(w, h, 20, &[0.0]);
        let plan = ScanPlan::with_border(w, h, 20, &[0.0], border);
        assert!(plan.windows() > plain.windows());
        let largest = plan.levels.last().unwrap().size;
        assert!(
            largest > w && largest <= 2 * (w - 4),
            "largest window {largest}"
        );
        for l in &plan.levels {
            let reach = border.reach(l.size);
            let (r0, c0) = l.centre(0, 0);
            let (r1, c1) = l.centre(l.rows - 1, l.cols - 1);
            assert!(r1 < h && c1 < w, "{l:?}");
            assert_eq!(
                (r0 + reach, c0 + reach),
                (l.size / 2 + 1, l.size / 2 + 1),
                "{l:?}"
            );
            assert!(
                r1 + l.size / 2 < h + reach && c1 + l.size / 2 < w + reach,
                "{l:?}"
            );
        }
        assert_eq!(plain, ScanPlan::with_border(w, h, 20, &[0.0], Border::NONE));
    }

    #[test]
    fn padding_reads_the_border_the_mirror_or_a_constant() {
        // A 3 x 2 image: rows [1 2 3] and [4 5 6].
        let px = [1u8, 2, 3, 4, 5, 6];
        let at = |p: Padding, r, c| p.fetch(&px, 3, 2, r, c);
        assert_eq!(at(Padding::Replicate, 1, 2), 6);
        assert_eq!(at(Padding::Replicate, -3, -1), 1);
        assert_eq!(at(Padding::Replicate, 5, 1), 5);
        assert_eq!(at(Padding::Mirror, 0, -1), 1);
        assert_eq!(at(Padding::Mirror, 0, -2), 2);
        assert_eq!(at(Padding::Mirror, 2, 3), 6);
        assert_eq!(at(Padding::Mirror, -1, 4), 2);
        assert_eq!(at(Padding::Constant(128), 0, 3), 128);
        assert_eq!(at(Padding::Constant(128), 1, 1), 5);
        assert_eq!(Padding::Constant(128).code(), 2 | 128 << 8);
    }

    #[test]
    fn padding_maps_rows_and_columns_each_on_its_own() {
        // The shader's reading, written out as it does it (both sides reflected, then both
        // clamped), against `fetch` over a 7 x 5 image of distinct values read far outside it.
        let shader = |p: Padding, px: &[u8], w: i32, h: i32, r: i32, c: i32| -> u8 {
            let (mut r, mut c) = (r, c);
            match p {
                Padding::Constant(v) if r < 0 || r >= h || c < 0 || c >= w => return v,
                Padding::Mirror => {
                    r = if r < 0 { -r - 1 } else { r };
                    r = if r >= h { 2 * h - 1 - r } else { r };
                    c = if c < 0 { -c - 1 } else { c };
                    c = if c >= w { 2 * w - 1 - c } else { c };
                }
                _ => {}
            }
            px[(r.clamp(0, h - 1) * w + c.clamp(0, w - 1)) as usize]
        };
        let (w, h) = (7, 5);
        let px: Vec<u8> = (0..w * h).map(|v| v as u8).collect();
        for p in [Padding::Replicate, Padding::Mirror, Padding::Constant(200)] {
            for r in -12..h + 12 {
                for c in -15..w + 15 {
                    let want = shader(p, &px, w, h, r, c);
                    assert_eq!(p.fetch(&px, w, h, r, c), want, "{p:?} ({r}, {c})");
                }
            }
        }
        assert_eq!(Padding::Mirror.source(-3, 5), Some(2));
        assert_eq!(Padding::Mirror.source(6, 5), Some(3));
        // Reflected twice, past the near side: clamped there.
        assert_eq!(Padding::Mirror.source(-30, 5), Some(0));
        assert_eq!(Padding::Replicate.source(-30, 5), Some(0));
        assert_eq!(Padding::Constant(9).source(5, 5), None);
        assert_eq!(Padding::Constant(9).fill(), 9);
    }

    #[test]
    fn rotation_is_exact_at_zero() {
        assert_eq!(rotation(0.0), (256, 0));
        assert_eq!(rotation(90.0), (0, 256));
        assert_eq!(rotation(-30.0), (222, -128));
    }
}
