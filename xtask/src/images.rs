//! `cargo xtask images`: builds the static binaries once per architecture and
//! writes one archive per image and architecture into the output directory.

use crate::compile::{self, CompileError};
use crate::names::{Arch, Image};
use crate::oci::{self, ArchiveSpec, OciError, Provenance};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error("cannot read {path} (build it first, or drop --no-build)")]
    Input {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create {path}")]
    Output {
        path: String,
        source: std::io::Error,
    },
    #[error("writing {path}")]
    Oci { path: String, source: OciError },
}

/// What to build and where.
#[derive(Debug)]
pub struct Request {
    pub images: Vec<Image>,
    pub arches: Vec<Arch>,
    pub profile: String,
    pub target_dir: PathBuf,
    pub out_dir: PathBuf,
    pub ca_bundle: PathBuf,
    pub build: bool,
}

/// One archive written.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    pub bytes: u64,
}

pub fn run(req: &Request) -> Result<Vec<Written>, ImagesError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| ImagesError::Input {
            path: path.display().to_string(),
            source,
        })
    };
    let ca_bundle = read(&req.ca_bundle)?;
    let provenance = provenance();
    std::fs::create_dir_all(&req.out_dir).map_err(|source| ImagesError::Output {
        path: req.out_dir.display().to_string(),
        source,
    })?;
    let mut written = Vec::new();
    for &arch in &req.arches {
        for &image in &req.images {
            if req.build {
                compile::build(arch, &req.profile, image)?;
            }
            let binary = read(&compile::binary_path(
                &req.target_dir,
                arch,
                &req.profile,
                image,
            ))?;
            let path = req.out_dir.join(image.archive(arch));
            let spec = ArchiveSpec {
                image,
                arch,
                binary: &binary,
                ca_bundle: &ca_bundle,
                provenance: &provenance,
            };
            oci::write_archive(&spec, &path).map_err(|source| ImagesError::Oci {
                path: path.display().to_string(),
                source,
            })?;
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            tracing::info!(path = %path.display(), bytes, reference = %image.reference(), "image archive written");
            written.push(Written { path, bytes });
        }
    }
    Ok(written)
}

/// The commit and its time, from git; `SOURCE_DATE_EPOCH` wins for the time
/// (reproducible builds), and outside a git checkout the revision is "unknown".
fn provenance() -> Provenance {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let revision = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .or_else(|| git(&["log", "-1", "--format=%ct"]))
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    let created = chrono::DateTime::from_timestamp(epoch, 0).unwrap_or_default();
    Provenance { revision, created }
}
