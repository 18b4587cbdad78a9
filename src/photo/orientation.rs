//! The 8 EXIF orientations on decoded pixels: sizes and rectangles between the pixels as stored
//! and as shown, and turning an image upright.

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};

/// A rectangle in pixels (top-left corner and size; pixel edges are whole numbers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// Whether an orientation swaps width and height (the quarter turns and transpositions).
fn swaps(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The size shown for pixels stored at `stored`.
pub fn oriented_size(stored: (u32, u32), o: Orientation) -> (u32, u32) {
    if swaps(o) {
        (stored.1, stored.0)
    } else {
        stored
    }
}

/// The size stored for pixels shown at `shown`.
pub fn stored_size(shown: (u32, u32), o: Orientation) -> (u32, u32) {
    oriented_size(shown, o)
}

/// `rgb` as shown.
pub fn apply(rgb: RgbImage, o: Orientation) -> RgbImage {
    if o == Orientation::NoTransforms {
        return rgb;
    }
    let mut image = DynamicImage::ImageRgb8(rgb);
    image.apply_orientation(o);
    image.into_rgb8()
}

/// Where a rectangle of the image as shown (of size `shown`) lies in the pixels as stored.
pub fn rect_to_stored(r: Rect, shown: (u32, u32), o: Orientation) -> Rect {
    let (sw, sh) = stored_size(shown, o);
    let (sw, sh) = (sw as f32, sh as f32);
    // Each orientation maps a point of the shown image (u, v) to one of the stored image; map
    // two opposite corners and take their box.
    let to_stored = |u: f32, v: f32| -> (f32, f32) {
        match o {
            Orientation::NoTransforms => (u, v),
            Orientation::FlipHorizontal => (sw - u, v),
            Orientation::Rotate180 => (sw - u, sh - v),
            Orientation::FlipVertical => (u, sh - v),
            // Shown = stored turned a quarter clockwise: shown (u, v) is stored (v, sh - u).
            Orientation::Rotate90 => (v, sh - u),
            Orientation::Rotate270 => (sw - v, u),
            // Transpose: shown (u, v) is stored (v, u).
            Orientation::Rotate90FlipH => (v, u),
            // Transverse.
            Orientation::Rotate270FlipH => (sw - v, sh - u),
        }
    };
    let (ax, ay) = to_stored(r.x, r.y);
    let (bx, by) = to_stored(r.x + r.w, r.y + r.h);
    Rect {
        x: ax.min(bx),
        y: ay.min(by),
        w: (ax - bx).abs(),
        h: (ay - by).abs(),
    }
}

/// Where a rectangle of the pixels as stored (of size `stored`) lies in the image as shown.
pub fn rect_to_shown(r: Rect, stored: (u32, u32), o: Orientation) -> Rect {
    // The stored image is the shown one under the inverse orientation.
    let inverse = match o {
        Orientation::Rotate90 => Orientation::Rotate270,
        Orientation::Rotate270 => Orientation::Rotate90,
        other => other,
    };
    rect_to_stored(r, stored, inverse)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Orientation; 8] = [
        Orientation::NoTransforms,
        Orientation::FlipHorizontal,
        Orientation::Rotate180,
        Orientation::FlipVertical,
        Orientation::Rotate90,
        Orientation::Rotate270,
        Orientation::Rotate90FlipH,
        Orientation::Rotate270FlipH,
    ];

    /// A stored image whose pixels carry their own coordinates; the shown pixels inside a
    /// rectangle must be the stored pixels inside the mapped rectangle, for every orientation.
    #[test]
    fn rectangles_map_to_the_pixels_they_show() {
        let (w, h) = (7u32, 5u32);
        let stored = RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 0]));
        for o in ALL {
            let shown = apply(stored.clone(), o);
            let size = shown.dimensions();
            assert_eq!(size, oriented_size((w, h), o), "{o:?}");
            let r = Rect {
                x: 1.0,
                y: 2.0,
                w: 3.0,
                h: 2.0,
            };
            let s = rect_to_stored(r, size, o);
            assert_eq!(rect_to_shown(s, (w, h), o), r, "{o:?}");
            let s = [s.x, s.y, s.w, s.h].map(|v| v as u32);
            let mut want: Vec<[u8; 2]> = (2..4)
                .flat_map(|v| (1..4).map(move |u| (u, v)))
                .map(|(u, v)| {
                    let p = shown.get_pixel(u, v).0;
                    [p[0], p[1]]
                })
                .collect();
            let mut got: Vec<[u8; 2]> = (s[1]..s[1] + s[3])
                .flat_map(|y| (s[0]..s[0] + s[2]).map(move |x| [x as u8, y as u8]))
                .collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(want, got, "{o:?}");
        }
    }
}
