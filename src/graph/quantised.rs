//! Rows in 8 bits a component: a row is its step (its largest component over 127) and each
//! component as a whole number of steps (an `i8`), 4 + `dim` bytes. The vector file beside the
//! database keeps the embeddings this way (half the bytes of f16), and the searches that stream
//! it read them as [`super::Rows::Q8`].
//!
//! Rounding moves each component by at most half a step, so a row read back lies within
//! [`margin`] of the row it came from, and a distance between two rows read back within the sum
//! of their margins of the distance between the originals. A search over these rows widens its
//! threshold by that much and checks what it finds again with the exact rows: what it returns is
//! then exactly what a search of the exact rows returns.

/// The rounding step of a row: its largest component maps to 127 (1 for a zero row).
pub fn step_of(v: &[f32]) -> f32 {
    let largest = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if largest > 0.0 { largest / 127.0 } else { 1.0 }
}

/// `v` in steps of `step_of(v)` into `out` (same length); returns the step.
pub fn quantise(v: &[f32], out: &mut [i8]) -> f32 {
    let step = step_of(v);
    for (o, x) in out.iter_mut().zip(v) {
        *o = (x / step).round().clamp(-127.0, 127.0) as i8;
    }
    step
}

/// A quantised row back as floats, into `out`.
pub fn dequantise(step: f32, values: &[i8], out: &mut [f32]) {
    for (o, &q) in out.iter_mut().zip(values) {
        *o = q as f32 * step;
    }
}

/// How far a row of `dim` components read back with rounding step `step` may lie from the row it
/// came from: each component by half a step, so the row by √dim half steps (and a little more for
/// the arithmetic of the distances computed from it).
pub fn margin(dim: usize, step: f32) -> f32 {
    (dim as f32).sqrt() * step * 0.5 * 1.01 + 1e-4
}

/// Quantised rows owned together: `steps[r]` and `values[r * dim..(r + 1) * dim]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantisedRows {
    pub dim: usize,
    pub steps: Vec<f32>,
    pub values: Vec<i8>,
}

impl QuantisedRows {
    pub fn new(dim: usize) -> Self {
        QuantisedRows {
            dim,
            ..QuantisedRows::default()
        }
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn clear(&mut self) {
        self.steps.clear();
        self.values.clear();
    }

    /// Append a row already quantised.
    pub fn push(&mut self, step: f32, values: &[i8]) {
        debug_assert_eq!(values.len(), self.dim);
        self.steps.push(step);
        self.values.extend_from_slice(values);
    }

    /// Append `v`, quantised.
    pub fn push_f32(&mut self, v: &[f32]) {
        let start = self.values.len();
        self.values.resize(start + self.dim, 0);
        let step = quantise(v, &mut self.values[start..]);
        self.steps.push(step);
    }

    /// Append a row stored as `step` (f32, little-endian) then `dim` signed bytes (the vector
    /// file's layout).
    pub fn push_bytes(&mut self, row: &[u8]) {
        let step = f32::from_le_bytes(row[..4].try_into().expect("4 bytes"));
        self.steps.push(step);
        self.values
            .extend(row[4..4 + self.dim].iter().map(|&b| b as i8));
    }

    /// The rows as a search reads them.
    pub fn rows(&self) -> super::Rows<'_> {
        super::Rows::Q8 {
            steps: &self.steps,
            values: &self.values,
        }
    }

    /// The largest step of any row (the widest margin).
    pub fn largest_step(&self) -> f32 {
        self.steps.iter().copied().fold(0f32, f32::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_within_their_margin() {
        let rows = crate::graph::synthetic::embeddings(64, 10, 10, 0.5, 20);
        let mut q = QuantisedRows::new(64);
        for r in rows.chunks_exact(64) {
            q.push_f32(r);
        }
        let mut back = vec![0f32; 64];
        for (k, r) in rows.chunks_exact(64).enumerate() {
            q.rows().copy_to(64, k, &mut back);
            let d: f32 = r
                .iter()
                .zip(&back)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f32>()
                .sqrt();
            assert!(d > 0.0 && d <= margin(64, q.steps[k]), "{k}: {d}");
            let largest = r.iter().fold(0f32, |m, x| m.max(x.abs()));
            let q = &q.values[k * 64..(k + 1) * 64];
            assert!(q.contains(&127) || q.contains(&-127) || largest == 0.0);
        }
        // The vector file's byte layout reads back the same.
        let mut bytes = q.steps[3].to_le_bytes().to_vec();
        bytes.extend(q.values[3 * 64..4 * 64].iter().map(|&v| v as u8));
        let mut again = QuantisedRows::new(64);
        again.push_bytes(&bytes);
        assert_eq!(again.steps, vec![q.steps[3]]);
        assert_eq!(again.values, q.values[3 * 64..4 * 64]);
    }
}
