//! Checks that the manifests in `k3s/` and the Ansible images role name the
//! images this xtask builds, so a version bump cannot leave one behind.

use crate::names::{Image, VERSION};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not the expected YAML")]
    Yaml {
        path: String,
        source: Box<serde_saphyr::Error>,
    },
    #[error("{path}: {what}")]
    Drift { path: String, what: String },
}

const KUSTOMIZATION: &str = "k3s/base/kustomization.yaml";
const ANSIBLE_DEFAULTS: &str = "ansible/roles/rackpong_images/defaults/main.yml";

#[derive(Debug, Deserialize)]
struct Kustomization {
    #[serde(default)]
    images: Vec<KustomizeImage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KustomizeImage {
    name: String,
    new_name: Option<String>,
    new_tag: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AnsibleDefaults {
    rackpong_version: String,
}

fn read<T: for<'de> Deserialize<'de>>(root: &Path, rel: &str) -> Result<T, DriftError> {
    let path = root.join(rel);
    let text = std::fs::read_to_string(&path).map_err(|source| DriftError::Read {
        path: rel.into(),
        source,
    })?;
    serde_saphyr::from_str(&text).map_err(|source| DriftError::Yaml {
        path: rel.into(),
        source: Box::new(source),
    })
}

/// Every disagreement between the repository's files and the names here.
pub fn check(root: &Path) -> Result<(), DriftError> {
    let k: Kustomization = read(root, KUSTOMIZATION)?;
    for image in Image::ALL {
        let found = k.images.iter().find(|i| i.name == image.package());
        let want = (Some(image.repository()), Some(VERSION.to_string()));
        match found {
            Some(i) if (i.new_name.clone(), i.new_tag.clone()) == want => {}
            _ => {
                let what = format!(
                    "`images` must map {} to {}",
                    image.package(),
                    image.reference()
                );
                return Err(DriftError::Drift {
                    path: KUSTOMIZATION.into(),
                    what,
                });
            }
        }
    }
    let a: AnsibleDefaults = read(root, ANSIBLE_DEFAULTS)?;
    if a.rackpong_version != VERSION {
        let what = format!(
            "rackpong_version is {:?}, the workspace is {VERSION}",
            a.rackpong_version
        );
        return Err(DriftError::Drift {
            path: ANSIBLE_DEFAULTS.into(),
            what,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
    }

    #[test]
    fn the_repository_names_the_images_this_version_builds() {
        check(repo()).unwrap();
    }

    #[test]
    fn a_stale_tag_is_named_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("k3s/base")).unwrap();
        let stale = "images:\n  - {name: rackpong-agent, newName: docker.io/rackpong/agent, newTag: 0.0.9}\n";
        std::fs::write(dir.path().join(KUSTOMIZATION), stale).unwrap();
        let err = check(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(KUSTOMIZATION) && err.contains("rackpong-agent"),
            "{err}"
        );
    }
}
