//! Repository tasks for rackpong, run as `cargo xtask …` (alias in
//! `.cargo/config.toml`).
//!
//! Layout:
//! - `names`: the one source of truth for image names, tags and archive file
//!   names, derived from the workspace version.
//! - `compile`: builds the static musl binaries the images are made from.
//! - `rootfs`: the files of a scratch-style image (binary, CA certificates,
//!   a non-root user).
//! - `oci`: writes one OCI image archive (an OCI layout in a tar), the form
//!   k3s imports from its images directory.
//! - `images`: `cargo xtask images`, the binaries built once per arch, then archived.
//! - `consistency`: checks that `k3s/` and `ansible/` name the same images.

pub mod compile;
pub mod consistency;
pub mod images;
pub mod names;
pub mod oci;
pub mod rootfs;
