//! Where MTCNN's weights come from: facenet-pytorch's `pnet.pt`, `rnet.pt` and `onet.pt` (PyTorch
//! state dicts, MIT), read by burn-store's PyTorch reader into each network by name. Every tensor
//! must land: a missing, unused or misshapen one is an error that names it. This module does not
//! fetch files (see `models`).

use std::path::Path;

use burn::store::{ApplyError, ModuleSnapshot, PytorchStore};
use burn::tensor::Device;

use super::onet::ONet;
use super::pnet::PNet;
use super::rnet::RNet;
use crate::models::WeightsError;

pub fn load_pnet(path: &Path, device: &Device) -> Result<PNet, WeightsError> {
    let mut net = PNet::new(device);
    load_state_dict(&mut net, path)?;
    Ok(net)
}

pub fn load_rnet(path: &Path, device: &Device) -> Result<RNet, WeightsError> {
    let mut net = RNet::new(device);
    load_state_dict(&mut net, path)?;
    Ok(net)
}

pub fn load_onet(path: &Path, device: &Device) -> Result<ONet, WeightsError> {
    let mut net = ONet::new(device);
    load_state_dict(&mut net, path)?;
    Ok(net)
}

/// Fill every tensor of an MTCNN network from a facenet-pytorch state dict, by name.
fn load_state_dict(net: &mut impl ModuleSnapshot, path: &Path) -> Result<(), WeightsError> {
    let shown = path.display().to_string();
    let mismatch = |name: &str, why: String| WeightsError::Mismatch {
        path: shown.clone(),
        name: name.to_string(),
        why,
    };
    // PyTorch calls a PReLU's slopes `weight`; Burn calls them `alpha`. Missing, unused and
    // misshapen tensors are read from the result (not a validation error), to name the first.
    let mut store = PytorchStore::from_file(path)
        .with_key_remapping(r"^(prelu\d)\.weight$", "$1.alpha")
        .allow_partial(true)
        .validate(false);
    let result = net
        .load_from(&mut store)
        .map_err(|e| WeightsError::Format {
            path: shown.clone(),
            why: e.to_string(),
        })?;
    if let Some(e) = result.errors.first() {
        return Err(match e {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => mismatch(
                path,
                format!(
                    "shape {:?}, expected {:?}",
                    found.as_slice(),
                    expected.as_slice()
                ),
            ),
            ApplyError::DTypeMismatch {
                path,
                expected,
                found,
            } => mismatch(path, format!("type {found:?}, expected {expected:?}")),
            ApplyError::AdapterError { path, message }
            | ApplyError::LoadError { path, message } => mismatch(path, message.clone()),
        });
    }
    if let Some((name, _)) = result.missing.first() {
        return Err(mismatch(name, "not in the file".into()));
    }
    if let Some(example) = result.unused.first() {
        return Err(WeightsError::Unused {
            path: shown,
            count: result.unused.len(),
            example: example.clone(),
        });
    }
    Ok(())
}
