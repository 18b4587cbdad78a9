//! The neighbour graph and DBSCAN on synthetic 512-d embeddings (clusters of 20 and 10% loose
//! vectors, distance 1.0): the CPU's matrix-product path, the exact twin of the shader, the GPU
//! path where wgpu finds an adapter, DBSCAN over the graph, and matching faces to clusters. On
//! 20,000 synthetic people stored as f16 (distance 0.64): the exact and the approximate (IVF)
//! graph, and the range queries of 30 new faces.
//!
//! `cargo bench --profile dev --bench graph` (the project's one profile). Larger N and the peers:
//! `visage bench graph --n 100000`, `visage bench graph --people --n 1000000 [--queries 30]` and
//! `benches/peers/{pairwise_numpy,dbscan_sklearn}.py` (BENCHMARKS.md).

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use visage::clustering::matching::{Identity, Target, best_match};
use visage::graph::gpu::GpuGraph;
use visage::graph::ivf::{self, IvfParams};
use visage::graph::range::RangeQuery;
use visage::graph::synthetic::People;
use visage::graph::{NeighbourGraph, Rows, cpu, product, synthetic};

const N: usize = 4000;
const DIM: usize = 512;
const MAX_D2: f32 = 1.0;

fn graph(c: &mut Criterion) {
    let rows = synthetic::embeddings(DIM, N * 9 / 200, 20, 0.55, N / 10);
    let n = rows.len() / DIM;
    let mut group = c.benchmark_group("graph");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements((n * (n - 1) / 2) as u64));
    group.bench_function("cpu matrix products", |b| {
        b.iter(|| product::edges(Rows::F32(&rows), DIM, MAX_D2))
    });
    group.bench_function("cpu exact twin", |b| {
        b.iter(|| cpu::edges(&rows, DIM, MAX_D2))
    });
    match visage::gpu::Gpu::open() {
        Ok(gpu) => {
            let g = GpuGraph::new(Arc::new(gpu));
            group.bench_function(format!("gpu ({})", g.gpu().describe()), |b| {
                b.iter(|| g.edges(Rows::F32(&rows), DIM, MAX_D2).unwrap())
            });
        }
        Err(e) => eprintln!("no GPU adapter, GPU path not measured: {e}"),
    }
    group.finish();

    // Matching: 1000 faces against 1000 cluster centroids.
    let faces: Vec<&[f32]> = rows.chunks_exact(DIM).take(1000).collect();
    let targets: Vec<Target> = rows
        .chunks_exact(DIM)
        .skip(1000)
        .take(1000)
        .enumerate()
        .map(|(k, centroid)| Target {
            centroid,
            radius: 0.3,
            manual: false,
            identity: Identity::Cluster(k as i64),
        })
        .collect();
    c.bench_function("match 1000 faces to 1000 clusters", |b| {
        b.iter(|| {
            faces
                .iter()
                .map(|f| best_match(f, &targets, &[], 0.46))
                .collect::<Vec<_>>()
        })
    });

    let edges = product::edges(Rows::F32(&rows), DIM, MAX_D2);
    let g = NeighbourGraph::from_edges(n, &edges);
    c.bench_function("dbscan over the graph", |b| {
        b.iter(|| visage::clustering::dbscan(&g, 4))
    });
}

fn people(c: &mut Criterion) {
    const FACES: usize = 20_000;
    const CLUSTER_D2: f32 = 0.64 * 0.64;
    let people = People::new(FACES + 30, 1);
    let mut stored = vec![half::f16::ZERO; FACES * DIM];
    people.write_f16(0, &mut stored);
    let mut queries = vec![0f32; 30 * DIM];
    people.write_f32(FACES, &mut queries);
    let rows = Rows::F16(&stored);
    let mut group = c.benchmark_group("people f16");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("exact graph (matrix products)", |b| {
        b.iter(|| product::edges(rows, DIM, CLUSTER_D2))
    });
    group.bench_function("approximate graph (IVF)", |b| {
        b.iter(|| ivf::edges(rows, DIM, CLUSTER_D2, &IvfParams::default(), &|_, _| {}))
    });
    let mut range = RangeQuery::new(&queries, DIM, 0.64);
    let mut hits = Vec::new();
    group.throughput(Throughput::Elements(FACES as u64));
    group.bench_function("range queries, 30 new faces", |b| {
        b.iter(|| {
            hits.clear();
            range.scan(rows, 0, &mut hits);
        })
    });
    group.finish();
}

criterion_group!(benches, graph, people);
criterion_main!(benches);
