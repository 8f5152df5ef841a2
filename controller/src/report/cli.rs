//! The `report` and `compare` subcommands' flags and what they do.

use std::path::{Path, PathBuf};

use super::{JOURNAL_FILE, ReportError, compare, load, render_run, write_atomic};

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

/// `rackpong compare RUN_A RUN_B`: side by side of two runs.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// The baseline run directory (e.g. the default failure-detection profile).
    #[arg(env = "RACKPONG_COMPARE_A")]
    pub run_a: PathBuf,
    /// The run directory compared with it (e.g. demo-fast).
    #[arg(env = "RACKPONG_COMPARE_B")]
    pub run_b: PathBuf,
    /// Where to write compare.md and compare.json (default: RUN_B).
    #[arg(long, env = "RACKPONG_COMPARE_OUT")]
    pub out_dir: Option<PathBuf>,
}

/// Why `report` or `compare` failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportCliError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("the run failed its verdict\n{0}")]
    Failed(super::Verdict),
}

/// Runs `rackpong report`; prints the verdict.
pub fn report(args: &ReportArgs) -> Result<(), ReportCliError> {
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

/// Runs `rackpong compare`: prints the Markdown and writes compare.md and compare.json.
pub fn compare_runs(args: &CompareArgs) -> Result<(), ReportCliError> {
    let a = load(&args.run_a.join(JOURNAL_FILE))?;
    let b = load(&args.run_b.join(JOURNAL_FILE))?;
    let c = compare::compare(&a, &b);
    let md = compare::markdown(&c);
    let out = args.out_dir.as_deref().unwrap_or(&args.run_b);
    write_atomic(&out.join("compare.md"), &md)?;
    let json = serde_json::to_string_pretty(&c).map_err(|source| ReportError::Json {
        path: out.join("compare.json"),
        source,
    })?;
    write_atomic(&out.join("compare.json"), &(json + "\n"))?;
    print!("{md}");
    tracing::info!(dir = %Path::new(out).display(), "comparison written");
    Ok(())
}
