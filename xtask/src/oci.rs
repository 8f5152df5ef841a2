//! Writes one OCI image archive: an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/…`, through `ocidir`) packed in a tar, the
//! form `ctr images import` and k3s' air-gap import read. The index entry
//! carries both `org.opencontainers.image.ref.name` (the tag, as the OCI spec
//! wants) and `io.containerd.image.name` (the full reference, which
//! containerd's importer names the image by).

use crate::names::{Arch, Image, SOURCE, VERSION};
use crate::rootfs::{self, UID};
use ocidir::OciDir;
use ocidir::cap_std::{self, fs::Dir};
use ocidir::oci_spec::OciSpecError;
use ocidir::oci_spec::image::{self as spec, ImageConfiguration};
use ocidir::prelude::OciRead;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// containerd's annotation for the full image name on an index entry.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("OCI layout")]
    Layout(#[from] ocidir::Error),
    #[error("OCI document")]
    Spec(#[from] OciSpecError),
    #[error("writing {path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> OciError + '_ {
    move |source| OciError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Build provenance written into the labels.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The git commit the binaries were built from.
    pub revision: String,
    /// The commit time: the image's `created` and every file's mtime.
    pub created: chrono::DateTime<chrono::Utc>,
}

/// What one archive is made of.
#[derive(Debug)]
pub struct ArchiveSpec<'a> {
    pub image: Image,
    pub arch: Arch,
    pub binary: &'a [u8],
    pub ca_bundle: &'a [u8],
    pub provenance: &'a Provenance,
}

/// Writes the archive to `out` (through a temporary file renamed into place).
pub fn write_archive(a: &ArchiveSpec<'_>, out: &Path) -> Result<(), OciError> {
    let layout = tempfile::tempdir().map_err(io(out))?;
    let dir = Dir::open_ambient_dir(layout.path(), cap_std::ambient_authority())
        .map_err(io(layout.path()))?;
    let oci = OciDir::ensure(dir)?;
    write_image(&oci, a)?;
    let blobs = name_for_containerd(&oci, layout.path(), a.image)?;
    let partial = out.with_extension("tar.partial");
    pack(layout.path(), &blobs, &partial)?;
    std::fs::rename(&partial, out).map_err(io(out))
}

fn write_image(oci: &OciDir, a: &ArchiveSpec<'_>) -> Result<(), OciError> {
    let mut tar = oci.create_layer(Some(flate2::Compression::best()))?;
    let contents = rootfs::Contents {
        binary_name: a.image.binary(),
        binary: a.binary,
        ca_bundle: a.ca_bundle,
        mtime: a.provenance.created.timestamp().max(0) as u64,
    };
    let layer_err = io(Path::new("layer"));
    rootfs::write(&mut tar, &contents).map_err(layer_err)?;
    let layer = tar
        .into_inner()
        .map_err(io(Path::new("layer")))?
        .complete()?;
    let mut manifest = oci.new_empty_manifest()?.annotations(labels(a)).build()?;
    let mut config = config(a)?;
    let what = format!(
        "{} {VERSION} static {} binary",
        a.image.binary(),
        a.arch.triple()
    );
    let none: Option<HashMap<String, String>> = None;
    oci.push_layer_full(
        &mut manifest,
        &mut config,
        layer,
        none,
        &what,
        a.provenance.created,
    );
    let platform = spec::PlatformBuilder::default()
        .architecture(oci_arch(a.arch))
        .os(spec::Os::Linux)
        .build()?;
    oci.insert_manifest_and_config(manifest, config, Some(VERSION), platform)?;
    Ok(())
}

fn oci_arch(arch: Arch) -> spec::Arch {
    match arch {
        Arch::Arm64 => spec::Arch::ARM64,
        Arch::Amd64 => spec::Arch::Amd64,
    }
}

fn labels(a: &ArchiveSpec<'_>) -> HashMap<String, String> {
    let created = a
        .provenance
        .created
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    [
        (
            "org.opencontainers.image.title",
            a.image.binary().to_string(),
        ),
        (
            "org.opencontainers.image.description",
            a.image.description().to_string(),
        ),
        ("org.opencontainers.image.version", VERSION.to_string()),
        (
            "org.opencontainers.image.revision",
            a.provenance.revision.clone(),
        ),
        ("org.opencontainers.image.source", SOURCE.to_string()),
        (
            "org.opencontainers.image.licenses",
            "Apache-2.0".to_string(),
        ),
        ("org.opencontainers.image.created", created),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn config(a: &ArchiveSpec<'_>) -> Result<ImageConfiguration, OciError> {
    let entrypoint = format!("/{}/{}", rootfs::BIN_DIR, a.image.binary());
    let runtime = spec::ConfigBuilder::default()
        .user(format!("{UID}:{UID}"))
        .entrypoint(vec![entrypoint])
        .cmd(vec!["--help".to_string()])
        .env(vec![
            format!("PATH=/{}", rootfs::BIN_DIR),
            format!("SSL_CERT_FILE=/{}", rootfs::CA_BUNDLE),
        ])
        .working_dir("/")
        .labels(labels(a))
        .build()?;
    Ok(spec::ImageConfigurationBuilder::default()
        .created(
            a.provenance
                .created
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
        .architecture(oci_arch(a.arch))
        .os(spec::Os::Linux)
        .config(runtime)
        .rootfs(
            spec::RootFsBuilder::default()
                .typ("layers")
                .diff_ids(Vec::<String>::new())
                .build()?,
        )
        .build()?)
}

/// Names the index entries for containerd; returns the blobs the image
/// references (manifest, config, layers), which are all the archive carries:
/// `new_empty_manifest` leaves an unreferenced empty config behind.
fn name_for_containerd(oci: &OciDir, layout: &Path, image: Image) -> Result<Vec<String>, OciError> {
    let mut index = oci.read_index()?;
    let mut manifests = index.manifests().clone();
    let mut blobs = Vec::new();
    for m in &manifests {
        let manifest: spec::ImageManifest = oci.read_json_blob(m)?;
        blobs.push(m.digest().digest().to_string());
        blobs.push(manifest.config().digest().digest().to_string());
        blobs.extend(
            manifest
                .layers()
                .iter()
                .map(|l| l.digest().digest().to_string()),
        );
    }
    for m in &mut manifests {
        let mut annotations = m.annotations().clone().unwrap_or_default();
        annotations.insert(CONTAINERD_NAME.to_string(), image.reference());
        m.set_annotations(Some(annotations));
    }
    index.set_manifests(manifests);
    index.to_file(layout.join("index.json"))?;
    blobs.sort();
    Ok(blobs)
}

/// Packs the layout (its referenced `blobs`, by hex digest) in a fixed order
/// with fixed metadata, so the archive depends only on its contents.
fn pack(layout: &Path, blobs: &[String], out: &Path) -> Result<(), OciError> {
    let file = File::create(out).map_err(io(out))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    tar.mode(tar::HeaderMode::Deterministic);
    for dir in ["blobs", "blobs/sha256"] {
        tar.append_dir(dir, layout.join(dir)).map_err(io(out))?;
    }
    for name in ["oci-layout", "index.json"] {
        tar.append_path_with_name(layout.join(name), name)
            .map_err(io(out))?;
    }
    for blob in blobs {
        let name = Path::new("blobs/sha256").join(blob);
        tar.append_path_with_name(layout.join(&name), &name)
            .map_err(io(out))?;
    }
    let mut w = tar.into_inner().map_err(io(out))?;
    w.flush().map_err(io(out))
}
