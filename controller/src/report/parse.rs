//! Reading `journal.jsonl`: line by line, tolerating a line cut off
//! mid-write (the controller was killed), rejecting anything that is not a
//! rackpong journal with the file, line and reason.

use std::path::Path;

use serde_json::error::Category;

use super::ReportError;
use crate::journal::event::{Event, JOURNAL_VERSION, JournalLine};

/// A journal as read: its lines plus what was odd about it.
#[derive(Debug, Clone)]
pub struct ReadJournal {
    pub lines: Vec<JournalLine>,
    /// Lines in the file (non-empty ones, cut-off lines included).
    pub line_count: u64,
    /// 1-based numbers of lines cut off mid-write.
    pub truncated_lines: Vec<u64>,
    /// `(line, expected seq, found seq)` where lines were lost.
    pub seq_gaps: Vec<(u64, u64, u64)>,
    pub warnings: Vec<String>,
    /// `seq` of the last line read, skipped lines included.
    last_seq: Option<u64>,
}

/// Reads and checks a journal file.
pub fn read_journal(path: &Path) -> Result<ReadJournal, ReportError> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_journal(path, &bytes)
}

/// Parses journal bytes; `path` only names the file in errors.
pub fn parse_journal(path: &Path, bytes: &[u8]) -> Result<ReadJournal, ReportError> {
    let bad = |line: u64, reason: String| ReportError::NotAJournal {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut out = ReadJournal {
        lines: Vec::new(),
        line_count: 0,
        truncated_lines: Vec::new(),
        seq_gaps: Vec::new(),
        warnings: Vec::new(),
        last_seq: None,
    };
    for (idx, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let number = idx as u64 + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.line_count += 1;
        match parse_line(raw) {
            Ok(line) => accept(&mut out, number, line).map_err(|r| bad(number, r))?,
            Err(err) if out.lines.is_empty() => {
                return Err(bad(number, first_line_reason(raw, &err)));
            }
            Err(err) if err.classify() == Category::Eof => {
                out.truncated_lines.push(number);
                out.warnings.push(format!(
                    "line {number} was cut off mid-write and is skipped"
                ));
            }
            Err(err) => match split_appended(raw) {
                // A cut-off line with the next start's line appended to it.
                Some(line) => {
                    out.truncated_lines.push(number);
                    out.warnings.push(format!(
                        "line {number} starts with a line cut off mid-write; the rest is read"
                    ));
                    accept(&mut out, number, line).map_err(|r| bad(number, r))?;
                }
                // A well-formed v1 line of a kind this version does not know
                // (a newer controller): skipped, and said so.
                None if let Some(seq) = unknown_v1_event_seq(raw) => {
                    out.last_seq = Some(seq);
                    out.warnings.push(format!(
                        "line {number}: event skipped, this version cannot read it ({err})"
                    ));
                }
                None => return Err(bad(number, format!("not a journal line: {err}"))),
            },
        }
    }
    if out.lines.is_empty() {
        return Err(bad(1, "the file is empty: no run-started line".into()));
    }
    Ok(out)
}

fn parse_line(raw: &[u8]) -> Result<JournalLine, serde_json::Error> {
    serde_json::from_slice(raw)
}

/// Finds a whole journal line appended after a cut-off one.
fn split_appended(raw: &[u8]) -> Option<JournalLine> {
    let needle = br#"{"v":"#;
    (1..raw.len())
        .filter(|&i| raw[i..].starts_with(needle))
        .find_map(|i| parse_line(&raw[i..]).ok())
}

/// The `seq` of a JSON object with `"v": 1`, a `seq`, a `t_ms` and a string
/// `type`: a journal line of a kind this version does not know.
fn unknown_v1_event_seq(raw: &[u8]) -> Option<u64> {
    let serde_json::Value::Object(o) = serde_json::from_slice(raw).ok()? else {
        return None;
    };
    let v1 = o.get("v").and_then(serde_json::Value::as_u64) == Some(u64::from(JOURNAL_VERSION));
    let typed = o.get("t_ms").is_some_and(serde_json::Value::is_u64)
        && o.get("type").is_some_and(serde_json::Value::is_string);
    o.get("seq")
        .and_then(serde_json::Value::as_u64)
        .filter(|_| v1 && typed)
}

fn first_line_reason(raw: &[u8], err: &serde_json::Error) -> String {
    let looks_json = serde_json::from_slice::<serde_json::Value>(raw).is_ok();
    if looks_json {
        format!(
            "not a rackpong journal: the first line must be a v{JOURNAL_VERSION} run-started line ({err})"
        )
    } else {
        format!("not a rackpong journal: the first line is not JSON ({err})")
    }
}

/// Checks a parsed line against the journal's rules and keeps it.
fn accept(out: &mut ReadJournal, number: u64, line: JournalLine) -> Result<(), String> {
    if line.v != JOURNAL_VERSION {
        return Err(format!(
            "journal line version {} is not supported (this rackpong reads v{JOURNAL_VERSION})",
            line.v
        ));
    }
    let first = out.lines.is_empty();
    let is_start = matches!(line.event, Event::RunStarted(_));
    if first && !is_start {
        return Err("not a rackpong journal: the first line must be run-started".into());
    }
    if !first && is_start {
        return Err("a second run-started line: two runs in one journal".into());
    }
    if let Some(last_seq) = out.last_seq
        && line.seq != last_seq + 1
    {
        out.seq_gaps.push((number, last_seq + 1, line.seq));
    }
    out.last_seq = Some(line.seq);
    out.lines.push(line);
    Ok(())
}
