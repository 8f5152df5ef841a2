//! The files of a scratch-style image: the static binary, CA certificates for
//! TLS to the broker, and `/etc/passwd` / `/etc/group` naming the non-root
//! user 65532 the image runs as. Entries are written with fixed owners, modes
//! and times so the layer depends only on its inputs.

use std::io::Write;
use std::path::Path;

/// The user and group the images run as (distroless' `nonroot`).
pub const UID: u64 = 65532;

/// Where the binary goes inside the image.
pub const BIN_DIR: &str = "usr/local/bin";

/// The CA bundle inside the image (rustls-native-certs reads it from here).
pub const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnonroot:x:65532:\n";

/// What goes into the layer.
#[derive(Debug)]
pub struct Contents<'a> {
    pub binary_name: &'a str,
    pub binary: &'a [u8],
    pub ca_bundle: &'a [u8],
    /// Modification time of every entry (seconds since the epoch).
    pub mtime: u64,
}

/// Appends the image's files to `tar`.
pub fn write<W: Write>(tar: &mut tar::Builder<W>, c: &Contents<'_>) -> std::io::Result<()> {
    let root_dirs = [
        "etc",
        "etc/ssl",
        "etc/ssl/certs",
        "usr",
        "usr/local",
        BIN_DIR,
        "home",
    ];
    for dir in root_dirs {
        append(tar, c.mtime, Entry::dir(dir, 0o755, 0))?;
    }
    append(tar, c.mtime, Entry::dir("home/nonroot", 0o700, UID))?;
    append(tar, c.mtime, Entry::dir("tmp", 0o1777, 0))?;
    append(
        tar,
        c.mtime,
        Entry::file("etc/passwd", 0o644, PASSWD.as_bytes()),
    )?;
    append(
        tar,
        c.mtime,
        Entry::file("etc/group", 0o644, GROUP.as_bytes()),
    )?;
    append(tar, c.mtime, Entry::file(CA_BUNDLE, 0o644, c.ca_bundle))?;
    let bin = format!("{BIN_DIR}/{}", c.binary_name);
    append(tar, c.mtime, Entry::file(&bin, 0o755, c.binary))
}

struct Entry<'a> {
    path: &'a str,
    mode: u32,
    uid: u64,
    data: Option<&'a [u8]>,
}

impl<'a> Entry<'a> {
    fn dir(path: &'a str, mode: u32, uid: u64) -> Self {
        Entry {
            path,
            mode,
            uid,
            data: None,
        }
    }
    fn file(path: &'a str, mode: u32, data: &'a [u8]) -> Self {
        Entry {
            path,
            mode,
            uid: 0,
            data: Some(data),
        }
    }
}

fn append<W: Write>(tar: &mut tar::Builder<W>, mtime: u64, e: Entry<'_>) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_mode(e.mode);
    header.set_uid(e.uid);
    header.set_gid(e.uid);
    header.set_mtime(mtime);
    let data = e.data.unwrap_or_default();
    header.set_size(data.len() as u64);
    header.set_entry_type(if e.data.is_some() {
        tar::EntryType::Regular
    } else {
        tar::EntryType::Directory
    });
    tar.append_data(&mut header, Path::new(e.path), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_holds_the_binary_certificates_and_the_nonroot_user() {
        let mut tar = tar::Builder::new(Vec::new());
        let c = Contents {
            binary_name: "rackpong-agent",
            binary: b"\x7fELF",
            ca_bundle: b"PEM",
            mtime: 1,
        };
        write(&mut tar, &c).unwrap();
        let bytes = tar.into_inner().unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            seen.push((
                entry.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                h.uid().unwrap(),
            ));
        }
        assert!(seen.contains(&("usr/local/bin/rackpong-agent".into(), 0o755, 0)));
        assert!(seen.contains(&(CA_BUNDLE.into(), 0o644, 0)));
        assert!(seen.contains(&("home/nonroot".into(), 0o700, UID)));
        let passwd = seen.iter().position(|s| s.0 == "etc/passwd");
        assert!(passwd.is_some(), "{seen:?}");
        assert!(PASSWD.contains(":65532:65532:"));
    }
}
