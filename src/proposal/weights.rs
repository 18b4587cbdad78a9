//! Where P-Net's and R-Net's weights come from: facenet-pytorch's `pnet.pt` and `rnet.pt`
//! (PyTorch state dicts, MIT), read by name like O-Net's. This module does not fetch files (see
//! `models`).

use std::path::Path;

use burn::tensor::Device;

use super::pnet::PNet;
use super::rnet::RNet;
use crate::verification::weights::{WeightsError, load_state_dict};

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
