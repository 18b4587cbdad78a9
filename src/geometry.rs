//! The one box type every stage shares: [`Rect`], an axis-aligned rectangle (top-left corner and
//! size) with its area, intersection and intersection over union (visage's one IoU). Detection,
//! MTCNN, alignment and the store hold their boxes as `Rect` (f32 pixels, or 0-1 of the photo);
//! XMP regions use it in f64.
//!
//! Plain arithmetic: it knows nothing of photos, faces or networks.

use num_traits::Float;
use serde::{Deserialize, Serialize};

/// An axis-aligned rectangle: top-left corner `(x, y)`, width and height (pixels unless said
/// otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rect<T = f32> {
    pub x: T,
    pub y: T,
    pub w: T,
    pub h: T,
}

impl<T: Float> Rect<T> {
    /// The smallest rectangle holding both.
    pub fn union(&self, other: &Rect<T>) -> Rect<T> {
        let (x0, y0) = (self.x.min(other.x), self.y.min(other.y));
        let x1 = (self.x + self.w).max(other.x + other.w);
        let y1 = (self.y + self.h).max(other.y + other.h);
        Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        }
    }

    /// The area (0 for a rectangle with a negative side).
    pub fn area(&self) -> T {
        self.w.max(T::zero()) * self.h.max(T::zero())
    }

    /// Area of the part both rectangles cover.
    pub fn intersection(&self, other: &Rect<T>) -> T {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = (self.x + self.w).min(other.x + other.w);
        let y1 = (self.y + self.h).min(other.y + other.h);
        (x1 - x0).max(T::zero()) * (y1 - y0).max(T::zero())
    }

    /// Intersection over union: 1 for the same rectangle, 0 for disjoint ones (or two empty ones).
    pub fn iou(&self, other: &Rect<T>) -> T {
        let inter = self.intersection(other);
        let union = self.area() + other.area() - inter;
        if union > T::zero() {
            inter / union
        } else {
            T::zero()
        }
    }
}

impl<T> From<[T; 4]> for Rect<T> {
    /// `[x, y, w, h]`.
    fn from([x, y, w, h]: [T; 4]) -> Self {
        Rect { x, y, w, h }
    }
}

impl Rect {
    /// A square of side `side` centred on `(cx, cy)`.
    pub fn centred(cx: f32, cy: f32, side: f32) -> Rect {
        let half = side / 2.0;
        Rect {
            x: cx - half,
            y: cy - half,
            w: side,
            h: side,
        }
    }

    pub fn center(&self) -> (f32, f32) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }

    /// The square with the longer side, on the same centre (MTCNN's `rerec`).
    pub fn square(&self) -> Rect {
        let side = self.w.max(self.h);
        let (cx, cy) = self.center();
        Rect {
            x: cx - side / 2.0,
            y: cy - side / 2.0,
            w: side,
            h: side,
        }
    }

    /// The box grown by `fraction` of its size in total (0.2: 10% on each side), same centre.
    pub fn grown(&self, fraction: f32) -> Rect {
        let (cx, cy) = self.center();
        let (w, h) = (self.w * (1.0 + fraction), self.h * (1.0 + fraction));
        Rect {
            x: cx - w / 2.0,
            y: cy - h / 2.0,
            w,
            h,
        }
    }

    /// The part of the box inside a `width x height` image.
    pub fn clamped(&self, width: u32, height: u32) -> Rect {
        let x0 = self.x.clamp(0.0, width as f32);
        let y0 = self.y.clamp(0.0, height as f32);
        let x1 = (self.x + self.w).clamp(0.0, width as f32);
        let y1 = (self.y + self.h).clamp(0.0, height as f32);
        Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        }
    }

    /// The same box in another pixel grid scaled by `(sx, sy)`.
    pub fn scaled(&self, sx: f32, sy: f32) -> Rect {
        Rect {
            x: self.x * sx,
            y: self.y * sy,
            w: self.w * sx,
            h: self.h * sy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_same_nested_and_disjoint_rectangles() {
        let a = Rect::from([0.0f32, 0.0, 10.0, 10.0]);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&Rect::from([5.0, 0.0, 10.0, 10.0])), 50.0 / 150.0);
        assert_eq!(a.iou(&Rect::from([2.0, 2.0, 5.0, 5.0])), 0.25);
        assert_eq!(a.iou(&Rect::from([20.0, 0.0, 10.0, 10.0])), 0.0);
        let empty = Rect::from([0.0f64, 0.0, 0.0, 0.0]);
        assert_eq!(empty.iou(&empty), 0.0);
        let b = Rect::from([0.25f64, 0.0, 0.5, 1.0]);
        assert_eq!(b.iou(&Rect::from([0.0, 0.0, 1.0, 1.0])), 0.5);
    }

    #[test]
    fn square_grown_clamped_and_scaled_keep_their_centre() {
        let r = Rect::from([10.0f32, 20.0, 40.0, 60.0]);
        assert_eq!(r.square(), Rect::from([0.0, 20.0, 60.0, 60.0]));
        assert_eq!(r.grown(0.5), Rect::from([0.0, 5.0, 60.0, 90.0]));
        assert_eq!(r.clamped(30, 50), Rect::from([10.0, 20.0, 20.0, 30.0]));
        assert_eq!(r.scaled(0.5, 2.0), Rect::from([5.0, 40.0, 20.0, 120.0]));
        assert_eq!(
            Rect::centred(5.0, 5.0, 4.0),
            Rect::from([3.0, 3.0, 4.0, 4.0])
        );
    }
}
