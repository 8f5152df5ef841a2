//! How chaos steps touch the node: the [`Runner`] trait and its three
//! implementations — [`SystemRunner`] runs the real commands, [`DryRunRunner`]
//! only logs (`--chaos-dry-run`), [`RecordingRunner`] records for tests.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::process::Command;
use tokio::sync::watch;
use tokio::time::Instant;

/// One primitive operation on the node. Actions are sequences of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `k3s-killall.sh`: stops the k3s service(s) and every container.
    StopK3s,
    /// Starts `k3s` or `k3s-agent`, whichever unit exists.
    StartK3s,
    /// `systemctl reboot`.
    Reboot,
    /// `ip link set dev <iface> down`.
    LinkDown { iface: String },
    /// `ip link set dev <iface> up`.
    LinkUp { iface: String },
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("{program}: cannot start: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} exited with {status}: {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("{program} did not finish within {0:?}", .timeout)]
    TimedOut { program: String, timeout: Duration },
    #[error("neither k3s.service nor k3s-agent.service exists")]
    NoK3sUnit,
}

/// Executes steps. Object-safe so the node role can hold an `Arc<dyn Runner>`.
pub trait Runner: Send + Sync + std::fmt::Debug {
    fn run<'a>(&'a self, step: &'a Step) -> BoxFuture<'a, Result<(), RunnerError>>;
}

/// Runs the real commands (needs root or CAP_NET_ADMIN + systemd rights).
#[derive(Debug, Clone)]
pub struct SystemRunner {
    pub k3s_killall: PathBuf,
    /// Upper bound for any one command, so a hung script cannot wedge the agent.
    pub timeout: Duration,
}

impl Default for SystemRunner {
    fn default() -> Self {
        Self {
            k3s_killall: PathBuf::from("/usr/local/bin/k3s-killall.sh"),
            timeout: Duration::from_secs(120),
        }
    }
}

impl SystemRunner {
    async fn exec(&self, program: &str, args: &[&str]) -> Result<(), RunnerError> {
        tracing::info!(program, ?args, "chaos: running");
        let child = Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null())
            .output();
        let out = tokio::time::timeout(self.timeout, child)
            .await
            .map_err(|_| RunnerError::TimedOut {
                program: program.to_string(),
                timeout: self.timeout,
            })?
            .map_err(|source| RunnerError::Spawn {
                program: program.to_string(),
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: String = stderr.trim().chars().rev().take(400).collect();
        Err(RunnerError::Failed {
            program: program.to_string(),
            status: out.status.to_string(),
            stderr: tail.chars().rev().collect(),
        })
    }

    /// `k3s` on servers, `k3s-agent` on agents (the k3s installer's names).
    async fn k3s_unit(&self) -> Result<&'static str, RunnerError> {
        for unit in ["k3s.service", "k3s-agent.service"] {
            if self
                .exec("systemctl", &["cat", "--quiet", unit])
                .await
                .is_ok()
            {
                return Ok(unit);
            }
        }
        Err(RunnerError::NoK3sUnit)
    }

    async fn run_step(&self, step: &Step) -> Result<(), RunnerError> {
        match step {
            Step::StopK3s => {
                let killall = self.k3s_killall.to_string_lossy().into_owned();
                self.exec(&killall, &[]).await
            }
            Step::StartK3s => {
                let unit = self.k3s_unit().await?;
                // --no-block: k3s is Type=notify and may take a minute to be
                // ready; the agent must keep answering commands meanwhile.
                self.exec("systemctl", &["start", "--no-block", unit]).await
            }
            Step::Reboot => self.exec("systemctl", &["reboot"]).await,
            Step::LinkDown { iface } => {
                self.exec("ip", &["link", "set", "dev", iface, "down"])
                    .await
            }
            Step::LinkUp { iface } => self.exec("ip", &["link", "set", "dev", iface, "up"]).await,
        }
    }
}

impl Runner for SystemRunner {
    fn run<'a>(&'a self, step: &'a Step) -> BoxFuture<'a, Result<(), RunnerError>> {
        Box::pin(self.run_step(step))
    }
}

/// `--chaos-dry-run`: logs what would run, touches nothing.
#[derive(Debug, Clone, Default)]
pub struct DryRunRunner;

impl Runner for DryRunRunner {
    fn run<'a>(&'a self, step: &'a Step) -> BoxFuture<'a, Result<(), RunnerError>> {
        tracing::warn!(?step, "chaos dry run: would run this step");
        Box::pin(async { Ok(()) })
    }
}

/// A step as recorded, with the monotonic instant it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub step: Step,
    pub at: Instant,
}

/// Records steps instead of running them; tests await them without sleeping.
#[derive(Debug, Clone)]
pub struct RecordingRunner {
    steps: Arc<Mutex<Vec<Recorded>>>,
    count: watch::Sender<usize>,
}

impl Default for RecordingRunner {
    fn default() -> Self {
        Self {
            steps: Arc::default(),
            count: watch::Sender::new(0),
        }
    }
}

impl RecordingRunner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every step recorded so far, in order.
    pub fn steps(&self) -> Vec<Recorded> {
        self.steps.lock().expect("recorder lock").clone()
    }

    /// Waits until at least `n` steps are recorded (or `timeout` passes) and
    /// returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Option<Vec<Recorded>> {
        let mut rx = self.count.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n))
            .await
            .ok()?
            .ok()?;
        Some(self.steps())
    }
}

impl Runner for RecordingRunner {
    fn run<'a>(&'a self, step: &'a Step) -> BoxFuture<'a, Result<(), RunnerError>> {
        let len = {
            let mut steps = self.steps.lock().expect("recorder lock");
            steps.push(Recorded {
                step: step.clone(),
                at: Instant::now(),
            });
            steps.len()
        };
        self.count.send_replace(len);
        Box::pin(async { Ok(()) })
    }
}

/// The interface of the default route, read from `<proc>/net/route`.
pub fn default_route_iface(route_table: &str) -> Option<String> {
    route_table.lines().skip(1).find_map(|line| {
        let mut cols = line.split_whitespace();
        let iface = cols.next()?;
        let dest = cols.next()?;
        let mask = cols.nth(5)?;
        (dest == "00000000" && mask == "00000000").then(|| iface.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_default_route_interface() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_iface(table).as_deref(), Some("wlan0"));
        assert_eq!(default_route_iface("Iface\tDestination\n"), None);
    }

    #[tokio::test]
    async fn system_runner_reports_a_failing_command() {
        let runner = SystemRunner {
            k3s_killall: PathBuf::from("/nonexistent/k3s-killall.sh"),
            timeout: Duration::from_secs(5),
        };
        let err = runner.run(&Step::StopK3s).await.unwrap_err();
        assert!(matches!(err, RunnerError::Spawn { .. }), "{err}");
        let err = runner.exec("false", &[]).await.unwrap_err();
        assert!(matches!(err, RunnerError::Failed { .. }), "{err}");
    }

    #[tokio::test]
    async fn recording_runner_wakes_waiters() {
        let rec = RecordingRunner::new();
        let r2 = rec.clone();
        let waiter = tokio::spawn(async move { r2.wait_for(2, Duration::from_secs(5)).await });
        rec.run(&Step::StopK3s).await.unwrap();
        rec.run(&Step::StartK3s).await.unwrap();
        let got = waiter.await.unwrap().expect("two steps");
        assert_eq!(got[0].step, Step::StopK3s);
        assert_eq!(got[1].step, Step::StartK3s);
    }
}
