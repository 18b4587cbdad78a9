//! `visage eval DIR`: embed the largest face of every photo in a folder with one subfolder per
//! person (the photo's parent folder names its person) and report how well the embeddings separate
//! the people (ROC AUC, true-accept rate at 0.1% false accepts, best distance threshold) and how
//! well DBSCAN at the cluster settings groups them (adjusted Rand index, pairwise and BCubed F),
//! once over the faces eligible for automatic clustering and once over all of them. With `--db`,
//! it scores what `visage index` stored instead: the people and clusters of those photos.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::words::plural;
use crate::clustering;
use crate::config::{CropMethod, Settings};
use crate::device::Device;
use crate::embedding::Standardisation;
use crate::evaluation::{self, ClusterScores, Separation};
use crate::graph::GraphBackend;
use crate::photo::Reader;
use crate::pipeline::Pipeline;

const BATCH: usize = 16;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub networks: super::NetworkArgs,
    #[command(flatten)]
    pub settings: Settings,
    /// Folder with one subfolder of photos per person
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Score the people and clusters already stored in this database for the photos under DIR
    /// (after `visage index DIR`) instead of embedding afresh
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

/// `eval --db`: how well the stored clusters and people match the folders.
#[derive(Serialize)]
struct DbReport {
    db: String,
    dir: String,
    people: usize,
    photos_with_face: usize,
    /// The largest face of each photo is scored: its person if it has one, else its cluster,
    /// else it is noise.
    clustering: ClusterScores,
}

fn run_db(args: &EvalArgs, db: &std::path::Path) -> anyhow::Result<i32> {
    let store = crate::store::Store::open(db)?;
    let root =
        std::fs::canonicalize(&args.dir).with_context(|| format!("{}", args.dir.display()))?;
    let prefix = format!("{}/", root.to_string_lossy().trim_end_matches('/'));
    let mut largest: BTreeMap<String, crate::store::faces::FaceRow> = BTreeMap::new();
    for f in store.read(|c| crate::store::faces::list(c, Default::default()))? {
        if !f.path.starts_with(&prefix) {
            continue;
        }
        match largest.get(&f.path) {
            Some(old) if old.w * old.h >= f.w * f.h => {}
            _ => {
                largest.insert(f.path.clone(), f);
            }
        }
    }
    let mut people: BTreeMap<String, usize> = BTreeMap::new();
    let mut groups: BTreeMap<String, u32> = BTreeMap::new();
    let (mut truth, mut predicted) = (Vec::new(), Vec::new());
    for (path, f) in &largest {
        truth.push(label_of(&mut people, std::path::Path::new(path)));
        let group = match (&f.person, f.cluster) {
            (Some(p), _) => Some(format!("person {p}")),
            (None, Some(c)) => Some(format!("cluster {c}")),
            _ => None,
        };
        predicted.push(group.map(|g| {
            let next = groups.len() as u32;
            *groups.entry(g).or_insert(next)
        }));
    }
    let report = DbReport {
        db: db.display().to_string(),
        dir: args.dir.display().to_string(),
        people: people.len(),
        photos_with_face: largest.len(),
        clustering: evaluation::cluster_scores(&truth, &predicted),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let c = &report.clustering;
        println!(
            "{}, {} with a face; stored clusters: {}, {} unassigned; {}",
            plural(report.people, "person"),
            plural(report.photos_with_face, "photo"),
            plural(c.clusters, "cluster"),
            c.noise,
            c.describe()
        );
    }
    Ok(0)
}

#[derive(Serialize)]
struct Report<'a> {
    dir: String,
    people: usize,
    photos: usize,
    embedded: usize,
    without_face: usize,
    failed: usize,
    onet: bool,
    crop: CropMethod,
    standardisation: Standardisation,
    face_verify: f32,
    device: &'a str,
    seconds: f64,
    #[serde(flatten)]
    separation: Option<Separation>,
    cluster_dist: f32,
    cluster_core: u32,
    /// Faces at least `--face-cluster-size` px with quality at least `--face-cluster-score`.
    clustering_eligible: ClusterScores,
    clustering_all: ClusterScores,
}

/// The label of the person a photo shows: its parent folder's name, numbered in order of first
/// appearance.
fn label_of(people: &mut BTreeMap<String, usize>, path: &std::path::Path) -> usize {
    let person = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let next = people.len();
    *people.entry(person).or_insert(next)
}

pub fn run(args: EvalArgs) -> anyhow::Result<i32> {
    super::require_paths(std::slice::from_ref(&args.dir))?;
    if let Some(db) = &args.db {
        return run_db(&args, db);
    }
    let started = Instant::now();
    // One device for the pipeline and the clustering.
    let device = Device::choose(args.settings.device)?;
    let mut pipeline = Pipeline::on(&args.settings, !args.networks.no_onet, &device)
        .context("cannot load the face pipeline")?;
    pipeline.embedder.standardisation = args.networks.standardisation;
    let (files, mut failed) = super::photo_files(std::slice::from_ref(&args.dir));
    let reader = Reader::for_settings(&args.settings);
    let mut people: BTreeMap<String, usize> = BTreeMap::new();
    let (mut labels, mut embeddings, mut eligible) = (Vec::new(), Vec::new(), Vec::new());
    let mut without_face = 0;
    for chunk in files.chunks(BATCH) {
        let (ok, decode_failed) = super::decode(&reader, chunk);
        failed += decode_failed;
        let photos: Vec<_> = ok.iter().map(|(_, p)| p).collect();
        let found = pipeline.run(&photos).context("face pipeline failed")?;
        for ((path, _), faces) in ok.iter().zip(found) {
            let label = label_of(&mut people, path);
            match crate::pipeline::largest(faces) {
                Some(face) => {
                    labels.push(label);
                    eligible.push(
                        args.settings
                            .eligible(face.detection.size, face.detection.score),
                    );
                    embeddings.push(face.embedding);
                }
                None => {
                    log::info!("{}: no face", path.display());
                    without_face += 1;
                }
            }
        }
    }
    let (same, different) = evaluation::pair_distances(&labels, &embeddings);
    let backend = GraphBackend::on(&device);
    let cluster = |keep: &dyn Fn(usize) -> bool| -> anyhow::Result<ClusterScores> {
        let idx: Vec<usize> = (0..labels.len()).filter(|&i| keep(i)).collect();
        let subset: Vec<Vec<f32>> = idx.iter().map(|&i| embeddings[i].clone()).collect();
        let truth: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
        let graph = backend.graph(&subset, args.settings.face_cluster_dist)?;
        let found = clustering::dbscan(&graph, args.settings.face_cluster_core as usize);
        Ok(evaluation::cluster_scores(&truth, &found))
    };
    let clustering_eligible = cluster(&|i| eligible[i])?;
    let clustering_all = cluster(&|_| true)?;
    let report = Report {
        dir: args.dir.display().to_string(),
        people: people.len(),
        photos: files.len(),
        embedded: embeddings.len(),
        without_face,
        failed,
        onet: !args.networks.no_onet,
        crop: args.settings.face_crop,
        standardisation: args.networks.standardisation,
        face_verify: args.settings.face_verify,
        device: &pipeline.embedder.device().description,
        seconds: started.elapsed().as_secs_f64(),
        separation: evaluation::separation(&same, &different),
        cluster_dist: args.settings.face_cluster_dist,
        cluster_core: args.settings.face_cluster_core,
        clustering_eligible,
        clustering_all,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(
            out,
            "{}, {}, {} embedded, {} without a face, {} failed ({:.1} s on {})",
            plural(report.people, "person"),
            plural(report.photos, "photo"),
            report.embedded,
            report.without_face,
            report.failed,
            report.seconds,
            report.device
        )?;
        match &report.separation {
            Some(s) => writeln!(
                out,
                "ROC AUC {:.4}  TAR@FAR=0.1% {:.3}  best threshold {:.3} (balanced accuracy {:.3})  mean distance same {:.3} / different {:.3}",
                s.roc_auc,
                s.tar_at_far_0_1_percent,
                s.best_threshold,
                s.best_balanced_accuracy,
                s.same_mean_distance,
                s.different_mean_distance
            )?,
            None => writeln!(out, "not enough faces for same- and different-person pairs")?,
        }
        for (what, c) in [
            ("eligible faces", &report.clustering_eligible),
            ("all faces", &report.clustering_all),
        ] {
            writeln!(
                out,
                "DBSCAN (distance {}, core {}) on {what}: {}, {}, {} noise; {}",
                report.cluster_dist,
                report.cluster_core,
                plural(c.faces, "face"),
                plural(c.clusters, "cluster"),
                c.noise,
                c.describe()
            )?;
        }
    }
    Ok(super::exit_code(failed))
}
