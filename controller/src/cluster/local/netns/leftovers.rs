//! Markers of isolated racks and the removal of what a crashed run left.
//! Every rack writes `/run/rackpong-netns/<tag>` (its controller's pid and
//! start time, and its run label) *before* it creates anything, and removes
//! it after its teardown. A marker whose process is gone (or whose pid now
//! belongs to another process) belongs to a crashed run: its namespaces
//! `rp<tag>-node<i>`, its bridge `rp<tag>b` and any `rp<tag>…` link are
//! removed on the next start. A lock file serialises choosing a subnet and
//! creating the bridge between concurrent racks (tests run in parallel).

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::ip::{NetError, ip_json, ip_quiet};

/// Where the markers and the lock live (tmpfs: gone after a reboot, as the
/// namespaces are).
pub const MARKER_DIR: &str = "/run/rackpong-netns";

fn marker_err(path: &Path) -> impl FnOnce(std::io::Error) -> NetError + '_ {
    move |source| NetError::Marker {
        path: path.display().to_string(),
        source,
    }
}

/// Holds the rack-creation lock until dropped.
pub struct CreateLock(#[allow(dead_code)] Flock<File>);

/// Takes the lock every rack holds while it picks a subnet and creates its links.
pub fn lock() -> Result<CreateLock, NetError> {
    let dir = Path::new(MARKER_DIR);
    std::fs::create_dir_all(dir).map_err(marker_err(dir))?;
    let path = dir.join(".lock");
    let file = File::create(&path).map_err(marker_err(&path))?;
    let locked = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| marker_err(&path)(std::io::Error::from(e)))?;
    Ok(CreateLock(locked))
}

/// The start time of process `pid` (clock ticks since boot), to tell a
/// reused pid from the process that wrote a marker.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 overall; the command name (field 2) may contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Writes this process's marker for `tag`; `false` if `tag` is taken.
pub fn claim(tag: &str, label: &str) -> Result<Option<PathBuf>, NetError> {
    let path = Path::new(MARKER_DIR).join(tag);
    if path.exists() {
        return Ok(None);
    }
    let pid = std::process::id();
    let text = format!("{pid} {} {label}\n", start_time(pid).unwrap_or(0));
    std::fs::write(&path, text).map_err(marker_err(&path))?;
    Ok(Some(path))
}

/// Whether the marker's writer is still running.
fn owner_alive(text: &str) -> bool {
    let mut parts = text.split_whitespace();
    let (Some(pid), Some(started)) = (
        parts.next().and_then(|p| p.parse::<u32>().ok()),
        parts.next().and_then(|s| s.parse::<u64>().ok()),
    ) else {
        return false;
    };
    start_time(pid).is_some_and(|now| started == 0 || now == started)
}

/// Removes everything of every rack whose controller is gone; returns the
/// tags cleaned. Call with the [`lock`] held.
pub fn clean_dead() -> Result<Vec<String>, NetError> {
    let Ok(entries) = std::fs::read_dir(MARKER_DIR) else {
        return Ok(Vec::new());
    };
    let mut cleaned = Vec::new();
    for entry in entries.flatten() {
        let tag = entry.file_name().to_string_lossy().into_owned();
        if tag.starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if owner_alive(&text) {
            continue;
        }
        tracing::warn!(%tag, marker = %text.trim(), "removing the network of a crashed isolated rack");
        remove_all(&tag)?;
        let _ = std::fs::remove_file(entry.path());
        cleaned.push(tag);
    }
    Ok(cleaned)
}

/// Deletes every namespace and link whose name starts with `rp<tag>`.
pub fn remove_all(tag: &str) -> Result<(), NetError> {
    let prefix = format!("rp{tag}");
    for ns in ip_json(&["netns", "list"])?
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(name) = ns["name"].as_str()
            && name.starts_with(&prefix)
        {
            ip_quiet(&["netns", "del", name]);
        }
    }
    for link in ip_json(&["link", "show"])?.as_array().into_iter().flatten() {
        if let Some(name) = link["ifname"].as_str()
            && name.starts_with(&prefix)
        {
            ip_quiet(&["link", "del", name]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_of_a_live_process_is_alive_and_others_are_not() {
        let me = std::process::id();
        let started = start_time(me).expect("our own start time");
        assert!(owner_alive(&format!("{me} {started} run-1")));
        assert!(
            !owner_alive(&format!("{me} {} run-1", started + 1)),
            "a reused pid"
        );
        assert!(!owner_alive("4194304 1 gone"), "no such pid");
        assert!(!owner_alive("garbage"));
    }
}
