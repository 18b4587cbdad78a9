//! The layers P-Net, R-Net and O-Net are built from, as resnet-burn's `block.rs` is shared by its
//! networks: `k x k` convolutions, PReLU, ceil-mode max pooling, the Caffe flattening before the
//! dense layers, MTCNN's input scaling and batching, and reading a result tensor back.
//!
//! Building blocks only: no network's shape and no weights live here.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{PRelu, PReluConfig};
use burn::tensor::{Device, Tensor, TensorData};

use crate::alignment;

/// A `k x k` convolution, stride 1, no padding (as every MTCNN network has them).
pub fn conv(d: &Device, c: [usize; 2], k: usize) -> Conv2d {
    Conv2dConfig::new(c, [k, k]).init(d)
}

/// A PReLU with one slope per channel.
pub fn prelu(d: &Device, n: usize) -> PRelu {
    PReluConfig::new().with_num_parameters(n).init(d)
}

/// `k x k` max pooling at stride 2, rounding the output size up (Caffe's pooling).
pub fn pool(k: usize) -> MaxPool2d {
    MaxPool2dConfig::new([k, k])
        .with_strides([2, 2])
        .with_ceil_mode(true)
        .init()
}

/// Convolution, PReLU, then pooling: the step every MTCNN network repeats.
pub fn conv_prelu_pool(conv: &Conv2d, prelu: &PRelu, pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    pool.forward(prelu.forward(conv.forward(x)))
}

/// N x C x H x W maps as the rows the dense layers take. The weights come from Caffe, which
/// flattened width-major: N x W x H x C.
pub fn flatten(x: Tensor<4>) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    x.permute([0, 3, 2, 1]).reshape([n, w * h * c])
}

/// MTCNN's input scaling of an RGB byte.
pub fn normalise(v: f32) -> f32 {
    (v - 127.5) / 128.0
}

/// Square crops of `side` px (HWC bytes) as one scaled N x 3 x side x side batch on `device`.
pub fn batch(crops: &[Vec<u8>], side: usize, device: &Device) -> Tensor<4> {
    let mut input = vec![0f32; crops.len() * 3 * side * side];
    for (pixels, dst) in crops.iter().zip(input.chunks_exact_mut(3 * side * side)) {
        alignment::to_chw(pixels, dst, normalise);
    }
    Tensor::from_data(TensorData::new(input, [crops.len(), 3, side, side]), device)
}

/// A tensor's values (every MTCNN network computes in f32).
pub use crate::cpu_conv::floats;
