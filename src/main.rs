//! The `visage` binary: parses the command line and runs it. All work is in the library.

use clap::Parser;

fn main() {
    // Mesa's Vulkan loader prints an alarming "XDG_RUNTIME_DIR is invalid" on headless machines
    // although compute needs no display; give it a directory. Sound: no other thread exists yet.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
    // `visage faces | head` should end quietly when `head` has had enough, as Unix tools do,
    // rather than panic on a broken pipe. Sound: restoring the default disposition of one signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // Libraries' own log lines (driver probing, shader compilation) mean nothing a user can act
    // on; their errors still show. RUST_LOG replaces this filter.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(
        "info,wgpu_hal=off,wgpu_core=error,wgpu=error,naga=error,cubecl=error,cubecl_wgpu=error,\
         cubecl_runtime=error,burn=error",
    ))
    .format_timestamp(None)
    .init();
    let cli = visage::cli::Cli::parse();
    std::process::exit(visage::cli::run(cli));
}
