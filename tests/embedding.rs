//! FaceNet in Burn against an independent runtime (OpenCV's DNN module on the same graph_final.pb,
//! vectors made by scripts/facenet_reference.py), on the CPU and on the GPU path, and the
//! importer's checks on a damaged graph.

use crate::common;
use std::path::Path;

use prost::Message;
use visage::device::InferenceDevice;
use visage::embedding::graphdef::GraphDef;
use visage::embedding::{
    Embedder, Precision, Standardisation, distance, prepared_path, record_path,
};
use visage::models::FACENET;

struct Reference {
    crops: Vec<Vec<u8>>,
    fixed: Vec<Vec<f32>>,
    prewhitened: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/facenet");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    assert_eq!(json["model_sha256"], FACENET.sha256);
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let faces = json["faces"].as_array().unwrap();
    Reference {
        crops: faces
            .iter()
            .map(|f| common::crop_png(&dir.join(f["file"].as_str().unwrap())))
            .collect(),
        fixed: faces.iter().map(|f| floats(&f["embedding"])).collect(),
        prewhitened: faces
            .iter()
            .map(|f| floats(&f["embedding_prewhitened"]))
            .collect(),
    }
}

fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn the_prepared_cpu_forward_matches_burns_own_on_every_value() {
    // Odd batches too (the batch is split per thread): 1, 5 and 13 faces.
    let r = reference();
    let graph = common::model(&FACENET);
    let embedder = Embedder::load_with(&graph, &InferenceDevice::cpu(), Precision::F32).unwrap();
    assert_eq!(embedder.precision(), Precision::F32);
    let reference = Embedder::load_burn(&graph, &InferenceDevice::cpu()).unwrap();
    for n in [1, 5, 13] {
        let crops: Vec<Vec<u8>> = r.crops.iter().cycle().take(n).cloned().collect();
        let prepared = embedder.embed(&crops);
        let burn = reference.embed(&crops);
        let diff = max_abs_diff(&prepared, &burn);
        eprintln!("{n} faces: max |prepared - burn| = {diff:e}");
        assert!(diff <= 1e-5, "{n} faces: max abs difference {diff}");
        let opencv: Vec<Vec<f32>> = r.fixed.iter().cycle().take(n).cloned().collect();
        assert!(max_abs_diff(&prepared, &opencv) <= 1e-4);
    }
}

/// On the CPU, FaceNet as packed for it is kept beside its record and read back at the next
/// start: the same vectors bit for bit as packing it afresh. A kept file that is damaged, or was
/// packed from another record, is packed again and replaced, never used and never an error.
#[test]
fn facenet_prepared_for_the_cpu_is_kept_and_read_back_bit_for_bit() {
    let r = reference();
    let cpu = InferenceDevice::cpu();
    let graph = common::model(&FACENET);
    let fresh = Embedder::import(&graph, &cpu).unwrap().embed(&r.crops);
    // A models folder of its own holding the record (loading reads the record, not the graph).
    let dir = common::tempdir("prepared");
    let copy = dir.join(graph.file_name().unwrap());
    std::fs::copy(record_path(&graph), record_path(&copy)).unwrap();
    let prepared = prepared_path(&copy, Precision::F32);
    let load = || {
        Embedder::load_with(&copy, &cpu, Precision::F32)
            .unwrap()
            .embed(&r.crops)
    };
    let modified = || std::fs::metadata(&prepared).unwrap().modified().unwrap();

    assert!(!prepared.exists());
    assert_eq!(load(), fresh, "packed from the record");
    let (kept, len) = (modified(), std::fs::metadata(&prepared).unwrap().len());
    assert!(len > 90_000_000, "{len} bytes kept");
    assert_eq!(load(), fresh, "read back");
    assert_eq!(modified(), kept, "read, not written again");

    // Damaged: cut short, or not a network at all.
    let bytes = std::fs::read(&prepared).unwrap();
    std::fs::write(&prepared, &bytes[..bytes.len() / 2]).unwrap();
    assert_eq!(load(), fresh, "cut short");
    assert_eq!(
        std::fs::read(&prepared).unwrap(),
        bytes,
        "written again whole"
    );
    let mut flipped = bytes.clone();
    flipped[16] ^= 0xff; // the layout's number
    std::fs::write(&prepared, &flipped).unwrap();
    assert_eq!(load(), fresh, "another layout");
    std::fs::write(&prepared, b"not a network").unwrap();
    assert_eq!(load(), fresh, "not a network");
    assert_eq!(std::fs::read(&prepared).unwrap(), bytes);

    // The record written again: what was kept belongs to the old one.
    let before = modified();
    let later = std::fs::metadata(record_path(&copy))
        .unwrap()
        .modified()
        .unwrap()
        + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(record_path(&copy))
        .unwrap()
        .set_modified(later)
        .unwrap();
    assert_eq!(load(), fresh, "a newer record");
    assert_ne!(modified(), before, "packed again from the newer record");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Where FaceNet runs in bf16 (on any CPU when asked for; see
/// `facenet_in_bf16_stays_within_a_few_thousandths_of_f32`) it is kept packed for bf16 products
/// (half the bytes, nothing left to pack at a start), in a file of its own beside the f32 one,
/// and read back bit for bit; a file that only claims to be one is packed again.
#[test]
fn facenet_packed_for_bf16_is_kept_in_a_file_of_its_own() {
    let r = reference();
    let cpu = InferenceDevice::cpu();
    let graph = common::model(&FACENET);
    let dir = common::tempdir("prepared-bf16");
    let copy = dir.join(graph.file_name().unwrap());
    std::fs::copy(record_path(&graph), record_path(&copy)).unwrap();
    let (bf16, f32s) = (
        prepared_path(&copy, Precision::Bf16),
        prepared_path(&copy, Precision::F32),
    );
    let load = |precision| {
        let e = Embedder::load_with(&copy, &cpu, precision).unwrap();
        assert_eq!(e.precision(), precision);
        e.embed(&r.crops)
    };
    let modified = || std::fs::metadata(&bf16).unwrap().modified().unwrap();

    let packed = load(Precision::Bf16);
    assert!(
        bf16.exists() && !f32s.exists(),
        "only the bf16 file is written"
    );
    let len = std::fs::metadata(&bf16).unwrap().len();
    assert!((45_000_000..50_000_000).contains(&len), "{len} bytes kept");
    let kept = modified();
    assert_eq!(load(Precision::Bf16), packed, "read back bit for bit");
    assert_eq!(modified(), kept, "read, not written again");
    // Packed from the record in f32 (its own file) and then in bf16: the same vectors.
    let f32_vectors = load(Precision::F32);
    assert!(f32s.exists());
    assert_ne!(f32_vectors, packed, "the f32 file holds the f32 network");
    std::fs::remove_file(&bf16).unwrap();
    let mut again = Embedder::load_with(&copy, &cpu, Precision::F32).unwrap();
    assert_eq!(again.embed(&r.crops), f32_vectors);
    again = Embedder::load_with(&copy, &cpu, Precision::Bf16).unwrap();
    assert_eq!(again.embed(&r.crops), packed, "packed again, the same");

    let bytes = std::fs::read(&bf16).unwrap();
    std::fs::write(&bf16, &bytes[..bytes.len() - 4]).unwrap();
    assert_eq!(load(Precision::Bf16), packed, "cut short");
    assert_eq!(std::fs::read(&bf16).unwrap(), bytes, "written again whole");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// FaceNet's products in bf16 move no value of a vector by more than 0.005 from the f32 pass,
/// and no distance between two faces by more than 0.003 (the cluster and match distances are
/// 0.64 and 0.46). By default they run in bf16 where the CPU has AVX-512 BF16 and in f32
/// elsewhere; asked for, in bf16 on any CPU (without the instruction, by its portable twin).
#[test]
fn facenet_in_bf16_stays_within_a_few_thousandths_of_f32() {
    let r = reference();
    let (graph, cpu) = (common::model(&FACENET), InferenceDevice::cpu());
    let f32s = Embedder::load_with(&graph, &cpu, Precision::F32).unwrap();
    let bf16 = Embedder::load_with(&graph, &cpu, Precision::Bf16).unwrap();
    let crops: Vec<Vec<u8>> = r.crops.iter().cycle().take(13).cloned().collect();
    let (want, got) = (f32s.embed(&crops), bf16.embed(&crops));
    assert_eq!(bf16.precision(), Precision::Bf16);
    let by_default = Embedder::load(&graph, &cpu).unwrap();
    match visage::matmul::bf16::available() {
        true => assert_eq!(by_default.precision(), Precision::Bf16),
        false => assert_eq!(by_default.precision(), Precision::F32),
    }
    let diff = max_abs_diff(&got, &want);
    let mut moved = 0f32;
    for i in 0..crops.len() {
        for j in 0..i {
            let d = distance(&got[i], &got[j]) - distance(&want[i], &want[j]);
            moved = moved.max(d.abs());
        }
    }
    eprintln!("bf16 against f32: max value difference {diff:e}, max distance moved {moved:e}");
    assert!(diff > 0.0, "the bf16 pass ran in f32");
    assert!(diff <= 5e-3 && moved <= 3e-3, "{diff} {moved}");
    // A face's vector does not depend on the faces beside it in its batch.
    assert_eq!(bf16.embed(&crops[..1]), got[..1]);
    assert_eq!(bf16.embed(&crops[3..5]), got[3..5]);
}

#[test]
fn facenet_on_the_cpu_matches_opencv_dnn() {
    let r = reference();
    let graph = common::model(&FACENET);
    let mut embedder =
        Embedder::load_with(&graph, &InferenceDevice::cpu(), Precision::F32).unwrap();
    let got = embedder.embed(&r.crops);
    let diff = max_abs_diff(&got, &r.fixed);
    eprintln!("max |burn - opencv| = {diff:e} (fixed standardisation)");
    assert!(diff <= 1e-4, "max abs difference {diff}");
    for e in &got {
        let norm = e.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    // Different people are far apart, and a face is closest to itself.
    for i in 0..got.len() {
        for j in 0..got.len() {
            if i != j {
                assert!(distance(&got[i], &got[j]) > 0.7, "faces {i} and {j}");
            }
        }
    }
    embedder.standardisation = Standardisation::Prewhiten;
    let diff = max_abs_diff(&embedder.embed(&r.crops), &r.prewhitened);
    assert!(diff <= 1e-4, "prewhitened: max abs difference {diff}");
}

#[test]
fn facenet_on_the_gpu_matches_opencv_dnn() {
    let device = common::burn_gpu();
    let r = reference();
    let embedder = Embedder::load(&common::model(&FACENET), &device).unwrap();
    // Two faces keep this affordable on a software adapter.
    let got = embedder.embed(&r.crops[..2]);
    let diff = max_abs_diff(&got, &r.fixed[..2]);
    eprintln!(
        "max |burn - opencv| = {diff:e} on {}",
        embedder.device().description
    );
    assert!(diff <= 1e-4, "max abs difference {diff}");
}

/// Import must fail, naming the tensor, when the graph does not fit the network.
#[test]
fn importer_names_the_tensor_that_does_not_fit() {
    let bytes = std::fs::read(common::model(&FACENET)).unwrap();
    let mut graph = GraphDef::decode(bytes.as_slice()).unwrap();
    let target = "InceptionResnetV1/Repeat_1/block17_4/Branch_1/Conv2d_0b_1x7/weights";
    let node = graph.node.iter_mut().find(|n| n.name == target).unwrap();
    let tensor = node.attr.get_mut("value").unwrap().tensor.as_mut().unwrap();
    // Pretend the kernel is 7x1 instead of 1x7 (same number of values).
    let dims = &mut tensor.tensor_shape.as_mut().unwrap().dim;
    dims.swap(0, 1);
    let dir = common::tempdir("importer");
    let damaged = dir.join("graph_final.pb");
    std::fs::write(&damaged, graph.encode_to_vec()).unwrap();
    let err = Embedder::import(&damaged, &InferenceDevice::cpu())
        .err()
        .expect("a misshapen kernel must not import")
        .to_string();
    assert!(err.contains(target) && err.contains("shape"), "{err}");

    // A graph without the network at all.
    std::fs::write(&damaged, GraphDef::default().encode_to_vec()).unwrap();
    let err = Embedder::import(&damaged, &InferenceDevice::cpu())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("Conv2d_1a_3x3/weights"), "{err}");
    // Not a protobuf at all.
    std::fs::write(&damaged, b"\xff\xff\xff\xff").unwrap();
    let err = Embedder::import(&damaged, &InferenceDevice::cpu())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("graph_final.pb"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
