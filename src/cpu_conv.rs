//! Convolutional layers on the CPU, for the networks' CPU paths (FaceNet's in `embedding::cpu`,
//! MTCNN's in `detection::mtcnn::cpu`): activations are NHWC rows (one row a pixel, its channels
//! side by side), so every convolution is one matrix product (1x1 convolutions read the
//! activations as they are; the others go through one im2col copy), with weights packed once as
//! `[kh * kw * cin, cout]` (the products through [`crate::matmul`]); max pooling. A packed
//! convolution can be written to a file and read back ([`Conv::write`], [`Conv::read`]), so that
//! a network is packed once rather than at every start; read from a file mapped in memory
//! ([`Mapped`]), the weights packed for bf16 products are used where they lie in it, not copied.
//!
//! Kernels only: no network's shape or weights live here.

use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;

use crate::matmul::{self, Matrix, bf16};

/// What follows a convolution or a dense layer, applied to its output.
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    None,
    Relu,
    /// PReLU with one slope per output channel: `max(0, v) + a * min(0, v)`.
    PRelu(Vec<f32>),
}

impl Activation {
    /// Apply to columns `col..col + width` of `rows` rows `ld` wide.
    pub fn apply(&self, out: &mut [f32], rows: usize, ld: usize, col: usize, width: usize) {
        match self {
            Activation::None => {}
            Activation::Relu => {
                for r in 0..rows {
                    for v in &mut out[r * ld + col..r * ld + col + width] {
                        *v = v.max(0.0);
                    }
                }
            }
            Activation::PRelu(a) => {
                for r in 0..rows {
                    for (v, a) in out[r * ld + col..r * ld + col + width].iter_mut().zip(a) {
                        *v = v.max(0.0) + a * v.min(0.0);
                    }
                }
            }
        }
    }
}

/// One convolution, packed.
pub struct Conv {
    kh: usize,
    kw: usize,
    stride: usize,
    /// Zero padding before the first row / column.
    ph: usize,
    pw: usize,
    pub cin: usize,
    pub cout: usize,
    /// `[kh * kw * cin, cout]`, row-major: row `(i * kw + j) * cin + c` (empty once packed
    /// for bf16 products, [`Conv::to_bf16`]).
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub activation: Activation,
    /// The weights rounded to bf16 and packed, where products run in bf16.
    bf16: Option<bf16::Packed>,
}

/// Buffers a forward pass reuses: the im2col tile, and activation buffers handed back when a
/// layer's output replaces its input (fresh ones cost a page fault per 4 KiB).
#[derive(Default)]
pub struct Work {
    pub patches: Vec<f32>,
    free: Vec<Vec<f32>>,
}

impl Work {
    /// A buffer of `len` floats for an output that is written whole (every caller's is: a
    /// convolution writes its bias to every value, a pooling every maximum), reusing the
    /// smallest free one that is large enough. Its values are what the buffer last held, so
    /// nothing is spent zeroing what is about to be written.
    pub fn take(&mut self, len: usize) -> Vec<f32> {
        let best = (0..self.free.len())
            .filter(|&i| self.free[i].capacity() >= len)
            .min_by_key(|&i| self.free[i].capacity());
        let mut v = match best {
            Some(i) => self.free.swap_remove(i),
            None => Vec::with_capacity(len),
        };
        v.resize(len, 0.0);
        v
    }

    pub fn give(&mut self, v: Vec<f32>) {
        self.free.push(v);
    }
}

/// Activations of a batch: `n` images of `h x w` pixels with `c` channels, NHWC.
#[derive(Clone)]
pub struct Act {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

impl Act {
    pub fn rows(&self) -> usize {
        self.n * self.h * self.w
    }
}

/// Row-major matrices of `rows` rows, `(values, columns)` each, side by side: row `r` of the
/// result is each one's row `r` in turn (heads merged into one product, outputs into one row).
pub fn side_by_side(rows: usize, parts: &[(&[f32], usize)]) -> Vec<f32> {
    let width: usize = parts.iter().map(|p| p.1).sum();
    let mut out = Vec::with_capacity(rows * width);
    for r in 0..rows {
        for (v, k) in parts {
            out.extend_from_slice(&v[r * k..(r + 1) * k]);
        }
    }
    out
}

/// Write a count (a size or a length) as [`Unpack::count`] reads it.
pub fn put_count(out: &mut dyn Write, n: usize) -> io::Result<()> {
    let n = u32::try_from(n).map_err(|_| invalid("a count past 32 bits"))?;
    out.write_all(&n.to_le_bytes())
}

/// Write floats with their count, as [`Unpack::floats`] reads them.
pub fn put_floats(out: &mut dyn Write, v: &[f32]) -> io::Result<()> {
    put_values(out, v)
}

/// Write `u32`s with their count, as [`Unpack::words`] reads them.
pub fn put_words(out: &mut dyn Write, v: &[u32]) -> io::Result<()> {
    put_values(out, v)
}

fn put_values<T: bytemuck::Pod>(out: &mut dyn Write, v: &[T]) -> io::Result<()> {
    put_count(out, v.len())?;
    out.write_all(bytemuck::cast_slice(v))
}

/// Packed weights being read back (written by [`put_count`], [`put_floats`] and
/// [`Conv::write`], in this machine's byte order for the floats): every count and length is
/// checked, so a damaged file is an error, never a wrong network or a huge allocation.
pub struct Unpack<R> {
    r: R,
}

/// Where [`Unpack`] reads from: a reader, which copies values out, or a file mapped in memory
/// ([`Mapped`]), which lends them in place.
pub trait Source: Read {
    /// The next `bytes` bytes, consumed and left in place (the map, and where they start), where
    /// this is a mapped file and they start at a multiple of `align`.
    fn lend(&mut self, bytes: usize, align: usize) -> Option<(Arc<memmap2::Mmap>, usize)> {
        let _ = (bytes, align);
        None
    }
}

impl Source for &[u8] {}

/// A file mapped in memory, read from its start.
pub struct Mapped {
    map: Arc<memmap2::Mmap>,
    at: usize,
}

impl Mapped {
    /// Map `file`.
    ///
    /// # Safety
    /// The file must not change while it is mapped (memmap2's condition): visage's packed
    /// networks are only ever replaced whole, written beside and renamed ([`crate::atomic`]),
    /// never written in place.
    pub unsafe fn new(file: &std::fs::File) -> io::Result<Self> {
        // SAFETY: the caller's promise.
        let map = unsafe { memmap2::Mmap::map(file)? };
        // All of it is read, and soon: where the file is not in the page cache (a cold start),
        // the kernel reads it ahead in large requests rather than page fault by page fault.
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::WillNeed);
        Ok(Mapped {
            map: Arc::new(map),
            at: 0,
        })
    }
}

impl Read for Mapped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = &self.map[self.at..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

impl Source for Mapped {
    fn lend(&mut self, bytes: usize, align: usize) -> Option<(Arc<memmap2::Mmap>, usize)> {
        let start = self.at;
        let aligned = (self.map.as_ptr() as usize + start).is_multiple_of(align);
        (aligned && bytes <= self.map.len() - start).then(|| {
            self.at += bytes;
            (self.map.clone(), start)
        })
    }
}

/// Values read back by [`Unpack`]: copied out, or lent in place by a mapped file (which stays
/// mapped while they are used).
pub enum Values<T> {
    Owned(Vec<T>),
    Lent {
        map: Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
        _values: PhantomData<T>,
    },
}

impl<T: bytemuck::Pod> Deref for Values<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Values::Owned(v) => v,
            Values::Lent {
                map, start, len, ..
            } => bytemuck::cast_slice(&map[*start..*start + len * size_of::<T>()]),
        }
    }
}

impl<R: Source> Unpack<R> {
    /// The most values one tensor may hold (64 MiB of floats).
    pub const MAX_FLOATS: usize = 1 << 24;

    pub fn new(r: R) -> Self {
        Unpack { r }
    }

    /// A count of at most `max`.
    pub fn count(&mut self, max: usize) -> io::Result<usize> {
        let mut b = [0u8; 4];
        self.r.read_exact(&mut b)?;
        let n = u32::from_le_bytes(b) as usize;
        if n > max {
            return Err(invalid(&format!("a count of {n} where at most {max} fits")));
        }
        Ok(n)
    }

    /// Exactly `len` floats (at most [`Unpack::MAX_FLOATS`]).
    pub fn floats(&mut self, len: usize) -> io::Result<Vec<f32>> {
        self.values(len)
    }

    /// Exactly `len` `u32`s (at most [`Unpack::MAX_FLOATS`]), left in place where the source
    /// is a mapped file.
    pub fn words(&mut self, len: usize) -> io::Result<Values<u32>> {
        self.check_count(len)?;
        let bytes = len * size_of::<u32>();
        if let Some((map, start)) = self.r.lend(bytes, align_of::<u32>()) {
            return Ok(Values::Lent {
                map,
                start,
                len,
                _values: PhantomData,
            });
        }
        let mut v = vec![0u32; len];
        self.r.read_exact(bytemuck::cast_slice_mut(&mut v))?;
        Ok(Values::Owned(v))
    }

    fn check_count(&mut self, len: usize) -> io::Result<()> {
        let n = self.count(Self::MAX_FLOATS)?;
        if n != len {
            return Err(invalid(&format!("{n} values where {len} belong")));
        }
        Ok(())
    }

    fn values<T: bytemuck::Pod>(&mut self, len: usize) -> io::Result<Vec<T>> {
        self.check_count(len)?;
        let mut v = vec![T::zeroed(); len];
        self.r.read_exact(bytemuck::cast_slice_mut(&mut v))?;
        Ok(v)
    }

    /// Check that nothing follows.
    pub fn end(mut self) -> io::Result<()> {
        match self.r.read(&mut [0u8; 1])? {
            0 => Ok(()),
            _ => Err(invalid("more data past the end")),
        }
    }
}

/// The error for packed weights that cannot be what was written.
pub fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

/// A Burn tensor's values (the networks' weights and outputs are f32).
pub fn floats<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec::<f32>()
        .expect("the networks compute in f32")
}

impl Conv {
    /// Burn's convolution, packed, followed by `activation`.
    pub fn from_burn(conv: &Conv2d, activation: Activation) -> Self {
        let bias = conv.bias.as_ref().map(|b| b.val());
        Self::pack(
            conv.weight.val(),
            bias,
            conv.stride[0],
            &conv.padding,
            activation,
        )
    }

    /// [`Conv::from_burn`], consuming the convolution, so that a network packed this way is
    /// not held twice.
    pub fn from_burn_owned(conv: Conv2d, activation: Activation) -> Self {
        let Conv2d {
            weight,
            bias,
            stride,
            padding,
            ..
        } = conv;
        Self::pack(
            weight.into_value(),
            bias.map(|b| b.into_value()),
            stride[0],
            &padding,
            activation,
        )
    }

    fn pack(
        weight: burn::tensor::Tensor<4>,
        bias: Option<burn::tensor::Tensor<1>>,
        stride: usize,
        padding: &PaddingConfig2d,
        activation: Activation,
    ) -> Self {
        let [cout, cin, kh, kw] = weight.dims();
        let (ph, pw) = match padding {
            PaddingConfig2d::Valid => (0, 0),
            PaddingConfig2d::Explicit(top, left, _, _) => (*top, *left),
            PaddingConfig2d::Same => ((kh - 1) / 2, (kw - 1) / 2),
        };
        let oihw = floats(weight);
        // `[cout, cin * kh * kw]` transposed to `[kh * kw * cin, cout]`, a tile at a time (the
        // row-by-row transpose wrote every value a cache line away from the last).
        const TILE: usize = 16;
        let (k, mut w) = (cin * kh * kw, vec![0f32; kh * kw * cin * cout]);
        for o0 in (0..cout).step_by(TILE) {
            for q0 in (0..k).step_by(TILE) {
                for q in q0..(q0 + TILE).min(k) {
                    let (c, ij) = (q / (kh * kw), q % (kh * kw));
                    let row = &mut w[(ij * cin + c) * cout..][..cout];
                    for o in o0..(o0 + TILE).min(cout) {
                        row[o] = oihw[o * k + q];
                    }
                }
            }
        }
        let b = bias.map(floats).unwrap_or_else(|| vec![0.0; cout]);
        Conv {
            kh,
            kw,
            stride,
            ph,
            pw,
            cin,
            cout,
            w,
            b,
            activation,
            bf16: None,
        }
    }

    pub fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        (
            (h + 2 * self.ph - self.kh) / self.stride + 1,
            (w + 2 * self.pw - self.kw) / self.stride + 1,
        )
    }

    /// The convolution of `x`, written (with its bias, then its activation) into columns
    /// `col..col + cout` of `out`, whose rows are `ld` wide.
    pub fn run_into(
        &self,
        x: &Act,
        out: &mut [f32],
        ld: usize,
        col: usize,
        patches: &mut Vec<f32>,
    ) {
        let (ho, wo) = self.out_size(x.h, x.w);
        let m = x.n * ho * wo;
        let k = self.kh * self.kw * self.cin;
        for r in 0..m {
            // Element by element: a copy call per row costs more than the few values it moves.
            for (o, b) in out[r * ld + col..r * ld + col + self.cout]
                .iter_mut()
                .zip(&self.b)
            {
                *o = *b;
            }
        }
        if self.kh == 1 && self.kw == 1 && self.stride == 1 {
            self.multiply(m, &x.data, out, ld, col, 1.0);
        } else {
            // A few hundred output rows at a time, so their patches stay in cache between the
            // copy and the product.
            let tile = (IM2COL_FLOATS / k).clamp(16, m.max(16));
            for r0 in (0..m).step_by(tile) {
                let r1 = (r0 + tile).min(m);
                im2col(x, self, ho, wo, r0..r1, patches);
                self.multiply(r1 - r0, patches, &mut out[r0 * ld..], ld, col, 1.0);
            }
        }
        self.activation.apply(out, m, ld, col, self.cout);
    }

    /// `out[.., col..col + cout] += scale * a · w` for `m` rows of `a` (`kh * kw * cin` values
    /// each, side by side), rows of `out` `ld` apart: in bf16 where the weights are packed for it.
    pub fn multiply(
        &self,
        m: usize,
        a: &[f32],
        out: &mut [f32],
        ld: usize,
        col: usize,
        scale: f32,
    ) {
        let k = self.kh * self.kw * self.cin;
        match &self.bf16 {
            Some(packed) => bf16::product(a, m, k, packed, out, ld, col, scale),
            None => product(m, self.cout, k, a, &self.w, out, ld, col, scale),
        }
    }

    /// Run this convolution's products in bf16 (half the time of f32 ones where the CPU has
    /// AVX-512 BF16; see [`bf16`]); the f32 weights are then dropped.
    pub fn to_bf16(&mut self) {
        if self.bf16.is_none() {
            let k = self.kh * self.kw * self.cin;
            self.bf16 = Some(bf16::Packed::new(&self.w, k, self.cout));
            self.w = Vec::new();
        }
    }

    pub fn is_bf16(&self) -> bool {
        self.bf16.is_some()
    }

    /// Write this convolution as [`Conv::read`] reads it back: its f32 weights, or those packed
    /// for bf16 products where it runs them (a file that only a CPU with AVX-512 BF16 reads).
    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let shape = [
            self.kh,
            self.kw,
            self.stride,
            self.ph,
            self.pw,
            self.cin,
            self.cout,
        ];
        for v in shape {
            put_count(out, v)?;
        }
        match &self.activation {
            Activation::None => put_count(out, 0)?,
            Activation::Relu => put_count(out, 1)?,
            Activation::PRelu(a) => {
                put_count(out, 2)?;
                put_floats(out, a)?;
            }
        }
        // The weights: f32, or packed for bf16 products (the f32 ones are gone then).
        match &self.bf16 {
            None => {
                put_count(out, 0)?;
                put_floats(out, &self.w)?;
            }
            Some(packed) => {
                put_count(out, 1)?;
                put_words(out, packed.values())?;
            }
        }
        put_floats(out, &self.b)
    }

    /// A convolution written by [`Conv::write`], its shape checked against its values.
    pub fn read(r: &mut Unpack<impl Source>) -> io::Result<Self> {
        let mut next = |max| r.count(max);
        let (kh, kw, stride, ph, pw) = (next(64)?, next(64)?, next(64)?, next(64)?, next(64)?);
        let (cin, cout) = (next(1 << 16)?, next(1 << 16)?);
        if kh == 0 || kw == 0 || stride == 0 || cin == 0 || cout == 0 {
            return Err(invalid("a convolution with an empty side"));
        }
        let activation = match r.count(2)? {
            0 => Activation::None,
            1 => Activation::Relu,
            _ => Activation::PRelu(r.floats(cout)?),
        };
        let k = kh * kw * cin;
        let (w, bf16) = match r.count(1)? {
            0 => (r.floats(k * cout)?, None),
            _ => {
                // `words` reads exactly that many (a count that says otherwise is an error).
                let values = r.words(bf16::Packed::len(k, cout))?;
                (Vec::new(), Some(bf16::Packed::from_values(values, k, cout)))
            }
        };
        Ok(Conv {
            kh,
            kw,
            stride,
            ph,
            pw,
            cin,
            cout,
            w,
            b: r.floats(cout)?,
            activation,
            bf16,
        })
    }

    /// This convolution and `other`, of the same input, as one whose output has this one's
    /// channels then `other`'s (heads that read the same activations, run as one product).
    pub fn beside(self, other: Conv) -> Conv {
        assert!(
            (self.kh, self.kw, self.stride, self.ph, self.pw, self.cin)
                == (
                    other.kh,
                    other.kw,
                    other.stride,
                    other.ph,
                    other.pw,
                    other.cin
                )
                && self.activation == other.activation
                && self.bf16.is_none()
                && other.bf16.is_none()
        );
        let rows = self.kh * self.kw * self.cin;
        let w = side_by_side(rows, &[(&self.w, self.cout), (&other.w, other.cout)]);
        Conv {
            cout: self.cout + other.cout,
            w,
            b: [self.b, other.b].concat(),
            ..self
        }
    }

    pub fn run(&self, x: &Act, ws: &mut Work) -> Act {
        let (h, w) = self.out_size(x.h, x.w);
        let mut out = Act {
            n: x.n,
            h,
            w,
            c: self.cout,
            data: ws.take(x.n * h * w * self.cout),
        };
        self.run_into(x, &mut out.data, self.cout, 0, &mut ws.patches);
        out
    }
}

/// `out[.., col..col + n] += scale * a · b` for row-major `a` (`m x k`) and `b` (`k x n`), `out`
/// rows `ld` wide.
#[allow(clippy::too_many_arguments)]
pub fn product(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    ld: usize,
    col: usize,
    scale: f32,
) {
    matmul::product(
        Matrix::row_major(a, m, k),
        Matrix::row_major(b, k, n),
        &mut out[col..],
        ld,
        true,
        scale,
    );
}

/// How many floats of patches are copied out at a time (1 MiB: they stay in L2 for the product).
const IM2COL_FLOATS: usize = 1 << 18;

/// The patches of `x` that `conv` reads for output rows `rows` (row = output pixel, in NHW order):
/// `[rows.len(), kh * kw * cin]`.
fn im2col(
    x: &Act,
    conv: &Conv,
    ho: usize,
    wo: usize,
    rows: std::ops::Range<usize>,
    out: &mut Vec<f32>,
) {
    let k = conv.kh * conv.kw * x.c;
    if conv.ph > 0 || conv.pw > 0 {
        // Samples in the padding are the zeros left here.
        out.clear();
    }
    // Without padding every value is written below: what the buffer held is not cleared first.
    out.resize(rows.len() * k, 0.0);
    for (t, r) in rows.enumerate() {
        let (n, oy, ox) = (r / (ho * wo), (r / wo) % ho, r % wo);
        let row = &mut out[t * k..][..k];
        for i in 0..conv.kh {
            let y = (oy * conv.stride + i) as isize - conv.ph as isize;
            if y < 0 || y >= x.h as isize {
                continue;
            }
            let x0 = (ox * conv.stride) as isize - conv.pw as isize;
            let line = (n * x.h + y as usize) * x.w;
            if x0 >= 0 && x0 as usize + conv.kw <= x.w {
                // The window's row lies inside: its `kw` pixels are one run of the input.
                let src = (line + x0 as usize) * x.c;
                let run = conv.kw * x.c;
                row[i * run..][..run].copy_from_slice(&x.data[src..src + run]);
                continue;
            }
            for j in 0..conv.kw {
                let xx = x0 + j as isize;
                if xx < 0 || xx >= x.w as isize {
                    continue;
                }
                let src = (line + xx as usize) * x.c;
                row[(i * conv.kw + j) * x.c..][..x.c].copy_from_slice(&x.data[src..src + x.c]);
            }
        }
    }
}

/// How a pooling window meets the far border: PyTorch's default (windows wholly inside), or
/// Caffe's, which MTCNN was trained with (one more window where a partial one remains, clipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    Floor,
    Ceil,
}

impl Rounding {
    /// Output side for an input `side`, kernel `k`, stride `s`, no padding (with PyTorch's
    /// rule that no window starts past the input; an input smaller than the kernel gives one
    /// cell in ceil mode).
    pub fn side(self, side: usize, k: usize, s: usize) -> usize {
        if side < k {
            return (self == Rounding::Ceil) as usize;
        }
        match self {
            Rounding::Floor => (side - k) / s + 1,
            Rounding::Ceil => {
                let n = (side - k).div_ceil(s) + 1;
                if (n - 1) * s >= side { n - 1 } else { n }
            }
        }
    }
}

/// `k x k` max pooling at stride `s`, no padding, windows clipped at the far border, into columns
/// `col..col + c` of rows `ld` wide.
#[allow(clippy::too_many_arguments)]
pub fn max_pool_into(
    x: &Act,
    k: usize,
    s: usize,
    rounding: Rounding,
    out: &mut [f32],
    ld: usize,
    col: usize,
) {
    let (ho, wo) = (rounding.side(x.h, k, s), rounding.side(x.w, k, s));
    for n in 0..x.n {
        for oy in 0..ho {
            for ox in 0..wo {
                let dst = &mut out[((n * ho + oy) * wo + ox) * ld + col..][..x.c];
                dst.fill(f32::NEG_INFINITY);
                for i in oy * s..(oy * s + k).min(x.h) {
                    for j in ox * s..(ox * s + k).min(x.w) {
                        let src = ((n * x.h + i) * x.w + j) * x.c;
                        for (d, v) in dst.iter_mut().zip(&x.data[src..src + x.c]) {
                            *d = d.max(*v);
                        }
                    }
                }
            }
        }
    }
}

/// [`max_pool_into`] as a new activation.
pub fn max_pool(x: &Act, k: usize, s: usize, rounding: Rounding, ws: &mut Work) -> Act {
    let (h, w) = (rounding.side(x.h, k, s), rounding.side(x.w, k, s));
    let mut out = Act {
        n: x.n,
        h,
        w,
        c: x.c,
        data: ws.take(x.n * h * w * x.c),
    };
    max_pool_into(x, k, s, rounding, &mut out.data, x.c, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::{Device, Tensor, TensorData};

    /// Pooling of NHWC activations gives what Burn's does on NCHW, clipped windows at the far
    /// borders included (Caffe's ceil mode), for MTCNN's and FaceNet's kernels and for sides
    /// that divide evenly and that do not.
    #[test]
    fn max_pooling_matches_burns_in_both_roundings() {
        let d = Device::flex();
        for (k, rounding) in [
            (2, Rounding::Ceil),
            (3, Rounding::Ceil),
            (3, Rounding::Floor),
        ] {
            for (h, w) in [(11, 13), (12, 12), (22, 22), (9, 10), (3, 5)] {
                let (n, c) = (2, 3);
                let len = n * c * h * w;
                // Distinct values in a scrambled order, negative ones too; NCHW for Burn.
                let nchw: Vec<f32> = (0..len)
                    .map(|i| ((i * 7919) % len) as f32 - len as f32 / 2.0)
                    .collect();
                let mut nhwc = vec![0f32; len];
                for (i, v) in nchw.iter().enumerate() {
                    let (b, ch, y, x) = (i / (c * h * w), i / (h * w) % c, i / w % h, i % w);
                    nhwc[((b * h + y) * w + x) * c + ch] = *v;
                }
                let act = Act {
                    n,
                    h,
                    w,
                    c,
                    data: nhwc,
                };
                let ours = max_pool(&act, k, 2, rounding, &mut Work::default());
                let pool = MaxPool2dConfig::new([k, k])
                    .with_strides([2, 2])
                    .with_ceil_mode(rounding == Rounding::Ceil)
                    .init();
                let burns = pool.forward(Tensor::<4>::from_data(
                    TensorData::new(nchw, [n, c, h, w]),
                    &d,
                ));
                let [_, _, oh, ow] = burns.dims();
                assert_eq!((ours.h, ours.w), (oh, ow), "k {k} {rounding:?}, {h} x {w}");
                let burns = floats(burns);
                for (i, v) in burns.iter().enumerate() {
                    let (b, ch, y, x) = (i / (c * oh * ow), i / (oh * ow) % c, i / ow % oh, i % ow);
                    assert_eq!(
                        ours.data[((b * oh + y) * ow + x) * c + ch],
                        *v,
                        "k {k} {rounding:?}, {h} x {w}"
                    );
                }
            }
        }
    }

    fn conv(activation: Activation) -> Conv {
        let (kh, kw, cin, cout) = (3, 1, 2, 3);
        Conv {
            kh,
            kw,
            stride: 2,
            ph: 1,
            pw: 0,
            cin,
            cout,
            w: (0..kh * kw * cin * cout)
                .map(|i| i as f32 * 0.5 - 3.0)
                .collect(),
            b: vec![0.25, -1.5, f32::MIN_POSITIVE],
            activation,
            bf16: None,
        }
    }

    /// A packed convolution read back is the one written, every field and value; what is cut
    /// short or says another shape is an error.
    #[test]
    fn a_packed_convolution_is_read_back_as_written() {
        for activation in [
            Activation::None,
            Activation::Relu,
            Activation::PRelu(vec![0.1, -0.2, 0.3]),
        ] {
            let c = conv(activation);
            let mut bytes = Vec::new();
            c.write(&mut bytes).unwrap();
            let mut r = Unpack::new(&bytes[..]);
            let back = Conv::read(&mut r).unwrap();
            r.end().unwrap();
            assert_eq!(
                (
                    back.kh,
                    back.kw,
                    back.stride,
                    back.ph,
                    back.pw,
                    back.cin,
                    back.cout
                ),
                (c.kh, c.kw, c.stride, c.ph, c.pw, c.cin, c.cout)
            );
            assert_eq!(
                (&back.w, &back.b, &back.activation),
                (&c.w, &c.b, &c.activation)
            );
            for cut in [0, 4, 28, bytes.len() - 1] {
                assert!(
                    Conv::read(&mut Unpack::new(&bytes[..cut])).is_err(),
                    "cut at {cut}"
                );
            }
            let mut longer = bytes.clone();
            longer.push(0);
            let mut r = Unpack::new(&longer[..]);
            Conv::read(&mut r).unwrap();
            assert!(r.end().is_err(), "a byte past the end");
        }
        // Four output channels claimed for three channels' values.
        let mut bytes = Vec::new();
        conv(Activation::None).write(&mut bytes).unwrap();
        bytes[24..28].copy_from_slice(&4u32.to_le_bytes());
        let err = Conv::read(&mut Unpack::new(&bytes[..])).err().unwrap();
        assert!(err.to_string().contains("values where"), "{err}");
    }

    /// A test convolution packed for bf16 products, and as it is written.
    fn packed_for_bf16(activation: Activation) -> (Conv, Vec<u8>) {
        let mut c = conv(activation);
        c.to_bf16();
        assert!(c.is_bf16() && c.w.is_empty());
        let mut bytes = Vec::new();
        c.write(&mut bytes).unwrap();
        (c, bytes)
    }

    /// `a` and `b` give the same product: 4 rows of the 6 values a 3 x 1 x 2 patch holds.
    fn assert_same_product(a: &Conv, b: &Conv) {
        let x: Vec<f32> = (0..24).map(|i| (i as f32 * 0.37).sin()).collect();
        let (mut want, mut got) = (vec![0f32; 12], vec![0f32; 12]);
        b.multiply(4, &x, &mut want, 3, 0, 1.0);
        a.multiply(4, &x, &mut got, 3, 0, 1.0);
        assert_eq!(got, want);
    }

    /// A convolution packed for bf16 products is written packed and read back packed, the same
    /// values; cut short, it is an error.
    #[test]
    fn a_convolution_packed_for_bf16_is_read_back_packed() {
        let (c, bytes) = packed_for_bf16(Activation::Relu);
        let mut r = Unpack::new(&bytes[..]);
        let back = Conv::read(&mut r).unwrap();
        r.end().unwrap();
        assert!(back.is_bf16() && back.w.is_empty());
        let values = |c: &Conv| c.bf16.as_ref().unwrap().values().to_vec();
        assert_eq!(values(&back), values(&c));
        assert_eq!((&back.b, &back.activation), (&c.b, &c.activation));
        assert_same_product(&back, &c);
        for cut in [0, 40, bytes.len() - 1] {
            assert!(
                Conv::read(&mut Unpack::new(&bytes[..cut])).is_err(),
                "cut at {cut}"
            );
        }
    }

    /// Read from a mapped file, a convolution packed for bf16 products uses its weights where
    /// they lie in the map (the same product), where they lie aligned; a file cut short is an
    /// error, not a read past the map.
    #[test]
    fn a_mapped_file_lends_its_packed_weights_in_place() {
        let (c, bytes) = packed_for_bf16(Activation::None);
        let dir = tempfile::tempdir().unwrap();
        let open = |bytes: &[u8]| {
            let path = dir.path().join("conv");
            std::fs::write(&path, bytes).unwrap();
            // SAFETY: the file is not changed while mapped (each is written, then only read).
            unsafe { Mapped::new(&std::fs::File::open(&path).unwrap()).unwrap() }
        };
        let mut r = Unpack::new(open(&bytes));
        let map = r.r.map.clone();
        let back = Conv::read(&mut r).unwrap();
        r.end().unwrap();
        let values = back.bf16.as_ref().unwrap().values();
        assert!(
            map.as_ptr_range().contains(&values.as_ptr().cast()),
            "copied"
        );
        assert_eq!(values, c.bf16.as_ref().unwrap().values());
        assert_same_product(&back, &c);
        // Not aligned (one byte ahead of them): copied out, the same values.
        let mut shifted = vec![0u8];
        shifted.extend(&bytes);
        let mut r = Unpack::new(open(&shifted));
        r.r.read_exact(&mut [0u8]).unwrap();
        let back = Conv::read(&mut r).unwrap();
        let values = back.bf16.as_ref().unwrap().values();
        assert!(!r.r.map.as_ptr_range().contains(&values.as_ptr().cast()));
        assert_eq!(values, c.bf16.as_ref().unwrap().values());
        for cut in [40, bytes.len() - 30, bytes.len() - 1] {
            assert!(
                Conv::read(&mut Unpack::new(open(&bytes[..cut]))).is_err(),
                "cut at {cut}"
            );
        }
    }
}
