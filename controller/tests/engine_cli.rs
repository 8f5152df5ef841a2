//! `rackpong run` from the command line: a dry run prints the schedule and
//! touches nothing; an invalid plan fails before anything starts, naming the
//! file, the line and the reason.

use std::path::Path;
use std::process::Command;

fn rackpong(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rackpong"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .env("RACKPONG_LOG", "warn")
        .output()
        .unwrap()
}

fn demo_plan() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plans/demo.yaml")
        .display()
        .to_string()
}

#[test]
fn dry_run_prints_the_schedule_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = rackpong(dir.path(), &["run", &demo_plan(), "--dry-run", "--local"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("would inject (nothing is touched in a dry run)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("power-off-a-node #1: node-kill power-relay"),
        "{stdout}"
    );
    assert!(
        !dir.path().join("runs").exists(),
        "a dry run wrote a run directory"
    );
}

#[test]
fn an_invalid_plan_fails_naming_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("bad.yaml");
    std::fs::write(
        &plan,
        "name: x\nduration: 10s\nsteady-state: {min-ready-workers: 1, min-delivery-rate: 0.9}\n\
         recovery-timeout: 5s\nfaults:\n  - name: a\n    at: 1s\n    pod-kill:\n      percent: 140\n",
    )
    .unwrap();
    let out = rackpong(dir.path(), &["run", plan.to_str().unwrap(), "--local"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:9:16: invalid plan: percent must be between 1 and 100 (got 140)",
        plan.display()
    );
    assert!(stderr.contains(&want), "{stderr}");
    assert!(!dir.path().join("runs").exists());
}
