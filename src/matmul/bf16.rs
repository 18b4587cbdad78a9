//! Matrix products in bfloat16 with f32 sums: on x86's AVX-512 BF16 (`vdpbf16ps`: two products
//! of bf16 pairs added to an f32 in one instruction, twice the multiply-adds of an f32 FMA), or,
//! on a CPU without it, the same sums with f32 multiply-adds (the portable twin, which the tests
//! hold the instruction to; visage runs FaceNet in bf16 only where the instruction is, as the
//! twin is no faster than the f32 product).
//!
//! The right-hand matrix (a network's weights) is rounded to bf16 and packed once
//! ([`Packed`]); the left-hand one (activations) is rounded a few rows at a time as the product
//! reads it. Each product of two bf16 values is exact in f32 and the sums are f32, so the
//! result differs from the f32 product only by the rounding of the operands (8 bits of
//! mantissa: about 0.2% of each value).
//!
//! Every row is computed the same way whatever the other rows are (the order of the sums
//! depends on `k` alone), so a face's vector does not change with the batch it is in.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use crate::cpu_conv::Values;

/// Columns of a packed panel: two 16-lane registers.
const NR: usize = 32;
/// Rows computed at once: 2 x 12 accumulators, 2 for the panel's values, 1 for the broadcast.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const MR: usize = 12;

/// A `k x n` matrix rounded to bf16 and packed for [`product`]: panels of [`NR`] columns (the
/// last one padded with zeros), in each the rows in pairs, a pair's two values of a column side
/// by side in one `u32` (row `2q` in the low half, as `vdpbf16ps` pairs them).
pub struct Packed {
    k: usize,
    n: usize,
    /// Row pairs: `k` rounded up to even, halved.
    pairs: usize,
    values: Values<u32>,
}

impl Packed {
    /// How many `u32` values a `k x n` matrix packs into.
    pub fn len(k: usize, n: usize) -> usize {
        n.div_ceil(NR) * k.div_ceil(2) * NR
    }

    /// `b` (`k x n`, row-major) packed.
    pub fn new(b: &[f32], k: usize, n: usize) -> Self {
        assert!(b.len() >= k * n, "a {k} x {n} matrix in {} values", b.len());
        let pairs = k.div_ceil(2);
        let panels = n.div_ceil(NR);
        let mut values = vec![0u32; Self::len(k, n)];
        for p in 0..panels {
            for q in 0..pairs {
                let dst = &mut values[(p * pairs + q) * NR..][..NR];
                let (c0, cols) = (p * NR, NR.min(n - p * NR));
                let row = |r: usize| match r < k {
                    true => &b[r * n + c0..][..cols],
                    false => &[][..],
                };
                let (lo, hi) = (row(2 * q), row(2 * q + 1));
                #[cfg(target_arch = "x86_64")]
                if available() {
                    // SAFETY: the CPU has the instructions (checked just above).
                    unsafe { pair_rows(lo, hi, dst) };
                    continue;
                }
                pair_rows_portable(lo, hi, dst, 0);
            }
        }
        Packed {
            k,
            n,
            pairs,
            values: Values::Owned(values),
        }
    }

    /// The packed values, as [`Packed::from_values`] takes them back (to keep a packed network
    /// in a file).
    pub fn values(&self) -> &[u32] {
        &self.values
    }

    /// A `k x n` matrix from the [`Packed::len`] values [`Packed::values`] gave (copied, or
    /// where they lie in a mapped file).
    pub fn from_values(values: Values<u32>, k: usize, n: usize) -> Self {
        assert_eq!(values.len(), Self::len(k, n), "a {k} x {n} matrix packed");
        Packed {
            k,
            n,
            pairs: k.div_ceil(2),
            values,
        }
    }
}

/// Whether this CPU has AVX-512 BF16, which [`product`] runs on (elsewhere it runs its portable
/// twin: the same sums, no faster than the f32 product).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    return is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512bf16");
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// An f32 rounded to the nearest bf16 (ties to even), as `vcvtne2ps2bf16` rounds: subnormal
/// values become zero, a NaN stays a (quiet) NaN.
fn bf16(v: f32) -> u16 {
    let bits = v.to_bits();
    if v.is_nan() {
        return (bits >> 16) as u16 | 0x40;
    }
    if v.is_subnormal() {
        return (bits >> 16) as u16 & 0x8000;
    }
    (bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// Pair `q` of a row of f32 rounded to bf16: value `2q` in the low half, `2q + 1` (zero past the
/// row's end) in the high half.
#[inline(always)]
fn pair(src: &[f32], q: usize) -> u32 {
    let hi = src.get(2 * q + 1).map_or(0, |&v| bf16(v));
    bf16(src[2 * q]) as u32 | (hi as u32) << 16
}

/// `out[i * ld + col + j] += scale * sum_k a[i * lda + k] * b(k, j)` for the `m` rows of `a`
/// (as many values each as `b` has rows, rows `lda` apart), the operands rounded to bf16.
#[allow(clippy::too_many_arguments)]
pub fn product(
    a: &[f32],
    m: usize,
    lda: usize,
    b: &Packed,
    out: &mut [f32],
    ld: usize,
    col: usize,
    scale: f32,
) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        lda >= k && (m - 1) * lda + k <= a.len(),
        "{m} rows of {k} values, {lda} apart, in {} values",
        a.len()
    );
    assert!(
        col + n <= ld && (m - 1) * ld + col + n <= out.len(),
        "{m} rows of {n} values from column {col}, {ld} apart, in {} values",
        out.len()
    );
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: the CPU has the instructions (checked just above), and the asserts bound every
        // value read from `a` and written to `out`.
        unsafe { product_avx512(a, m, lda, b, out, ld, col, scale) };
        return;
    }
    portable::product(a, m, lda, b, out, ld, col, scale);
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn product_avx512(
    a: &[f32],
    m: usize,
    lda: usize,
    b: &Packed,
    out: &mut [f32],
    ld: usize,
    col: usize,
    scale: f32,
) {
    let (k, n, pairs) = (b.k, b.n, b.pairs);
    // MR rows of `a` rounded and paired, zeros past `m` and past `k`.
    let mut block = vec![0u32; MR * pairs];
    for r0 in (0..m).step_by(MR) {
        let rows = MR.min(m - r0);
        for r in 0..MR {
            let dst = &mut block[r * pairs..(r + 1) * pairs];
            if r < rows {
                round_row(&a[(r0 + r) * lda..][..k], dst);
            } else {
                dst.fill(0);
            }
        }
        for p in 0..n.div_ceil(NR) {
            let cols = NR.min(n - p * NR);
            let panel = &b.values[p * pairs * NR..(p + 1) * pairs * NR];
            let at = r0 * ld + col + p * NR;
            // SAFETY: `block` holds MR rows of `pairs`, `panel` pairs of NR; the tile written is
            // `rows` rows `ld` apart of `cols` values from `at`, inside `out` (asserted by the
            // caller for all m rows and n columns).
            unsafe {
                tile(
                    &block,
                    panel,
                    pairs,
                    out.as_mut_ptr().add(at),
                    ld,
                    rows,
                    cols,
                    scale,
                )
            };
        }
    }
}

#[cfg(target_arch = "x86_64")]
/// One row of f32 to bf16 pairs (`dst.len()` pairs; a missing last value is zero). In memory the
/// pairs are the row's values in order, one bf16 each.
#[target_feature(enable = "avx512f,avx512bf16")]
fn round_row(src: &[f32], dst: &mut [u32]) {
    let whole = src.len() / 32;
    for i in 0..whole {
        // SAFETY: 32 values from 32 * i lie inside `src`, and 16 pairs from 16 * i inside `dst`
        // (dst.len() = ceil(src.len() / 2)).
        unsafe {
            let lo = _mm512_loadu_ps(src.as_ptr().add(32 * i));
            let hi = _mm512_loadu_ps(src.as_ptr().add(32 * i + 16));
            // bf16 lanes 0-15 are the second operand's values, 16-31 the first's.
            let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(dst.as_mut_ptr().add(16 * i).cast(), v);
        }
    }
    for (q, d) in dst.iter_mut().enumerate().skip(16 * whole) {
        *d = pair(src, q);
    }
}

#[cfg(target_arch = "x86_64")]
/// Two rows of a panel (up to [`NR`] values each; a missing row is zeros) rounded and paired:
/// `dst[c]` holds `lo[c]` in its low half and `hi[c]` in its high half.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
fn pair_rows(lo: &[f32], hi: &[f32], dst: &mut [u32]) {
    let mut c = 0;
    if lo.len() == hi.len() {
        // bf16 lane j of the interleaved result is lane j / 2 of `lo` (even j) or of `hi`.
        let order: [i16; 32] = std::array::from_fn(|j| (j / 2 + (j % 2) * 16) as i16);
        // SAFETY: 16 values from c lie inside both rows and 16 pairs inside `dst` (c + 16 <=
        // lo.len() <= dst.len()).
        unsafe {
            let order = _mm512_loadu_si512(order.as_ptr().cast());
            while c + 16 <= lo.len() {
                let l = _mm512_loadu_ps(lo.as_ptr().add(c));
                let h = _mm512_loadu_ps(hi.as_ptr().add(c));
                // bf16 lanes 0-15 are `l`'s values, 16-31 `h`'s; then interleaved.
                let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(h, l));
                let v = _mm512_permutexvar_epi16(order, v);
                _mm512_storeu_si512(dst.as_mut_ptr().add(c).cast(), v);
                c += 16;
            }
        }
    }
    pair_rows_portable(lo, hi, dst, c);
}

/// [`pair_rows`] from column `from` on, value by value.
fn pair_rows_portable(lo: &[f32], hi: &[f32], dst: &mut [u32], from: usize) {
    for c in from..lo.len() {
        dst[c] = bf16(lo[c]) as u32 | (hi.get(c).map_or(0, |&v| bf16(v)) as u32) << 16;
    }
}

#[cfg(target_arch = "x86_64")]
/// `rows x cols` of `out` (rows `ld` apart) += scale * block · panel.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile(
    block: &[u32],
    panel: &[u32],
    pairs: usize,
    out: *mut f32,
    ld: usize,
    rows: usize,
    cols: usize,
    scale: f32,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    let a = block.as_ptr();
    let b = panel.as_ptr();
    for q in 0..pairs {
        // SAFETY: q < pairs; the panel holds NR values per pair, the block MR rows of `pairs`.
        unsafe {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(q * NR).cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(q * NR + 16).cast()));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*a.add(r * pairs + q) as i32));
                acc[0] = _mm512_dpbf16_ps(acc[0], x, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], x, b1);
            }
        }
    }
    let s = _mm512_set1_ps(scale);
    let masks = [lanes(cols.min(16)), lanes(cols.saturating_sub(16))];
    for (r, acc) in acc.iter().enumerate().take(rows) {
        for h in 0..2 {
            if masks[h] == 0 {
                continue;
            }
            // SAFETY: the masked lanes are the tile's columns of row r, inside `out`.
            unsafe {
                let p = out.add(r * ld + 16 * h);
                let old = _mm512_maskz_loadu_ps(masks[h], p);
                _mm512_mask_storeu_ps(p, masks[h], _mm512_fmadd_ps(acc[h], s, old));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
/// A mask of the first `n` (at most 16) lanes.
fn lanes(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// [`product`] without AVX-512 BF16: the operands rounded and paired as for the instruction, and
/// each pair's two products added as `vdpbf16ps` adds them (Intel's pseudocode: the odd row's
/// first, each an f32 multiply-add rounded to nearest even, a result below f32's normal range
/// flushed to zero), then scaled into `out` with one multiply-add, as the vector kernel does.
mod portable {
    use super::{NR, Packed};

    #[allow(clippy::too_many_arguments)]
    pub(super) fn product(
        a: &[f32],
        m: usize,
        lda: usize,
        b: &Packed,
        out: &mut [f32],
        ld: usize,
        col: usize,
        scale: f32,
    ) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has the instructions this copy is compiled for.
            unsafe { product_fma(a, m, lda, b, out, ld, col, scale) };
            return;
        }
        sums(a, m, lda, b, out, ld, col, scale);
    }

    /// [`sums`] compiled for AVX2 and FMA (a multiply-add is one instruction, not a call).
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    fn product_fma(
        a: &[f32],
        m: usize,
        lda: usize,
        b: &Packed,
        out: &mut [f32],
        ld: usize,
        col: usize,
        scale: f32,
    ) {
        sums(a, m, lda, b, out, ld, col, scale);
    }

    /// The sums, row by row against each panel (inlined into the copy compiled for FMA).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn sums(
        a: &[f32],
        m: usize,
        lda: usize,
        b: &Packed,
        out: &mut [f32],
        ld: usize,
        col: usize,
        scale: f32,
    ) {
        let (k, n, pairs) = (b.k, b.n, b.pairs);
        let mut row = vec![0u32; pairs];
        for i in 0..m {
            let src = &a[i * lda..][..k];
            for (q, p) in row.iter_mut().enumerate() {
                *p = super::pair(src, q);
            }
            for p in 0..n.div_ceil(NR) {
                let panel = &b.values[p * pairs * NR..(p + 1) * pairs * NR];
                let mut acc = [0f32; NR];
                for (&x, w) in row.iter().zip(panel.chunks_exact(NR)) {
                    let (xl, xh) = halves(x);
                    for (acc, &w) in acc.iter_mut().zip(w) {
                        let (wl, wh) = halves(w);
                        *acc = flushed(xh.mul_add(wh, *acc));
                        *acc = flushed(xl.mul_add(wl, *acc));
                    }
                }
                let cols = NR.min(n - p * NR);
                let dst = &mut out[i * ld + col + p * NR..][..cols];
                for (o, s) in dst.iter_mut().zip(acc) {
                    *o = s.mul_add(scale, *o);
                }
            }
        }
    }

    /// A pair's two bf16 values as f32: the low half's, then the high half's.
    #[inline(always)]
    fn halves(pair: u32) -> (f32, f32) {
        (
            f32::from_bits(pair << 16),
            f32::from_bits(pair & 0xffff_0000),
        )
    }

    /// `v`, or a zero of its sign where it is below f32's normal range.
    #[inline(always)]
    fn flushed(v: f32) -> f32 {
        match v.abs() < f32::MIN_POSITIVE {
            true => f32::from_bits(v.to_bits() & 0x8000_0000),
            false => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook sum over the operands rounded to bf16, in f64.
    fn reference(a: &[f32], m: usize, lda: usize, b: &[f32], k: usize, n: usize) -> Vec<f64> {
        let r = |v: f32| f32::from_bits((bf16(v) as u32) << 16) as f64;
        let mut out = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|q| r(a[i * lda + q]) * r(b[q * n + j])).sum();
            }
        }
        out
    }

    /// Every shape the kernel cuts into tiles (rows past a multiple of 12, columns past a
    /// multiple of 32 and under 16, odd `k`, `k` past a multiple of 32 for the vector rounding),
    /// written from a column of wider rows and added to what was there, gives the sums of the
    /// rounded operands to f32 precision: the kernel this CPU runs, and the portable twin, which
    /// gives what the AVX-512 BF16 kernel gives to the bit where the CPU has one.
    #[test]
    fn the_bf16_product_is_the_sum_of_the_rounded_operands() {
        for (m, k, n) in [
            (1, 1, 1),
            (13, 27, 10),
            (12, 64, 32),
            (25, 33, 48),
            (7, 288, 80),
            (40, 96, 1),
        ] {
            let lda = k + 3;
            let a: Vec<f32> = (0..m * lda)
                .map(|i| ((i * 7919 % 211) as f32 - 105.0) / 37.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104_729 % 197) as f32 - 98.0) / 91.0)
                .collect();
            let packed = Packed::new(&b, k, n);
            let (ld, col, scale) = (n + 5, 2, 0.5f32);
            let before: Vec<f32> = (0..m * ld).map(|i| i as f32).collect();
            let mut out = before.clone();
            product(&a, m, lda, &packed, &mut out, ld, col, scale);
            let mut twin = before.clone();
            portable::product(&a, m, lda, &packed, &mut twin, ld, col, scale);
            let want = reference(&a, m, lda, &b, k, n);
            for (got, kernel) in [(&out, "this CPU's"), (&twin, "the portable")] {
                for i in 0..m {
                    for j in 0..ld {
                        let before = before[i * ld + j] as f64;
                        let got = got[i * ld + j] as f64;
                        let expected = match j >= col && j < col + n {
                            true => before + scale as f64 * want[i * n + j - col],
                            false => before,
                        };
                        let tol = 1e-5 * (1.0 + expected.abs() + k as f64);
                        assert!(
                            (got - expected).abs() <= tol,
                            "{kernel} kernel, {m}x{k}x{n} at ({i}, {j}): {got} for {expected}"
                        );
                    }
                }
            }
            if available() {
                assert_eq!(out, twin, "{m}x{k}x{n}: vdpbf16ps and its twin");
            }
        }
    }

    /// The twin adds a pair's products in the instruction's order, each rounded: the odd row's
    /// product first, then the even one's; and a sum below f32's normal range is flushed to
    /// zero, as the instruction's sums are.
    #[test]
    fn the_portable_twin_adds_as_vdpbf16ps_does() {
        let sum = |a: &[f32], before: f32| {
            let packed = Packed::new(&vec![1.0; a.len()], a.len(), 1);
            let mut out = [before];
            portable::product(a, 1, a.len(), &packed, &mut out, 1, 0, 1.0);
            out[0]
        };
        let big = 16_777_216.0; // 2^24: 2^24 + 1 rounds to 2^24 (ties to even).
        // The first pair leaves 2^24; in the second, 1 (the odd row's) is added first and lost,
        // then -2^24 gives 0. Added even row first, or in f64, it would be 1.
        assert_eq!(sum(&[big, 0.0, -big, 1.0], 0.0), 0.0);
        assert_eq!(sum(&[big, 0.0, 1.0, -big], 0.0), 1.0);
        // 2^-70 is kept; squared, it is below f32's normal range: flushed.
        let tiny = f32::from_bits(57 << 23);
        assert_eq!(sum(&[tiny, 0.0], 0.0), tiny);
        let packed = Packed::new(&[tiny, 0.0], 2, 1);
        let mut out = [0.0f32];
        portable::product(&[tiny, 0.0], 1, 2, &packed, &mut out, 1, 0, 1.0);
        assert_eq!(out[0].to_bits(), 0);
    }

    #[test]
    fn rounding_to_bf16_is_to_nearest_even() {
        assert_eq!(bf16(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: to even, 1.
        assert_eq!(bf16(1.0 + 1.0 / 256.0), 0x3f80);
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to even, 1 + 2^-6.
        assert_eq!(bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(bf16(-2.0), 0xc000);
        assert_eq!(bf16(f32::from_bits(1)), 0);
        // A row of awkward values: paired as `Packed` pairs them, and (where the CPU has the
        // instructions) the vector rounding agrees with the scalar one.
        let src: Vec<f32> = (0..64)
            .map(|i| 1.0 + i as f32 / 256.0 - 0.1 * (i % 3) as f32)
            .collect();
        let want: Vec<u32> = (0..32)
            .map(|q| bf16(src[2 * q]) as u32 | (bf16(src[2 * q + 1]) as u32) << 16)
            .collect();
        let mut paired = vec![0u32; 32];
        pair_rows_portable(
            &src.iter().step_by(2).copied().collect::<Vec<_>>(),
            &src.iter().skip(1).step_by(2).copied().collect::<Vec<_>>(),
            &mut paired,
            0,
        );
        assert_eq!(paired, want);
        #[cfg(target_arch = "x86_64")]
        if available() {
            let mut dst = vec![0u32; 32];
            // SAFETY: the CPU has the instructions.
            unsafe { round_row(&src, &mut dst) };
            assert_eq!(dst, want);
        }
    }
}
