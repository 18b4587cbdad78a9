//! The embeddings a search reads: `n` rows of `dim` values, one after another, as f32, as IEEE
//! half floats (how the store keeps them: a million 512-d rows are 1 GB in f16, 2 GB in f32), or
//! in 8 bits a component with a step per row (how the vector file keeps them,
//! [`super::quantised`]). Searches convert the rows they need to f32 a tile at a time, so a
//! matrix never has an f32 copy. Distances are always computed in f32 on the converted values, so
//! a row's f16 (or 8-bit) form and its f32 conversion give bit-identical results.

use half::f16;
use half::slice::HalfFloatSliceExt;

/// Rows of `dim` values each, contiguous.
#[derive(Clone, Copy, Debug)]
pub enum Rows<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    /// Row `r` is `values[r * dim..(r + 1) * dim]` times `steps[r]`.
    Q8 {
        steps: &'a [f32],
        values: &'a [i8],
    },
}

impl<'a> Rows<'a> {
    /// Values (not rows).
    pub fn values(&self) -> usize {
        match self {
            Rows::F32(r) => r.len(),
            Rows::F16(r) => r.len(),
            Rows::Q8 { values, .. } => values.len(),
        }
    }

    /// How many rows of `dim` values.
    pub fn count(&self, dim: usize) -> usize {
        self.values() / dim
    }

    /// Rows `start..start + count` as one of them.
    pub fn slice(&self, dim: usize, start: usize, count: usize) -> Rows<'a> {
        let range = start * dim..(start + count) * dim;
        match *self {
            Rows::F32(r) => Rows::F32(&r[range]),
            Rows::F16(r) => Rows::F16(&r[range]),
            Rows::Q8 { steps, values } => Rows::Q8 {
                steps: &steps[start..start + count],
                values: &values[range],
            },
        }
    }

    /// Rows `start..start + out.len() / dim` into `out`, as f32.
    pub fn copy_to(&self, dim: usize, start: usize, out: &mut [f32]) {
        let range = start * dim..start * dim + out.len();
        match self {
            Rows::F32(r) => out.copy_from_slice(&r[range]),
            Rows::F16(r) => r[range].convert_to_f32_slice(out),
            Rows::Q8 { steps, values } => {
                for (k, o) in out.chunks_mut(dim).enumerate() {
                    let at = (start + k) * dim;
                    super::quantised::dequantise(steps[start + k], &values[at..at + o.len()], o);
                }
            }
        }
    }

    /// Rows `start..start + count` as f32: borrowed when they already are, else converted into
    /// `scratch` (grown as needed, never shrunk).
    pub fn f32_rows<'s>(
        &self,
        dim: usize,
        start: usize,
        count: usize,
        scratch: &'s mut Vec<f32>,
    ) -> &'s [f32]
    where
        'a: 's,
    {
        match *self {
            Rows::F32(r) => &r[start * dim..(start + count) * dim],
            Rows::F16(_) | Rows::Q8 { .. } => {
                if scratch.len() < count * dim {
                    scratch.resize(count * dim, 0.0);
                }
                self.copy_to(dim, start, &mut scratch[..count * dim]);
                &scratch[..count * dim]
            }
        }
    }

    /// The rows at `indices`, in that order, into `out` (`indices.len() * dim` floats) as f32.
    pub fn gather(&self, dim: usize, indices: &[u32], out: &mut [f32]) {
        for (&i, o) in indices.iter().zip(out.chunks_exact_mut(dim)) {
            self.copy_to(dim, i as usize, o);
        }
    }
}

/// Squared length of each `dim`-float row.
pub fn squared_norms(rows: &[f32], dim: usize, out: &mut Vec<f32>) {
    out.clear();
    out.extend(rows.chunks_exact(dim).map(|r| {
        // Sixteen independent sums, so the compiler keeps them in vector registers (one
        // running sum would be a chain of dependent scalar additions).
        let mut acc = [0f32; 16];
        let (chunks, rest) = r.as_chunks::<16>();
        for chunk in chunks {
            for k in 0..16 {
                acc[k] += chunk[k] * chunk[k];
            }
        }
        acc.iter().sum::<f32>() + rest.iter().map(|x| x * x).sum::<f32>()
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_rows_convert_exactly_wherever_they_are_read() {
        let values: Vec<f32> = (0..48).map(|k| k as f32 * 0.37 - 5.0).collect();
        let half: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
        let exact: Vec<f32> = half.iter().map(|h| h.to_f32()).collect();
        let rows = Rows::F16(&half);
        assert_eq!(rows.count(8), 6);
        let mut scratch = Vec::new();
        assert_eq!(rows.f32_rows(8, 2, 3, &mut scratch), &exact[16..40]);
        let mut out = vec![0f32; 16];
        rows.gather(8, &[5, 0], &mut out);
        assert_eq!(&out[..8], &exact[40..48]);
        assert_eq!(&out[8..], &exact[..8]);
        let f = Rows::F32(&values);
        assert_eq!(f.f32_rows(8, 1, 1, &mut scratch), &values[8..16]);
        assert_eq!(f.slice(8, 4, 2).count(8), 2);

        // 8-bit rows: each row its step times its values, wherever it is read.
        let steps = [0.5f32, 0.25, 2.0];
        let q: Vec<i8> = (0..24).map(|k| k as i8 - 12).collect();
        let want: Vec<f32> = (0..24).map(|k| (k as f32 - 12.0) * steps[k / 8]).collect();
        let rows = Rows::Q8 {
            steps: &steps,
            values: &q,
        };
        assert_eq!(rows.count(8), 3);
        assert_eq!(rows.f32_rows(8, 1, 2, &mut scratch), &want[8..24]);
        rows.gather(8, &[2, 0], &mut out);
        assert_eq!(&out[..8], &want[16..24]);
        assert_eq!(&out[8..], &want[..8]);
        let part = rows.slice(8, 1, 2);
        assert_eq!(part.f32_rows(8, 1, 1, &mut scratch), &want[16..24]);
    }
}
