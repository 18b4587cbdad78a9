//! Deterministic synthetic embeddings for benchmarks and tests at sizes no photo set here reaches.
//! Not used by the pipeline.
//!
//! [`People`] is the library model of issue 17: synthetic people with a realistic number of faces
//! each, as unit 512-d rows with a person label per face, generated face by face so a million of
//! them can be written in chunks (into a database or an f16 matrix) without a second copy.
//! [`embeddings`] is the older, simpler model (equal clusters plus loose vectors).

use half::f16;
use rayon::prelude::*;

use super::random::SplitMix;

/// Floats per synthetic face.
pub const DIM: usize = 512;

/// Noise scale of a "tight" person: two faces with this spread lie about 0.58 apart
/// (`d^2 = 2 s^2 / (1 + s^2)`), so DBSCAN at 0.64 clusters them.
pub const TIGHT_SPREAD: f32 = 0.45;
/// Noise scale of a "loose" person: faces about 0.85 apart, never within 0.64 of each other.
pub const LOOSE_SPREAD: f32 = 0.75;
/// Each face's own spread is its person's times a factor uniform in `1 +- FACE_VARIATION` (faces
/// differ in quality): a tight person's pairs then range from about 0.50 to 0.65 apart, so some
/// fall just past 0.64 and the threshold is exercised, not only the gap around it.
pub const FACE_VARIATION: f32 = 0.15;
/// Exponent of the rank-size law: the person of rank `r` (1 = most faces) has about
/// `n1 * r^-RANK_EXPONENT` faces.
pub const RANK_EXPONENT: f64 = 2.0 / 3.0;

/// A library of synthetic people (issue 17).
///
/// - Each person is a random unit centre in 512-d, so different people lie about 1.41 apart.
/// - A face is its person's centre plus isotropic noise, scaled to unit length. People of even rank
///   are "tight" (faces about 0.58 apart: DBSCAN at 0.64 clusters them), those of odd rank "loose"
///   (about 0.85 apart: noise at 0.64), so half the people of every size are of each kind.
/// - Faces per person follow a rank-size (Zipf-like) law, `n_r = floor(n1 * r^(-2/3))` and at
///   least 1, with `n1` set so the faces add up to the number asked (equivalently, the share of
///   people with `k` faces falls as `k^-2.5`). A family library: a few people (the family) have
///   thousands of faces, most people appear once or a handful of times (strangers in the
///   background, guests at one event). At 1,000,000 faces the top person has about 4,800 faces,
///   about ten have more than 1,000, and about 390,000 people share the rest, 65% of them seen once;
///   at 100,000 the top person has about 1,000. A steeper head (Zipf's exponent 1) would give one
///   person tens of thousands of faces, and since every pair of a tight person is within 0.64 in
///   this model, its `k^2 / 2` edges alone would outgrow any neighbour graph in memory.
/// - Faces come in a shuffled order (a library is not sorted by person); `labels()[i]` is the
///   person (by rank, 0 = most faces) of face `i`.
/// - Everything is a function of `(n_faces, seed)`: face `i` is computed from the seed and `i`
///   alone, so any range of faces can be written in any order, in parallel, with the same bits.
pub struct People {
    seed: u64,
    labels: Vec<u32>,
    sizes: Vec<u32>,
}

impl People {
    pub fn new(n_faces: usize, seed: u64) -> Self {
        assert!(n_faces < u32::MAX as usize, "{n_faces} faces");
        let sizes = rank_sizes(n_faces);
        let mut labels: Vec<u32> = sizes
            .iter()
            .enumerate()
            .flat_map(|(p, &k)| std::iter::repeat_n(p as u32, k as usize))
            .collect();
        // Fisher-Yates, seeded.
        let mut rng = Stream::new(seed, Stream::ORDER, 0);
        for i in (1..labels.len()).rev() {
            let j = rng.0.below(i as u64 + 1) as usize;
            labels.swap(i, j);
        }
        People {
            seed,
            labels,
            sizes,
        }
    }

    /// Faces.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The person of each face (0 = the person with most faces).
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Faces of each person, by rank (descending).
    pub fn sizes(&self) -> &[u32] {
        &self.sizes
    }

    /// Whether `person`'s faces are about 0.58 apart (else about 0.85).
    pub fn is_tight(person: u32) -> bool {
        person.is_multiple_of(2)
    }

    /// Face `i` into `out` (`DIM` floats, unit length).
    pub fn face(&self, i: usize, out: &mut [f32]) {
        let person = self.labels[i];
        let spread = if Self::is_tight(person) {
            TIGHT_SPREAD
        } else {
            LOOSE_SPREAD
        };
        let mut own = Stream::new(self.seed, Stream::FACE, i as u64);
        let factor = 1.0 + FACE_VARIATION * (2.0 * own.unit() - 1.0);
        let scale = spread * factor / (DIM as f32).sqrt();
        let mut centre = Stream::new(self.seed, Stream::CENTRE, person as u64);
        let mut centre_norm = 0f32;
        let mut c = [0f32; DIM];
        for v in c.iter_mut() {
            *v = centre.normal();
            centre_norm += *v * *v;
        }
        let centre_scale = 1.0 / centre_norm.sqrt();
        for (o, c) in out[..DIM].iter_mut().zip(c) {
            *o = c * centre_scale + scale * own.normal();
        }
        let norm = out[..DIM].iter().map(|x| x * x).sum::<f32>().sqrt();
        for o in &mut out[..DIM] {
            *o /= norm;
        }
    }

    /// Faces `start..start + out.len() / DIM` into `out`, in parallel.
    pub fn write_f32(&self, start: usize, out: &mut [f32]) {
        out.par_chunks_mut(DIM)
            .enumerate()
            .for_each(|(k, row)| self.face(start + k, row));
    }

    /// The same faces rounded to IEEE half floats (as the store keeps them).
    pub fn write_f16(&self, start: usize, out: &mut [f16]) {
        out.par_chunks_mut(DIM).enumerate().for_each(|(k, row)| {
            let mut face = [0f32; DIM];
            self.face(start + k, &mut face);
            for (o, v) in row.iter_mut().zip(face) {
                *o = f16::from_f32(v);
            }
        });
    }

    /// Every face, f32, `len() * DIM` floats.
    pub fn rows_f32(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.len() * DIM];
        self.write_f32(0, &mut out);
        out
    }

    /// Every face, f16, `len() * DIM` values.
    pub fn rows_f16(&self) -> Vec<f16> {
        let mut out = vec![f16::ZERO; self.len() * DIM];
        self.write_f16(0, &mut out);
        out
    }
}

/// `n_faces` synthetic faces of [`People`] (f32 rows of `DIM`) and the person of each.
pub fn people(n_faces: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let people = People::new(n_faces, seed);
    let rows = people.rows_f32();
    (rows, people.labels)
}

/// Faces per person by rank, adding up to `n`: `max(1, floor(n1 * r^-RANK_EXPONENT))` for ranks
/// `r = 1..=n1^(1 / RANK_EXPONENT)` (where the law reaches one face), with the smallest `n1` whose
/// total reaches `n`; the list is then cut where it reaches `n`.
fn rank_sizes(n: usize) -> Vec<u32> {
    let sizes_for = |n1: f64| -> Vec<u32> {
        let ranks = n1.powf(1.0 / RANK_EXPONENT).ceil().max(1.0) as usize;
        (1..=ranks)
            .map(|r| (n1 * (r as f64).powf(-RANK_EXPONENT)).floor().max(1.0) as u32)
            .collect()
    };
    let total = |s: &[u32]| s.iter().map(|&k| k as usize).sum::<usize>();
    let (mut lo, mut hi) = (1.0f64, 2.0f64);
    while total(&sizes_for(hi)) < n {
        hi *= 2.0;
    }
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if total(&sizes_for(mid)) >= n {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let mut out = Vec::new();
    let mut left = n;
    for k in sizes_for(hi) {
        if left == 0 {
            break;
        }
        let k = k.min(left as u32);
        out.push(k);
        left -= k as usize;
    }
    out
}

/// Draws of one stream: uniform and about-normal values.
struct Stream(SplitMix);

impl Stream {
    const ORDER: u64 = 1;
    const CENTRE: u64 = 2;
    const FACE: u64 = 3;

    fn new(seed: u64, kind: u64, index: u64) -> Self {
        Stream(SplitMix::new(seed, kind, index))
    }

    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn unit(&mut self) -> f32 {
        self.0.unit()
    }

    /// About standard normal: the sum of four uniform 16-bit values (Irwin-Hall), scaled to unit
    /// variance. One 64-bit draw per value; in 512-d the shape of the tails does not matter.
    fn normal(&mut self) -> f32 {
        let x = self.next();
        let sum: u32 = (0..4).map(|k| ((x >> (16 * k)) & 0xffff) as u32).sum();
        // Each 16-bit value is uniform on [0, 65535]: mean 32767.5, variance (65536^2 - 1) / 12.
        const MEAN: f32 = 4.0 * 32767.5;
        const SD: f32 = 37837.227; // sqrt(4 * (65536^2 - 1) / 12)
        (sum as f32 - MEAN) / SD
    }
}

/// `clusters` centres with `per` members each, spread by `spread` (0.55 puts members of 512-d
/// clusters about 0.7 apart), then `loose` vectors anywhere (about 1.41 from everything); rows of
/// `dim` floats, one after another.
pub fn embeddings(dim: usize, clusters: usize, per: usize, spread: f32, loose: usize) -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let unit = |v: Vec<f32>| {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(move |x| x / n)
    };
    let mut out = Vec::with_capacity(dim * (clusters * per + loose));
    for _ in 0..clusters {
        let centre: Vec<f32> = (0..dim).map(|_| next()).collect();
        for _ in 0..per {
            let v: Vec<f32> = centre.iter().map(|c| c + spread * next()).collect();
            out.extend(unit(v));
        }
    }
    for _ in 0..loose {
        let v: Vec<f32> = (0..dim).map(|_| next()).collect();
        out.extend(unit(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::cpu::squared_distance;

    #[test]
    fn sizes_follow_the_law_and_add_up() {
        for n in [1, 2, 7, 1000, 100_000] {
            let s = rank_sizes(n);
            assert_eq!(s.iter().map(|&k| k as usize).sum::<usize>(), n);
            assert!(s.windows(2).all(|w| w[0] >= w[1]), "by rank");
        }
        let s = rank_sizes(100_000);
        assert!((800..1300).contains(&s[0]), "top person {}", s[0]);
        let singles = s.iter().filter(|&&k| k == 1).count();
        assert!(singles * 2 > s.len(), "most people appear once");
    }

    #[test]
    fn faces_are_unit_and_the_distances_are_the_models() {
        let people = People::new(3000, 5);
        let rows = people.rows_f32();
        let row = |i: usize| &rows[i * DIM..(i + 1) * DIM];
        for i in 0..people.len() {
            let n: f32 = row(i).iter().map(|x| x * x).sum();
            assert!((n - 1.0).abs() < 1e-5);
        }
        // Mean distance between faces of one person, tight and loose, and of different people.
        let (mut sums, mut counts) = ([0f64; 3], [0usize; 3]);
        let labels = people.labels();
        for i in 0..600 {
            for j in i + 1..600 {
                let kind = if labels[i] != labels[j] {
                    2
                } else if People::is_tight(labels[i]) {
                    0
                } else {
                    1
                };
                sums[kind] += squared_distance(row(i), row(j)).sqrt() as f64;
                counts[kind] += 1;
            }
        }
        let mean = |k: usize| sums[k] / counts[k] as f64;
        assert!(counts.iter().all(|&c| c > 20), "{counts:?}");
        assert!((mean(0) - 0.58).abs() < 0.02, "tight {}", mean(0));
        assert!((mean(1) - 0.85).abs() < 0.02, "loose {}", mean(1));
        assert!((mean(2) - 1.414).abs() < 0.02, "apart {}", mean(2));
    }

    #[test]
    fn deterministic_in_any_order_and_f16_is_the_rounding() {
        let a = People::new(500, 9);
        let b = People::new(500, 9);
        assert_eq!(a.labels(), b.labels());
        let all = a.rows_f32();
        let mut part = vec![0f32; 100 * DIM];
        b.write_f32(250, &mut part);
        assert_eq!(&all[250 * DIM..350 * DIM], &part[..]);
        let half = a.rows_f16();
        assert!(half.iter().zip(&all).all(|(h, f)| *h == f16::from_f32(*f)));
        assert_ne!(People::new(500, 10).labels(), a.labels());
    }
}
