//! The WGSL cascade scan against its CPU twin, window by window, on real photos.
//! Runs on whatever adapter wgpu finds (lavapipe without a GPU); fails if there is none.

use crate::common;
use visage::detection::pico::cascade::Cascade;
use visage::detection::pico::scan::gpu::GpuScanner;
use visage::detection::pico::scan::{Hit, ScanInput, cpu};
use visage::detection::pico::windows::ScanPlan;
use visage::photo::Photo;

fn photos(names: &[String]) -> Vec<Photo> {
    let root = common::testdata();
    names
        .iter()
        .map(|n| Photo::open(&root.join(n)).unwrap())
        .collect()
}

fn assert_same(gpu: &[Hit], cpu: &[Hit], what: &str) {
    assert_eq!(
        gpu.len(),
        cpu.len(),
        "{what}: GPU kept {} windows, CPU {}",
        gpu.len(),
        cpu.len()
    );
    for (g, c) in gpu.iter().zip(cpu) {
        assert_eq!(
            (g.level, g.row, g.col),
            (c.level, c.row, c.col),
            "{what}: different window"
        );
        assert!(
            (g.score - c.score).abs() <= 1e-4,
            "{what}: score {} vs {}",
            g.score,
            c.score
        );
    }
}

fn compare(names: &[String], min_size: u32, angles: &[f32]) -> usize {
    compare_with(&Cascade::facefinder().unwrap(), names, min_size, angles)
}

fn compare_with(cascade: &Cascade, names: &[String], min_size: u32, angles: &[f32]) -> usize {
    let gpu = common::gpu();
    let scanner = GpuScanner::new(gpu, cascade);
    let photos = photos(names);
    let plans: Vec<ScanPlan> = photos
        .iter()
        .map(|p| ScanPlan::new(p.width, p.height, min_size, angles))
        .collect();
    let inputs: Vec<ScanInput> = photos
        .iter()
        .zip(&plans)
        .map(|(p, plan)| ScanInput::new(p, plan))
        .collect();
    // All photos in one submission, as the detector batches them.
    let gpu_hits = scanner.scan_batch(&inputs).unwrap();
    let mut total = 0;
    for ((name, input), gpu_hits) in names.iter().zip(&inputs).zip(&gpu_hits) {
        let cpu_hits = cpu::scan(cascade, input);
        assert_same(gpu_hits, &cpu_hits, name);
        total += cpu_hits.len();
    }
    total
}

#[test]
fn group_photo_upright_windows_match() {
    let n = compare(&["group/t1.jpg".into()], 20, &[0.0]);
    assert!(n > 20, "a group photo should keep many windows, kept {n}");
}

#[test]
fn batched_photos_with_tilted_windows_match() {
    let mut names: Vec<String> = common::celebrity_photos().into_iter().step_by(12).collect();
    names.push("group/mask_white.jpg".into());
    names.push("group/mask_black.jpg".into());
    let n = compare(&names, 20, &[0.0, -20.0, 20.0, 33.0]);
    assert!(n > 100, "kept {n} windows");
}

/// Both scanners read the mid-stage thresholds: with them raised close to the stage thresholds
/// (about -0.8 to -2.8), many windows die in the middle of a stage, on the GPU exactly as on the CPU.
#[test]
fn windows_rejected_mid_stage_match() {
    let names = ["group/t1.jpg".to_string()];
    let pigo = compare(&names, 20, &[0.0, 20.0]);
    let strict = compare_with(
        &common::facefinder_with_mid_stage(-3.0),
        &names,
        20,
        &[0.0, 20.0],
    );
    assert!(
        0 < strict && strict < pigo,
        "mid-stage -3.0 kept {strict} windows, Pigo's -15.0 {pigo}"
    );
}

#[test]
fn more_hits_than_the_first_buffer_holds_are_all_returned() {
    let gpu = common::gpu();
    let cascade = Cascade::facefinder().unwrap();
    let mut scanner = GpuScanner::new(gpu, &cascade);
    scanner.set_initial_capacity(8);
    let photo = &photos(&["group/t1.jpg".into()])[0];
    let plan = ScanPlan::new(photo.width, photo.height, 20, &[0.0]);
    let input = ScanInput::new(photo, &plan);
    let gpu_hits = scanner.scan_batch(std::slice::from_ref(&input)).unwrap();
    let cpu_hits = cpu::scan(&cascade, &input);
    assert!(cpu_hits.len() > 8);
    assert_same(&gpu_hits[0], &cpu_hits, "t1 with a tiny first buffer");
}
