//! The journal writer: a small synchronous appender behind a mutex. One
//! `write` syscall per line on an `O_APPEND` file, no userspace buffering, so
//! every line is in the kernel when `append` returns (a killed controller
//! loses nothing). A dedicated task would add a channel hop per event for no
//! gain: the benchmark in docs/perf/core.md measures a few microseconds per
//! line, far below one event per millisecond. `finish` fsyncs.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::event::{Event, JOURNAL_VERSION, JournalLine, RunOutcome};
use super::{JOURNAL_FILE, JournalError, UNFINISHED_MARKER, io};

/// An open run journal. Cheap to clone; every clone appends to the same file.
#[derive(Debug, Clone)]
pub struct Journal {
    inner: Arc<Mutex<Inner>>,
    dir: PathBuf,
    start: Instant,
    /// Receives a copy of every line as it is written (the terminal's fault
    /// lines and the dashboard's recovery story), if set.
    tap: Option<broadcast::Sender<JournalLine>>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    seq: u64,
    line: Vec<u8>,
}

/// A run id from the wall clock and the plan name: `20261121T203700Z-demo`.
pub fn new_run_id(plan_name: &str) -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(|c| *c != '-' && *c != ':').collect();
    let name: String = plan_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    format!("{stamp}-{name}")
}

/// Creates the run directory `runs_dir/<run_id>/`, or `<run_id>-2`, `-3`…
/// when that exists, and returns it: the run id is decided here, once.
pub fn reserve_run_dir(runs_dir: &Path, run_id: &str) -> Result<PathBuf, JournalError> {
    std::fs::create_dir_all(runs_dir).map_err(io(runs_dir))?;
    let mut dir = runs_dir.join(run_id);
    let mut n = 1;
    while let Err(e) = std::fs::create_dir(&dir) {
        if e.kind() != std::io::ErrorKind::AlreadyExists || n > 1000 {
            return Err(io(&dir)(e));
        }
        n += 1;
        dir = runs_dir.join(format!("{run_id}-{n}"));
    }
    Ok(dir)
}

impl Journal {
    /// Creates `runs_dir/<run_id>/` (with a numeric suffix if it exists),
    /// its journal and its `unfinished` marker. `start` is `t_ms = 0`.
    pub fn create(runs_dir: &Path, run_id: &str, start: Instant) -> Result<Journal, JournalError> {
        Self::create_in(reserve_run_dir(runs_dir, run_id)?, start)
    }

    /// Starts the journal in `dir`, a run directory chosen beforehand with
    /// [`reserve_run_dir`] (created here if it is missing).
    pub fn create_in(dir: PathBuf, start: Instant) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        std::fs::write(
            dir.join(UNFINISHED_MARKER),
            format!("{}\n", std::process::id()),
        )
        .map_err(io(dir.join(UNFINISHED_MARKER)))?;
        Self::open(dir, 0, start)
    }

    /// Opens an existing run's journal for appending, continuing at `next_seq`.
    pub(crate) fn open(
        dir: PathBuf,
        next_seq: u64,
        start: Instant,
    ) -> Result<Journal, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(Journal {
            inner: Arc::new(Mutex::new(Inner {
                file,
                seq: next_seq,
                line: Vec::with_capacity(512),
            })),
            dir,
            start,
            tap: None,
        })
    }

    /// Sends a copy of every line appended from now on to `tap` (a lagging
    /// receiver misses lines; the file has them all).
    pub fn with_tap(mut self, tap: Option<broadcast::Sender<JournalLine>>) -> Journal {
        self.tap = tap;
        self
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The run id (the directory's name).
    pub fn run_id(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `t_ms = 0`.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Milliseconds of `at` since the start (0 for instants before it).
    pub fn t_ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.start).as_millis() as u64
    }

    /// Appends `event` stamped now; returns its seq.
    pub fn append(&self, event: Event) -> Result<u64, JournalError> {
        self.append_at(Instant::now(), event)
    }

    /// Appends `event` stamped with the instant it was observed.
    pub fn append_at(&self, at: Instant, event: Event) -> Result<u64, JournalError> {
        let t_ms = self.t_ms(at);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let seq = inner.seq;
        let line = JournalLine {
            v: JOURNAL_VERSION,
            seq,
            t_ms,
            event,
        };
        let Inner {
            file, line: buf, ..
        } = &mut *inner;
        buf.clear();
        serde_json::to_writer(&mut *buf, &line)?;
        buf.push(b'\n');
        file.write_all(buf)
            .map_err(io(self.dir.join(JOURNAL_FILE)))?;
        inner.seq += 1;
        drop(inner);
        if let Some(tap) = &self.tap {
            // No receiver is not an error: nobody is watching.
            let _ = tap.send(line);
        }
        Ok(seq)
    }

    /// The seq the next line gets.
    pub fn next_seq(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).seq
    }

    /// Writes `run-ended`, syncs the file to disk and removes the
    /// `unfinished` marker.
    pub fn finish(&self, outcome: RunOutcome, reason: Option<String>) -> Result<(), JournalError> {
        self.append(Event::RunEnded { outcome, reason })?;
        let path = self.dir.join(JOURNAL_FILE);
        {
            let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            inner.file.sync_all().map_err(io(&path))?;
        }
        let marker = self.dir.join(UNFINISHED_MARKER);
        match std::fs::remove_file(&marker) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(marker)(e)),
            _ => Ok(()),
        }
    }
}
