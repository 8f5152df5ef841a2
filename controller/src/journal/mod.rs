//! The run journal: `runs/<run-id>/journal.jsonl`, append-only, flushed per
//! event, so a crash loses nothing already observed. [`event`] fixes the format.

pub mod event;
