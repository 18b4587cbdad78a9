//! visage: find, embed, cluster and name the faces in a photo library.
//!
//! The pipeline, one module per stage (see ARCHITECTURE.md):
//! [`photo`] decodes a file into a luminance image, [`detection`] finds faces with the PICO cascade
//! on the GPU ([`gpu`]) or the CPU; later stages (alignment, embedding, distance graph,
//! clustering, people, store) follow. [`config`] holds the settings every stage receives.

pub mod cli;
pub mod config;
pub mod detection;
pub mod gpu;
pub mod photo;
pub mod walk;
