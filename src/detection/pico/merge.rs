//! From surviving windows to faces: Pigo's clustering of overlapping windows, PhotoPrism's
//! size-dependent quality gate, and a final one-box-per-face overlap check.
//!
//! Works in detection-image pixels on plain boxes; it must not scan, decode or rescale.

use crate::geometry::Rect;

/// A square candidate box: centre (row, col), side `size`, and its (summed) confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub row: f32,
    pub col: f32,
    pub size: f32,
    pub score: f32,
}

impl Candidate {
    /// The window as a box (x: column, y: row).
    pub fn rect(&self) -> Rect {
        Rect::centred(self.col, self.row, self.size)
    }

    /// Intersection over union of two boxes.
    pub fn iou(&self, other: &Candidate) -> f32 {
        self.rect().iou(&other.rect())
    }

    /// Intersection over the smaller box's area: 1 when one box lies inside the other.
    pub fn overlap(&self, other: &Candidate) -> f32 {
        let smaller = self.size.min(other.size);
        self.rect().intersection(&other.rect()) / (smaller * smaller)
    }
}

/// Pigo's clustering of windows: in order of increasing score, each window not yet in a group
/// seeds one with every window whose IoU with it exceeds `iou` (a window may count towards more
/// than one group, as in Pigo, so the summed scores match the ones PhotoPrism's quality gate was
/// tuned on). Each group has the averaged centre and size and the summed score. Groups that
/// describe the same face are removed afterwards by [`select`].
pub fn cluster(mut windows: Vec<Candidate>, iou: f32) -> Vec<Candidate> {
    windows.sort_by(|a, b| {
        a.score
            .total_cmp(&b.score)
            .then(a.size.total_cmp(&b.size))
            .then(a.row.total_cmp(&b.row))
            .then(a.col.total_cmp(&b.col))
    });
    let mut taken = vec![false; windows.len()];
    let mut out = Vec::new();
    for i in 0..windows.len() {
        if taken[i] {
            continue;
        }
        let seed = windows[i];
        let (mut r, mut c, mut s, mut q, mut n) = (0.0f64, 0.0f64, 0.0f64, 0.0f32, 0u32);
        for (j, w) in windows.iter().enumerate() {
            if seed.iou(w) > iou {
                taken[j] = true;
                r += w.row as f64;
                c += w.col as f64;
                s += w.size as f64;
                q += w.score;
                n += 1;
            }
        }
        let n64 = n as f64;
        out.push(Candidate {
            row: (r / n64) as f32,
            col: (c / n64) as f32,
            size: (s / n64) as f32,
            score: q,
        });
    }
    out
}

/// PhotoPrism's quality threshold: small faces must score higher.
pub fn quality_threshold(face_score: f32, size: f32) -> f32 {
    let bonus = match size {
        s if s < 26.0 => 26.0,
        s if s < 32.0 => 16.0,
        s if s < 40.0 => 11.0,
        s if s < 50.0 => 9.0,
        s if s < 80.0 => 6.0,
        s if s < 110.0 => 2.0,
        _ => 0.0,
    };
    face_score + bonus
}

/// Keep candidates that pass the quality gate; then, largest first, drop any whose overlap with an
/// already kept face exceeds `max_overlap` (a fraction). Returns faces largest first.
pub fn select(mut candidates: Vec<Candidate>, face_score: f32, max_overlap: f32) -> Vec<Candidate> {
    candidates.retain(|c| c.score >= quality_threshold(face_score, c.size));
    candidates.sort_by(|a, b| b.size.total_cmp(&a.size).then(b.score.total_cmp(&a.score)));
    let mut kept: Vec<Candidate> = Vec::with_capacity(candidates.len());
    for c in candidates {
        if kept.iter().all(|k| k.overlap(&c) <= max_overlap) {
            kept.push(c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(row: f32, col: f32, size: f32, score: f32) -> Candidate {
        Candidate {
            row,
            col,
            size,
            score,
        }
    }

    #[test]
    fn overlapping_windows_become_one_candidate_with_summed_score() {
        let windows = vec![
            cand(100.0, 100.0, 50.0, 2.0),
            cand(102.0, 98.0, 55.0, 3.0),
            cand(98.0, 101.0, 50.0, 1.0),
            cand(300.0, 300.0, 60.0, 4.0),
        ];
        let mut out = cluster(windows, 0.41);
        out.sort_by(|a, b| a.row.total_cmp(&b.row));
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].score, 6.0);
        assert!((out[0].size - 155.0 / 3.0).abs() < 1e-4);
        assert_eq!(out[1], cand(300.0, 300.0, 60.0, 4.0));
    }

    #[test]
    fn quality_gate_and_nested_boxes() {
        assert_eq!(quality_threshold(9.0, 20.0), 35.0);
        assert_eq!(quality_threshold(9.0, 60.0), 15.0);
        assert_eq!(quality_threshold(9.0, 200.0), 9.0);
        let faces = select(
            vec![
                cand(100.0, 100.0, 120.0, 40.0),
                // inside the big one: IoU is low, but it is the same face
                cand(100.0, 100.0, 60.0, 30.0),
                // too weak for its size
                cand(400.0, 400.0, 60.0, 12.0),
                cand(400.0, 100.0, 100.0, 12.0),
            ],
            9.0,
            0.42,
        );
        assert_eq!(
            faces,
            vec![
                cand(100.0, 100.0, 120.0, 40.0),
                cand(400.0, 100.0, 100.0, 12.0)
            ]
        );
    }
}
