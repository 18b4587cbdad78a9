//! The integration tests: one binary (as ripgrep does), one module per area, one shared kit
//! (`common`: test photos, models, the real tools or a failure naming their package, a one-node
//! Slurm cluster; `server` and `cdp`: the review page's server and the browser it is driven
//! through).

mod cdp;
mod common;
mod server;

mod border;
mod browser;
mod cli;
mod cli_embed;
mod detect_photos;
mod embedding;
mod gpu_parity;
mod graph;
mod incremental;
mod kinds;
mod library;
mod library_kinds;
mod migration;
mod mistakes;
mod pipeline;
mod recluster;
mod review;
mod serve;
mod slurm;
mod tally;
mod verification;
mod xmp;
