//! Where MTCNN's weights come from: facenet-pytorch's `pnet.pt`, `rnet.pt` and `onet.pt` (PyTorch
//! state dicts, MIT), read by burn-store's PyTorch reader into each network by name. Every tensor
//! must land: a missing, unused or misshapen one is an error that names it. This module does not
//! fetch files (see `models`).

use std::path::Path;

use burn::store::{ModuleSnapshot, PytorchStore};
use burn::tensor::Device;

use super::onet::ONet;
use super::pnet::PNet;
use super::rnet::RNet;

/// A weights file that does not fit its network.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {why}")]
pub struct WeightsError {
    pub path: String,
    pub why: String,
}

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
    let err = |why: String| WeightsError {
        path: path.display().to_string(),
        why,
    };
    // PyTorch calls a PReLU's slopes `weight`; Burn calls them `alpha`.
    let mut store = PytorchStore::from_file(path)
        .with_key_remapping(r"^(prelu\d)\.weight$", "$1.alpha")
        .allow_partial(true);
    let result = net.load_from(&mut store).map_err(|e| err(e.to_string()))?;
    if let Some(e) = result.errors.first() {
        return Err(err(format!("{e:?}")));
    }
    if let Some((name, _)) = result.missing.first() {
        return Err(err(format!("no tensor for `{name}`")));
    }
    if let Some(name) = result.unused.first() {
        return Err(err(format!("tensor `{name}` is not used by the network")));
    }
    Ok(())
}
