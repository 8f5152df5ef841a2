use clap::Parser;
use rackpong_controller::cmd::{self, Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Cli::parse();
    rackpong_agent::cli::init_tracing(&args.log, false)?;
    let cancel = rackpong_agent::shutdown::on_signals();
    cmd::run(args.command, cancel).await?;
    Ok(())
}
