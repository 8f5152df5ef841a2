//! Builds the static musl binaries the images are made from, with the
//! `dist` profile (the one that ships), through the same cargo that runs us.

use crate::names::{Arch, Image};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("cannot run cargo")]
    Spawn(#[source] std::io::Error),
    #[error("cargo build for {triple} failed ({status})")]
    Failed {
        triple: String,
        status: std::process::ExitStatus,
    },
}

/// Where cargo leaves `image`'s binary for `arch` with `profile`.
pub fn binary_path(target_dir: &Path, arch: Arch, profile: &str, image: Image) -> PathBuf {
    target_dir
        .join(arch.triple())
        .join(profile)
        .join(image.binary())
}

/// Builds `image`'s binary for `arch`. One cargo run per package: built
/// together, cargo would unify features and the Pi agent would carry the
/// controller's embedded broker. The binaries land where `.ci/` and the
/// smoke tests look for them, so each is built once.
pub fn build(arch: Arch, profile: &str, image: Image) -> Result<(), CompileError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--locked",
        "--profile",
        profile,
        "--target",
        arch.triple(),
    ]);
    cmd.args(["-p", image.package(), "--bin", image.binary()]);
    tracing::info!(
        triple = arch.triple(),
        profile,
        package = image.package(),
        "building static binary"
    );
    let status = cmd.status().map_err(CompileError::Spawn)?;
    if status.success() {
        Ok(())
    } else {
        Err(CompileError::Failed {
            triple: arch.triple().into(),
            status,
        })
    }
}
