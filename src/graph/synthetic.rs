//! Deterministic synthetic embeddings for benchmarks and tests at sizes no photo set here reaches:
//! unit vectors in clusters around random centres, plus loose ones. Not used by the pipeline.

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
