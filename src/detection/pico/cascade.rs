//! The PICO cascade: a list of depth-d binary decision trees over pixel-intensity comparisons.
//!
//! Parses the tree-list file format that Pigo reads (`models/facefinder`) into flat arrays that the CPU
//! scanner and the WGSL shader index the same way. It only holds and validates the model; it must not
//! know about images, windows or devices.

use thiserror::Error;

/// The face cascade shipped with visage: Pigo's `facefinder`, byte for byte (see `models/README.md` for
/// where it comes from).
pub const FACEFINDER: &[u8] = include_bytes!("../../../models/facefinder");
/// Where [`FACEFINDER`] comes from in the source tree (it is built into the binary), for error messages.
pub const FACEFINDER_FILE: &str = "models/facefinder";
/// sha256 of [`FACEFINDER`] (Pigo's and PhotoPrism's file), checked on load.
pub const FACEFINDER_SHA256: &str =
    "d8014993e7298c7b1865d1f8b855d6dbf4ec5c808bf879e2091ab6837abf90cd";
/// The threshold of every tree that does not close a stage in [`FACEFINDER`]: a window whose running sum
/// falls to it is rejected mid-stage, as Pigo's `classifyRegion` does.
pub const FACEFINDER_MID_STAGE_THRESHOLD: f32 = -15.0;

/// Largest tree depth accepted: 2^depth leaves per tree; real cascades use 5 or 6.
const MAX_DEPTH: u32 = 12;
/// Largest tree count accepted; the facefinder has 468.
const MAX_TREES: u32 = 1 << 16;

#[derive(Debug, Error, PartialEq)]
pub enum CascadeError {
    #[error("cascade is truncated: {needed} bytes needed for {what}, {available} available")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("cascade has an unsupported tree depth {0} (1 to {MAX_DEPTH})")]
    BadDepth(i32),
    #[error("cascade has an unsupported tree count {0} (1 to {MAX_TREES})")]
    BadTreeCount(i32),
    #[error("cascade has {0} trailing bytes after its last tree")]
    TrailingBytes(usize),
    #[error("cascade value {what} of tree {tree} is not a finite number")]
    NotFinite { what: &'static str, tree: usize },
    #[error("sha256 is {actual}, expected {expected} (a different cascade file)")]
    Checksum { actual: String, expected: String },
}

/// A parsed cascade. Tree `t` owns nodes `t*(2^d-1)..(t+1)*(2^d-1)` of [`Cascade::codes`] (heap order:
/// node `i` has children `2i+1` (test false) and `2i+2` (test true)) and leaves `t*2^d..(t+1)*2^d`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cascade {
    pub depth: u32,
    /// One comparison per inner node, packed as four i8 in a little-endian u32:
    /// (row1, col1, row2, col2), offsets from the window centre in units of size/256.
    pub codes: Vec<u32>,
    pub leaves: Vec<f32>,
    /// After adding tree `t`'s leaf, a window whose sum is `<= thresholds[t]` is rejected: the last tree
    /// of each stage carries the stage threshold, the others a mid-stage one (-15.0 in the facefinder).
    pub thresholds: Vec<f32>,
}

impl Cascade {
    /// The built-in face cascade, verified against its sha256.
    pub fn facefinder() -> Result<Self, CascadeError> {
        Self::from_bytes_checked(FACEFINDER, FACEFINDER_SHA256)
    }

    /// Parse and require the bytes to have the given sha256 (lower-case hex).
    pub fn from_bytes_checked(bytes: &[u8], sha256: &str) -> Result<Self, CascadeError> {
        let actual = crate::models::sha256_hex(bytes);
        if actual != sha256 {
            return Err(CascadeError::Checksum {
                actual,
                expected: sha256.to_string(),
            });
        }
        Self::from_bytes(bytes)
    }

    /// Parse the tree-list format: i32 version, `i8 bbox[4]`, i32 depth, i32 ntrees, then per tree
    /// (2^depth - 1) i32 codes, 2^depth f32 leaves and one f32 threshold, all little-endian.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CascadeError> {
        let mut r = Reader { bytes, pos: 8 };
        if bytes.len() < 16 {
            return Err(CascadeError::Truncated {
                what: "the header",
                needed: 16,
                available: bytes.len(),
            });
        }
        let depth = r.i32("the header")?;
        if !(1..=MAX_DEPTH as i32).contains(&depth) {
            return Err(CascadeError::BadDepth(depth));
        }
        let ntrees = r.i32("the header")?;
        if !(1..=MAX_TREES as i32).contains(&ntrees) {
            return Err(CascadeError::BadTreeCount(ntrees));
        }
        let (depth, ntrees) = (depth as u32, ntrees as usize);
        let nodes = (1usize << depth) - 1;
        let nleaves = 1usize << depth;
        let tree_bytes = 4 * (nodes + nleaves + 1);
        let needed = 16 + ntrees * tree_bytes;
        if bytes.len() < needed {
            return Err(CascadeError::Truncated {
                what: "the trees",
                needed,
                available: bytes.len(),
            });
        }
        if bytes.len() > needed {
            return Err(CascadeError::TrailingBytes(bytes.len() - needed));
        }
        let mut cascade = Cascade {
            depth,
            codes: Vec::with_capacity(ntrees * nodes),
            leaves: Vec::with_capacity(ntrees * nleaves),
            thresholds: Vec::with_capacity(ntrees),
        };
        for tree in 0..ntrees {
            for _ in 0..nodes {
                cascade.codes.push(r.u32("a tree")?);
            }
            for _ in 0..nleaves {
                cascade.leaves.push(r.f32("a leaf", tree)?);
            }
            cascade.thresholds.push(r.f32("a threshold", tree)?);
        }
        Ok(cascade)
    }

    pub fn tree_count(&self) -> usize {
        self.thresholds.len()
    }

    /// Inner nodes per tree.
    pub fn nodes_per_tree(&self) -> usize {
        (1 << self.depth) - 1
    }

    /// Leaves per tree.
    pub fn leaves_per_tree(&self) -> usize {
        1 << self.depth
    }
}

/// The four signed offsets (row1, col1, row2, col2) packed in a node code.
#[inline(always)]
pub fn unpack_code(code: u32) -> [i32; 4] {
    let b = code.to_le_bytes();
    [
        b[0] as i8 as i32,
        b[1] as i8 as i32,
        b[2] as i8 as i32,
        b[3] as i8 as i32,
    ]
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take4(&mut self, what: &'static str) -> Result<[u8; 4], CascadeError> {
        let end = self.pos + 4;
        let chunk = self
            .bytes
            .get(self.pos..end)
            .ok_or(CascadeError::Truncated {
                what,
                needed: end,
                available: self.bytes.len(),
            })?;
        self.pos = end;
        Ok(chunk.try_into().expect("4 bytes"))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, CascadeError> {
        Ok(i32::from_le_bytes(self.take4(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, CascadeError> {
        Ok(u32::from_le_bytes(self.take4(what)?))
    }
    fn f32(&mut self, what: &'static str, tree: usize) -> Result<f32, CascadeError> {
        let v = f32::from_le_bytes(self.take4(what)?);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(CascadeError::NotFinite { what, tree })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facefinder_parses_with_its_known_shape() {
        let c = Cascade::facefinder().unwrap();
        assert_eq!(c.depth, 6);
        assert_eq!(c.tree_count(), 468);
        assert_eq!(c.codes.len(), 468 * 63);
        assert_eq!(c.leaves.len(), 468 * 64);
        // 24 stages: 24 trees carry their stage's threshold; the other 444 carry Pigo's mid-stage
        // threshold, which rejects a window whose running sum falls to it.
        let mid_stage = c
            .thresholds
            .iter()
            .filter(|&&t| t == FACEFINDER_MID_STAGE_THRESHOLD)
            .count();
        assert_eq!(mid_stage, 444);
        let closing: Vec<f32> = c
            .thresholds
            .iter()
            .copied()
            .filter(|&t| t != FACEFINDER_MID_STAGE_THRESHOLD)
            .collect();
        assert_eq!(closing.len(), 24);
        // Stage thresholds lie well above the mid-stage one (so it only catches windows far behind),
        // and the last tree closes the last stage.
        assert!(closing.iter().all(|&t| t > FACEFINDER_MID_STAGE_THRESHOLD));
        assert_ne!(
            *c.thresholds.last().unwrap(),
            FACEFINDER_MID_STAGE_THRESHOLD
        );
    }

    #[test]
    fn truncated_and_malformed_cascades_are_refused() {
        let good = FACEFINDER;
        for cut in [0, 3, 15, 16, 100, good.len() - 1] {
            let err = Cascade::from_bytes(&good[..cut]).unwrap_err();
            assert!(
                matches!(err, CascadeError::Truncated { .. }),
                "cut {cut}: {err}"
            );
        }
        let mut longer = good.to_vec();
        longer.push(0);
        assert_eq!(
            Cascade::from_bytes(&longer),
            Err(CascadeError::TrailingBytes(1))
        );

        let mut bad_depth = good.to_vec();
        bad_depth[8..12].copy_from_slice(&40i32.to_le_bytes());
        assert_eq!(
            Cascade::from_bytes(&bad_depth),
            Err(CascadeError::BadDepth(40))
        );

        let mut bad_count = good.to_vec();
        bad_count[12..16].copy_from_slice(&(-5i32).to_le_bytes());
        assert_eq!(
            Cascade::from_bytes(&bad_count),
            Err(CascadeError::BadTreeCount(-5))
        );

        let mut nan_leaf = good.to_vec();
        let first_leaf = 16 + 63 * 4;
        nan_leaf[first_leaf..first_leaf + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(matches!(
            Cascade::from_bytes(&nan_leaf),
            Err(CascadeError::NotFinite { tree: 0, .. })
        ));
        assert!(matches!(
            Cascade::from_bytes_checked(&nan_leaf, FACEFINDER_SHA256),
            Err(CascadeError::Checksum { .. })
        ));
    }

    #[test]
    fn codes_unpack_to_signed_offsets() {
        assert_eq!(
            unpack_code(u32::from_le_bytes([0x80, 0x7f, 0xff, 0x01])),
            [-128, 127, -1, 1]
        );
    }
}
