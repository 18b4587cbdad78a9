//! MTCNN's O-Net as plain Burn modules: four convolutions with PReLU and ceil-mode max pooling, a
//! 256-unit dense layer, and three heads: face probability, box refinement and 5 landmarks.
//! Input is N x 3 x 48 x 48 RGB scaled as `(x - 127.5) / 128`.
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
pub const INPUT_SIDE: usize = 48;

#[derive(Module, Debug)]
pub struct ONet {
    pub conv1: Conv2d,
    pub prelu1: PRelu,
    pub pool1: MaxPool2d,
    pub conv2: Conv2d,
    pub prelu2: PRelu,
    pub pool2: MaxPool2d,
    pub conv3: Conv2d,
    pub prelu3: PRelu,
    pub pool3: MaxPool2d,
    pub conv4: Conv2d,
    pub prelu4: PRelu,
    pub dense5: Linear,
    pub prelu5: PRelu,
    pub dense6_1: Linear,
    pub dense6_2: Linear,
    pub dense6_3: Linear,
}

/// O-Net's three outputs for a batch.
pub struct ONetOutput {
    /// N x 2: softmax over (not a face, face).
    pub probability: Tensor<2>,
    /// N x 4: box corrections (x1, y1, x2, y2) in units of the box size.
    pub regression: Tensor<2>,
    /// N x 10: landmark x0..x4 then y0..y4, as fractions of the box.
    pub landmarks: Tensor<2>,
}

impl ONet {
    /// The network with untrained weights; `weights` fills them.
    pub fn new(d: &Device) -> Self {
        ONet {
            conv1: conv(d, [3, 32], 3),
            prelu1: prelu(d, 32),
            pool1: pool(3),
            conv2: conv(d, [32, 64], 3),
            prelu2: prelu(d, 64),
            pool2: pool(3),
            conv3: conv(d, [64, 64], 3),
            prelu3: prelu(d, 64),
            pool3: pool(2),
            conv4: conv(d, [64, 128], 2),
            prelu4: prelu(d, 128),
            dense5: LinearConfig::new(1152, 256).init(d),
            prelu5: prelu(d, 256),
            dense6_1: LinearConfig::new(256, 2).init(d),
            dense6_2: LinearConfig::new(256, 4).init(d),
            dense6_3: LinearConfig::new(256, 10).init(d),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> ONetOutput {
        let x = conv_prelu_pool(&self.conv1, &self.prelu1, &self.pool1, x);
        let x = conv_prelu_pool(&self.conv2, &self.prelu2, &self.pool2, x);
        let x = conv_prelu_pool(&self.conv3, &self.prelu3, &self.pool3, x);
        let x = self.prelu4.forward(self.conv4.forward(x));
        let x = self.prelu5.forward(self.dense5.forward(flatten(x)));
        ONetOutput {
            probability: softmax(self.dense6_1.forward(x.clone()), 1),
            regression: self.dense6_2.forward(x.clone()),
            landmarks: self.dense6_3.forward(x),
        }
    }
}
