//! Dot products of 8-bit rows ([`super::quantised`]) in whole numbers: the kernel of a search over
//! rows streamed from the vector file. A product of two 8-bit rows is exact in 32-bit integers,
//! and with AVX-512 VNNI (`vpdpbusd`: 64 byte products added into 16 lanes per instruction) it
//! costs about a quarter of the f32 product of the same rows. Elsewhere a plain loop the compiler
//! vectorises gives the same integers.
//!
//! The right-hand rows are packed into panels of 16 rows interleaved 4 bytes at a time (one
//! 64-byte vector holds 4 components of each of 16 rows) and shifted to unsigned bytes (+128), as
//! `vpdpbusd` multiplies unsigned by signed bytes; each left-hand row's 4 components are broadcast
//! against a panel. The shift adds `128 * sum(left row)` to every product, taken off at the end.

/// Rows per panel: the 16 lanes of a 512-bit vector.
const PANEL: usize = 16;

/// Right-hand rows packed for [`products`].
#[derive(Default)]
pub struct Panels {
    rows: usize,
    dim: usize,
    data: Vec<u8>,
}

impl Panels {
    /// Pack `rows` rows of `dim` components (`values`, row after row), reusing this buffer.
    pub fn pack(&mut self, values: &[i8], rows: usize, dim: usize) {
        assert!(dim.is_multiple_of(4) && values.len() >= rows * dim);
        self.rows = rows;
        self.dim = dim;
        let panels = rows.div_ceil(PANEL);
        self.data.clear();
        // A padding row is all zero components (128 once shifted).
        self.data.resize(panels * dim * PANEL, 128);
        for r in 0..rows {
            let (p, lane) = (r / PANEL, r % PANEL);
            let row = &values[r * dim..(r + 1) * dim];
            let panel = &mut self.data[p * dim * PANEL..(p + 1) * dim * PANEL];
            for (k4, four) in row.chunks_exact(4).enumerate() {
                let at = k4 * 4 * PANEL + lane * 4;
                for (o, &v) in panel[at..at + 4].iter_mut().zip(four) {
                    *o = (v as i16 + 128) as u8;
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
}

/// The sum of each row's components (what the shift of the right-hand side adds, per left row).
pub fn row_sums(values: &[i8], dim: usize, out: &mut Vec<i32>) {
    out.clear();
    out.extend(
        values
            .chunks_exact(dim)
            .map(|r| r.iter().map(|&v| v as i32).sum::<i32>()),
    );
}

/// `dots[r * w + c] = sum_k a[r][k] * b[c][k]` for the `m` rows of `a` (with their [`row_sums`])
/// and the `w` rows packed in `b`.
pub fn products(a: &[i8], m: usize, sums: &[i32], b: &Panels, dots: &mut Vec<i32>) {
    let (w, dim) = (b.rows, b.dim);
    assert!(a.len() >= m * dim && sums.len() >= m);
    dots.clear();
    dots.resize(m * w, 0);
    if m == 0 || w == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512f")
    {
        // SAFETY: the features the kernel is compiled for were detected just above.
        unsafe { vnni::products(a, m, sums, b, dots) };
        return;
    }
    portable(a, m, b, dots);
}

/// The same integers without VNNI: each panel row unpacked once, then plain loops.
fn portable(a: &[i8], m: usize, b: &Panels, dots: &mut [i32]) {
    let (w, dim) = (b.rows, b.dim);
    let mut row = vec![0i8; dim];
    for c in 0..w {
        let (p, lane) = (c / PANEL, c % PANEL);
        let panel = &b.data[p * dim * PANEL..(p + 1) * dim * PANEL];
        for k4 in 0..dim / 4 {
            let at = k4 * 4 * PANEL + lane * 4;
            for t in 0..4 {
                row[k4 * 4 + t] = (panel[at + t] as i16 - 128) as i8;
            }
        }
        for r in 0..m {
            let x = &a[r * dim..(r + 1) * dim];
            dots[r * w + c] = x.iter().zip(&row).map(|(&p, &q)| p as i32 * q as i32).sum();
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use std::arch::x86_64::*;

    use super::{PANEL, Panels};

    /// Left rows per step: their accumulators against two panels stay in registers.
    const ROWS: usize = 8;

    /// [`super::products`] with `vpdpbusd`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn products(a: &[i8], m: usize, sums: &[i32], b: &Panels, dots: &mut [i32]) {
        let (w, dim) = (b.rows, b.dim);
        let panels = w.div_ceil(PANEL);
        let steps = dim / 4;
        let mut p = 0;
        while p < panels {
            let two = p + 1 < panels;
            let p0 = b.data[p * dim * PANEL..].as_ptr();
            let p1 = if two {
                b.data[(p + 1) * dim * PANEL..].as_ptr()
            } else {
                p0
            };
            let mut r0 = 0;
            while r0 < m {
                let rows = ROWS.min(m - r0);
                let mut acc0 = [_mm512_setzero_si512(); ROWS];
                let mut acc1 = [_mm512_setzero_si512(); ROWS];
                let base = a[r0 * dim..].as_ptr();
                for k4 in 0..steps {
                    // SAFETY: k4 * 64 + 64 <= dim * PANEL bytes of each panel.
                    let v0 = unsafe { _mm512_loadu_si512(p0.add(k4 * 64) as *const _) };
                    let v1 = unsafe { _mm512_loadu_si512(p1.add(k4 * 64) as *const _) };
                    for i in 0..ROWS {
                        if i < rows {
                            // SAFETY: row r0 + i < m, and 4 bytes at k4 * 4 lie inside it.
                            let x = unsafe {
                                (base.add(i * dim + k4 * 4) as *const i32).read_unaligned()
                            };
                            let x = _mm512_set1_epi32(x);
                            acc0[i] = _mm512_dpbusd_epi32(acc0[i], v0, x);
                            acc1[i] = _mm512_dpbusd_epi32(acc1[i], v1, x);
                        }
                    }
                }
                for i in 0..rows {
                    let r = r0 + i;
                    let shift = _mm512_set1_epi32(128 * sums[r]);
                    let mut lanes = [0i32; 2 * PANEL];
                    // SAFETY: 16 lanes written into each half of `lanes`.
                    unsafe {
                        _mm512_storeu_si512(
                            lanes.as_mut_ptr() as *mut _,
                            _mm512_sub_epi32(acc0[i], shift),
                        );
                        _mm512_storeu_si512(
                            lanes[PANEL..].as_mut_ptr() as *mut _,
                            _mm512_sub_epi32(acc1[i], shift),
                        );
                    }
                    let first = p * PANEL;
                    let count = (if two { 2 * PANEL } else { PANEL }).min(w - first);
                    dots[r * w + first..r * w + first + count].copy_from_slice(&lanes[..count]);
                }
                r0 += rows;
            }
            p += if two { 2 } else { 1 };
        }
    }
}

/// 8-bit rows as [`close_pairs`] reads them: `steps[r]`, `values[r * dim..]`.
#[derive(Clone, Copy)]
pub struct Q8<'a> {
    pub steps: &'a [f32],
    pub values: &'a [i8],
}

impl Q8<'_> {
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Reused from call to call of [`close_pairs`].
#[derive(Default)]
pub struct Scratch {
    panels: Panels,
    sums: Vec<i32>,
    a_norms: Vec<f32>,
    b_norms: Vec<f32>,
    dots: Vec<i32>,
}

/// Squared length of each row as its values give it (`step^2 * sum q^2`; exact in f32 for rows of
/// up to 1,040 components).
fn norms(rows: Q8, dim: usize, out: &mut Vec<f32>) {
    out.clear();
    out.extend(
        rows.values
            .chunks_exact(dim)
            .zip(rows.steps)
            .map(|(r, &s)| {
                let q2: i32 = r.iter().map(|&v| v as i32 * v as i32).sum();
                s * s * q2 as f32
            }),
    );
}

/// Every pair (row `r` of `a`, row `c` of `b`) whose rows, as their 8-bit values give them, lie
/// closer than `max_d2` (squared), passed to `emit(r, c, d2)` with that squared distance. With
/// `upper`, `a` and `b` are the same rows and only `c > r` is visited. The products are exact
/// integers; the distance is then within float rounding (a few 1e-6) of the rows' distance.
pub fn close_pairs(
    a: Q8,
    b: Q8,
    dim: usize,
    max_d2: f32,
    upper: bool,
    scratch: &mut Scratch,
    emit: &mut dyn FnMut(usize, usize, f32),
) {
    const TILE: usize = 512;
    norms(a, dim, &mut scratch.a_norms);
    if !upper {
        norms(b, dim, &mut scratch.b_norms);
    }
    for j0 in (0..b.len()).step_by(TILE) {
        let w = TILE.min(b.len() - j0);
        scratch
            .panels
            .pack(&b.values[j0 * dim..(j0 + w) * dim], w, dim);
        let last_i = if upper { j0 + 1 } else { a.len() };
        for i0 in (0..last_i).step_by(TILE) {
            let m = TILE.min(a.len() - i0);
            let rows = &a.values[i0 * dim..(i0 + m) * dim];
            row_sums(rows, dim, &mut scratch.sums);
            products(rows, m, &scratch.sums, &scratch.panels, &mut scratch.dots);
            let b_norms = if upper {
                &scratch.a_norms
            } else {
                &scratch.b_norms
            };
            for r in 0..m {
                let (i, na, sa) = (i0 + r, scratch.a_norms[i0 + r], a.steps[i0 + r]);
                let first = if upper && i0 == j0 { r + 1 } else { 0 };
                for c in first..w {
                    let j = j0 + c;
                    let d2 =
                        na + b_norms[j] - 2.0 * sa * b.steps[j] * scratch.dots[r * w + c] as f32;
                    if d2 < max_d2 {
                        emit(i, j, d2);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_are_the_exact_integers_for_any_shape() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 33) as i64
        };
        let dim = 64;
        for (m, w) in [(1, 1), (7, 5), (9, 33), (20, 16), (33, 50)] {
            // Extremes included: -127 and 127 everywhere in some rows.
            let mut draw = |rows: usize| -> Vec<i8> {
                (0..rows * dim)
                    .map(|k| match (k / dim) % 5 {
                        0 => 127,
                        1 => -127,
                        _ => (next() % 255 - 127) as i8,
                    })
                    .collect()
            };
            let (a, b) = (draw(m), draw(w));
            let mut sums = Vec::new();
            row_sums(&a, dim, &mut sums);
            let mut panels = Panels::default();
            panels.pack(&b, w, dim);
            let mut got = Vec::new();
            products(&a, m, &sums, &panels, &mut got);
            let mut plain = vec![0; m * w];
            portable(&a, m, &panels, &mut plain);
            for r in 0..m {
                for c in 0..w {
                    let want: i32 = (0..dim)
                        .map(|k| a[r * dim + k] as i32 * b[c * dim + k] as i32)
                        .sum();
                    assert_eq!(got[r * w + c], want, "{m}x{w} at ({r}, {c})");
                    assert_eq!(plain[r * w + c], want);
                }
            }
        }
    }

    #[test]
    fn close_pairs_are_the_dequantised_rows_pairs() {
        use crate::graph::Rows;
        use crate::graph::quantised::QuantisedRows;
        // 1100 rows (three tiles), clustered, at thresholds through the clusters.
        let rows = crate::graph::synthetic::embeddings(64, 40, 20, 0.5, 300);
        let mut q = QuantisedRows::new(64);
        for r in rows.chunks_exact(64) {
            q.push_f32(r);
        }
        let n = q.len();
        let mut back = vec![0f32; n * 64];
        q.rows().copy_to(64, 0, &mut back);
        let view = Q8 {
            steps: &q.steps,
            values: &q.values,
        };
        let mut scratch = Scratch::default();
        for max_d in [0.8f32, 1.0] {
            let max_d2 = max_d * max_d;
            let want = crate::graph::cpu::edges(&back, 64, max_d2);
            let mut got = Vec::new();
            close_pairs(
                view,
                view,
                64,
                max_d2,
                true,
                &mut scratch,
                &mut |r, c, d2| got.push((r as u32, c as u32, d2)),
            );
            got.sort_by_key(|g| (g.0, g.1));
            // Pairs within rounding of the threshold may fall either way; the rest agree.
            let near = |d2: f32| (d2 - max_d2).abs() < 1e-5;
            let g: Vec<_> = got.iter().filter(|g| !near(g.2)).collect();
            let w: Vec<_> = want.iter().filter(|e| !near(e.d2)).collect();
            assert!(w.len() > 200, "{}", w.len());
            assert_eq!(g.len(), w.len());
            for (a, b) in g.iter().zip(&w) {
                assert_eq!((a.0, a.1), (b.i, b.j));
                assert!((a.2 - b.d2).abs() < 1e-5);
            }
        }
        // Two different blocks.
        let (a, b) = (
            Q8 {
                steps: &q.steps[..700],
                values: &q.values[..700 * 64],
            },
            Q8 {
                steps: &q.steps[400..],
                values: &q.values[400 * 64..],
            },
        );
        let mut got = 0;
        close_pairs(a, b, 64, 0.81, false, &mut scratch, &mut |r, c, _| {
            let d2 = crate::graph::cpu::squared_distance(
                &back[r * 64..(r + 1) * 64],
                &back[(400 + c) * 64..(401 + c) * 64],
            );
            assert!(d2 < 0.81 + 1e-5);
            got += 1;
        });
        let _ = Rows::F32(&back);
        assert!(got > 500);
    }
}
