//! The `visage` binary: parses the command line and runs it. All work is in the library.

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp(None)
        .init();
    let cli = visage::cli::Cli::parse();
    std::process::exit(visage::cli::run(cli));
}
