//! FaceNet's forward pass on the CPU, prepared once from the Burn model, on the kernels of
//! [`crate::cpu_conv`]: activations are NHWC rows (one row a pixel of a face, its channels side by
//! side), so every convolution is one matrix product over the whole batch, and the bias, the
//! residual scaling and add, and the concatenation of branches are written by the product itself
//! (each branch writes its own columns of the block's output).
//!
//! The same network, weights and arithmetic as `facenet.rs` (the Burn module stays the model, the
//! record and the GPU path); this is only a faster way to run it on the CPU. It must not change a
//! result beyond float rounding (tests compare it with Burn's forward and OpenCV DNN).

use super::facenet::{EMBEDDING_DIM, FaceNet, INPUT_SIDE, Reduction, Residual, Unit};
use crate::cpu_conv::{
    Act, Activation, Conv, Rounding, Work, floats, max_pool, max_pool_into, product,
};

/// A FaceNet unit (convolution, batch norm folded in, ReLU or not), packed.
fn unit(u: Unit) -> Conv {
    let activation = if u.relu {
        Activation::Relu
    } else {
        Activation::None
    };
    Conv::from_burn_owned(u.conv, activation)
}

/// Branches of units, packed.
fn branches(b: Vec<Vec<Unit>>) -> Vec<Vec<Conv>> {
    b.into_iter()
        .map(|chain| chain.into_iter().map(unit).collect())
        .collect()
}

struct Block {
    branches: Vec<Vec<Conv>>,
    up: Conv,
    scale: f32,
    relu: bool,
}

impl Block {
    fn new(r: Residual) -> Self {
        Block {
            branches: branches(r.branches),
            up: unit(r.up),
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
    fn new(r: Reduction) -> Self {
        Reduce {
            branches: branches(r.branches),
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
        max_pool_into(x, 3, 2, Rounding::Floor, &mut out.data, width, col);
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
    /// The network packed for the CPU. It takes the Burn module, so that the weights are not
    /// held twice (the module's 90 MB are freed as each layer is packed).
    pub fn new(net: FaceNet) -> Self {
        let s = net.stem;
        let lw = net.bottleneck.weight.into_value();
        assert_eq!(lw.dims()[1], EMBEDDING_DIM);
        CpuFaceNet {
            stem: [
                s.conv_1a, s.conv_2a, s.conv_2b, s.conv_3b, s.conv_4a, s.conv_4b,
            ]
            .into_iter()
            .map(unit)
            .collect(),
            blocks35: net.block35.into_iter().map(Block::new).collect(),
            mixed_6a: Reduce::new(net.mixed_6a),
            blocks17: net.block17.into_iter().map(Block::new).collect(),
            mixed_7a: Reduce::new(net.mixed_7a),
            blocks8: net.block8.into_iter().map(Block::new).collect(),
            last: Block::new(net.last),
            bottleneck: (
                floats(lw),
                net.bottleneck
                    .bias
                    .map(|b| floats(b.into_value()))
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
        let x = step(x, &mut ws, &|x, ws| max_pool(x, 3, 2, Rounding::Floor, ws));
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
