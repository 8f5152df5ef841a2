use clap::Parser;
use rackpong_controller::cmd::{self, Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Cli::parse();
    cmd::init_logs(&args)?;
    let cancel = rackpong_agent::shutdown::on_signals();
    cmd::run(args.command, cancel).await?;
    Ok(())
}
