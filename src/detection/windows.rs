//! The sliding-window plan: which window sizes, positions and angles the cascade is evaluated at.
//!
//! Pigo's scan, made explicit so that the CPU twin and the GPU shader enumerate exactly the same
//! windows: sizes grow from the minimum by 1.1 (integer sizes, always at least +1), the stride is
//! 0.1 x size, and every window lies inside the image. It must not evaluate anything.

/// Window sizes grow by this factor (Pigo's `ScaleFactor`, as PhotoPrism sets it).
pub const SCALE_FACTOR: f64 = 1.1;
/// The stride is this fraction of the window size (Pigo's `ShiftFactor`).
pub const SHIFT_FACTOR: f64 = 0.1;
/// No window is smaller than this, whatever the settings say.
pub const MIN_WINDOW: u32 = 20;

/// One window size at one angle, laid over one image as a `rows x cols` grid of centres.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// Window side in pixels of the scanned image.
    pub size: u32,
    /// Distance between neighbouring window centres.
    pub step: u32,
    /// Row and column of the first centre (`size / 2 + 1`).
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
    pub levels: Vec<Level>,
}

impl ScanPlan {
    /// Sizes from `max(20, min_size)` up to `min(width, height) - 4`, each at every angle.
    pub fn new(width: u32, height: u32, min_size: u32, angles: &[f32]) -> Self {
        let max_size = width.min(height).saturating_sub(4);
        let mut levels = Vec::new();
        let mut size = min_size.max(MIN_WINDOW);
        while size <= max_size {
            let step = ((SHIFT_FACTOR * size as f64) as u32).max(1);
            let offset = size / 2 + 1;
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
    fn rotation_is_exact_at_zero() {
        assert_eq!(rotation(0.0), (256, 0));
        assert_eq!(rotation(90.0), (0, 256));
        assert_eq!(rotation(-30.0), (222, -128));
    }
}
