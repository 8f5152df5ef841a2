use clap::Parser;
use rackpong_agent::{Cli, cli, shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Cli::parse();
    cli::init_tracing(&args.log, args.log_json)?;
    let cancel = shutdown::on_signals();
    rackpong_agent::run(args.role, cancel).await?;
    Ok(())
}
