//! Cutting faces out of a photo: a box (with a margin) resampled to a square network input, or a
//! similarity transform that puts the 5 landmarks where a template wants them.
//!
//! Pure pixel geometry on RGB images. It decides nothing about which faces to keep and runs no
//! network.

use fast_image_resize as fir;
use image::RgbImage;

use crate::geometry::Rect;

/// Five landmarks: left eye, right eye, nose, left and right mouth corner (left as seen in the
/// image), each `[x, y]` in pixels.
pub type Landmarks = [[f32; 2]; 5];

/// Resample `region` of `image` to a `side x side` RGB crop (row-major, 3 bytes a pixel). Parts of
/// the region outside the image are black. Downscaling filters (no aliasing); upscaling is
/// bilinear.
pub fn crop(image: &RgbImage, region: Rect, side: u32) -> Vec<u8> {
    crop_rect(image, region, side, side)
}

/// Like [`crop`] with a `w x h` output.
pub fn crop_rect(image: &RgbImage, region: Rect, w: u32, h: u32) -> Vec<u8> {
    let out = (w, h);
    let (iw, ih) = image.dimensions();
    let inside = region.x >= 0.0
        && region.y >= 0.0
        && region.x + region.w <= iw as f32
        && region.y + region.h <= ih as f32;
    if inside {
        return resize(image.as_raw(), iw, ih, region, out);
    }
    // Copy the covering integer rectangle with a black border, then crop inside that.
    let x0 = region.x.floor() as i64;
    let y0 = region.y.floor() as i64;
    let pw = ((region.x + region.w).ceil() as i64 - x0).max(1) as u32;
    let ph = ((region.y + region.h).ceil() as i64 - y0).max(1) as u32;
    let mut padded = vec![0u8; pw as usize * ph as usize * 3];
    for row in 0..ph as i64 {
        let sy = y0 + row;
        if sy < 0 || sy >= ih as i64 {
            continue;
        }
        let sx0 = x0.max(0);
        let sx1 = (x0 + pw as i64).min(iw as i64);
        if sx1 <= sx0 {
            continue;
        }
        let src = &image.as_raw()[(sy as usize * iw as usize + sx0 as usize) * 3..]
            [..(sx1 - sx0) as usize * 3];
        let dst = (row as usize * pw as usize + (sx0 - x0) as usize) * 3;
        padded[dst..dst + src.len()].copy_from_slice(src);
    }
    let local = Rect {
        x: region.x - x0 as f32,
        y: region.y - y0 as f32,
        ..region
    };
    resize(&padded, pw, ph, local, out)
}

fn resize(pixels: &[u8], w: u32, h: u32, region: Rect, out: (u32, u32)) -> Vec<u8> {
    let src = fir::images::ImageRef::new(w, h, pixels, fir::PixelType::U8x3)
        .expect("buffer matches its dimensions");
    let mut dst = fir::images::Image::new(out.0, out.1, fir::PixelType::U8x3);
    // f32 rounding may put the far edge a hair outside the buffer: clamp in f64.
    let x = (region.x as f64).clamp(0.0, w as f64 - 1e-3);
    let y = (region.y as f64).clamp(0.0, h as f64 - 1e-3);
    let cw = (region.w as f64).min(w as f64 - x).max(1e-3);
    let ch = (region.h as f64).min(h as f64 - y).max(1e-3);
    let options = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear))
        .crop(x, y, cw, ch);
    fir::Resizer::new()
        .resize(&src, &mut dst, &options)
        .expect("same pixel type on both sides");
    dst.into_vec()
}

/// The whole image resampled to `side x side` (for images that already are a cut face).
pub fn whole(image: &RgbImage, side: u32) -> Vec<u8> {
    let (w, h) = image.dimensions();
    let all = Rect {
        x: 0.0,
        y: 0.0,
        w: w as f32,
        h: h as f32,
    };
    crop(image, all, side)
}

/// A crop's HWC bytes as the CHW floats a network takes, each value mapped through `f`.
pub fn to_chw(pixels: &[u8], dst: &mut [f32], f: impl Fn(f32) -> f32) {
    let plane = pixels.len() / 3;
    for (i, p) in pixels.chunks_exact(3).enumerate() {
        for c in 0..3 {
            dst[c * plane + i] = f(p[c] as f32);
        }
    }
}

/// A 2x3 affine matrix mapping output pixel `(u, v)` to image pixel
/// `(m[0] u + m[1] v + m[2], m[3] u + m[4] v + m[5])`.
pub type Affine = [f32; 6];

/// The least-squares similarity (rotation, uniform scale, shift) taking `template` points (in the
/// output crop) to `landmarks` (in the image): Umeyama's closed form for 2-D.
pub fn similarity(template: &Landmarks, landmarks: &Landmarks) -> Affine {
    let n = template.len() as f32;
    let mean = |p: &Landmarks| {
        let (sx, sy) = p.iter().fold((0.0, 0.0), |(a, b), q| (a + q[0], b + q[1]));
        (sx / n, sy / n)
    };
    let (tx, ty) = mean(template);
    let (lx, ly) = mean(landmarks);
    // Solve l = [a -b; b a] t + c for a, b.
    let (mut num_a, mut num_b, mut den) = (0.0f32, 0.0f32, 0.0f32);
    for (t, l) in template.iter().zip(landmarks) {
        let (u, v) = (t[0] - tx, t[1] - ty);
        let (x, y) = (l[0] - lx, l[1] - ly);
        num_a += u * x + v * y;
        num_b += u * y - v * x;
        den += u * u + v * v;
    }
    let (a, b) = (num_a / den, num_b / den);
    [a, -b, lx - a * tx + b * ty, b, a, ly - b * tx - a * ty]
}

/// Sample a `side x side` crop through `m` (output pixel centre -> image position), bilinear,
/// black outside. The image should already be near the output's scale (see [`aligned_crop`]).
fn warp(image: &RgbImage, m: &Affine, side: u32) -> Vec<u8> {
    let (iw, ih) = image.dimensions();
    let px = image.as_raw();
    let mut out = vec![0u8; side as usize * side as usize * 3];
    for v in 0..side {
        for u in 0..side {
            let (fu, fv) = (u as f32 + 0.5, v as f32 + 0.5);
            let x = m[0] * fu + m[1] * fv + m[2] - 0.5;
            let y = m[3] * fu + m[4] * fv + m[5] - 0.5;
            let (x0, y0) = (x.floor(), y.floor());
            let (ax, ay) = (x - x0, y - y0);
            let o = (v as usize * side as usize + u as usize) * 3;
            for c in 0..3 {
                let at = |xi: f32, yi: f32| -> f32 {
                    if xi < 0.0 || yi < 0.0 || xi >= iw as f32 || yi >= ih as f32 {
                        0.0
                    } else {
                        px[(yi as usize * iw as usize + xi as usize) * 3 + c] as f32
                    }
                };
                let top = at(x0, y0) * (1.0 - ax) + at(x0 + 1.0, y0) * ax;
                let bottom = at(x0, y0 + 1.0) * (1.0 - ax) + at(x0 + 1.0, y0 + 1.0) * ax;
                out[o + c] = (top * (1.0 - ay) + bottom * ay).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// A `side x side` crop in which the landmarks sit on `template` (given for a `side` crop): the
/// region around the face is first resampled to about the output's scale, so the rotation step
/// never aliases, then warped.
pub fn aligned_crop(
    image: &RgbImage,
    landmarks: &Landmarks,
    template: &Landmarks,
    side: u32,
) -> Vec<u8> {
    let m = similarity(template, landmarks);
    let scale = (m[0] * m[0] + m[3] * m[3]).sqrt(); // image pixels per output pixel
    // The image region the crop covers (its bounding box), with a pixel to spare.
    let corners = [
        (0.0, 0.0),
        (side as f32, 0.0),
        (0.0, side as f32),
        (side as f32, side as f32),
    ];
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for (u, v) in corners {
        let x = m[0] * u + m[1] * v + m[2];
        let y = m[3] * u + m[4] * v + m[5];
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let region = Rect {
        x: x0 - scale,
        y: y0 - scale,
        w: x1 - x0 + 2.0 * scale,
        h: y1 - y0 + 2.0 * scale,
    };
    // Resample that region so one of its pixels is one output pixel.
    let rw = (region.w / scale).round().max(1.0) as u32;
    let rh = (region.h / scale).round().max(1.0) as u32;
    let local = RgbImage::from_raw(rw, rh, crop_rect(image, region, rw, rh))
        .expect("buffer matches its dimensions");
    let (kx, ky) = (region.w / rw as f32, region.h / rh as f32);
    // Output -> local pixels: subtract the region origin, divide by its pixel size.
    let lm = [
        m[0] / kx,
        m[1] / kx,
        (m[2] - region.x) / kx,
        m[3] / ky,
        m[4] / ky,
        (m[5] - region.y) / ky,
    ];
    warp(&local, &lm, side)
}
