//! The shared HMAC secret of node-chaos commands: read from a file (never a
//! flag, which `ps` would show), refused when the file is empty or open to
//! others, or to a group other than the reader's own. (A Kubernetes Secret
//! volume with `fsGroup` is root-owned, mode 0440, group = the pod's own
//! group: that is accepted; a file any other group can read is not.) The controller loads its copy with the same function so both
//! sides trim it identically.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why the secret file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("chaos secret file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "chaos secret file {path} has mode {mode:04o}: it must not be accessible by others, nor by a group other than the reader's own (chmod 600)"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("chaos secret file {path} is empty")]
    Empty { path: PathBuf },
}

/// The shared secret. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(<{} bytes>)", self.0.len())
    }
}

impl Secret {
    /// A secret from bytes (tests, or a caller that got it elsewhere safely).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Reads the secret from `path`: trailing whitespace (the newline editors
    /// and `echo` add) is trimmed; any permission for others, group write, or
    /// group read by a group that is not the reader's own refuses it.
    pub fn load(path: &Path) -> Result<Self, SecretError> {
        let read_err = |source| SecretError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        let mode = meta.permissions().mode() & 0o7777;
        let own_group = meta.gid() == nix::unistd::getegid().as_raw();
        if mode & 0o007 != 0 || mode & 0o020 != 0 || (mode & 0o070 != 0 && !own_group) {
            return Err(SecretError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
        let mut bytes = std::fs::read(path).map_err(read_err)?;
        while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
            bytes.pop();
        }
        if bytes.is_empty() {
            return Err(SecretError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, content: &[u8], mode: u32) -> PathBuf {
        let p = dir.join("secret");
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn loads_a_private_file_and_trims_the_newline() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secret::load(&write(dir.path(), b"s3cret\n", 0o600)).unwrap();
        assert_eq!(s.as_bytes(), b"s3cret");
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn accepts_group_read_by_its_own_group_as_a_kubernetes_secret_volume_gives() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), b"k8s", 0o440);
        let egid = nix::unistd::getegid();
        nix::unistd::chown(&p, None, Some(egid)).unwrap();
        assert_eq!(Secret::load(&p).unwrap().as_bytes(), b"k8s");
        // Group write is still refused: the group could replace the secret.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o460)).unwrap();
        assert!(matches!(Secret::load(&p), Err(SecretError::TooOpen { .. })));
    }

    #[test]
    fn refuses_group_read_by_a_foreign_group() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), b"x", 0o640);
        let foreign = if nix::unistd::getegid().as_raw() == 65534 {
            65533
        } else {
            65534
        };
        if nix::unistd::chown(&p, None, Some(nix::unistd::Gid::from_raw(foreign))).is_err() {
            // Not root: a file of ours always has one of our groups, and
            // changing it to a foreign one needs root; the rule is covered
            // by the own-group test above then.
            return;
        }
        assert!(matches!(Secret::load(&p), Err(SecretError::TooOpen { .. })));
    }

    #[test]
    fn refuses_other_access() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o604, 0o602, 0o644, 0o660] {
            let err = Secret::load(&write(dir.path(), b"x", mode)).unwrap_err();
            assert!(matches!(err, SecretError::TooOpen { .. }), "{mode:o}");
            assert!(err.to_string().contains("chmod 600"));
        }
    }

    #[test]
    fn refuses_empty_or_missing() {
        let dir = tempfile::tempdir().unwrap();
        let err = Secret::load(&write(dir.path(), b" \n", 0o600)).unwrap_err();
        assert!(matches!(err, SecretError::Empty { .. }));
        let err = Secret::load(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(err, SecretError::Read { .. }));
    }
}
