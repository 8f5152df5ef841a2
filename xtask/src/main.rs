use anyhow::Context;
use clap::{Parser, Subcommand};
use rackpong_xtask::names::{Arch, Image};
use rackpong_xtask::{compile, consistency, images};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Repository tasks for rackpong (`cargo xtask …`).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build the OCI image archives (no Docker, no registry) from the static musl binaries.
    Images {
        /// Architectures to build (default: all).
        #[arg(
            long = "arch",
            value_enum,
            env = "RACKPONG_IMAGE_ARCH",
            value_delimiter = ','
        )]
        arches: Vec<Arch>,
        /// Images to build (default: all).
        #[arg(
            long = "image",
            value_enum,
            env = "RACKPONG_IMAGE",
            value_delimiter = ','
        )]
        images: Vec<Image>,
        /// Where the archives go; k3s/ and ansible/ expect dist/images.
        #[arg(long, env = "RACKPONG_IMAGE_OUT", default_value = "dist/images")]
        out: PathBuf,
        /// The cargo profile of the binaries.
        #[arg(long, env = "RACKPONG_IMAGE_PROFILE", default_value = "dist")]
        profile: String,
        /// Cargo's target directory.
        #[arg(long, env = "CARGO_TARGET_DIR", default_value = "target")]
        target_dir: PathBuf,
        /// The CA certificates put into the image.
        #[arg(
            long,
            env = "RACKPONG_CA_BUNDLE",
            default_value = "/etc/ssl/certs/ca-certificates.crt"
        )]
        ca_bundle: PathBuf,
        /// Use binaries already built instead of running cargo build.
        #[arg(long, env = "RACKPONG_IMAGE_NO_BUILD")]
        no_build: bool,
    },
    /// Print image, arch, archive file, reference and binary path, one line each (for scripts).
    Names {
        /// The cargo profile of the binaries.
        #[arg(long, env = "RACKPONG_IMAGE_PROFILE", default_value = "dist")]
        profile: String,
        /// Cargo's target directory.
        #[arg(long, env = "CARGO_TARGET_DIR", default_value = "target")]
        target_dir: PathBuf,
    },
    /// Check that k3s/ and ansible/ name the images of this workspace version.
    Check,
}

fn main() -> anyhow::Result<()> {
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
    match Cli::parse().command {
        Cmd::Images {
            arches,
            images,
            out,
            profile,
            target_dir,
            ca_bundle,
            no_build,
        } => {
            let req = images::Request {
                images: or_all(images, &Image::ALL),
                arches: or_all(arches, &Arch::ALL),
                profile,
                target_dir,
                out_dir: out,
                ca_bundle,
                build: !no_build,
            };
            for w in images::run(&req)? {
                println!("{}\t{}", w.path.display(), w.bytes);
            }
        }
        Cmd::Names {
            profile,
            target_dir,
        } => {
            for arch in Arch::ALL {
                for image in Image::ALL {
                    let bin = compile::binary_path(&target_dir, arch, &profile, image);
                    let (archive, reference) = (image.archive(arch), image.reference());
                    println!(
                        "{}\t{arch}\t{archive}\t{reference}\t{}",
                        image.package(),
                        bin.display()
                    );
                }
            }
        }
        Cmd::Check => {
            consistency::check(std::path::Path::new(".")).context("image names drifted")?
        }
    }
    Ok(())
}

/// An empty selection means all of them.
fn or_all<T: Copy>(chosen: Vec<T>, all: &[T]) -> Vec<T> {
    if chosen.is_empty() {
        all.to_vec()
    } else {
        chosen
    }
}
