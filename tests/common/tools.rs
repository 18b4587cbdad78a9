//! The real tools the tests drive, found or failed: a GPU adapter (Mesa's lavapipe on a machine
//! without a GPU), Chromium, ExifTool and Slurm. A test never skips: when its tool is missing it
//! fails, and the message names the Debian package to install (`.ci/run` installs them all).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use visage::gpu::Gpu;

/// The Debian package that gives wgpu a Vulkan adapter on the CPU.
pub const GPU_PACKAGE: &str = "mesa-vulkan-drivers";
/// The Debian packages of a one-node Slurm cluster (controller, node daemon, commands, munge).
pub const SLURM_PACKAGES: &str = "slurmctld slurmd slurm-client munge";

/// The failure of a test whose tool is missing: what it needs, why it is not there, and what to
/// install.
fn missing(what: &str, why: &str, packages: &str) -> ! {
    panic!(
        "this test needs {what}: {why}. Install it: apt-get install {packages} \
         (.ci/run installs every tool the tests need)"
    )
}

/// Where `program` is: on the PATH, then in /usr/sbin and /sbin (where Debian puts daemons).
pub fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Each of `programs`, found; if any is missing, the test fails naming them and `packages`.
pub fn require(programs: &[&str], packages: &str) -> Vec<PathBuf> {
    let found: Vec<Option<PathBuf>> = programs.iter().map(|p| find(p)).collect();
    let lacking: Vec<&str> = programs
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(p, _)| *p)
        .collect();
    if !lacking.is_empty() {
        missing(
            &lacking.join(", "),
            "not found on the PATH, in /usr/sbin or in /sbin",
            packages,
        );
    }
    found.into_iter().flatten().collect()
}

/// The browser: `$VISAGE_CHROMIUM`, else `chromium` or `chromium-browser` on the PATH.
pub fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("VISAGE_CHROMIUM") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "VISAGE_CHROMIUM={}: no such file", p.display());
        return p;
    }
    find("chromium")
        .or_else(|| find("chromium-browser"))
        .unwrap_or_else(|| {
            missing(
                "Chromium",
                "neither chromium nor chromium-browser is on the PATH, and VISAGE_CHROMIUM is unset",
                "chromium",
            )
        })
}

/// ExifTool, the reader of XMP the tests check visage's sidecars with.
pub fn exiftool() -> PathBuf {
    require(&["exiftool"], "libimage-exiftool-perl").remove(0)
}

/// The GPU, shared by the tests of one binary. No adapter fails the test.
pub fn gpu() -> Arc<Gpu> {
    static GPU: OnceLock<Result<Arc<Gpu>, String>> = OnceLock::new();
    match GPU.get_or_init(|| Gpu::open().map(Arc::new).map_err(|e| e.to_string())) {
        Ok(gpu) => Arc::clone(gpu),
        Err(e) => missing("a GPU adapter", e, GPU_PACKAGE),
    }
}

/// Burn's wgpu device on the adapter visage picks; no adapter fails the test, as in [`gpu`].
pub fn burn_gpu() -> visage::device::InferenceDevice {
    gpu();
    visage::device::InferenceDevice::gpu().expect("an adapter was found just before")
}
