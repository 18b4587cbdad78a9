//! FaceNet's InceptionResnetV1 as plain Burn modules: a convolution stem, 5 x block35,
//! reduction A, 10 x block17, reduction B, 5 x block8 and a final block8, average pooling, a
//! 1792 -> 512 bottleneck and L2 normalisation. Input is N x 3 x 160 x 160 standardised RGB.
//!
//! Batch normalisation is folded into the convolutions (the frozen graph ships it folded), so
//! every convolution has a bias. This file holds the network only: where the weights come from is
//! `weights.rs`, how a face becomes an input tensor is `mod.rs`.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// Side of the square RGB input.
pub const INPUT_SIDE: usize = 160;
/// Length of an embedding.
pub const EMBEDDING_DIM: usize = 512;

/// Residual scales of the three block kinds (checked against the graph on import).
pub const BLOCK35_SCALE: f32 = 0.17;
pub const BLOCK17_SCALE: f32 = 0.10;
pub const BLOCK8_SCALE: f32 = 0.20;

/// How a convolution pads: `Valid` adds nothing, `Same` keeps the size at stride 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pad {
    Valid,
    Same,
}

/// A convolution with its folded batch norm as bias; `relu` says whether ReLU follows.
#[derive(Module, Debug)]
pub struct Unit {
    pub conv: Conv2d,
    pub relu: bool,
}

impl Unit {
    pub fn new(
        device: &Device,
        channels: [usize; 2],
        kernel: [usize; 2],
        stride: usize,
        pad: Pad,
    ) -> Self {
        Self::with_relu(device, channels, kernel, stride, pad, true)
    }

    fn with_relu(
        device: &Device,
        channels: [usize; 2],
        kernel: [usize; 2],
        stride: usize,
        pad: Pad,
        relu: bool,
    ) -> Self {
        let padding = match pad {
            Pad::Valid => PaddingConfig2d::Valid,
            Pad::Same => {
                let (ph, pw) = ((kernel[0] - 1) / 2, (kernel[1] - 1) / 2);
                PaddingConfig2d::Explicit(ph, pw, ph, pw)
            }
        };
        let conv = Conv2dConfig::new(channels, kernel)
            .with_stride([stride, stride])
            .with_padding(padding)
            .with_bias(true)
            .init(device);
        Unit { conv, relu }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv.forward(x);
        if self.relu { relu(y) } else { y }
    }
}

fn unit(device: &Device, c: [usize; 2], k: [usize; 2]) -> Unit {
    Unit::new(device, c, k, 1, Pad::Same)
}

fn pool_3x3_s2() -> MaxPool2d {
    MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init()
}

/// Stem: 160x160x3 -> 17x17x256.
#[derive(Module, Debug)]
pub struct Stem {
    pub conv_1a: Unit,
    pub conv_2a: Unit,
    pub conv_2b: Unit,
    pub pool_3a: MaxPool2d,
    pub conv_3b: Unit,
    pub conv_4a: Unit,
    pub conv_4b: Unit,
}

impl Stem {
    fn new(d: &Device) -> Self {
        Stem {
            conv_1a: Unit::new(d, [3, 32], [3, 3], 2, Pad::Valid),
            conv_2a: Unit::new(d, [32, 32], [3, 3], 1, Pad::Valid),
            conv_2b: Unit::new(d, [32, 64], [3, 3], 1, Pad::Same),
            pool_3a: pool_3x3_s2(),
            conv_3b: Unit::new(d, [64, 80], [1, 1], 1, Pad::Valid),
            conv_4a: Unit::new(d, [80, 192], [3, 3], 1, Pad::Valid),
            conv_4b: Unit::new(d, [192, 256], [3, 3], 2, Pad::Valid),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self
            .conv_2b
            .forward(self.conv_2a.forward(self.conv_1a.forward(x)));
        let x = self.conv_3b.forward(self.pool_3a.forward(x));
        self.conv_4b.forward(self.conv_4a.forward(x))
    }
}

/// A residual Inception block: parallel branches (each a chain of units), concatenated,
/// projected back by a 1x1 convolution, scaled and added to the input.
#[derive(Module, Debug)]
pub struct Residual {
    pub branches: Vec<Vec<Unit>>,
    pub up: Unit,
    pub scale: f32,
    pub relu: bool,
}

impl Residual {
    /// block35 (17x17x256): 1x1 | 1x1, 3x3 | 1x1, 3x3, 3x3.
    pub fn block35(d: &Device) -> Self {
        Residual {
            branches: vec![
                vec![unit(d, [256, 32], [1, 1])],
                vec![unit(d, [256, 32], [1, 1]), unit(d, [32, 32], [3, 3])],
                vec![
                    unit(d, [256, 32], [1, 1]),
                    unit(d, [32, 32], [3, 3]),
                    unit(d, [32, 32], [3, 3]),
                ],
            ],
            up: Unit::with_relu(d, [96, 256], [1, 1], 1, Pad::Same, false),
            scale: BLOCK35_SCALE,
            relu: true,
        }
    }

    /// block17 (8x8x896): 1x1 | 1x1, 1x7, 7x1.
    pub fn block17(d: &Device) -> Self {
        Residual {
            branches: vec![
                vec![unit(d, [896, 128], [1, 1])],
                vec![
                    unit(d, [896, 128], [1, 1]),
                    unit(d, [128, 128], [1, 7]),
                    unit(d, [128, 128], [7, 1]),
                ],
            ],
            up: Unit::with_relu(d, [256, 896], [1, 1], 1, Pad::Same, false),
            scale: BLOCK17_SCALE,
            relu: true,
        }
    }

    /// block8 (3x3x1792): 1x1 | 1x1, 1x3, 3x1. The last one has scale 1 and no ReLU.
    pub fn block8(d: &Device, last: bool) -> Self {
        Residual {
            branches: vec![
                vec![unit(d, [1792, 192], [1, 1])],
                vec![
                    unit(d, [1792, 192], [1, 1]),
                    unit(d, [192, 192], [1, 3]),
                    unit(d, [192, 192], [3, 1]),
                ],
            ],
            up: Unit::with_relu(d, [384, 1792], [1, 1], 1, Pad::Same, false),
            scale: if last { 1.0 } else { BLOCK8_SCALE },
            relu: !last,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mixed = Tensor::cat(
            self.branches
                .iter()
                .map(|chain| chain.iter().fold(x.clone(), |y, u| u.forward(y)))
                .collect(),
            1,
        );
        let y = x + self.up.forward(mixed).mul_scalar(self.scale);
        if self.relu { relu(y) } else { y }
    }
}

/// A reduction block: strided branches and a max pool, concatenated (Mixed_6a, Mixed_7a).
#[derive(Module, Debug)]
pub struct Reduction {
    pub branches: Vec<Vec<Unit>>,
    pub pool: MaxPool2d,
}

impl Reduction {
    /// Mixed_6a: 17x17x256 -> 8x8x896.
    pub fn a(d: &Device) -> Self {
        Reduction {
            branches: vec![
                vec![Unit::new(d, [256, 384], [3, 3], 2, Pad::Valid)],
                vec![
                    unit(d, [256, 192], [1, 1]),
                    unit(d, [192, 192], [3, 3]),
                    Unit::new(d, [192, 256], [3, 3], 2, Pad::Valid),
                ],
            ],
            pool: pool_3x3_s2(),
        }
    }

    /// Mixed_7a: 8x8x896 -> 3x3x1792.
    pub fn b(d: &Device) -> Self {
        Reduction {
            branches: vec![
                vec![
                    unit(d, [896, 256], [1, 1]),
                    Unit::new(d, [256, 384], [3, 3], 2, Pad::Valid),
                ],
                vec![
                    unit(d, [896, 256], [1, 1]),
                    Unit::new(d, [256, 256], [3, 3], 2, Pad::Valid),
                ],
                vec![
                    unit(d, [896, 256], [1, 1]),
                    unit(d, [256, 256], [3, 3]),
                    Unit::new(d, [256, 256], [3, 3], 2, Pad::Valid),
                ],
            ],
            pool: pool_3x3_s2(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut parts: Vec<Tensor<4>> = self
            .branches
            .iter()
            .map(|chain| chain.iter().fold(x.clone(), |y, u| u.forward(y)))
            .collect();
        parts.push(self.pool.forward(x));
        Tensor::cat(parts, 1)
    }
}

/// InceptionResnetV1, as trained by FaceNet (davidsandberg), without its training-only heads.
#[derive(Module, Debug)]
pub struct FaceNet {
    pub stem: Stem,
    pub block35: Vec<Residual>,
    pub mixed_6a: Reduction,
    pub block17: Vec<Residual>,
    pub mixed_7a: Reduction,
    pub block8: Vec<Residual>,
    pub last: Residual,
    /// The bottleneck with its batch norm folded in.
    pub bottleneck: Linear,
}

impl FaceNet {
    /// The network with untrained weights; `weights` fills them.
    pub fn new(device: &Device) -> Self {
        FaceNet {
            stem: Stem::new(device),
            block35: (0..5).map(|_| Residual::block35(device)).collect(),
            mixed_6a: Reduction::a(device),
            block17: (0..10).map(|_| Residual::block17(device)).collect(),
            mixed_7a: Reduction::b(device),
            block8: (0..5).map(|_| Residual::block8(device, false)).collect(),
            last: Residual::block8(device, true),
            bottleneck: LinearConfig::new(1792, EMBEDDING_DIM)
                .with_bias(true)
                .init(device),
        }
    }

    /// N x 3 x 160 x 160 standardised RGB -> N x 512 unit vectors.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.forward(x);
        for b in &self.block35 {
            x = b.forward(x);
        }
        x = self.mixed_6a.forward(x);
        for b in &self.block17 {
            x = b.forward(x);
        }
        x = self.mixed_7a.forward(x);
        for b in &self.block8 {
            x = b.forward(x);
        }
        x = self.last.forward(x);
        let [n, c, h, w] = x.dims();
        let pooled: Tensor<2> = x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]);
        l2_normalise(self.bottleneck.forward(pooled))
    }
}

/// Rows scaled to unit length, as the graph's `embeddings` node does (`x * rsqrt(max(|x|^2, 1e-10))`).
pub fn l2_normalise(x: Tensor<2>) -> Tensor<2> {
    let norm = x.clone().powi_scalar(2).sum_dim(1).clamp_min(1e-10).sqrt();
    x / norm
}
