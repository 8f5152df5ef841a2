//! `rackpong run` on k3s and `rackpong operator` from the command line, as
//! far as they go without a cluster: the flags parse (no duplicate flags
//! between the flattened groups), and a missing kubeconfig or ingress fails
//! at once with one clear line naming it, before anything is started.

use std::path::Path;
use std::process::{Command, Output};

fn rackpong(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rackpong"))
        .args(args)
        .current_dir(dir)
        .env("RUST_BACKTRACE", "0")
        .env("RACKPONG_LOG", "warn")
        .env_remove("RACKPONG_INGRESS")
        .env_remove("RACKPONG_KUBECONFIG")
        .env_remove("RACKPONG_CHAOS_SECRET_FILE")
        .output()
        .unwrap()
}

fn k3s_plan() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plans/k3s.yaml")
        .display()
        .to_string()
}

/// The process failed with exactly one error line containing every `want`.
fn fails_with_one_line(out: &Output, want: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains("Caused by"),
        "the cause is repeated:\n{stderr}"
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    for w in want {
        assert!(errors[0].contains(w), "{w:?} not in {stderr}");
    }
}

#[test]
fn a_missing_kubeconfig_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexistent").join("kubeconfig");
    let missing = missing.to_str().unwrap();
    let out = rackpong(
        dir.path(),
        &[
            "run",
            &k3s_plan(),
            "--kubeconfig",
            missing,
            "--ingress",
            "http://127.0.0.1:9",
        ],
    );
    fails_with_one_line(&out, &[missing]);
    assert!(
        !dir.path().join("runs").exists(),
        "a run directory was written"
    );
}

#[test]
fn a_k3s_run_without_ingress_says_which_flag_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = rackpong(
        dir.path(),
        &["run", &k3s_plan(), "--kubeconfig", "/nonexistent"],
    );
    fails_with_one_line(&out, &["--ingress", "RACKPONG_INGRESS"]);
}

#[test]
fn run_help_lists_the_k3s_flags() {
    let dir = tempfile::tempdir().unwrap();
    let out = rackpong(dir.path(), &["run", "--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for flag in [
        "--local",
        "--kubeconfig",
        "--namespace",
        "--broker",
        "--rack",
        "--chaos-secret-file",
        "--ingress",
    ] {
        assert!(stdout.contains(flag), "{flag} missing from\n{stdout}");
    }
}

#[test]
fn the_operator_starts_from_its_flags_and_fails_clearly_without_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let out = rackpong(dir.path(), &["operator", "--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("--runs-dir") && stdout.contains("--ingress"),
        "{stdout}"
    );
    let missing = dir.path().join("nonexistent.kubeconfig");
    let missing = missing.to_str().unwrap();
    let out = rackpong(
        dir.path(),
        &[
            "operator",
            "--kubeconfig",
            missing,
            "--ingress",
            "http://127.0.0.1:9",
        ],
    );
    fails_with_one_line(&out, &[missing]);
}
