//! P-Net, R-Net and O-Net on the CPU, prepared once from their Burn modules on the kernels of
//! [`crate::cpu_conv`], as `embedding::cpu` is FaceNet's: NHWC activations, each convolution one
//! matrix product with its PReLU applied in place, Caffe's ceil-mode pooling, and each network's
//! heads merged into one product. Burn flex ran these small networks at a fraction of that speed
//! (its pooling alone was a third of MTCNN's time on camera photos).
//!
//! The Burn modules stay the model, the weights and the GPU path; this is only a faster way to run
//! them on the CPU and must not change a result beyond float rounding (tests compare the two).
//! Every network's answer is [`Rows`]: per cell or per candidate, the softmax pair (not a face,
//! face), the box correction, then O-Net's landmarks.

use burn::nn::pool::MaxPool2d;
use burn::nn::{Linear, PRelu, conv::Conv2d};

use super::layers::normalise;
use super::onet::ONet;
use super::pnet::PNet;
use super::rnet::RNet;
use crate::cpu_conv::{
    Act, Activation, Conv, Rounding, Work, floats, max_pool, product, side_by_side,
};

/// A network's answers side by side, `width` values each: the face softmax pair (not a face,
/// face), the 4 box corrections, then (O-Net) the 10 landmark coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub width: usize,
    pub values: Vec<f32>,
}

impl Rows {
    /// From outputs laid out `[n, k]` each (R-Net's and O-Net's Burn outputs), `(values, k)`.
    pub fn from_rows(n: usize, parts: &[(&[f32], usize)]) -> Rows {
        Rows {
            width: parts.iter().map(|p| p.1).sum(),
            values: side_by_side(n, parts),
        }
    }

    /// From maps laid out `[k, cells]` each (P-Net's Burn outputs for one image), `(values, k)`.
    pub fn from_planes(cells: usize, parts: &[(&[f32], usize)]) -> Rows {
        let width = parts.iter().map(|p| p.1).sum();
        let mut values = Vec::with_capacity(cells * width);
        for i in 0..cells {
            for (v, k) in parts {
                values.extend((0..*k).map(|j| v[j * cells + i]));
            }
        }
        Rows { width, values }
    }

    /// The probability that answer `i` is a face.
    pub fn face(&self, i: usize) -> f32 {
        self.values[i * self.width + 1]
    }

    /// Answer `i`'s box correction (x1, y1, x2, y2).
    pub fn regression(&self, i: usize) -> &[f32] {
        &self.values[i * self.width + 2..i * self.width + 6]
    }

    /// Answer `i`'s landmarks: x0..x4 then y0..y4 (O-Net's only).
    pub fn landmarks(&self, i: usize) -> &[f32] {
        &self.values[i * self.width + 6..(i + 1) * self.width]
    }
}

/// A convolution with its PReLU, then ceil-mode max pooling (`k` at stride 2) where the network
/// has it.
struct Stage {
    conv: Conv,
    pool: Option<usize>,
}

impl Stage {
    fn new(conv: &Conv2d, prelu: &PRelu, pool: Option<&MaxPool2d>) -> Stage {
        let conv = Conv::from_burn(conv, slopes(prelu, conv.weight.dims()[0]));
        Stage {
            conv,
            pool: pool.map(|p| {
                debug_assert!(p.ceil_mode && p.stride == [2, 2]);
                p.kernel_size[0]
            }),
        }
    }

    fn run(&self, x: &Act, ws: &mut Work) -> Act {
        let y = self.conv.run(x, ws);
        let Some(k) = self.pool else { return y };
        let pooled = max_pool(&y, k, 2, Rounding::Ceil, ws);
        ws.give(y.data);
        pooled
    }
}

/// PReLU's slopes, one per channel.
fn slopes(prelu: &PRelu, channels: usize) -> Activation {
    let a = floats(prelu.alpha.val());
    assert_eq!(a.len(), channels, "MTCNN's PReLUs have a slope per channel");
    Activation::PRelu(a)
}

/// A dense layer: Burn's `[inputs, outputs]` weights, the bias, then the activation.
struct Dense {
    w: Vec<f32>,
    b: Vec<f32>,
    outputs: usize,
    activation: Activation,
}

impl Dense {
    fn new(layers: &[&Linear], activation: Activation) -> Dense {
        // Heads side by side: row r of the merged weights is each layer's row r in turn.
        let dims: Vec<[usize; 2]> = layers.iter().map(|l| l.weight.dims()).collect();
        let outputs = dims.iter().map(|d| d[1]).sum();
        let ws: Vec<Vec<f32>> = layers.iter().map(|l| floats(l.weight.val())).collect();
        let parts: Vec<(&[f32], usize)> =
            ws.iter().zip(&dims).map(|(v, d)| (&v[..], d[1])).collect();
        let w = side_by_side(dims[0][0], &parts);
        let b = layers
            .iter()
            .zip(&dims)
            .flat_map(|(l, d)| {
                l.bias
                    .as_ref()
                    .map(|b| floats(b.val()))
                    .unwrap_or_else(|| vec![0.0; d[1]])
            })
            .collect();
        Dense {
            w,
            b,
            outputs,
            activation,
        }
    }

    /// `n` rows of inputs to `n` rows of outputs.
    fn run(&self, x: &[f32], n: usize) -> Vec<f32> {
        let inputs = self.w.len() / self.outputs;
        let mut out: Vec<f32> = (0..n).flat_map(|_| self.b.iter().copied()).collect();
        product(
            n,
            self.outputs,
            inputs,
            x,
            &self.w,
            &mut out,
            self.outputs,
            0,
            1.0,
        );
        self.activation
            .apply(&mut out, n, self.outputs, 0, self.outputs);
        out
    }
}

/// The softmax of each row's first two values, in place (as Burn's: `exp(v - max) / sum`).
fn softmax_pairs(values: &mut [f32], width: usize) {
    for row in values.chunks_exact_mut(width) {
        let m = row[0].max(row[1]);
        let (e0, e1) = ((row[0] - m).exp(), (row[1] - m).exp());
        let sum = e0 + e1;
        row[0] = e0 / sum;
        row[1] = e1 / sum;
    }
}

/// `n` HWC byte images of `h x w`, side by side in `pixels`, scaled as MTCNN takes them.
fn input(pixels: &[u8], n: usize, h: usize, w: usize) -> Act {
    debug_assert_eq!(pixels.len(), n * h * w * 3);
    Act {
        n,
        h,
        w,
        c: 3,
        data: pixels.iter().map(|&p| normalise(p as f32)).collect(),
    }
}

/// Caffe's flattening (width-major: N x W x H x C, see `layers::flatten`) of NHWC activations.
fn flatten(x: &Act) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.data.len());
    for n in 0..x.n {
        for j in 0..x.w {
            for i in 0..x.h {
                let src = ((n * x.h + i) * x.w + j) * x.c;
                out.extend_from_slice(&x.data[src..src + x.c]);
            }
        }
    }
    out
}

/// The stages in turn, each output replacing its input.
fn run_stages(stages: &[Stage], mut x: Act, ws: &mut Work) -> Act {
    for s in stages {
        let y = s.run(&x, ws);
        ws.give(std::mem::replace(&mut x, y).data);
    }
    x
}

/// P-Net, prepared for the CPU.
pub struct CpuPNet {
    stages: [Stage; 3],
    /// conv4_1 (2 logits) and conv4_2 (4 corrections) as one 1x1 convolution.
    heads: Conv,
}

impl CpuPNet {
    pub fn new(net: &PNet) -> Self {
        CpuPNet {
            stages: [
                Stage::new(&net.conv1, &net.prelu1, Some(&net.pool1)),
                Stage::new(&net.conv2, &net.prelu2, None),
                Stage::new(&net.conv3, &net.prelu3, None),
            ],
            heads: Conv::from_burn(&net.conv4_1, Activation::None)
                .beside(Conv::from_burn(&net.conv4_2, Activation::None)),
        }
    }

    /// One image of `h x w` HWC bytes to one row per output cell (row-major, `oh x ow` cells,
    /// `pnet::output_side`).
    pub fn forward(&self, pixels: &[u8], h: usize, w: usize) -> Rows {
        let mut ws = Work::default();
        let x = run_stages(&self.stages, input(pixels, 1, h, w), &mut ws);
        let mut y = self.heads.run(&x, &mut ws);
        softmax_pairs(&mut y.data, y.c);
        Rows {
            width: y.c,
            values: y.data,
        }
    }
}

/// R-Net or O-Net, prepared for the CPU: their stages, the dense layer with its PReLU, and the
/// heads as one dense layer.
pub struct CpuRefiner {
    side: usize,
    stages: Vec<Stage>,
    dense: Dense,
    heads: Dense,
}

impl CpuRefiner {
    pub fn rnet(net: &RNet) -> Self {
        CpuRefiner {
            side: super::rnet::INPUT_SIDE,
            stages: vec![
                Stage::new(&net.conv1, &net.prelu1, Some(&net.pool1)),
                Stage::new(&net.conv2, &net.prelu2, Some(&net.pool2)),
                Stage::new(&net.conv3, &net.prelu3, None),
            ],
            dense: Dense::new(&[&net.dense4], slopes(&net.prelu4, 128)),
            heads: Dense::new(&[&net.dense5_1, &net.dense5_2], Activation::None),
        }
    }

    pub fn onet(net: &ONet) -> Self {
        CpuRefiner {
            side: super::onet::INPUT_SIDE,
            stages: vec![
                Stage::new(&net.conv1, &net.prelu1, Some(&net.pool1)),
                Stage::new(&net.conv2, &net.prelu2, Some(&net.pool2)),
                Stage::new(&net.conv3, &net.prelu3, Some(&net.pool3)),
                Stage::new(&net.conv4, &net.prelu4, None),
            ],
            dense: Dense::new(&[&net.dense5], slopes(&net.prelu5, 256)),
            heads: Dense::new(
                &[&net.dense6_1, &net.dense6_2, &net.dense6_3],
                Activation::None,
            ),
        }
    }

    /// `n` crops of the network's input side (HWC bytes, side by side) to one row each.
    ///
    /// One crop at a time: a matrix product's blocking, and with it the order of its sums,
    /// depends on the number of rows, so a batch would make a crop's answer depend (in its last
    /// bits) on which crops share its batch, and an index split into shards would differ from one
    /// run over the same photos. Each crop's products have rows enough to be efficient.
    pub fn forward(&self, crops: &[u8], n: usize) -> Rows {
        let mut ws = Work::default();
        let size = self.side * self.side * 3;
        let mut values = Vec::with_capacity(n * self.heads.outputs);
        for crop in crops.chunks_exact(size).take(n) {
            let maps = run_stages(&self.stages, input(crop, 1, self.side, self.side), &mut ws);
            let x = self.dense.run(&flatten(&maps), 1);
            ws.give(maps.data);
            values.extend(self.heads.run(&x, 1));
        }
        softmax_pairs(&mut values, self.heads.outputs);
        Rows {
            width: self.heads.outputs,
            values,
        }
    }
}
