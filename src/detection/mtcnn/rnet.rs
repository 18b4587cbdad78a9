//! MTCNN's R-Net as plain Burn modules: three convolutions with PReLU and ceil-mode max pooling, a
//! 128-unit dense layer, and two heads: face probability and box refinement. It re-scores P-Net's
//! proposals at 24 x 24 (RGB scaled as `(x - 127.5) / 128`).
//!
//! Layer names follow facenet-pytorch's state dict so its weights load by name (`weights.rs`).

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::nn::{Linear, LinearConfig, PRelu};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};

use super::layers::{conv, conv_prelu_pool, flatten, pool, prelu};

/// Side of the square input crop.
pub const INPUT_SIDE: usize = 24;

#[derive(Module, Debug)]
pub struct RNet {
    pub conv1: Conv2d,
    pub prelu1: PRelu,
    pub pool1: MaxPool2d,
    pub conv2: Conv2d,
    pub prelu2: PRelu,
    pub pool2: MaxPool2d,
    pub conv3: Conv2d,
    pub prelu3: PRelu,
    pub dense4: Linear,
    pub prelu4: PRelu,
    pub dense5_1: Linear,
    pub dense5_2: Linear,
}

/// R-Net's two outputs for a batch.
pub struct RNetOutput {
    /// N x 2: softmax over (not a face, face).
    pub probability: Tensor<2>,
    /// N x 4: box corrections (x1, y1, x2, y2) in units of the box size.
    pub regression: Tensor<2>,
}

impl RNet {
    /// The network with untrained weights; `weights` fills them.
    pub fn new(d: &Device) -> Self {
        RNet {
            conv1: conv(d, [3, 28], 3),
            prelu1: prelu(d, 28),
            pool1: pool(3),
            conv2: conv(d, [28, 48], 3),
            prelu2: prelu(d, 48),
            pool2: pool(3),
            conv3: conv(d, [48, 64], 2),
            prelu3: prelu(d, 64),
            dense4: LinearConfig::new(576, 128).init(d),
            prelu4: prelu(d, 128),
            dense5_1: LinearConfig::new(128, 2).init(d),
            dense5_2: LinearConfig::new(128, 4).init(d),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> RNetOutput {
        let x = conv_prelu_pool(&self.conv1, &self.prelu1, &self.pool1, x);
        let x = conv_prelu_pool(&self.conv2, &self.prelu2, &self.pool2, x);
        let x = self.prelu3.forward(self.conv3.forward(x));
        let x = self.prelu4.forward(self.dense4.forward(flatten(x)));
        RNetOutput {
            probability: softmax(self.dense5_1.forward(x.clone()), 1),
            regression: self.dense5_2.forward(x),
        }
    }
}
