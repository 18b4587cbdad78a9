//! The distance-graph kernel against its CPU twin on random and real embeddings: the same edges
//! (up to pairs within rounding of the threshold) with the same distances, across several blocks
//! streamed through small buffers, from f16 rows, and after an edge-buffer overflow. Runs on
//! lavapipe in CI. Also: the CPU's matrix-product path finds exactly the twin's edges; the
//! approximate (IVF) graph finds at least 99.9% of them on synthetic people, never a false one,
//! the same on any number of threads; the range queries equal brute force.

use half::f16;

use crate::common;
use visage::graph::gpu::GpuGraph;
use visage::graph::ivf::{self, IvfParams};
use visage::graph::range::{Hit, RangeQuery};
use visage::graph::synthetic::{DIM, People};
use visage::graph::{Edge, GraphBackend, Rows, Search, cpu, product, synthetic};

/// Same edges and distances, except pairs whose distance is within rounding of the threshold.
fn assert_same(gpu: &[Edge], cpu: &[Edge], max_d2: f32) {
    let near = |e: &Edge| (e.d2 - max_d2).abs() < 1e-5;
    let g: Vec<&Edge> = gpu.iter().filter(|e| !near(e)).collect();
    let c: Vec<&Edge> = cpu.iter().filter(|e| !near(e)).collect();
    assert_eq!(g.len(), c.len(), "edge counts differ");
    for (a, b) in g.iter().zip(&c) {
        assert_eq!((a.i, a.j), (b.i, b.j));
        assert!((a.d2 - b.d2).abs() <= 1e-5, "{a:?} vs {b:?}");
    }
}

#[test]
fn random_embeddings_give_the_same_edges_across_blocks_and_overflow() {
    let gpu = common::gpu();
    let dim = 512;
    // 6 clusters of 30 (members about 0.7 apart) plus 60 loose vectors (about 1.41 apart).
    let rows = synthetic::embeddings(dim, 6, 30, 0.55, 60);
    let mut graph = GpuGraph::new(gpu);
    graph.block_rows = 64; // four blocks of rows: every pair of blocks is dispatched
    graph.set_initial_capacity(16); // far too small: each block pair reruns
    // And block pairs with more edges than the device may hold at once are split.
    graph.max_capacity = 500;
    for max_distance in [0.7f32, 1.0] {
        let max_d2 = max_distance * max_distance;
        let want = cpu::edges(&rows, dim, max_d2);
        let mut got = Vec::new();
        let dispatches = graph
            .edges_into(
                Rows::F32(&rows),
                dim,
                max_d2,
                &|_| true,
                &mut |e| {
                    got.extend_from_slice(e);
                    true
                },
                &|_, _| {},
            )
            .unwrap();
        visage::graph::sort_edges(&mut got);
        // At 1.0 the clusters' block pairs hold more than 500 edges each.
        assert!(
            dispatches >= 10 && (max_distance < 1.0 || dispatches > 10),
            "{dispatches} dispatches for 10 block pairs"
        );
        eprintln!("distance {max_distance}: {} edges", want.len());
        assert!(
            want.len() > 1000,
            "{} edges: the clusters must be dense",
            want.len()
        );
        assert!(want.iter().all(|e| e.i < e.j && e.d2 < max_d2));
        assert_same(&got, &want, max_d2);
    }
}

#[test]
fn real_embeddings_give_the_same_edges() {
    let gpu = common::gpu();
    let rows = reference_rows();
    let graph = GpuGraph::new(gpu);
    let max_d2 = 1.0f32;
    let want = cpu::edges(&rows, 512, max_d2);
    let got = graph.edges(Rows::F32(&rows), 512, max_d2).unwrap();
    // Each face's two standardisations are within 1.0 of each other; different people are not.
    assert!(want.len() >= 6, "{want:?}");
    for e in &want {
        assert_eq!(e.i / 2, e.j / 2, "different people joined: {e:?}");
    }
    assert_same(&got, &want, max_d2);
}

/// The six real FaceNet vectors of the parity fixture, each also standardised the other way (a
/// little nudged): same-person pairs near, different people far.
fn reference_rows() -> Vec<f32> {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/facenet/reference.json"),
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut rows = Vec::new();
    for face in json["faces"].as_array().unwrap() {
        for key in ["embedding", "embedding_prewhitened"] {
            rows.extend(
                face[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32),
            );
        }
    }
    rows
}

#[test]
fn the_matrix_product_path_finds_exactly_the_twins_edges() {
    // Real vectors, and 1500 synthetic 512-d ones (three tiles) at thresholds that cut through
    // their clusters.
    let real = reference_rows();
    for max_d2 in [0.5f32, 1.0, 1.5] {
        assert_eq!(
            product::edges(Rows::F32(&real), 512, max_d2),
            cpu::edges(&real, 512, max_d2)
        );
    }
    let rows = synthetic::embeddings(512, 50, 20, 0.55, 500);
    for max_distance in [0.7f32, 0.75, 0.8, 1.0] {
        let max_d2 = max_distance * max_distance;
        let want = cpu::edges(&rows, 512, max_d2);
        assert!(!want.is_empty());
        assert_eq!(
            product::edges(Rows::F32(&rows), 512, max_d2),
            want,
            "distance {max_distance}"
        );
    }
}

/// f16 rows and their exact f32 values.
fn people_f16(n: usize, seed: u64) -> (Vec<f16>, Vec<f32>) {
    let half = People::new(n, seed).rows_f16();
    let widened = half.iter().map(|h| h.to_f32()).collect();
    (half, widened)
}

#[test]
fn streaming_f16_blocks_on_the_gpu_give_the_twins_edges() {
    let gpu = common::gpu();
    // 1000 faces of synthetic people in six blocks of 176 rows (the last one partial): 21 block
    // pairs through two block buffers, each overflowing a 16-edge buffer first.
    let (half, widened) = people_f16(1000, 4);
    let mut graph = GpuGraph::new(gpu);
    graph.block_rows = 176;
    graph.set_initial_capacity(16);
    let max_d2 = 0.64f32 * 0.64;
    let want = cpu::edges(&widened, DIM, max_d2);
    assert!(want.len() > 1000, "{} edges", want.len());
    let pairs = std::cell::Cell::new((0, 0));
    let got = graph
        .edges_with_progress(Rows::F16(&half), DIM, max_d2, &|done, total| {
            pairs.set((done, total))
        })
        .unwrap();
    assert_eq!(pairs.get(), (21, 21));
    assert_same(&got, &want, max_d2);
}

/// The approximate graph holds only exact edges (same distance bits, in canonical order, each
/// once) and at least 99.9% of them; returns that share.
fn check_approximate(rows: Rows, max_d2: f32) -> f64 {
    let exact = product::edges(rows, DIM, max_d2);
    let (approx, stats) = ivf::edges(rows, DIM, max_d2, &IvfParams::default(), &|_, _| {});
    assert!(exact.len() > 100_000, "{} edges", exact.len());
    assert!(
        approx
            .windows(2)
            .all(|w| (w[0].i, w[0].j) < (w[1].i, w[1].j))
    );
    let mut k = 0;
    for e in &approx {
        while k < exact.len() && (exact[k].i, exact[k].j) < (e.i, e.j) {
            k += 1;
        }
        assert_eq!(exact.get(k), Some(e), "a false edge");
    }
    let recall = approx.len() as f64 / exact.len() as f64;
    eprintln!("recall {recall:.5} of {} edges, {stats:?}", exact.len());
    assert!(recall >= 0.999, "recall {recall}: {stats:?}");
    assert!(
        stats.pair_share < 0.25,
        "hardly cheaper than all pairs: {stats:?}"
    );
    recall
}

#[test]
fn the_approximate_graph_finds_the_exact_edges_and_no_others() {
    // 20,000 faces of synthetic people, as the store keeps them (f16), at the cluster distance.
    let (half, _) = people_f16(20_000, 11);
    check_approximate(Rows::F16(&half), 0.64 * 0.64);
    // 1000 clusters of 20 with shape (uniform noise, members about 0.7 apart) at 1.0, where
    // most neighbours of a face lie in other cells than its own.
    let rows = synthetic::embeddings(DIM, 1000, 20, 0.55, 0);
    check_approximate(Rows::F32(&rows), 1.0);
}

#[test]
fn the_approximate_graph_is_the_same_on_any_number_of_threads() {
    let (half, _) = people_f16(6000, 12);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                ivf::edges(
                    Rows::F16(&half),
                    DIM,
                    0.64 * 0.64,
                    &IvfParams::default(),
                    &|_, _| {},
                )
                .0
            })
    };
    let one = run(1);
    assert!(one.len() > 10_000);
    assert_eq!(one, run(3));
    // Another seed partitions differently but finds (almost) the same edges.
    let other = IvfParams {
        seed: 99,
        ..IvfParams::default()
    };
    let (again, _) = ivf::edges(Rows::F16(&half), DIM, 0.64 * 0.64, &other, &|_, _| {});
    let shared = again
        .iter()
        .filter(|e| {
            one.binary_search_by_key(&(e.i, e.j), |f| (f.i, f.j))
                .is_ok()
        })
        .count();
    assert!(shared as f64 >= 0.999 * one.len() as f64);
}

#[test]
fn the_backend_searches_exactly_below_the_limit_and_when_told() {
    let (half, widened) = people_f16(3000, 13);
    let backend = GraphBackend::Cpu;
    let want = cpu::edges(&widened, DIM, 0.64 * 0.64);
    for search in [Search::Auto, Search::Exact] {
        let got = backend
            .search(Rows::F16(&half), DIM, 0.64, search, &|_, _| {})
            .unwrap();
        assert_eq!(got, want);
    }
    use visage::graph::{EXACT_UP_TO, Method};
    assert_eq!(backend.method(EXACT_UP_TO, Search::Auto), Method::CpuExact);
    assert_eq!(
        backend.method(EXACT_UP_TO + 1, Search::Auto),
        Method::CpuApproximate
    );
    assert_eq!(
        backend.method(10 * EXACT_UP_TO, Search::Exact),
        Method::CpuExact
    );
}

#[test]
fn range_queries_over_streamed_f16_chunks_equal_brute_force() {
    // 30 new faces of the same people against 5,000 stored ones, in uneven chunks.
    let people = People::new(5030, 14);
    let mut stored = vec![f16::ZERO; 5000 * DIM];
    people.write_f16(0, &mut stored);
    let widened: Vec<f32> = stored.iter().map(|h| h.to_f32()).collect();
    let mut queries = vec![0f32; 30 * DIM];
    people.write_f32(5000, &mut queries);
    let mut range = RangeQuery::new(&queries, DIM, 0.64);
    let mut got = Vec::new();
    let mut start = 0;
    for size in [1usize, 1023, 1500, 2476] {
        range.scan(
            Rows::F16(&stored[start * DIM..(start + size) * DIM]),
            start as u32,
            &mut got,
        );
        start += size;
    }
    assert_eq!(start, 5000);
    let row = |v: &[f32], k: usize| v[k * DIM..(k + 1) * DIM].to_vec();
    let mut want = Vec::new();
    for r in 0..5000 {
        for q in 0..30 {
            let d2 = cpu::squared_distance(&row(&queries, q), &row(&widened, r));
            if d2 < 0.64f32 * 0.64 {
                want.push(Hit {
                    query: q as u32,
                    row: r as u32,
                    d2,
                });
            }
        }
    }
    assert!(want.len() > 30, "{} hits", want.len());
    assert_eq!(got, want);
}
