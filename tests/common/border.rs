//! The border set: real faces cut by the frame or filling it, made from the 5-celebrity photos
//! and their reference boxes. Each photo with one reference face gives nine crops: for each side,
//! one where the face touches it and one where a quarter of the face lies beyond it, and one
//! where the face fills the frame (its box plus 5% a side). The reference box of a crop is the
//! part of the face inside it.

use image::{DynamicImage, GenericImageView};

pub struct BorderCase {
    /// `<photo stem>-<case>`, e.g. `...jpg-left-cut`.
    pub name: String,
    pub image: DynamicImage,
    /// The visible face, (x, y, w, h) in the crop's pixels.
    pub face: [f32; 4],
}

/// The cases of every `step`-th celebrity photo that has exactly one reference face.
pub fn border_set(step: usize) -> Vec<BorderCase> {
    let root = super::testdata();
    let mut out = Vec::new();
    let photos: Vec<(String, [f32; 4])> = super::reference_faces()
        .into_iter()
        .filter(|(name, faces)| name.starts_with("celebrity/") && faces.len() == 1)
        .map(|(name, faces)| (name, faces[0]))
        .collect();
    for (name, face) in photos.into_iter().step_by(step) {
        let image = super::decode_oriented(&root.join(&name));
        for (case, crop) in crops(image.dimensions(), face) {
            let [x0, y0, x1, y1] = crop;
            let visible = [
                face[0].max(x0 as f32) - x0 as f32,
                face[1].max(y0 as f32) - y0 as f32,
                (face[0] + face[2]).min(x1 as f32) - face[0].max(x0 as f32),
                (face[1] + face[3]).min(y1 as f32) - face[1].max(y0 as f32),
            ];
            out.push(BorderCase {
                name: format!("{}-{case}", name.replace('/', "_")),
                image: image.crop_imm(x0, y0, x1 - x0, y1 - y0),
                face: visible,
            });
        }
    }
    out
}

/// The nine crops `[x0, y0, x1, y1]` of an image of `(w, h)` with a face at `f`.
fn crops((w, h): (u32, u32), f: [f32; 4]) -> Vec<(String, [u32; 4])> {
    let [x, y, fw, fh] = f;
    let px = |v: f32, max: u32| (v.round().max(0.0) as u32).min(max);
    let mut out = Vec::new();
    for (how, cut) in [("touch", 0.0), ("cut", 0.25)] {
        let sides = [
            ("left", [px(x + cut * fw, w), 0, w, h]),
            ("right", [0, 0, px(x + fw - cut * fw, w), h]),
            ("top", [0, px(y + cut * fh, h), w, h]),
            ("bottom", [0, 0, w, px(y + fh - cut * fh, h)]),
        ];
        out.extend(sides.map(|(side, c)| (format!("{side}-{how}"), c)));
    }
    let fill = [
        px(x - 0.05 * fw, w),
        px(y - 0.05 * fh, h),
        px(x + 1.05 * fw, w),
        px(y + 1.05 * fh, h),
    ];
    out.push(("fill".into(), fill));
    out
}
