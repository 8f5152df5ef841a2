//! Child processes of the local rack: the command lines of the node agent and
//! the workers, spawning them into process groups that die with the
//! controller, and signalling single processes or whole groups.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::config::{LocalRackConfig, LocalRackError};

/// A running child: its pid and the process group it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: Pid,
    pub pgid: Pid,
}

/// Which process group a new child goes into.
#[derive(Debug, Clone, Copy)]
pub enum Group {
    /// A new group led by the child (a node agent).
    New,
    /// The group of a node agent (its workers).
    Join(Pid),
}

/// The argv (after EXE) of a node agent.
pub fn node_args(cfg: &LocalRackConfig, index: u8, announce: &Path) -> Vec<String> {
    let mut args = role_args(cfg, "node");
    args.extend([
        "--node-name".into(),
        node_name(index),
        "--http-addr".into(),
        format!("{}:0", cfg.node_ip(index)),
        "--announce-file".into(),
        announce.display().to_string(),
        "--interval".into(),
        humantime::format_duration(cfg.node_interval).to_string(),
    ]);
    if !cfg.led_catch_flash {
        args.extend(["--led-catch-flash".into(), "false".into()]);
    }
    args
}

/// The argv (after EXE) of a worker.
pub struct WorkerLine<'a> {
    pub name: &'a str,
    pub node_index: u8,
    pub peers_file: &'a Path,
    pub announce: &'a Path,
    pub start_delay: Duration,
}

pub fn worker_args(cfg: &LocalRackConfig, w: &WorkerLine<'_>) -> Vec<String> {
    let mut args = role_args(cfg, "worker");
    args.extend([
        "--name".into(),
        w.name.to_string(),
        "--node".into(),
        node_name(w.node_index),
        "--listen".into(),
        format!("{}:0", cfg.node_ip(w.node_index)),
        "--peers-file".into(),
        w.peers_file.display().to_string(),
        "--announce-file".into(),
        w.announce.display().to_string(),
        "--peer-refresh".into(),
        humantime::format_duration(cfg.peer_refresh).to_string(),
    ]);
    if !w.start_delay.is_zero() {
        args.push("--start-delay".into());
        args.push(humantime::format_duration(w.start_delay).to_string());
    }
    args
}

fn role_args(cfg: &LocalRackConfig, role: &str) -> Vec<String> {
    vec![
        "--log".into(),
        cfg.child_log.clone(),
        "agent".into(),
        role.into(),
        "--broker".into(),
        format!("mqtt://{}", cfg.broker),
        "--rack".into(),
        cfg.rack.clone(),
        "--mqtt-keepalive".into(),
        humantime::format_duration(cfg.mqtt_keepalive).to_string(),
    ]
}

/// `node<index>`.
pub fn node_name(index: u8) -> String {
    format!("node{index}")
}

/// Spawns `exe args` into `group`, inside network namespace `netns` when
/// given. The child gets SIGKILL when the spawning thread's process dies
/// (PR_SET_PDEATHSIG) and when its `Child` is dropped.
///
/// In a namespace the child is `ip netns exec <ns> exe args`: `ip` enters
/// the namespace and *execs* `exe`, so the pid, the process group and the
/// death signal set here are `exe`'s own, and signals reach it directly.
pub fn spawn(
    exe: &Path,
    args: &[String],
    group: Group,
    name: &str,
    log_dir: Option<&PathBuf>,
    netns: Option<&str>,
) -> Result<(Child, Proc), LocalRackError> {
    let err = |source| LocalRackError::Spawn {
        name: name.to_string(),
        exe: exe.display().to_string(),
        source,
    };
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.args(args).stdin(Stdio::null()).kill_on_drop(true);
    // The flags say everything: the controller's own RACKPONG_* settings
    // (static peers, chaos, log format...) must not leak into the rack.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("RACKPONG_") {
            cmd.env_remove(key);
        }
    }
    let (out, errout) = output(log_dir, name).map_err(err)?;
    cmd.stdout(out).stderr(errout);
    cmd.process_group(match group {
        Group::New => 0,
        Group::Join(pgid) => pgid.as_raw(),
    });
    die_with_parent(&mut cmd);
    let child = cmd.spawn().map_err(err)?;
    // A pid of 0 would make every later signal hit the controller's own group.
    let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) else {
        return Err(err(std::io::Error::other("the child has no pid")));
    };
    let pid = Pid::from_raw(pid);
    let pgid = match group {
        Group::New => pid,
        Group::Join(pgid) => pgid,
    };
    Ok((child, Proc { pid, pgid }))
}

fn output(log_dir: Option<&PathBuf>, name: &str) -> std::io::Result<(Stdio, Stdio)> {
    let Some(dir) = log_dir else {
        return Ok((Stdio::null(), Stdio::null()));
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))?;
    Ok((file.try_clone()?.into(), file.into()))
}

/// Asks the kernel to SIGKILL the child when the controller dies, so that even
/// a SIGKILLed controller leaves no rack behind.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs between fork and exec and only makes two
    // async-signal-safe syscalls (prctl, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
            // The parent may have died before prctl: then nobody would kill us.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Sends `sig` to one process; a process already gone is not an error.
pub fn signal_pid(pid: Pid, sig: Signal) {
    // 0, 1 and negative ids mean "our group", init or "everyone": never ours to signal.
    if pid.as_raw() <= 1 {
        tracing::error!(%pid, ?sig, "refusing to signal a non-child pid");
        return;
    }
    if let Err(e) = signal::kill(pid, sig)
        && e != nix::errno::Errno::ESRCH
    {
        tracing::warn!(%pid, ?sig, error = %e, "cannot signal process");
    }
}

/// Sends `sig` to a whole process group; a group already gone is not an error.
pub fn signal_group(pgid: Pid, sig: Signal) {
    if pgid.as_raw() <= 1 || pgid == nix::unistd::getpgrp() {
        tracing::error!(%pgid, ?sig, "refusing to signal the controller's own or a non-child group");
        return;
    }
    if let Err(e) = signal::killpg(pgid, sig)
        && e != nix::errno::Errno::ESRCH
    {
        tracing::warn!(%pgid, ?sig, error = %e, "cannot signal process group");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> LocalRackConfig {
        LocalRackConfig::new("/bin/rackpong", "127.0.0.1:1883".parse().unwrap(), 3, 4)
    }

    #[test]
    fn node_command_line_follows_the_agreed_flags() {
        let args = node_args(&cfg(), 2, Path::new("/tmp/n2.addr")).join(" ");
        assert_eq!(
            args,
            "--log info agent node --broker mqtt://127.0.0.1:1883 --rack rack --mqtt-keepalive 2s \
             --node-name node2 --http-addr 127.0.1.2:0 --announce-file /tmp/n2.addr --interval 500ms"
        );
        let mut dark = cfg();
        dark.led_catch_flash = false;
        let args = node_args(&dark, 2, Path::new("/tmp/n2.addr")).join(" ");
        assert!(
            args.ends_with("--interval 500ms --led-catch-flash false"),
            "{args}"
        );
    }

    #[test]
    fn worker_command_line_passes_a_start_delay_only_when_set() {
        let mut line = WorkerLine {
            name: "worker-7",
            node_index: 3,
            peers_file: Path::new("/tmp/peers"),
            announce: Path::new("/tmp/w7.addr"),
            start_delay: Duration::ZERO,
        };
        let args = worker_args(&cfg(), &line).join(" ");
        assert!(
            args.starts_with("--log info agent worker --broker mqtt://127.0.0.1:1883"),
            "{args}"
        );
        assert!(
            args.ends_with(
                "--name worker-7 --node node3 --listen 127.0.1.3:0 --peers-file /tmp/peers \
             --announce-file /tmp/w7.addr --peer-refresh 500ms"
            ),
            "{args}"
        );
        line.start_delay = Duration::from_millis(600);
        assert!(
            worker_args(&cfg(), &line)
                .join(" ")
                .ends_with("--start-delay 600ms")
        );
    }
}
