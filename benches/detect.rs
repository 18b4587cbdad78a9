//! Face detection throughput (images/s) on real photos, CPU twin and GPU path, detection only
//! (photos decoded beforehand, as the OpenCV peer in `benches/peers/haar_detect.py` is timed).
//!
//! `cargo bench --profile dev --bench detect`; photos come from `scripts/fetch-testdata`. The GPU group
//! runs on whatever adapter wgpu finds (lavapipe's figures are not GPU performance). The `mid_stage`
//! group times Pigo's cascade against the same cascade without mid-stage rejection (issue 19).

mod kit;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kit::testdata;
use visage::config::{DeviceChoice, Settings};
use visage::detection::pico::cascade::{Cascade, FACEFINDER_MID_STAGE_THRESHOLD};
use visage::detection::pico::scan::gpu::GpuScanner;
use visage::detection::pico::{Backend, DetectParams, Pico};
use visage::device::Device;
use visage::gpu::Gpu;
use visage::photo::Photo;

fn load(paths: &[PathBuf]) -> Vec<Photo> {
    paths.iter().map(|p| Photo::open(p).unwrap()).collect()
}

fn all_photos() -> Vec<PathBuf> {
    let root = testdata();
    let mut v: Vec<PathBuf> = visage::walk::photos(&[root.join("celebrity"), root.join("group")])
        .into_iter()
        .map(Result::unwrap)
        .collect();
    v.sort();
    v
}

fn bench(c: &mut Criterion) {
    let settings = Settings {
        device: DeviceChoice::Cpu,
        ..Settings::default()
    };
    let params = DetectParams::from(&settings);
    let cpu = Pico::new(&settings, &Device::cpu()).unwrap();
    let gpu = Gpu::open().ok().map(|g| {
        let cascade = Cascade::facefinder().unwrap();
        let scanner = GpuScanner::new(Arc::new(g), &cascade);
        Pico::with_backend(cascade, params.clone(), Backend::Gpu(scanner))
    });
    // What --face-angles costs: upright only, and five and seven angles.
    let angle_sets: [(&str, Vec<f32>); 3] = [
        ("cpu_angles_0", vec![0.0]),
        ("cpu_angles_5", vec![0.0, -15.0, 15.0, -30.0, 30.0]),
        (
            "cpu_angles_7",
            vec![0.0, -10.0, 10.0, -20.0, 20.0, -30.0, 30.0],
        ),
    ];
    let angled: Vec<(&str, Pico)> = angle_sets
        .into_iter()
        .map(|(name, face_angles)| {
            let s = Settings {
                face_angles,
                ..settings.clone()
            };
            (name, Pico::new(&s, &Device::cpu()).unwrap())
        })
        .collect();

    let t1 = load(&[testdata().join("group/t1.jpg")]);
    let set = load(&all_photos());
    let set_refs: Vec<&Photo> = set.iter().collect();

    let mut g = c.benchmark_group("detect_1280px");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.bench_function("cpu", |b| b.iter(|| cpu.detect(&t1[0]).unwrap()));
    for (name, detector) in &angled {
        g.bench_function(*name, |b| b.iter(|| detector.detect(&t1[0]).unwrap()));
    }
    if let Some(gpu) = &gpu {
        g.sample_size(10);
        let batch: Vec<&Photo> = std::iter::repeat_n(&t1[0], 8).collect();
        g.throughput(Throughput::Elements(batch.len() as u64));
        g.bench_function(format!("gpu_batch8 [{}]", gpu.device()), |b| {
            b.iter(|| gpu.detect_batch(&batch).unwrap())
        });
    }
    g.finish();

    let mut g = c.benchmark_group("detect_reference_set");
    g.throughput(Throughput::Elements(set.len() as u64));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("cpu", |b| b.iter(|| cpu.detect_batch(&set_refs).unwrap()));
    g.finish();
}

/// Pigo's facefinder (mid-stage thresholds -15.0) against the file visage shipped before issue 19
/// (-1337.0: no window rejected mid-stage), CPU twin, PICO's scan and merge alone, same photos.
fn mid_stage(c: &mut Criterion) {
    let params = DetectParams::from(&Settings::default());
    let pigo = Cascade::facefinder().unwrap();
    let mut none = pigo.clone();
    for t in &mut none.thresholds {
        if *t == FACEFINDER_MID_STAGE_THRESHOLD {
            *t = -1337.0;
        }
    }
    let detectors = [("pigo", pigo), ("no_mid_stage", none)].map(|(name, cascade)| {
        (
            name,
            Pico::with_backend(cascade, params.clone(), Backend::Cpu),
        )
    });
    let t1 = load(&[testdata().join("group/t1.jpg")]);
    let set = load(&all_photos());
    let set_refs: Vec<&Photo> = set.iter().collect();
    let mut g = c.benchmark_group("mid_stage");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    for (name, detector) in &detectors {
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("t1_{name}"), |b| {
            b.iter(|| detector.detect(&t1[0]).unwrap())
        });
        g.throughput(Throughput::Elements(set.len() as u64));
        g.bench_function(format!("set_{name}"), |b| {
            b.iter(|| detector.detect_batch(&set_refs).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench, mid_stage);
criterion_main!(benches);
