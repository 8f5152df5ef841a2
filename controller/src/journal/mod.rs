//! The run journal: `runs/<run-id>/journal.jsonl`, append-only, one flushed
//! line per event, so a crash loses nothing already observed. [`event`] fixes
//! the line format (public: it is the contract other tools read); `writer`
//! appends (with seq numbering and the `unfinished` marker); `recover` finds runs left unfinished by a crashed
//! controller and tells what they changed, so the next start can roll back.
//! [`rack`] keeps, beside it, the sampled MQTT traffic `rackpong replay` shows.

pub mod event;
pub mod rack;
pub(crate) mod recover;
pub(crate) mod writer;

use std::path::PathBuf;

pub use recover::{
    ACTION_NODE_UP, ACTION_RESTORE_REPLICAS, RollbackPlan, Unfinished, find_unfinished,
    read_journal, rollback_plan,
};
pub use writer::{Journal, new_run_id, reserve_run_dir};

/// File name of the journal in a run directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";
/// Present in a run directory from the first line until `run-ended` is written.
pub const UNFINISHED_MARKER: &str = "unfinished";

/// Why the journal could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: not a rackpong journal line: {reason}", path.display())]
    BadLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("journal line does not serialise: {0}")]
    Encode(#[from] serde_json::Error),
}

fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> JournalError {
    let path = path.into();
    move |source| JournalError::Io { path, source }
}
