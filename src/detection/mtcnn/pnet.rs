//! MTCNN's P-Net as plain Burn modules: a fully convolutional 12x12 face/no-face classifier that
//! slides over a whole image at stride 2 and regresses a box per cell.
//! Input is N x 3 x H x W RGB scaled as `(x - 127.5) / 128`; outputs are per-cell maps.
//!
//! Layer names follow facenet-pytorch's state dict so its weights load by name (`weights.rs`).

use burn::module::Module;
use burn::nn::pool::MaxPool2d;
use burn::nn::{PRelu, conv::Conv2d};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;

use super::layers::{conv, conv_prelu_pool, pool, prelu};

/// Side of the window one output cell looks at, and the distance between cells, in input pixels.
pub const CELL: f32 = 12.0;
pub const STRIDE: f32 = 2.0;

#[derive(Module, Debug)]
pub struct PNet {
    pub conv1: Conv2d,
    pub prelu1: PRelu,
    pub pool1: MaxPool2d,
    pub conv2: Conv2d,
    pub prelu2: PRelu,
    pub conv3: Conv2d,
    pub prelu3: PRelu,
    pub conv4_1: Conv2d,
    pub conv4_2: Conv2d,
}

/// P-Net's two maps for a batch, `oh x ow` cells each.
pub struct PNetOutput {
    /// N x 2 x oh x ow: softmax over (not a face, face).
    pub probability: Tensor<4>,
    /// N x 4 x oh x ow: box corrections (x1, y1, x2, y2) in units of the cell.
    pub regression: Tensor<4>,
}

impl PNet {
    /// The network with untrained weights; `weights` fills them.
    pub fn new(d: &Device) -> Self {
        PNet {
            conv1: conv(d, [3, 10], 3),
            prelu1: prelu(d, 10),
            pool1: pool(2),
            conv2: conv(d, [10, 16], 3),
            prelu2: prelu(d, 16),
            conv3: conv(d, [16, 32], 3),
            prelu3: prelu(d, 32),
            conv4_1: conv(d, [32, 2], 1),
            conv4_2: conv(d, [32, 4], 1),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> PNetOutput {
        let x = conv_prelu_pool(&self.conv1, &self.prelu1, &self.pool1, x);
        let x = self.prelu2.forward(self.conv2.forward(x));
        let x = self.prelu3.forward(self.conv3.forward(x));
        PNetOutput {
            probability: softmax(self.conv4_1.forward(x.clone()), 1),
            regression: self.conv4_2.forward(x),
        }
    }
}

/// Cells of P-Net's output map for an `h x w` input (0 when the input is under 12 px).
pub fn output_side(side: usize) -> usize {
    if side < 12 {
        0
    } else {
        (side - 2).div_ceil(2) - 4
    }
}
