//! Boxes between visage's pixels (the photo as shown, after its EXIF orientation) and the stored
//! pixels (before it), which is what XMP regions and their `AppliedToDimensions` refer to.
//!
//! Exact geometry for the 8 EXIF orientations, nothing else.

use super::NormRect;

/// A box in pixels of the photo as shown (top-left corner and size).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PixelBox {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

/// The stored image's size for a photo shown at `shown` with EXIF `orientation` (5-8 swap sides).
pub fn stored_size(orientation: u8, shown: (u32, u32)) -> (u32, u32) {
    if swaps_sides(orientation) {
        (shown.1, shown.0)
    } else {
        shown
    }
}

fn swaps_sides(orientation: u8) -> bool {
    matches!(orientation, 5..=8)
}

/// Where a point of the shown image lies in the stored one, both in pixels (continuous, so a
/// pixel's corner maps to a pixel's corner). `stored` is the stored image's size.
fn to_stored_point(orientation: u8, stored: (f64, f64), (x, y): (f64, f64)) -> (f64, f64) {
    let (ws, hs) = stored;
    match orientation {
        2 => (ws - x, y),      // mirrored left-right
        3 => (ws - x, hs - y), // rotated 180
        4 => (x, hs - y),      // mirrored top-bottom
        5 => (y, x),           // transposed
        6 => (y, hs - x),      // shown rotated 90 clockwise
        7 => (ws - y, hs - x), // transversed
        8 => (ws - y, x),      // shown rotated 90 counter-clockwise
        _ => (x, y),           // 1 and unknown values: as stored
    }
}

/// Where a point of the stored image lies in the shown one (the inverse of [`to_stored_point`]).
fn to_shown_point(orientation: u8, stored: (f64, f64), (xs, ys): (f64, f64)) -> (f64, f64) {
    let (ws, hs) = stored;
    match orientation {
        2 => (ws - xs, ys),
        3 => (ws - xs, hs - ys),
        4 => (xs, hs - ys),
        5 => (ys, xs),
        6 => (hs - ys, xs),
        7 => (hs - ys, ws - xs),
        8 => (ys, ws - xs),
        _ => (xs, ys),
    }
}

/// The box spanned by two mapped corners.
fn span((x0, y0): (f64, f64), (x1, y1): (f64, f64)) -> PixelBox {
    PixelBox {
        x: x0.min(x1),
        y: y0.min(y1),
        w: (x1 - x0).abs(),
        h: (y1 - y0).abs(),
    }
}

/// A box of the shown photo (`shown` = its size) as a region of the stored image.
pub fn to_region(orientation: u8, shown: (u32, u32), b: PixelBox) -> NormRect {
    let (ws, hs) = stored_size(orientation, shown);
    let stored = (ws as f64, hs as f64);
    let p = span(
        to_stored_point(orientation, stored, (b.x, b.y)),
        to_stored_point(orientation, stored, (b.x + b.w, b.y + b.h)),
    );
    NormRect {
        x: p.x / stored.0,
        y: p.y / stored.1,
        w: p.w / stored.0,
        h: p.h / stored.1,
    }
}

/// A region of the stored image as a box of the shown photo (`shown` = its size).
pub fn to_pixels(orientation: u8, shown: (u32, u32), r: NormRect) -> PixelBox {
    let (ws, hs) = stored_size(orientation, shown);
    let stored = (ws as f64, hs as f64);
    let (x0, y0) = (r.x * stored.0, r.y * stored.1);
    let (x1, y1) = ((r.x + r.w) * stored.0, (r.y + r.h) * stored.1);
    span(
        to_shown_point(orientation, stored, (x0, y0)),
        to_shown_point(orientation, stored, (x1, y1)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_orientation_round_trips_and_keeps_the_size() {
        let shown = (300, 200);
        let b = PixelBox {
            x: 10.0,
            y: 20.0,
            w: 50.0,
            h: 70.0,
        };
        for o in 1..=8u8 {
            let r = to_region(o, shown, b);
            let (ws, hs) = stored_size(o, shown);
            let (rw, rh) = (r.w * ws as f64, r.h * hs as f64);
            if swaps_sides(o) {
                assert!(
                    ((rw - 70.0).abs() < 1e-9) && (rh - 50.0).abs() < 1e-9,
                    "{o}"
                );
            } else {
                assert!(
                    ((rw - 50.0).abs() < 1e-9) && (rh - 70.0).abs() < 1e-9,
                    "{o}"
                );
            }
            let back = to_pixels(o, shown, r);
            for (a, e) in [(back.x, b.x), (back.y, b.y), (back.w, b.w), (back.h, b.h)] {
                assert!((a - e).abs() < 1e-9, "orientation {o}: {back:?} != {b:?}");
            }
        }
    }

    #[test]
    fn rotated_90_clockwise_puts_the_shown_top_left_at_the_stored_bottom_left() {
        // Orientation 6: the stored image is shown turned 90 degrees clockwise, so the shown
        // top-left corner is the stored bottom-left corner.
        let r = to_region(
            6,
            (200, 300),
            PixelBox {
                x: 0.0,
                y: 0.0,
                w: 20.0,
                h: 30.0,
            },
        );
        // Stored is 300 x 200: the box is 30 wide, 20 tall, at the bottom-left.
        assert!((r.x - 0.0).abs() < 1e-12 && (r.w - 0.1).abs() < 1e-12);
        assert!((r.y - 0.9).abs() < 1e-12 && (r.h - 0.1).abs() < 1e-12);
    }
}
