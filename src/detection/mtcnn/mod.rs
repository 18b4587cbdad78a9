//! MTCNN's three networks, ported to Burn with facenet-pytorch's weights: P-Net slides over an
//! image pyramid and R-Net re-scores what it finds ([`propose`]: faces the PICO cascade cannot
//! reach), and O-Net gives any candidate its face probability, a refined box and 5 landmarks
//! ([`verify`]). The networks ([`pnet`], [`rnet`], [`onet`]) are built from the layers in
//! [`layers`] and filled by [`weights`] (a file that does not fit is a `models::WeightsError`); on
//! the CPU they run as [`cpu`] prepares them.
//!
//! Input is boxes on decoded photos in detection pixels; output is proposals and verdicts. It
//! does not scan with PICO, merge the two sources or decide what is kept: that is the detection
//! stage (`detection::Detector`).

pub mod cpu;
pub mod layers;
pub mod onet;
pub mod pnet;
pub mod propose;
pub mod rnet;
pub mod verify;
pub mod weights;

pub use propose::{Proposal, Proposer};
pub use verify::{Verified, Verifier};
