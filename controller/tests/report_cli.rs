//! The `rackpong report` and `rackpong compare` commands, run as the real
//! binary on copies of the fixture journals in temporary directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/journals")
        .join(name)
        .join("journal.jsonl")
}

fn run_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture(name), dir.join("journal.jsonl")).unwrap();
    dir
}

fn rackpong(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rackpong"))
        .args(["--log", "warn"])
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

#[test]
fn report_writes_all_files_and_gates_on_the_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_dir(tmp.path(), "node-lost");
    let d = dir.to_str().unwrap();
    let out = rackpong(&["report", d]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));
    for f in ["report.json", "report.md", "report.html", "junit.xml"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let gated = rackpong(&["report", "--fail-on-verdict", d]);
    assert!(!gated.status.success());
    assert!(
        String::from_utf8_lossy(&gated.stderr).contains("[slo] f1 (node-kill)"),
        "{gated:?}"
    );
}

#[test]
fn report_of_a_non_journal_fails_with_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_dir(tmp.path(), "not-rackpong");
    let out = rackpong(&["report", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not-rackpong/journal.jsonl:1: not a rackpong journal"),
        "{err}"
    );
    assert!(
        !dir.join("report.json").exists(),
        "nothing is written for a bad journal"
    );
}

#[test]
fn compare_prints_and_writes_the_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let a = run_dir(tmp.path(), "slow");
    let b = run_dir(tmp.path(), "clean");
    let out = rackpong(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout);
    let written = std::fs::read_to_string(b.join("compare.md")).unwrap();
    assert_eq!(printed, written);
    assert!(written.contains("| pod-kill | total |") && written.contains("larger than spread"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("compare.json")).unwrap()).unwrap();
    assert_eq!(json["run_a"]["detection_profile"], "default");
}
