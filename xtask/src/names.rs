//! Image names, tags and archive file names, all derived from the workspace
//! version so that the xtask, `k3s/` and `ansible/` cannot drift apart.

use std::fmt;

/// The workspace version: the images' tag and the archives' version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The registry path k3s knows the images by (they are imported, never pulled).
pub const REGISTRY: &str = "docker.io/rackpong";

/// Where the project's sources live (the `org.opencontainers.image.source` label).
pub const SOURCE: &str = env!("CARGO_PKG_REPOSITORY");

/// One of the two images rackpong ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Image {
    /// `rackpong-agent`: the node agent and the ping-pong worker.
    Agent,
    /// `rackpong`: the controller, run in-cluster as the operator.
    Controller,
}

impl Image {
    pub const ALL: [Image; 2] = [Image::Agent, Image::Controller];

    /// The cargo package that builds the image's binary.
    pub fn package(self) -> &'static str {
        match self {
            Image::Agent => "rackpong-agent",
            Image::Controller => "rackpong-controller",
        }
    }

    /// The binary (and the image's entrypoint).
    pub fn binary(self) -> &'static str {
        match self {
            Image::Agent => "rackpong-agent",
            Image::Controller => "rackpong",
        }
    }

    /// The repository part of the reference, e.g. `docker.io/rackpong/agent`.
    pub fn repository(self) -> String {
        let short = match self {
            Image::Agent => "agent",
            Image::Controller => "controller",
        };
        format!("{REGISTRY}/{short}")
    }

    /// The full reference k3s runs, e.g. `docker.io/rackpong/agent:0.1.0`.
    pub fn reference(self) -> String {
        format!("{}:{VERSION}", self.repository())
    }

    /// The archive's file name, e.g. `rackpong-agent-0.1.0-arm64.oci.tar`.
    pub fn archive(self, arch: Arch) -> String {
        let stem = match self {
            Image::Agent => "rackpong-agent",
            Image::Controller => "rackpong-controller",
        };
        format!("{stem}-{VERSION}-{arch}.oci.tar")
    }

    pub fn description(self) -> &'static str {
        match self {
            Image::Agent => "rackpong node agent and ping-pong worker",
            Image::Controller => "rackpong chaos controller and ChaosExperiment operator",
        }
    }
}

impl fmt::Display for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.binary())
    }
}

/// A CPU architecture, in OCI's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// Raspberry Pi 3/4/5 with a 64-bit OS.
    Arm64,
    /// x86-64 (laptops, CI, mixed racks).
    Amd64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::Arm64, Arch::Amd64];

    /// The Rust target the static binary is built for.
    pub fn triple(self) -> &'static str {
        match self {
            Arch::Arm64 => "aarch64-unknown-linux-musl",
            Arch::Amd64 => "x86_64-unknown-linux-musl",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::Arm64 => "arm64",
            Arch::Amd64 => "amd64",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_workspace_version() {
        assert_eq!(
            Image::Agent.reference(),
            format!("docker.io/rackpong/agent:{VERSION}")
        );
        assert_eq!(
            Image::Controller.archive(Arch::Arm64),
            format!("rackpong-controller-{VERSION}-arm64.oci.tar")
        );
        assert_eq!(Arch::Amd64.triple(), "x86_64-unknown-linux-musl");
    }
}
