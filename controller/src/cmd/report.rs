//! `rackpong report RUN_DIR`: re-render a run's reports from its journal and
//! print the verdict.

use std::path::PathBuf;

use crate::report::{ReportError, Verdict, render_run};

/// `rackpong report RUN_DIR`: re-render a run's reports from its journal.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The run directory holding `journal.jsonl`; report.json, report.md,
    /// report.html and junit.xml are (re)written there.
    #[arg(env = "RACKPONG_RUN_DIR")]
    pub run_dir: PathBuf,
    /// Exit non-zero when the run's verdict is failed (for CI gates).
    #[arg(long, env = "RACKPONG_REPORT_FAIL_ON_VERDICT")]
    pub fail_on_verdict: bool,
}

/// Why `report` or `compare` failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportCliError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("the run failed its verdict\n{0}")]
    Failed(Verdict),
}

/// Runs `rackpong report`; prints the verdict.
pub fn run(args: &ReportArgs) -> Result<(), ReportCliError> {
    let verdict = render_run(&args.run_dir)?;
    println!(
        "{}: wrote report.json, report.md, report.html, junit.xml\n{verdict}",
        args.run_dir.display()
    );
    if args.fail_on_verdict && !verdict.passed {
        return Err(ReportCliError::Failed(verdict));
    }
    Ok(())
}
