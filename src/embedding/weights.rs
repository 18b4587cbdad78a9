//! Where FaceNet's weights come from: the frozen TensorFlow graph `graph_final.pb` (davidsandberg's
//! InceptionResnetV1, MIT), imported constant by constant into [`FaceNet`], and a Burn record of
//! the imported network cached next to it so later runs skip the import.
//!
//! Every constant is looked up by its TensorFlow name and checked against the Burn parameter's
//! shape, and each convolution's strides and padding against the module's; a mismatch fails with
//! the tensor's name. This module does not fetch files (see `models`).

use std::collections::HashSet;
use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor, TensorData};

use super::facenet::{BLOCK8_SCALE, BLOCK17_SCALE, BLOCK35_SCALE, FaceNet, Residual, Unit};
use super::graphdef::{Constant, Graph, GraphError};
use crate::models::WeightsError;

const SCOPE: &str = "InceptionResnetV1";

/// Import FaceNet from a frozen GraphDef file.
pub fn import_graph(path: &Path, device: &Device) -> Result<FaceNet, WeightsError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| WeightsError::Read {
        path: shown.clone(),
        why: e.to_string(),
    })?;
    let graph = Graph::decode(&bytes).map_err(|e| format_error(&shown, e))?;
    drop(bytes);
    let mut importer = Importer {
        graph: &graph,
        path: &shown,
        device,
        used: HashSet::new(),
    };
    let mut net = FaceNet::new(device);
    importer.network(&mut net)?;
    let unused: Vec<&str> = graph
        .names_of_op("Const")
        .filter(|n| n.ends_with("/weights") && !importer.used.contains(*n))
        .collect();
    if let Some(example) = unused.first() {
        return Err(WeightsError::Unused {
            path: shown,
            count: unused.len(),
            example: example.to_string(),
        });
    }
    Ok(net)
}

/// Save the imported network as a Burn record (burnpack, `.bpk`).
pub fn save_record(net: &FaceNet, path: &Path) -> Result<(), WeightsError> {
    net.clone()
        .save_file(path)
        .map_err(|e| WeightsError::Record {
            path: path.display().to_string(),
            why: e.to_string(),
        })
}

/// Load a network saved by [`save_record`].
pub fn load_record(path: &Path, device: &Device) -> Result<FaceNet, WeightsError> {
    FaceNet::new(device)
        .try_load_file(path)
        .map_err(|e| WeightsError::Record {
            path: path.display().to_string(),
            why: e.to_string(),
        })
}

/// A graph that does not hold what the importer looks for.
fn format_error(path: &str, e: GraphError) -> WeightsError {
    WeightsError::Format {
        path: path.to_string(),
        why: e.to_string(),
    }
}

struct Importer<'a> {
    graph: &'a Graph,
    path: &'a str,
    device: &'a Device,
    /// The `/weights` constants mapped so far.
    used: HashSet<String>,
}

impl Importer<'_> {
    fn network(&mut self, net: &mut FaceNet) -> Result<(), WeightsError> {
        let s = &mut net.stem;
        for (unit, name) in [
            (&mut s.conv_1a, "Conv2d_1a_3x3"),
            (&mut s.conv_2a, "Conv2d_2a_3x3"),
            (&mut s.conv_2b, "Conv2d_2b_3x3"),
            (&mut s.conv_3b, "Conv2d_3b_1x1"),
            (&mut s.conv_4a, "Conv2d_4a_3x3"),
            (&mut s.conv_4b, "Conv2d_4b_3x3"),
        ] {
            self.unit(unit, &format!("{SCOPE}/{name}"))?;
        }
        for (i, b) in net.block35.iter_mut().enumerate() {
            let prefix = format!("{SCOPE}/Repeat/block35_{}", i + 1);
            self.residual(
                b,
                &prefix,
                BLOCK35_SCALE,
                &[
                    &["Conv2d_1x1"],
                    &["Conv2d_0a_1x1", "Conv2d_0b_3x3"],
                    &["Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_0c_3x3"],
                ],
            )?;
        }
        self.branches(
            &mut net.mixed_6a.branches,
            &format!("{SCOPE}/Mixed_6a"),
            &[
                &["Conv2d_1a_3x3"],
                &["Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_1a_3x3"],
            ],
        )?;
        for (i, b) in net.block17.iter_mut().enumerate() {
            let prefix = format!("{SCOPE}/Repeat_1/block17_{}", i + 1);
            self.residual(
                b,
                &prefix,
                BLOCK17_SCALE,
                &[
                    &["Conv2d_1x1"],
                    &["Conv2d_0a_1x1", "Conv2d_0b_1x7", "Conv2d_0c_7x1"],
                ],
            )?;
        }
        self.branches(
            &mut net.mixed_7a.branches,
            &format!("{SCOPE}/Mixed_7a"),
            &[
                &["Conv2d_0a_1x1", "Conv2d_1a_3x3"],
                &["Conv2d_0a_1x1", "Conv2d_1a_3x3"],
                &["Conv2d_0a_1x1", "Conv2d_0b_3x3", "Conv2d_1a_3x3"],
            ],
        )?;
        const BLOCK8: &[&[&str]] = &[
            &["Conv2d_1x1"],
            &["Conv2d_0a_1x1", "Conv2d_0b_1x3", "Conv2d_0c_3x1"],
        ];
        for (i, b) in net.block8.iter_mut().enumerate() {
            let prefix = format!("{SCOPE}/Repeat_2/block8_{}", i + 1);
            self.residual(b, &prefix, BLOCK8_SCALE, BLOCK8)?;
        }
        self.residual(&mut net.last, &format!("{SCOPE}/Block8"), 1.0, BLOCK8)?;
        self.bottleneck(&mut net.bottleneck)
    }

    fn residual(
        &mut self,
        block: &mut Residual,
        prefix: &str,
        scale: f32,
        branches: &[&[&str]],
    ) -> Result<(), WeightsError> {
        self.branches(&mut block.branches, prefix, branches)?;
        self.unit(&mut block.up, &format!("{prefix}/Conv2d_1x1"))?;
        let name = format!("{prefix}/mul/x");
        let c = self.constant(&name)?;
        if c.values.len() != 1 || (c.values[0] - scale).abs() > 1e-6 {
            return Err(self.mismatch(
                &name,
                format!("residual scale {:?}, expected {scale}", c.values),
            ));
        }
        Ok(())
    }

    fn branches(
        &mut self,
        chains: &mut [Vec<Unit>],
        prefix: &str,
        names: &[&[&str]],
    ) -> Result<(), WeightsError> {
        if chains.len() != names.len() {
            return Err(self.mismatch(prefix, "branch count differs from the network".into()));
        }
        for (b, (chain, names)) in chains.iter_mut().zip(names).enumerate() {
            if chain.len() != names.len() {
                return Err(self.mismatch(prefix, format!("Branch_{b} length differs")));
            }
            for (unit, name) in chain.iter_mut().zip(names.iter()) {
                self.unit(unit, &format!("{prefix}/Branch_{b}/{name}"))?;
            }
        }
        Ok(())
    }

    /// One convolution: `{prefix}/weights` (HWIO) and its bias, either the folded batch norm
    /// offset `{prefix}/Conv2D_bn_offset` or a plain `{prefix}/biases`.
    fn unit(&mut self, unit: &mut Unit, prefix: &str) -> Result<(), WeightsError> {
        let conv: &mut Conv2d = &mut unit.conv;
        let [out_c, in_c, kh, kw] = conv.weight.dims();
        let wname = format!("{prefix}/weights");
        let w = self.constant(&wname)?;
        if w.shape != [kh, kw, in_c, out_c] {
            return Err(self.mismatch(
                &wname,
                format!(
                    "shape {:?}, the network needs {:?} (HWIO)",
                    w.shape,
                    [kh, kw, in_c, out_c]
                ),
            ));
        }
        self.check_geometry(conv, prefix)?;
        let hwio = Tensor::<4>::from_data(
            TensorData::new(w.values, [kh, kw, in_c, out_c]),
            self.device,
        );
        conv.weight = Param::from_tensor(hwio.permute([3, 2, 0, 1]));
        let bias_name = [
            format!("{prefix}/Conv2D_bn_offset"),
            format!("{prefix}/biases"),
        ]
        .into_iter()
        .find(|n| self.graph.node(n).is_ok())
        .ok_or_else(|| self.mismatch(prefix, "has neither a Conv2D_bn_offset nor biases".into()))?;
        let b = self.constant(&bias_name)?;
        if b.shape != [out_c] {
            return Err(self.mismatch(
                &bias_name,
                format!("shape {:?}, expected [{out_c}]", b.shape),
            ));
        }
        conv.bias = Some(Param::from_tensor(Tensor::<1>::from_data(
            TensorData::new(b.values, [out_c]),
            self.device,
        )));
        self.used.insert(wname);
        Ok(())
    }

    /// The graph's strides and padding must be the module's.
    fn check_geometry(&self, conv: &Conv2d, prefix: &str) -> Result<(), WeightsError> {
        let op = format!("{prefix}/Conv2D");
        let graph_err = |e| format_error(self.path, e);
        let strides = self.graph.int_list(&op, "strides").map_err(graph_err)?;
        let padding = self.graph.string(&op, "padding").map_err(graph_err)?;
        let want_strides = [1, conv.stride[0] as i64, conv.stride[1] as i64, 1];
        let want_padding = match conv.padding {
            burn::nn::PaddingConfig2d::Valid => "VALID",
            _ => "SAME",
        };
        let [_, _, kh, kw] = conv.weight.dims();
        if strides != want_strides || (padding != want_padding && !(kh == 1 && kw == 1)) {
            return Err(self.mismatch(
                &op,
                format!("strides {strides:?} padding {padding}, the network has {want_strides:?} {want_padding}"),
            ));
        }
        Ok(())
    }

    /// The bottleneck matrix with its batch norm (scale 1, offset beta) folded in.
    fn bottleneck(&mut self, linear: &mut Linear) -> Result<(), WeightsError> {
        let prefix = format!("{SCOPE}/Bottleneck");
        let [d_in, d_out] = linear.weight.dims();
        let wname = format!("{prefix}/weights");
        let w = self.constant(&wname)?;
        if w.shape != [d_in, d_out] {
            return Err(self.mismatch(
                &wname,
                format!("shape {:?}, expected {:?}", w.shape, [d_in, d_out]),
            ));
        }
        let bn = format!("{prefix}/BatchNorm");
        let vector = |this: &Self, name: &str| -> Result<Vec<f32>, WeightsError> {
            let full = format!("{bn}/{name}");
            let c = this.constant(&full)?;
            if c.shape != [d_out] {
                return Err(
                    this.mismatch(&full, format!("shape {:?}, expected [{d_out}]", c.shape))
                );
            }
            Ok(c.values)
        };
        let (gamma, beta) = (vector(self, "Const")?, vector(self, "beta")?);
        let (mean, var) = (
            vector(self, "moving_mean")?,
            vector(self, "moving_variance")?,
        );
        let eps = self
            .graph
            .float(&format!("{bn}/cond/FusedBatchNorm_1"), "epsilon")
            .map_err(|e| format_error(self.path, e))?;
        let k: Vec<f32> = (0..d_out)
            .map(|j| gamma[j] / (var[j] + eps).sqrt())
            .collect();
        let mut folded = w.values;
        for row in folded.chunks_exact_mut(d_out) {
            for (v, k) in row.iter_mut().zip(&k) {
                *v *= k;
            }
        }
        let bias: Vec<f32> = (0..d_out).map(|j| beta[j] - mean[j] * k[j]).collect();
        linear.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(folded, [d_in, d_out]),
            self.device,
        ));
        linear.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(bias, [d_out]),
            self.device,
        )));
        self.used.insert(wname);
        Ok(())
    }

    fn constant(&self, name: &str) -> Result<Constant, WeightsError> {
        self.graph
            .constant(name)
            .map_err(|e| format_error(self.path, e))
    }

    fn mismatch(&self, name: &str, why: String) -> WeightsError {
        WeightsError::Mismatch {
            path: self.path.to_string(),
            name: name.to_string(),
            why,
        }
    }
}
