//! FaceNet's forward pass on the CPU, prepared once from the Burn model: activations are NHWC rows
//! (one row a pixel of a face, its channels side by side), so every convolution is one matrix
//! product over the whole batch (1x1 convolutions read the activations as they are; the others go
//! through one im2col copy), weights are packed once as `[kh * kw * cin, cout]`, and the bias, the
//! residual scaling and add, and the concatenation of branches are written by the product itself
//! (each branch writes its own columns of the block's output).
//!
//! The same network, weights and arithmetic as `facenet.rs` (the Burn module stays the model, the
//! record and the GPU path); this is only a faster way to run it on the CPU. It must not change a
//! result beyond float rounding (tests compare it with Burn's forward and OpenCV DNN).

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;

use super::facenet::{EMBEDDING_DIM, FaceNet, INPUT_SIDE, Reduction, Residual, Unit};

/// One convolution, packed.
struct Conv {
    kh: usize,
    kw: usize,
    stride: usize,
    /// Zero padding before the first row / column.
    ph: usize,
    pw: usize,
    cin: usize,
    cout: usize,
    /// `[kh * kw * cin, cout]`, row-major: row `(i * kw + j) * cin + c`.
    w: Vec<f32>,
    b: Vec<f32>,
    relu: bool,
}

/// Buffers a forward pass reuses: the im2col tile, and activation buffers handed back when a
/// layer's output replaces its input (fresh ones cost a page fault per 4 KiB).
#[derive(Default)]
struct Work {
    patches: Vec<f32>,
    free: Vec<Vec<f32>>,
}

impl Work {
    /// A zeroed buffer of `len` floats, reusing the smallest free one that is large enough.
    fn take(&mut self, len: usize) -> Vec<f32> {
        let best = (0..self.free.len())
            .filter(|&i| self.free[i].capacity() >= len)
            .min_by_key(|&i| self.free[i].capacity());
        let mut v = match best {
            Some(i) => self.free.swap_remove(i),
            None => Vec::with_capacity(len),
        };
        v.clear();
        v.resize(len, 0.0);
        v
    }

    fn give(&mut self, v: Vec<f32>) {
        self.free.push(v);
    }
}

/// Activations of a batch: `n` faces of `h x w` pixels with `c` channels, NHWC.
#[derive(Clone)]
struct Act {
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    data: Vec<f32>,
}

impl Act {
    fn rows(&self) -> usize {
        self.n * self.h * self.w
    }
}

fn floats<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data()
        .try_into_vec::<f32>()
        .expect("FaceNet's weights are f32")
}

impl Conv {
    fn from_unit(u: &Unit) -> Self {
        Self::from_burn(&u.conv, u.relu)
    }

    fn from_burn(conv: &Conv2d, relu: bool) -> Self {
        let [cout, cin, kh, kw] = conv.weight.val().dims();
        let (ph, pw) = match &conv.padding {
            PaddingConfig2d::Valid => (0, 0),
            PaddingConfig2d::Explicit(top, left, _, _) => (*top, *left),
            PaddingConfig2d::Same => ((kh - 1) / 2, (kw - 1) / 2),
        };
        let oihw = floats(conv.weight.val());
        let mut w = vec![0f32; kh * kw * cin * cout];
        for o in 0..cout {
            for c in 0..cin {
                for i in 0..kh {
                    for j in 0..kw {
                        w[((i * kw + j) * cin + c) * cout + o] =
                            oihw[((o * cin + c) * kh + i) * kw + j];
                    }
                }
            }
        }
        let b = conv
            .bias
            .as_ref()
            .map(|b| floats(b.val()))
            .unwrap_or_else(|| vec![0.0; cout]);
        Conv {
            kh,
            kw,
            stride: conv.stride[0],
            ph,
            pw,
            cin,
            cout,
            w,
            b,
            relu,
        }
    }

    fn out_size(&self, h: usize, w: usize) -> (usize, usize) {
        (
            (h + 2 * self.ph - self.kh) / self.stride + 1,
            (w + 2 * self.pw - self.kw) / self.stride + 1,
        )
    }

    /// The convolution of `x`, written (with its bias, then ReLU if it has one) into columns
    /// `col..col + cout` of `out`, whose rows are `ld` wide.
    fn run_into(&self, x: &Act, out: &mut [f32], ld: usize, col: usize, patches: &mut Vec<f32>) {
        let (ho, wo) = self.out_size(x.h, x.w);
        let m = x.n * ho * wo;
        let k = self.kh * self.kw * self.cin;
        for r in 0..m {
            out[r * ld + col..r * ld + col + self.cout].copy_from_slice(&self.b);
        }
        if self.kh == 1 && self.kw == 1 && self.stride == 1 {
            product(m, self.cout, k, &x.data, &self.w, out, ld, col, 1.0);
        } else {
            // A few hundred output rows at a time, so their patches stay in cache between the
            // copy and the product.
            let tile = (IM2COL_FLOATS / k).clamp(16, m.max(16));
            for r0 in (0..m).step_by(tile) {
                let r1 = (r0 + tile).min(m);
                im2col(x, self, ho, wo, r0..r1, patches);
                product(
                    r1 - r0,
                    self.cout,
                    k,
                    patches,
                    &self.w,
                    &mut out[r0 * ld..],
                    ld,
                    col,
                    1.0,
                );
            }
        }
        if self.relu {
            for r in 0..m {
                for v in &mut out[r * ld + col..r * ld + col + self.cout] {
                    *v = v.max(0.0);
                }
            }
        }
    }

    fn run(&self, x: &Act, ws: &mut Work) -> Act {
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
/// rows `ld` wide. Single-threaded: the batch is split across threads above this.
#[allow(clippy::too_many_arguments)]
fn product(
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
    assert!(a.len() >= m * k && b.len() >= k * n && out.len() >= (m.max(1) - 1) * ld + col + n);
    // SAFETY: the assert above bounds every element gemm reads or writes: `a` is m x k with row
    // stride k, `b` is k x n with row stride n, and `out` holds m rows of stride ld whose columns
    // col..col + n are written.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr().add(col),
            1,
            ld as isize,
            true,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            1.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
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
    out.clear();
    out.resize(rows.len() * k, 0.0);
    for (t, r) in rows.enumerate() {
        let (n, oy, ox) = (r / (ho * wo), (r / wo) % ho, r % wo);
        let row = &mut out[t * k..][..k];
        for i in 0..conv.kh {
            let y = (oy * conv.stride + i) as isize - conv.ph as isize;
            if y < 0 || y >= x.h as isize {
                continue;
            }
            for j in 0..conv.kw {
                let xx = (ox * conv.stride + j) as isize - conv.pw as isize;
                if xx < 0 || xx >= x.w as isize {
                    continue;
                }
                let src = ((n * x.h + y as usize) * x.w + xx as usize) * x.c;
                row[(i * conv.kw + j) * x.c..][..x.c].copy_from_slice(&x.data[src..src + x.c]);
            }
        }
    }
}

/// 3x3 max pooling, stride 2, no padding, into columns `col..col + c` of rows `ld` wide.
fn max_pool_into(x: &Act, out: &mut [f32], ld: usize, col: usize) {
    let (ho, wo) = ((x.h - 3) / 2 + 1, (x.w - 3) / 2 + 1);
    for n in 0..x.n {
        for oy in 0..ho {
            for ox in 0..wo {
                let dst = &mut out[((n * ho + oy) * wo + ox) * ld + col..][..x.c];
                dst.fill(f32::NEG_INFINITY);
                for i in 0..3 {
                    for j in 0..3 {
                        let src = ((n * x.h + oy * 2 + i) * x.w + ox * 2 + j) * x.c;
                        for (d, s) in dst.iter_mut().zip(&x.data[src..src + x.c]) {
                            *d = d.max(*s);
                        }
                    }
                }
            }
        }
    }
}

struct Block {
    branches: Vec<Vec<Conv>>,
    up: Conv,
    scale: f32,
    relu: bool,
}

impl Block {
    fn new(r: &Residual) -> Self {
        Block {
            branches: r
                .branches
                .iter()
                .map(|chain| chain.iter().map(Conv::from_unit).collect())
                .collect(),
            up: Conv::from_unit(&r.up),
            scale: r.scale,
            relu: r.relu,
        }
    }

    /// `x <- relu?(x + scale * (up(concat(branches(x))) + bias))`, in place.
    fn run(&self, x: &mut Act, ws: &mut Work) {
        let width: usize = self
            .branches
            .iter()
            .map(|c| c.last().expect("a conv").cout)
            .sum();
        let mut mixed = ws.take(x.rows() * width);
        branches_into(&self.branches, x, &mut mixed, width, ws);
        let rows = x.rows();
        for r in 0..rows {
            for (v, b) in x.data[r * x.c..(r + 1) * x.c].iter_mut().zip(&self.up.b) {
                *v += self.scale * b;
            }
        }
        product(
            rows,
            self.up.cout,
            width,
            &mixed,
            &self.up.w,
            &mut x.data,
            x.c,
            0,
            self.scale,
        );
        if self.relu {
            for v in &mut x.data {
                *v = v.max(0.0);
            }
        }
        ws.give(mixed);
    }
}

/// Each branch run on `x`, its last convolution writing its own columns of `out` (rows `width`
/// wide), side by side from column 0. Returns the first column left free.
fn branches_into(
    branches: &[Vec<Conv>],
    x: &Act,
    out: &mut [f32],
    width: usize,
    ws: &mut Work,
) -> usize {
    let mut col = 0;
    for chain in branches {
        let y = chain_but_last(chain, x, ws);
        let last = chain.last().expect("a conv");
        last.run_into(y.as_ref().unwrap_or(x), out, width, col, &mut ws.patches);
        if let Some(y) = y {
            ws.give(y.data);
        }
        col += last.cout;
    }
    col
}

/// Every convolution of a branch but its last, in turn (`None` for a branch of one).
fn chain_but_last(chain: &[Conv], x: &Act, ws: &mut Work) -> Option<Act> {
    let (_, first) = chain.split_last().expect("a conv");
    let mut y: Option<Act> = None;
    for conv in first {
        let next = conv.run(y.as_ref().unwrap_or(x), ws);
        if let Some(old) = y.replace(next) {
            ws.give(old.data);
        }
    }
    y
}

struct Reduce {
    branches: Vec<Vec<Conv>>,
}

impl Reduce {
    fn new(r: &Reduction) -> Self {
        Reduce {
            branches: r
                .branches
                .iter()
                .map(|chain| chain.iter().map(Conv::from_unit).collect())
                .collect(),
        }
    }

    /// The branches and a 3x3/2 max pool side by side.
    fn run(&self, x: &Act, ws: &mut Work) -> Act {
        let (h, w) = ((x.h - 3) / 2 + 1, (x.w - 3) / 2 + 1);
        let width: usize = self
            .branches
            .iter()
            .map(|c| c.last().expect("a conv").cout)
            .sum::<usize>()
            + x.c;
        let mut out = Act {
            n: x.n,
            h,
            w,
            c: width,
            data: ws.take(x.n * h * w * width),
        };
        let col = branches_into(&self.branches, x, &mut out.data, width, ws);
        max_pool_into(x, &mut out.data, width, col);
        out
    }
}

/// FaceNet, prepared for the CPU.
pub struct CpuFaceNet {
    stem: Vec<Conv>,
    blocks35: Vec<Block>,
    mixed_6a: Reduce,
    blocks17: Vec<Block>,
    mixed_7a: Reduce,
    blocks8: Vec<Block>,
    last: Block,
    /// `[1792, 512]`, and its bias.
    bottleneck: (Vec<f32>, Vec<f32>),
}

impl CpuFaceNet {
    pub fn new(net: &FaceNet) -> Self {
        let s = &net.stem;
        let lw = net.bottleneck.weight.val();
        assert_eq!(lw.dims()[1], EMBEDDING_DIM);
        CpuFaceNet {
            stem: [
                &s.conv_1a, &s.conv_2a, &s.conv_2b, &s.conv_3b, &s.conv_4a, &s.conv_4b,
            ]
            .into_iter()
            .map(Conv::from_unit)
            .collect(),
            blocks35: net.block35.iter().map(Block::new).collect(),
            mixed_6a: Reduce::new(&net.mixed_6a),
            blocks17: net.block17.iter().map(Block::new).collect(),
            mixed_7a: Reduce::new(&net.mixed_7a),
            blocks8: net.block8.iter().map(Block::new).collect(),
            last: Block::new(&net.last),
            bottleneck: (
                floats(lw),
                net.bottleneck
                    .bias
                    .as_ref()
                    .map(|b| floats(b.val()))
                    .unwrap_or_else(|| vec![0.0; EMBEDDING_DIM]),
            ),
        }
    }

    /// `n` standardised faces, NCHW `[n, 3, 160, 160]` as the Burn model takes them, to `n` unit
    /// vectors.
    pub fn forward(&self, nchw: &[f32], n: usize) -> Vec<Vec<f32>> {
        let side = INPUT_SIDE;
        let plane = side * side;
        let mut x = Act {
            n,
            h: side,
            w: side,
            c: 3,
            data: vec![0.0; n * plane * 3],
        };
        for f in 0..n {
            for c in 0..3 {
                for p in 0..plane {
                    x.data[(f * plane + p) * 3 + c] = nchw[(f * 3 + c) * plane + p];
                }
            }
        }
        let mut ws = Work::default();
        // Each layer's output replaces its input, whose buffer goes back to `ws`.
        let step = |x: Act, ws: &mut Work, f: &dyn Fn(&Act, &mut Work) -> Act| {
            let y = f(&x, ws);
            ws.give(x.data);
            y
        };
        let s = &self.stem;
        let x = step(x, &mut ws, &|x, ws| s[0].run(x, ws));
        let x = step(x, &mut ws, &|x, ws| s[1].run(x, ws));
        let x = step(x, &mut ws, &|x, ws| s[2].run(x, ws));
        let x = step(x, &mut ws, &|x, ws| {
            let (h, w) = ((x.h - 3) / 2 + 1, (x.w - 3) / 2 + 1);
            let mut pooled = Act {
                n: x.n,
                h,
                w,
                c: x.c,
                data: ws.take(x.n * h * w * x.c),
            };
            max_pool_into(x, &mut pooled.data, x.c, 0);
            pooled
        });
        let x = step(x, &mut ws, &|x, ws| s[3].run(x, ws));
        let x = step(x, &mut ws, &|x, ws| s[4].run(x, ws));
        let mut x = step(x, &mut ws, &|x, ws| s[5].run(x, ws));
        for b in &self.blocks35 {
            b.run(&mut x, &mut ws);
        }
        let mut x = step(x, &mut ws, &|x, ws| self.mixed_6a.run(x, ws));
        for b in &self.blocks17 {
            b.run(&mut x, &mut ws);
        }
        let mut x = step(x, &mut ws, &|x, ws| self.mixed_7a.run(x, ws));
        for b in &self.blocks8 {
            b.run(&mut x, &mut ws);
        }
        self.last.run(&mut x, &mut ws);
        // Global average pooling, the bottleneck, L2 normalisation.
        let px = x.h * x.w;
        let mut avg = vec![0f32; n * x.c];
        for f in 0..n {
            for p in 0..px {
                let src = &x.data[(f * px + p) * x.c..][..x.c];
                for (a, v) in avg[f * x.c..(f + 1) * x.c].iter_mut().zip(src) {
                    *a += v;
                }
            }
            for a in &mut avg[f * x.c..(f + 1) * x.c] {
                *a /= px as f32;
            }
        }
        let (bw, bb) = &self.bottleneck;
        let mut emb = vec![0f32; n * EMBEDDING_DIM];
        for f in 0..n {
            emb[f * EMBEDDING_DIM..(f + 1) * EMBEDDING_DIM].copy_from_slice(bb);
        }
        product(
            n,
            EMBEDDING_DIM,
            x.c,
            &avg,
            bw,
            &mut emb,
            EMBEDDING_DIM,
            0,
            1.0,
        );
        emb.chunks_exact(EMBEDDING_DIM)
            .map(|e| {
                let norm = e.iter().map(|v| v * v).sum::<f32>().max(1e-10).sqrt();
                e.iter().map(|v| v / norm).collect()
            })
            .collect()
    }
}
