//! The chaos flags: off by default (nothing is set up), the secret comes only
//! from a private, non-empty file, and dry run swaps in the logging runner.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use clap::Parser;
use rackpong_agent::chaos::{ChaosArgs, ChaosError, SecretError};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    chaos: ChaosArgs,
}

fn parse(args: &[&str]) -> ChaosArgs {
    Cli::try_parse_from(std::iter::once("node").chain(args.iter().copied()))
        .unwrap()
        .chaos
}

fn secret_file(dir: &Path, mode: u32) -> String {
    let p = dir.join("chaos.key");
    std::fs::write(&p, "k3y\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn chaos_is_off_unless_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(dir.path(), 0o600);
    assert!(parse(&[]).build().unwrap().is_none());
    // A secret alone does not enable anything.
    assert!(
        parse(&["--chaos-secret-file", &key])
            .build()
            .unwrap()
            .is_none()
    );
}

#[test]
fn enabled_without_a_secret_file_is_refused() {
    let err = parse(&["--enable-chaos"]).build().unwrap_err();
    assert!(matches!(err, ChaosError::NoSecretFile), "{err}");
}

#[test]
fn secret_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(dir.path(), 0o644);
    let err = parse(&["--enable-chaos", "--chaos-secret-file", &key])
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ChaosError::Secret(SecretError::TooOpen { mode: 0o644, .. })
        ),
        "{err}"
    );
}

#[test]
fn enabled_with_a_private_secret_builds_the_real_or_dry_runner() {
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(dir.path(), 0o600);
    let real = parse(&[
        "--enable-chaos",
        "--chaos-secret-file",
        &key,
        "--chaos-uplink",
        "eth0",
    ])
    .build()
    .unwrap()
    .expect("enabled");
    assert_eq!(real.config.secret.as_bytes(), b"k3y");
    assert_eq!(real.config.uplink.as_deref(), Some("eth0"));
    assert!(format!("{:?}", real.runner).starts_with("SystemRunner"));
    assert!(real.config.state_file.is_some());

    let dry = parse(&[
        "--enable-chaos",
        "--chaos-secret-file",
        &key,
        "--chaos-dry-run",
    ])
    .build()
    .unwrap()
    .expect("enabled");
    assert!(format!("{:?}", dry.runner).starts_with("DryRunRunner"));
    assert!(
        dry.config.state_file.is_none(),
        "dry run keeps state in memory"
    );
}
