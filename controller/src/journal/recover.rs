//! Runs left unfinished by a crashed controller: found by their `unfinished`
//! marker, read back (a line cut off mid-write is dropped), and turned into
//! what must be undone: the replica count the run started from, and every
//! node it took down that was not brought back. The engine performs the
//! rollback through the `Cluster` and closes the run with
//! `run-ended {outcome: crashed}`.

use std::path::{Path, PathBuf};

use tokio::time::Instant;

use super::event::{Event, JournalLine};
use super::{JOURNAL_FILE, Journal, JournalError, UNFINISHED_MARKER, io};
use crate::model::ClusterKind;
use crate::model::FaultKind;

/// `rollback` action names the engine writes and [`rollback_plan`] reads.
pub const ACTION_RESTORE_REPLICAS: &str = "restore-replicas";
/// The `detail` of a `node-up` rollback is the node's name.
pub const ACTION_NODE_UP: &str = "node-up";

/// A journal read back.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadJournal {
    pub lines: Vec<JournalLine>,
    /// Bytes of complete lines; anything after is a cut-off line.
    pub valid_len: u64,
    /// The file ended in a partial line.
    pub cut: bool,
}

/// Reads a journal; a partial last line is left out, a complete line that is
/// not a journal line is an error.
pub fn read_journal(path: &Path) -> Result<ReadJournal, JournalError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let mut lines = Vec::new();
    let mut valid_len = 0u64;
    let mut rest = &bytes[..];
    let mut n = 0;
    while let Some(end) = rest.iter().position(|b| *b == b'\n') {
        n += 1;
        let line = &rest[..end];
        let parsed: JournalLine =
            serde_json::from_slice(line).map_err(|e| JournalError::BadLine {
                path: path.to_path_buf(),
                line: n,
                reason: e.to_string(),
            })?;
        lines.push(parsed);
        valid_len += end as u64 + 1;
        rest = &rest[end + 1..];
    }
    Ok(ReadJournal {
        lines,
        valid_len,
        cut: !rest.is_empty(),
    })
}

/// A run directory whose controller never wrote `run-ended`.
#[derive(Debug, Clone)]
pub struct Unfinished {
    pub dir: PathBuf,
    pub journal: ReadJournal,
}

impl Unfinished {
    /// `local` or `k3s`, from the run's first line.
    pub fn cluster_kind(&self) -> Option<ClusterKind> {
        match self.journal.lines.first().map(|l| &l.event) {
            Some(Event::RunStarted(s)) => Some(s.cluster_kind),
            _ => None,
        }
    }

    /// Whether the journal already ends the run (the controller died between
    /// the last line and removing the marker).
    pub fn already_ended(&self) -> bool {
        matches!(
            self.journal.lines.last().map(|l| &l.event),
            Some(Event::RunEnded { .. })
        )
    }

    /// What the run changed and did not undo.
    pub fn rollback_plan(&self) -> RollbackPlan {
        rollback_plan(&self.journal.lines)
    }

    /// Reopens the journal for appending: a cut-off last line is removed,
    /// seq continues, and `t_ms` continues after the last line.
    pub fn reopen(&self) -> Result<Journal, JournalError> {
        let path = self.dir.join(JOURNAL_FILE);
        if self.journal.cut {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            f.set_len(self.journal.valid_len).map_err(io(&path))?;
        }
        let last = self.journal.lines.last();
        let next_seq = last.map_or(0, |l| l.seq + 1);
        let elapsed = std::time::Duration::from_millis(last.map_or(0, |l| l.t_ms));
        let now = Instant::now();
        let start = now.checked_sub(elapsed).unwrap_or(now);
        Journal::open(self.dir.clone(), next_seq, start)
    }

    /// Removes the `unfinished` marker (after `run-ended` was written).
    pub fn clear_marker(&self) -> Result<(), JournalError> {
        let marker = self.dir.join(UNFINISHED_MARKER);
        std::fs::remove_file(&marker).map_err(io(marker))
    }
}

/// Every run under `runs_dir` with an `unfinished` marker, oldest first. A
/// missing `runs_dir` has none.
pub fn find_unfinished(runs_dir: &Path) -> Result<Vec<Unfinished>, JournalError> {
    let entries = match std::fs::read_dir(runs_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(runs_dir)(e)),
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join(UNFINISHED_MARKER).is_file())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let journal = match read_journal(&dir.join(JOURNAL_FILE)) {
                Err(JournalError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    ReadJournal {
                        lines: Vec::new(),
                        valid_len: 0,
                        cut: false,
                    }
                }
                other => other?,
            };
            Ok(Unfinished { dir, journal })
        })
        .collect()
}

/// What a run changed and did not undo, read from its journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackPlan {
    /// The replica count before the run's first scale fault, if it scaled
    /// and did not restore it.
    pub replicas: Option<u32>,
    /// Nodes it took down (stopped, rebooted, dropped, cordoned) and did not
    /// bring back, in the order they were faulted.
    pub nodes: Vec<String>,
}

impl RollbackPlan {
    pub fn is_empty(&self) -> bool {
        self.replicas.is_none() && self.nodes.is_empty()
    }
}

/// Reads what must be undone from journal lines.
pub fn rollback_plan(lines: &[JournalLine]) -> RollbackPlan {
    let mut plan = RollbackPlan::default();
    for line in lines {
        match &line.event {
            Event::FaultInjected(f) if f.kind == FaultKind::Scale && plan.replicas.is_none() => {
                plan.replicas = f.replicas_from;
            }
            Event::FaultInjected(f) if f.kind == FaultKind::NodeKill => {
                if let Some(node) = f.node.as_ref().or(f.targets.first())
                    && !plan.nodes.contains(node)
                {
                    plan.nodes.push(node.clone());
                }
            }
            Event::Rollback {
                action, ok: true, ..
            } if action == ACTION_RESTORE_REPLICAS => {
                plan.replicas = None;
            }
            Event::Rollback {
                action,
                ok: true,
                detail,
            } if action == ACTION_NODE_UP => {
                plan.nodes.retain(|n| n != detail);
            }
            _ => {}
        }
    }
    plan
}
