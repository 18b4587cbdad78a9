//! SplitMix64, the one seeded generator of the graph module (k-means seeding, synthetic people).
//! Written out, not taken from a crate, so a seed gives the same numbers whatever the dependency
//! versions: benchmark data and approximate graphs stay reproducible.

/// A counter-based stream: each `(seed, kind, index)` starts its own sequence, so independent
/// things (a face, a centre, a sample) draw from independent streams in any order.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64, kind: u64, index: u64) -> Self {
        SplitMix(mix(mix(seed ^ (kind << 56)) ^ index))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..bound` (`bound > 0`; the modulo bias is below 2^-40 for any bound used here).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
