//! FaceNet's forward pass on the CPU, prepared once from the Burn model, on the kernels of
//! [`crate::cpu_conv`]: activations are NHWC rows (one row a pixel of a face, its channels side by
//! side), so every convolution is one matrix product over the whole batch, and the bias, the
//! residual scaling and add, and the concatenation of branches are written by the product itself
//! (each branch writes its own columns of the block's output).
//!
//! The same network, weights and arithmetic as `facenet.rs` (the Burn module stays the model, the
//! record and the GPU path); this is only a faster way to run it on the CPU. It must not change a
//! result beyond float rounding (tests compare it with Burn's forward and OpenCV DNN).

use std::io::{self, Read, Write};
use std::path::Path;

use super::facenet::{EMBEDDING_DIM, FaceNet, INPUT_SIDE, Reduction, Residual, Unit};
use crate::cpu_conv::{
    Act, Activation, Conv, Mapped, Rounding, Source, Unpack, Work, floats, invalid, max_pool,
    max_pool_into, product, put_count, put_floats,
};

/// What a file of FaceNet prepared for the CPU starts with, then [`FORMAT`].
const MAGIC: &[u8; 16] = b"visage facenet\n\0";

/// The layout of that file; bump it when what [`CpuFaceNet::write`] writes changes, or the way
/// [`Conv`] packs its weights.
const FORMAT: u32 = 2;

/// The stem's convolutions (the forward pass runs them one by one).
const STEM: usize = 6;

/// The most units in a chain, chains in a block, or blocks in a stage the file may say there are.
const MAX_PARTS: usize = 64;

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

fn write_branches(out: &mut dyn Write, branches: &[Vec<Conv>]) -> io::Result<()> {
    put_count(out, branches.len())?;
    for chain in branches {
        write_convs(out, chain)?;
    }
    Ok(())
}

fn read_branches(r: &mut Unpack<impl Source>) -> io::Result<Vec<Vec<Conv>>> {
    let n = r.count(MAX_PARTS)?;
    (0..n).map(|_| read_convs(r)).collect()
}

fn write_convs(out: &mut dyn Write, convs: &[Conv]) -> io::Result<()> {
    put_count(out, convs.len())?;
    convs.iter().try_for_each(|c| c.write(out))
}

/// At least one convolution.
fn read_convs(r: &mut Unpack<impl Source>) -> io::Result<Vec<Conv>> {
    match r.count(MAX_PARTS)? {
        0 => Err(invalid("a chain without a convolution")),
        n => (0..n).map(|_| Conv::read(r)).collect(),
    }
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

    fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        write_branches(out, &self.branches)?;
        self.up.write(out)?;
        put_floats(out, &[self.scale])?;
        put_count(out, self.relu as usize)
    }

    fn read(r: &mut Unpack<impl Source>) -> io::Result<Self> {
        Ok(Block {
            branches: read_branches(r)?,
            up: Conv::read(r)?,
            scale: r.floats(1)?[0],
            relu: r.count(1)? == 1,
        })
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
        self.up
            .multiply(rows, &mixed, &mut x.data, x.c, 0, self.scale);
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

    fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        write_branches(out, &self.branches)
    }

    fn read(r: &mut Unpack<impl Source>) -> io::Result<Self> {
        Ok(Reduce {
            branches: read_branches(r)?,
        })
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

    /// Run the convolutions' products in bf16 (see [`crate::matmul::bf16`]); the bottleneck
    /// stays f32.
    pub fn to_bf16(&mut self) {
        let mut convs: Vec<&mut Conv> = self.stem.iter_mut().collect();
        let blocks = self
            .blocks35
            .iter_mut()
            .chain(&mut self.blocks17)
            .chain(&mut self.blocks8);
        for b in blocks.chain(std::iter::once(&mut self.last)) {
            convs.extend(b.branches.iter_mut().flatten());
            convs.push(&mut b.up);
        }
        for r in [&mut self.mixed_6a, &mut self.mixed_7a] {
            convs.extend(r.branches.iter_mut().flatten());
        }
        convs.into_iter().for_each(Conv::to_bf16);
    }

    /// Whether the products run in bf16.
    pub fn is_bf16(&self) -> bool {
        self.stem[0].is_bf16()
    }

    /// Keep this network in `path` (written whole or not at all), stamped with `source`: what
    /// identifies the weights it was packed from.
    pub fn save(&self, path: &Path, source: [u64; 2]) -> io::Result<()> {
        crate::atomic::write_with(path, |out| {
            out.write_all(MAGIC)?;
            out.write_all(&FORMAT.to_le_bytes())?;
            out.write_all(bytemuck::cast_slice(&source))?;
            self.write(out)
        })
    }

    /// The network [`CpuFaceNet::save`] kept in `path`, if it was packed from `source` in this
    /// file layout: anything else (another layout, other weights, a damaged file) is an error,
    /// and the caller packs it again.
    ///
    /// The file is mapped, not read: the weights packed for bf16 products are used where they
    /// lie in it (the page cache's copy, shared by every visage process on the machine), so
    /// opening costs no copy of them.
    pub fn open(path: &Path, source: [u64; 2]) -> io::Result<Self> {
        // SAFETY: the file is only ever replaced whole (`save` writes it beside and renames it),
        // never changed in place.
        let mut r = unsafe { Mapped::new(&std::fs::File::open(path)?)? };
        let mut head = [0u8; 16];
        let mut format = [0u8; 4];
        let mut stamp = [0u64; 2];
        r.read_exact(&mut head)?;
        r.read_exact(&mut format)?;
        r.read_exact(bytemuck::cast_slice_mut(&mut stamp))?;
        if &head != MAGIC || u32::from_le_bytes(format) != FORMAT {
            return Err(invalid("not FaceNet prepared in this layout"));
        }
        if stamp != source {
            return Err(invalid("prepared from other weights"));
        }
        let mut r = Unpack::new(r);
        let net = Self::read(&mut r)?;
        r.end()?;
        Ok(net)
    }

    fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        write_convs(out, &self.stem)?;
        for (blocks, reduce) in [
            (&self.blocks35, Some(&self.mixed_6a)),
            (&self.blocks17, Some(&self.mixed_7a)),
            (&self.blocks8, None),
        ] {
            put_count(out, blocks.len())?;
            blocks.iter().try_for_each(|b| b.write(out))?;
            if let Some(reduce) = reduce {
                reduce.write(out)?;
            }
        }
        self.last.write(out)?;
        put_floats(out, &self.bottleneck.0)?;
        put_floats(out, &self.bottleneck.1)
    }

    fn read(r: &mut Unpack<impl Source>) -> io::Result<Self> {
        let blocks = |r: &mut Unpack<_>| -> io::Result<Vec<Block>> {
            let n = r.count(MAX_PARTS)?;
            (0..n).map(|_| Block::read(r)).collect()
        };
        let stem = read_convs(r)?;
        if stem.len() != STEM {
            return Err(invalid("a stem of another length"));
        }
        let blocks35 = blocks(r)?;
        let mixed_6a = Reduce::read(r)?;
        let blocks17 = blocks(r)?;
        let mixed_7a = Reduce::read(r)?;
        let blocks8 = blocks(r)?;
        let last = Block::read(r)?;
        let width = last.up.cout;
        Ok(CpuFaceNet {
            stem,
            blocks35,
            mixed_6a,
            blocks17,
            mixed_7a,
            blocks8,
            last,
            bottleneck: (r.floats(width * EMBEDDING_DIM)?, r.floats(EMBEDDING_DIM)?),
        })
    }

    /// `n` standardised faces, NCHW `[n, 3, 160, 160]` as the Burn model takes them, to `n` unit
    /// vectors.
    pub fn forward(&self, nchw: &[f32], n: usize) -> Vec<Vec<f32>> {
        let ws = &mut Work::default();
        let side = INPUT_SIDE;
        let plane = side * side;
        let mut x = Act {
            n,
            h: side,
            w: side,
            c: 3,
            data: ws.take(n * plane * 3),
        };
        for f in 0..n {
            for c in 0..3 {
                for p in 0..plane {
                    x.data[(f * plane + p) * 3 + c] = nchw[(f * 3 + c) * plane + p];
                }
            }
        }
        // Each layer's output replaces its input, whose buffer goes back to `ws`.
        let step = |x: Act, ws: &mut Work, f: &dyn Fn(&Act, &mut Work) -> Act| {
            let y = f(&x, ws);
            ws.give(x.data);
            y
        };
        let s = &self.stem;
        let x = step(x, ws, &|x, ws| s[0].run(x, ws));
        let x = step(x, ws, &|x, ws| s[1].run(x, ws));
        let x = step(x, ws, &|x, ws| s[2].run(x, ws));
        let x = step(x, ws, &|x, ws| max_pool(x, 3, 2, Rounding::Floor, ws));
        let x = step(x, ws, &|x, ws| s[3].run(x, ws));
        let x = step(x, ws, &|x, ws| s[4].run(x, ws));
        let mut x = step(x, ws, &|x, ws| s[5].run(x, ws));
        for b in &self.blocks35 {
            b.run(&mut x, ws);
        }
        let mut x = step(x, ws, &|x, ws| self.mixed_6a.run(x, ws));
        for b in &self.blocks17 {
            b.run(&mut x, ws);
        }
        let mut x = step(x, ws, &|x, ws| self.mixed_7a.run(x, ws));
        for b in &self.blocks8 {
            b.run(&mut x, ws);
        }
        self.last.run(&mut x, ws);
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
        // One face at a time (a product's order of sums depends on its rows): with the bf16
        // products, whose rows are independent, a face's vector is the same whatever its batch.
        for f in 0..n {
            let e = &mut emb[f * EMBEDDING_DIM..(f + 1) * EMBEDDING_DIM];
            e.copy_from_slice(bb);
            let a = &avg[f * x.c..(f + 1) * x.c];
            product(1, EMBEDDING_DIM, x.c, a, bw, e, EMBEDDING_DIM, 0, 1.0);
        }
        emb.chunks_exact(EMBEDDING_DIM)
            .map(|e| {
                let norm = e.iter().map(|v| v * v).sum::<f32>().max(1e-10).sqrt();
                e.iter().map(|v| v / norm).collect()
            })
            .collect()
    }
}
