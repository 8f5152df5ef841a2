//! Golden-file tests of the reports: every fixture journal in
//! `tests/fixtures/journals/` renders to exactly the files in `tests/golden/`
//! (run with `RACKPONG_BLESS=1` to regenerate them after an intended change),
//! twice in a row identically; and `docs/report.schema.json` is the schema
//! generated from the report types.

use std::path::{Path, PathBuf};

use rackpong_controller::report::{self, ReportError};

const FIXTURES: [&str; 9] = [
    "clean",
    "slow",
    "refused",
    "aborted",
    "node-lost",
    "truncated",
    "crashed",
    "empty-run",
    "engine-fake",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn journal(name: &str) -> PathBuf {
    root()
        .join("tests/fixtures/journals")
        .join(name)
        .join("journal.jsonl")
}

fn blessing() -> bool {
    std::env::var_os("RACKPONG_BLESS").is_some_and(|v| v == "1")
}

/// Compares `actual` with the golden file, or rewrites it when blessing.
fn check_golden(path: &Path, actual: &str) {
    if blessing() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with RACKPONG_BLESS=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or(0, |i| i + 1);
        panic!(
            "{} differs from the rendered output (first different line: {line}); \
             rerun with RACKPONG_BLESS=1 if the change is intended",
            path.display()
        );
    }
}

#[test]
fn fixtures_render_exactly_to_the_goldens() {
    for name in FIXTURES {
        let r = report::load(&journal(name)).unwrap();
        let rendered = report::render(&r).unwrap();
        for (file, contents) in rendered.files() {
            check_golden(&root().join("tests/golden").join(name).join(file), contents);
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    for name in FIXTURES {
        let once = report::render(&report::load(&journal(name)).unwrap()).unwrap();
        let twice = report::render(&report::load(&journal(name)).unwrap()).unwrap();
        assert_eq!(once, twice, "{name} rendered differently twice");
    }
}

#[test]
fn compare_renders_exactly_to_the_golden() {
    let a = report::load(&journal("slow")).unwrap();
    let b = report::load(&journal("clean")).unwrap();
    let c = report::compare(&a, &b);
    check_golden(
        &root().join("tests/golden/compare/compare.md"),
        &report::compare_markdown(&c),
    );
}

#[test]
fn committed_schema_is_the_generated_one() {
    let path = root().join("../docs/report.schema.json");
    check_golden(&path, &report::json_schema());
}

#[test]
fn render_run_writes_the_four_files_and_returns_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(journal("node-lost"), dir.path().join("journal.jsonl")).unwrap();
    let verdict = report::render_run(dir.path()).unwrap();
    assert!(!verdict.passed);
    let kinds: Vec<&str> = verdict.failures.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, ["steady-state", "slo"]);
    let expected = report::render(&report::load(&journal("node-lost")).unwrap()).unwrap();
    for (file, contents) in expected.files() {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(file)).unwrap(),
            contents,
            "{file}"
        );
    }
}

#[test]
fn a_file_that_is_not_a_journal_fails_naming_file_and_line() {
    let path = journal("not-rackpong");
    let err = report::load(&path).unwrap_err();
    assert!(
        matches!(err, ReportError::NotAJournal { line: 1, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}:1: not a rackpong journal", path.display())),
        "{text}"
    );
}

#[test]
fn report_json_reads_back_into_the_same_report() {
    for name in FIXTURES {
        let r = report::load(&journal(name)).unwrap();
        let json = report::render(&r).unwrap().json;
        let back: report::Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r, "{name}");
        assert_eq!(back.schema_version, report::SCHEMA_VERSION);
    }
}
