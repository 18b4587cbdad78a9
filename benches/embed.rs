//! FaceNet throughput (faces/s) on the CPU at batch 1 and batch 32, on the real face crops of
//! `tests/data/facenet`. `cargo bench --bench embed`; threads follow `RAYON_NUM_THREADS`.
//! For the side-by-side comparison with OpenCV's DNN module use `benches/peers/compare_embed.sh`.

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use visage::device::InferenceDevice;
use visage::embedding::Embedder;
use visage::models::{FACENET, Models};

fn crops() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/facenet");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| image::open(p).unwrap().into_rgb8().into_raw())
        .collect()
}

fn facenet(c: &mut Criterion) {
    let models = Models::new(std::env::var_os("VISAGE_MODELS").map(Into::into));
    let embedder = Embedder::load(&models.get(&FACENET).unwrap(), &InferenceDevice::cpu()).unwrap();
    let crops = crops();
    let mut group = c.benchmark_group("facenet_cpu");
    group.sample_size(10).warm_up_time(Duration::from_secs(2));
    for batch in [1usize, 32] {
        let input: Vec<Vec<u8>> = crops.iter().cycle().take(batch).cloned().collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("batch{batch}"), |b| {
            b.iter(|| embedder.embed(&input))
        });
    }
    group.finish();
}

criterion_group!(benches, facenet);
criterion_main!(benches);
