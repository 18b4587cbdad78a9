//! `visage serve`: starts the review page on a local address and prints, as its first line on
//! stdout, the URL to open (with the access token in it). The server itself is `crate::serve`.

use std::io::Write;
use std::net::SocketAddr;

use clap::Args;

use super::StoreArgs;
use crate::config::Settings;
use crate::serve;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0: any free port)
    #[arg(
        long,
        env = "VISAGE_BIND",
        default_value = "127.0.0.1:8177",
        value_name = "ADDR:PORT"
    )]
    pub bind: SocketAddr,
    /// Allow a --bind address other machines can reach (they still need the token)
    #[arg(long)]
    pub allow_remote: bool,
    /// Access token, 16 or more letters and digits [default: a new random one each start]
    #[arg(
        long,
        env = "VISAGE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Naming re-runs matching with these settings (as `visage cluster` does)
    #[command(flatten)]
    pub settings: Settings,
}

pub fn run(args: ServeArgs) -> anyhow::Result<i32> {
    // A mistyped --db is refused here, with what to do, and not served as an empty page.
    let db = args.store.open()?.path().to_path_buf();
    let options = serve::Options {
        bind: args.bind,
        allow_remote: args.allow_remote,
        db,
        token: args.token,
        thumbs: serve::thumbs::default_dir(),
        settings: args.settings,
    };
    serve::run(options, |url| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{url}");
        let _ = out.flush();
    })?;
    Ok(0)
}
