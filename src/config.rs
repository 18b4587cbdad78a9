//! Settings: one value, read once from flags and `VISAGE_*` environment variables, validated
//! against PhotoPrism's ranges, and passed down to every stage. Nothing here is global state.

use clap::{Args, ValueEnum};

/// Where compute kernels run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DeviceChoice {
    /// A hardware GPU when wgpu finds one, else the CPU (a software adapter such as lavapipe is
    /// slower than the CPU paths, so it is never chosen here).
    #[default]
    Auto,
    /// A GPU adapter; fail if there is none.
    Gpu,
    /// The CPU twins only.
    Cpu,
}

/// The face settings of PhotoPrism, with its defaults and ranges, plus visage's own.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct Settings {
    /// Minimum face size in pixels of the detection image (longest side 1280)
    #[arg(long, env = "VISAGE_FACE_SIZE", default_value_t = 50, value_name = "PX",
          value_parser = in_range::<u32>(20.0, 10000.0))]
    pub face_size: u32,

    /// Minimum face quality score: the score `visage faces` shows (PICO's summed cascade score,
    /// often over 100; see `visage faces --help`)
    #[arg(long, env = "VISAGE_FACE_SCORE", default_value_t = 9.0, value_name = "SCORE",
          value_parser = in_range::<f32>(1.0, 100.0))]
    pub face_score: f32,

    /// Face area overlap threshold in percent
    #[arg(long, env = "VISAGE_FACE_OVERLAP", default_value_t = 42, value_name = "PERCENT",
          value_parser = in_range::<u32>(1.0, 100.0))]
    pub face_overlap: u32,

    /// Minimum face size to be clustered automatically
    #[arg(long, env = "VISAGE_FACE_CLUSTER_SIZE", default_value_t = 80, value_name = "PX",
          value_parser = in_range::<u32>(20.0, 10000.0))]
    pub face_cluster_size: u32,

    /// Minimum quality score (as `visage faces` shows it) to be clustered automatically
    #[arg(long, env = "VISAGE_FACE_CLUSTER_SCORE", default_value_t = 15, value_name = "SCORE",
          value_parser = in_range::<u32>(1.0, 100.0))]
    pub face_cluster_score: u32,

    /// Number of faces forming a cluster core
    #[arg(long, env = "VISAGE_FACE_CLUSTER_CORE", default_value_t = 4, value_name = "N",
          value_parser = in_range::<u32>(1.0, 100.0))]
    pub face_cluster_core: u32,

    /// Similarity distance of faces forming a cluster core
    #[arg(long, env = "VISAGE_FACE_CLUSTER_DIST", default_value_t = 0.64, value_name = "DIST",
          value_parser = in_range::<f32>(0.1, 1.5))]
    pub face_cluster_dist: f32,

    /// Similarity offset for matching faces with existing clusters
    #[arg(long, env = "VISAGE_FACE_MATCH_DIST", default_value_t = 0.46, value_name = "DIST",
          value_parser = in_range::<f32>(0.1, 1.5))]
    pub face_match_dist: f32,

    /// Head tilts PICO scans, in degrees, comma-separated (each -45 to 45); 0 alone is upright only
    /// (MTCNN's proposals find tilted heads too)
    #[arg(long, env = "VISAGE_FACE_ANGLES", value_delimiter = ',', value_name = "DEG,...",
          default_values_t = DEFAULT_ANGLES, allow_negative_numbers = true,
          value_parser = in_range::<f32>(-45.0, 45.0))]
    pub face_angles: Vec<f32>,

    /// How far PICO's windows may reach past the photo's border, in percent of the window (0-45;
    /// 0 keeps every window inside, as Pigo does)
    #[arg(long, env = "VISAGE_FACE_BORDER", default_value_t = DEFAULT_BORDER, value_name = "PERCENT",
          value_parser = in_range::<u32>(0.0, 45.0))]
    pub face_border: u32,

    /// What PICO's windows read past the border
    #[arg(long, env = "VISAGE_FACE_PADDING", value_enum, default_value_t)]
    pub face_padding: PaddingChoice,

    /// Minimum O-Net face probability for a detection to count as a face (0 keeps all)
    #[arg(long, env = "VISAGE_FACE_VERIFY", default_value_t = DEFAULT_VERIFY, value_name = "P",
          value_parser = in_range::<f32>(0.0, 1.0))]
    pub face_verify: f32,

    /// How a face is cut for FaceNet: its O-Net box with a margin, or aligned on its landmarks
    #[arg(long, env = "VISAGE_FACE_CROP", value_enum, default_value_t)]
    pub face_crop: CropMethod,

    /// Faces PICO cannot reach (cut by the frame, filling it, turned): MTCNN's P-Net and R-Net
    /// propose extra candidates that O-Net verifies
    #[arg(long, env = "VISAGE_FACE_PROPOSALS", value_enum, default_value_t)]
    pub face_proposals: Proposals,

    /// Where to run compute kernels
    #[arg(long, env = "VISAGE_DEVICE", value_enum, default_value_t)]
    pub device: DeviceChoice,

    /// How a full re-clustering finds the close pairs of faces
    #[arg(long, env = "VISAGE_GRAPH", value_enum, default_value_t)]
    pub graph: GraphChoice,

    /// FaceNet's arithmetic on the CPU
    #[arg(long, env = "VISAGE_FACENET_PRECISION", value_enum, default_value_t)]
    pub facenet_precision: Precision,

    /// The libjpeg that decodes JPEGs (both give the same pixels)
    #[arg(long, env = "VISAGE_LIBJPEG", value_enum, default_value_t)]
    pub libjpeg: LibjpegChoice,

    /// Folder for model files [default: $XDG_CACHE_HOME/visage/models]
    #[arg(long, env = "VISAGE_MODELS", value_name = "DIR")]
    pub models: Option<std::path::PathBuf>,
}

/// How a full re-clustering finds the pairs of faces closer than the cluster distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Serialize)]
pub enum GraphChoice {
    /// Every pair up to 50,000 faces (and always on a GPU); above that on the CPU, through a
    /// partition that finds at least 99.9% of them and never a wrong one (BENCHMARKS.md)
    #[default]
    Auto,
    /// Every pair, whatever the number of faces (time grows with its square)
    Exact,
    /// Through the partition on the CPU, whatever the number of faces (every pair on a GPU)
    Approximate,
}

/// The arithmetic of FaceNet's matrix products on the CPU (a GPU runs them in f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Serialize)]
pub enum Precision {
    /// bf16 where the CPU has AVX-512 BF16 (twice the multiply-adds of f32; vectors within about
    /// 0.001 of f32's, BENCHMARKS.md), f32 elsewhere
    #[default]
    Auto,
    /// bf16 operands with f32 sums on any CPU: without AVX-512 BF16 the same sums by f32
    /// multiply-adds, slower than f32 there (for a library indexed on machines of both kinds)
    Bf16,
    /// f32 throughout
    F32,
}

impl Precision {
    /// What this one means on this CPU: [`Precision::Bf16`] or [`Precision::F32`].
    pub fn on_this_cpu(self) -> Precision {
        match self {
            Precision::Auto if crate::matmul::bf16::available() => Precision::Bf16,
            Precision::Auto => Precision::F32,
            p => p,
        }
    }
}

/// The libjpeg JPEGs are decoded with (see `photo::Libjpeg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Serialize)]
pub enum LibjpegChoice {
    /// The system's libjpeg-turbo (`libjpeg.so.62`, with SIMD) where it loads and takes visage's
    /// structures, else the one built in
    #[default]
    Auto,
    /// The one built into visage (libjpeg-turbo's C code, without SIMD)
    BuiltIn,
}

/// How faces are cut for the embedding network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Serialize)]
pub enum CropMethod {
    /// The O-Net box grown by 20%, resized to 160x160 (as this FaceNet was trained)
    #[default]
    Box,
    /// A similarity transform that puts the 5 landmarks on a template
    Landmarks,
}

/// What PICO's windows read past the photo's border (see BENCHMARKS.md for what each finds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Serialize)]
pub enum PaddingChoice {
    /// The nearest border pixel
    #[default]
    Replicate,
    /// The photo mirrored at its border
    Mirror,
    /// Mid grey (128)
    Grey,
    /// Black
    Black,
}

/// Default reach of PICO's windows past the border, in percent of the window.
pub const DEFAULT_BORDER: u32 = 25;

/// Whether MTCNN's P-Net and R-Net add face candidates to PICO's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default, serde::Serialize)]
pub enum Proposals {
    /// In every photo
    #[default]
    On,
    /// PICO's candidates only
    Off,
}

/// Default minimum O-Net probability (see BENCHMARKS.md for how it was chosen).
pub const DEFAULT_VERIFY: f32 = 0.8;

/// Tilts PICO scans by default: upright only, since MTCNN's proposals find tilted heads for less
/// (see BENCHMARKS.md for what each set finds and costs).
pub const DEFAULT_ANGLES: [f32; 1] = [0.0];

impl Default for Settings {
    /// The defaults the flags declare above (and `--help` shows), read from them: they are written
    /// once. The `VISAGE_*` variables are a user's choices, not defaults, so they are not read here.
    fn default() -> Self {
        use clap::{Command, FromArgMatches};
        let flags = Settings::augment_args(Command::new("visage")).mut_args(|a| a.env(None));
        flags
            .try_get_matches_from(["visage"])
            .and_then(|m| Settings::from_arg_matches(&m))
            .expect("every default is in its flag's range")
    }
}

impl Settings {
    /// Whether a face of this size (pixels) and detection score may be clustered automatically
    /// (take part in DBSCAN): PhotoPrism's `face-cluster-size` and `face-cluster-score`.
    pub fn eligible(&self, size: u32, score: f32) -> bool {
        size >= self.face_cluster_size && score >= self.face_cluster_score as f32
    }
}

/// A clap value parser that accepts numbers in `[lo, hi]` and names the range otherwise.
fn in_range<T>(lo: f64, hi: f64) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync
where
    T: std::str::FromStr + Into<f64> + Copy,
{
    move |s: &str| {
        let v: T = s
            .trim()
            .parse()
            .map_err(|_| format!("not a number (allowed: {lo} to {hi})"))?;
        let f: f64 = v.into();
        if f.is_finite() && f >= lo && f <= hi {
            Ok(v)
        } else {
            Err(format!("out of range (allowed: {lo} to {hi})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    #[test]
    fn defaults_are_photoprisms() {
        let d = Settings::default();
        assert_eq!(
            (d.face_size, d.face_score, d.face_overlap),
            (50, 9.0, 42),
            "PhotoPrism's detection defaults"
        );
        assert_eq!(
            (
                d.face_cluster_size,
                d.face_cluster_score,
                d.face_cluster_core
            ),
            (80, 15, 4),
            "PhotoPrism's cluster gates and core"
        );
        assert_eq!((d.face_cluster_dist, d.face_match_dist), (0.64, 0.46));
        assert_eq!(d.face_angles, DEFAULT_ANGLES);
        assert_eq!(d.face_verify, DEFAULT_VERIFY);
        assert_eq!(d.face_border, DEFAULT_BORDER);
        assert_eq!(d.device, DeviceChoice::Auto);
        assert_eq!(d.facenet_precision, Precision::Auto);
        assert_eq!(d.libjpeg, LibjpegChoice::Auto);
        assert_eq!(d.models, None);
        let cli = Cli::try_parse_from(["visage"]).unwrap();
        // The model folder has no fixed default (it follows XDG_CACHE_HOME, or VISAGE_MODELS as
        // CI sets it); every face setting must be PhotoPrism's.
        let models = cli.settings.models.clone();
        assert_eq!(
            cli.settings,
            Settings {
                models,
                ..Settings::default()
            }
        );
    }

    #[test]
    fn out_of_range_values_name_the_setting_and_range() {
        let err = Cli::try_parse_from(["visage", "--face-size", "5"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("--face-size") && err.contains("20 to 10000"),
            "{err}"
        );
        let err = Cli::try_parse_from(["visage", "--face-cluster-dist", "2"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("0.1 to 1.5"), "{err}");
        let err = Cli::try_parse_from(["visage", "--face-angles", "0,60"])
            .err()
            .unwrap();
        assert!(err.to_string().contains("--face-angles"), "{err}");
        let ok = Cli::try_parse_from(["visage", "--face-angles", "0,-15,15", "--face-score", "20"])
            .unwrap();
        assert_eq!(ok.settings.face_angles, vec![0.0, -15.0, 15.0]);
        assert_eq!(ok.settings.face_score, 20.0);
    }
}
