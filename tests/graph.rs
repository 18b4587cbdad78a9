//! The distance-graph kernel against its CPU twin on random and real embeddings: the same edges
//! (up to pairs within rounding of the threshold) with the same distances, across several blocks
//! and after an edge-buffer overflow. Runs on lavapipe in CI. Also: the CPU's matrix-product path
//! finds exactly the twin's edges.

use crate::common;
use visage::graph::gpu::GpuGraph;
use visage::graph::{Edge, cpu, product, synthetic};

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
    let Some(gpu) = common::gpu() else {
        return;
    };
    let dim = 512;
    // 6 clusters of 30 (members about 0.7 apart) plus 60 loose vectors (about 1.41 apart).
    let rows = synthetic::embeddings(dim, 6, 30, 0.55, 60);
    let mut graph = GpuGraph::new(gpu);
    graph.block_rows = 64; // four blocks of rows: every pair of blocks is dispatched
    graph.set_initial_capacity(16); // far too small: each block pair reruns
    for max_distance in [0.7f32, 1.0] {
        let max_d2 = max_distance * max_distance;
        let want = cpu::edges(&rows, dim, max_d2);
        let got = graph.edges(&rows, dim, max_d2).unwrap();
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
    let Some(gpu) = common::gpu() else {
        return;
    };
    let rows = reference_rows();
    let graph = GpuGraph::new(gpu);
    let max_d2 = 1.0f32;
    let want = cpu::edges(&rows, 512, max_d2);
    let got = graph.edges(&rows, 512, max_d2).unwrap();
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
            product::edges(&real, 512, max_d2),
            cpu::edges(&real, 512, max_d2)
        );
    }
    let rows = synthetic::embeddings(512, 50, 20, 0.55, 500);
    for max_distance in [0.7f32, 0.75, 0.8, 1.0] {
        let max_d2 = max_distance * max_distance;
        let want = cpu::edges(&rows, 512, max_d2);
        assert!(!want.is_empty());
        assert_eq!(
            product::edges(&rows, 512, max_d2),
            want,
            "distance {max_distance}"
        );
    }
}
