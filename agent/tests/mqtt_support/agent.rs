//! Runs the real `rackpong-agent` binary as a child process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::WAIT;

pub const BIN: &str = env!("CARGO_BIN_EXE_rackpong-agent");

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sysfs")
        .join(name)
}

/// A running `rackpong-agent node`, killed when dropped.
pub struct Agent {
    pub child: Child,
    pub http: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// Starts `rackpong-agent node` with `args` (plus an HTTP server on a free
    /// loopback port) and waits for its announce file.
    pub async fn node(args: &[&str]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let announce = dir.path().join("addr");
        let child = Command::new(BIN)
            .arg("node")
            .args(["--http-addr", "127.0.0.1:0", "--announce-file"])
            .arg(&announce)
            .args(args)
            .env("RACKPONG_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn rackpong-agent");
        let http = tokio::time::timeout(WAIT, async {
            loop {
                if let Ok(text) = std::fs::read_to_string(&announce) {
                    return text.trim().parse::<SocketAddr>().expect("ip:port");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("announce file in time");
        Agent {
            child,
            http,
            _dir: dir,
        }
    }

    pub fn signal(&self, sig: Signal) {
        let pid = self.child.id().expect("running") as i32;
        kill(Pid::from_raw(pid), sig).unwrap();
    }

    /// `GET path` on the agent's HTTP server: (status, body).
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path).await
    }

    /// GET /healthz as JSON.
    pub async fn healthz(&self) -> serde_json::Value {
        let (status, body) = self.get("/healthz").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

/// A minimal HTTP/1.0 GET (no TLS stack needed for loopback).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}
