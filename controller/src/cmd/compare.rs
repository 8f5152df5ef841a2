//! `rackpong compare RUN_A RUN_B`: two runs side by side, per fault kind and
//! phase; prints the Markdown and writes compare.md and compare.json.

use std::path::PathBuf;

use crate::report::ReportError;

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

/// Runs `rackpong compare`.
pub fn run(args: &CompareArgs) -> Result<(), ReportError> {
    let out = args.out_dir.as_deref().unwrap_or(&args.run_b);
    let md = crate::report::compare_dirs(&args.run_a, &args.run_b, out)?;
    print!("{md}");
    tracing::info!(dir = %out.display(), "comparison written");
    Ok(())
}
