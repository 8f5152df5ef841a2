//! Run reports, rendered from `runs/<run-id>/journal.jsonl` alone:
//! `report.json` (schema `docs/report.schema.json`), `report.md`,
//! a self-contained `report.html` with SVG charts, and `junit.xml`; plus the
//! side-by-side comparison of two runs. The same journal always renders to
//! byte-identical files.

mod build;
mod charts;
mod cold;
pub(crate) mod compare;
mod findings;
mod fmt;
mod html;
mod junit;
mod markdown;
pub(crate) mod model;
pub mod parse;
pub(crate) mod phases;
pub(crate) mod stats;
mod verdict;

use std::path::{Path, PathBuf};

pub use compare::{Comparison, compare, markdown as compare_markdown};
pub use model::{Report, SCHEMA_VERSION, Verdict, VerdictFailure};

/// The journal's file name inside a run directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    NotAJournal {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{}: cannot serialize the report: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("chart {chart}: {reason}")]
    Chart { chart: &'static str, reason: String },
}

/// The four rendered files of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub json: String,
    pub markdown: String,
    pub html: String,
    pub junit: String,
}

impl Rendered {
    /// `(file name, contents)` of every output, in a fixed order.
    pub fn files(&self) -> [(&'static str, &str); 4] {
        [
            ("report.json", &self.json),
            ("report.md", &self.markdown),
            ("report.html", &self.html),
            ("junit.xml", &self.junit),
        ]
    }
}

/// Reads a journal file and builds its report.
pub fn load(journal: &Path) -> Result<Report, ReportError> {
    Ok(from_journal(&parse::read_journal(journal)?))
}

/// Builds the report of a journal already read by [`parse::read_journal`].
pub fn from_journal(read: &parse::ReadJournal) -> Report {
    build::build(read)
}

/// Renders every output of a report to strings.
pub fn render(report: &Report) -> Result<Rendered, ReportError> {
    let json = serde_json::to_string_pretty(report).map_err(|source| ReportError::Json {
        path: PathBuf::from("report.json"),
        source,
    })? + "\n";
    Ok(Rendered {
        json,
        markdown: markdown::render(report),
        html: html::render(report)?,
        junit: junit::render(report),
    })
}

/// Re-renders `report.json`, `report.md`, `report.html` and `junit.xml` in
/// `run_dir` from its journal and returns the run's verdict.
pub fn render_run(run_dir: &Path) -> Result<Verdict, ReportError> {
    let report = load(&run_dir.join(JOURNAL_FILE))?;
    let rendered = render(&report)?;
    for (name, contents) in rendered.files() {
        write_atomic(&run_dir.join(name), contents)?;
    }
    tracing::info!(run = %report.run.run_id, dir = %run_dir.display(), passed = report.verdict.passed, "report rendered");
    Ok(report.verdict)
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
pub(crate) fn write_atomic(path: &Path, contents: &str) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, contents).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The JSON Schema of `report.json`, as committed in `docs/report.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Report);
    serde_json::to_string_pretty(&schema).expect("a schema always serializes") + "\n"
}

/// Compares the runs in `run_a` and `run_b`, writes compare.md and
/// compare.json into `out`, and returns the Markdown.
pub fn compare_dirs(run_a: &Path, run_b: &Path, out: &Path) -> Result<String, ReportError> {
    let a = load(&run_a.join(JOURNAL_FILE))?;
    let b = load(&run_b.join(JOURNAL_FILE))?;
    let c = compare::compare(&a, &b);
    let md = compare::markdown(&c);
    write_atomic(&out.join("compare.md"), &md)?;
    let json = serde_json::to_string_pretty(&c).map_err(|source| ReportError::Json {
        path: out.join("compare.json"),
        source,
    })?;
    write_atomic(&out.join("compare.json"), &(json + "\n"))?;
    Ok(md)
}
