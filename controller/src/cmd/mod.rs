//! The `rackpong` command line: one file per subcommand, each parsing its
//! flags, choosing a rig (or a report) and printing the result; [`run`]
//! dispatches.

pub(crate) mod compare;
pub(crate) mod crd;
pub(crate) mod demo;
pub(crate) mod estop;
pub(crate) mod operator;
pub(crate) mod replay;
pub(crate) mod report;
pub mod run;
pub(crate) mod watch;

use clap::{Parser, Subcommand};

use crate::cluster::local::Isolation;

use crate::console::logs::DEFAULT_FILTER;
use tokio_util::sync::CancellationToken;

/// `--isolation`, shared by `demo` and `run --local`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct IsolationArg {
    /// How the local rack's nodes are separated: `loopback` (127.0.1.x, no
    /// root needed; net-drop freezes a node), `netns` (root: one network
    /// namespace per node on a rack bridge; net-drop and partition are real
    /// cuts) or `auto` (netns where it can be used, and says which it chose).
    #[arg(
        long = "isolation",
        value_name = "ISOLATION",
        env = "RACKPONG_ISOLATION",
        value_enum,
        default_value = "loopback"
    )]
    pub requested: Isolation,
}

impl IsolationArg {
    /// The isolation in effect; `auto` says on stderr which it chose and why.
    pub fn chosen(&self) -> Isolation {
        let (chosen, why) = self.requested.resolve();
        if self.requested == Isolation::Auto {
            let why = why.as_deref().unwrap_or("network namespaces available");
            eprintln!("isolation: {} (auto: {why})", chosen.as_str());
        }
        chosen
    }
}

/// rackpong: a measurable chaos-engineering demo for a Raspberry Pi k3s rack.
#[derive(Debug, Parser)]
#[command(name = "rackpong", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or
    /// `rackpong_controller=debug` [default: info,rumqttd=warn]. During `demo`
    /// and `run` the log goes to `runs/<id>/controller.log`, and to stderr as
    /// well when this flag (or -v) is given; the terminal shows only the
    /// progress bar and one line per fault event.
    #[arg(long, env = "RACKPONG_LOG", global = true)]
    pub log: Option<String>,

    /// During `demo` and `run`, also print the log on stderr (above the progress bar).
    #[arg(short, long, env = "RACKPONG_VERBOSE", global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an agent role (used by the local rack to run every node and worker
    /// from this one executable).
    #[command(subcommand, hide = true)]
    Agent(Box<rackpong_agent::Role>),
    /// Run an experiment plan on k3s (--kubeconfig, --broker, --ingress) or a
    /// local rack (--local); --dry-run prints what would happen and touches nothing.
    Run(run::RunArgs),
    /// The whole demo on this machine: embedded broker, local rack, ball
    /// factory and the default plan, with progress; prints the run directory.
    Demo(demo::DemoArgs),
    /// Print the ChaosExperiment CustomResourceDefinition (YAML) for `kubectl apply -f -`.
    Crd,
    /// Run the in-cluster operator: reconcile the namespace's ChaosExperiments
    /// with the engine, one at a time, until stopped.
    Operator(operator::OperatorArgs),
    /// Re-render a run's report.json, report.md, report.html and junit.xml from its journal.
    Report(report::ReportArgs),
    /// Compare two runs side by side, per fault kind and phase.
    Compare(compare::CompareArgs),
    /// The live dashboard over a rack's MQTT broker, without any chaos.
    Watch(watch::WatchArgs),
    /// A recorded run (RUN_DIR) on the live dashboard, as it looked live,
    /// at --speed N: for when the venue's network or the rack fails.
    Replay(replay::ReplayArgs),
    /// Emergency stop for the whole rack: publish a signed, retained stop
    /// (or --clear it). Every chaos-enabled agent restores its fault at once
    /// and refuses commands until cleared. Needs no running controller.
    Estop(estop::EstopArgs),
}

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Agent(#[from] rackpong_agent::cli::RunError),
    #[error(transparent)]
    Run(#[from] run::RunCommandError),
    #[error(transparent)]
    Demo(#[from] crate::rig::RigError),
    /// The run finished but its steady state or an SLO failed.
    #[error(transparent)]
    Failed(#[from] crate::engine::EngineError),
    #[error(transparent)]
    Crd(#[from] crate::operator::CrdError),
    #[error(transparent)]
    Operator(#[from] crate::operator::OperatorRunError),
    #[error(transparent)]
    Report(#[from] report::ReportCliError),
    #[error(transparent)]
    Compare(#[from] crate::report::ReportError),
    #[error(transparent)]
    Dashboard(#[from] crate::dashboard::DashboardError),
    #[error(transparent)]
    Estop(#[from] estop::EstopCliError),
    #[error(transparent)]
    Logs(#[from] crate::console::logs::LogError),
}

/// Installs the logging this command wants: for `demo` and `run`, the run's
/// `controller.log` (and stderr with -v/--log); otherwise stderr.
pub fn init_logs(cli: &Cli) -> Result<(), CliError> {
    let filter = cli.log.as_deref().unwrap_or(DEFAULT_FILTER);
    let quiet_terminal = match &cli.command {
        Command::Demo(_) => true,
        Command::Run(r) => !r.dry_run,
        _ => false,
    };
    if quiet_terminal {
        crate::console::logs::init(filter, cli.verbose || cli.log.is_some())?;
    } else {
        rackpong_agent::cli::init_tracing(filter, false)?;
    }
    Ok(())
}

/// Runs the chosen subcommand until done or `cancel` fires.
pub async fn run(command: Command, cancel: CancellationToken) -> Result<(), CliError> {
    match command {
        Command::Agent(role) => rackpong_agent::run(*role, cancel).await?,
        Command::Run(args) => match run::run(args, cancel).await? {
            run::RunResult::DryRun(text) => print!("{text}"),
            run::RunResult::Ran(summary) => finished(&summary)?,
        },
        Command::Demo(args) => demo::run(args, cancel).await?,
        Command::Crd => crd::run()?,
        Command::Operator(args) => operator::run(args, cancel).await?,
        Command::Report(args) => report::run(&args)?,
        Command::Compare(args) => compare::run(&args)?,
        Command::Watch(args) => watch::run(args, cancel).await?,
        Command::Replay(args) => replay::run(args, cancel).await?,
        Command::Estop(args) => estop::run(args).await?,
    }
    Ok(())
}

/// Prints the summary and the run directory, renders the report, and fails
/// naming what failed (steady state, SLOs, abort).
fn finished(summary: &crate::engine::RunSummary) -> Result<(), CliError> {
    print_finished(summary);
    Ok(summary.verdict()?)
}

/// Prints the summary table, renders the report, prints the run directory;
/// the report's verdict, when it rendered.
pub(crate) fn print_finished(
    summary: &crate::engine::RunSummary,
) -> Option<crate::report::Verdict> {
    print!("{}", summary.table());
    let verdict = render_report(&summary.run_dir);
    println!("run directory: {}", summary.run_dir.display());
    verdict
}

/// Renders report.json, report.md, report.html and junit.xml into the run
/// directory; a rendering error is printed and logged (the journal is still
/// there for `rackpong report`), never hides the run's own verdict.
fn render_report(run_dir: &std::path::Path) -> Option<crate::report::Verdict> {
    match crate::report::render_run(run_dir) {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("cannot render the report ({e}); the journal is intact");
            tracing::error!(dir = %run_dir.display(), error = %e, "cannot render the report; the journal is intact");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_has_no_conflicting_flags() {
        Cli::command().debug_assert();
    }

    #[test]
    fn local_conflicts_with_kubeconfig_and_the_log_default_quiets_the_broker() {
        let e = Cli::try_parse_from(["rackpong", "run", "p.yaml", "--local", "--kubeconfig", "k"])
            .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::ArgumentConflict);
        let cli = Cli::try_parse_from(["rackpong", "run", "p.yaml", "--kubeconfig", "k"]).unwrap();
        assert_eq!(DEFAULT_FILTER, "info,rumqttd=warn");
        assert!(cli.log.is_none() && !cli.verbose);
        let v = Cli::try_parse_from(["rackpong", "-v", "demo"]).unwrap();
        assert!(v.verbose);
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(
            args.k3s.k3s.kubeconfig.as_deref(),
            Some(std::path::Path::new("k"))
        );
    }
}
