//! `rackpong demo` as a speaker's terminal shows it (a process with its
//! output captured, not a TTY): stdout carries one line per fault event, then
//! the summary, the verdict and the run directory; no log line reaches the
//! terminal; the full log is in `runs/<id>/controller.log`, without
//! rumqttd's normal-disconnect "errors".

use std::process::Command;

fn is_fault_line(l: &str) -> bool {
    let Some((clock, rest)) = l.trim_start().split_once(' ') else {
        return false;
    };
    let clock_ok = clock.split_once(':').is_some_and(|(m, s)| {
        m.chars().all(|c| c.is_ascii_digit()) && s.len() == 4 && s.as_bytes()[2] == b'.'
    });
    let words = [
        "INJECTED",
        "RECOVERED",
        "NOT RECOVERED",
        "ABORTED",
        "REFUSED",
    ];
    clock_ok && words.iter().any(|w| rest.contains(w))
}

#[test]
fn the_terminal_shows_fault_lines_and_the_summary_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rackpong"))
        .args(["demo", "--duration", "20s", "--runs-dir"])
        .arg(dir.path().join("runs"))
        .env_remove("RACKPONG_LOG")
        .env_remove("RACKPONG_VERBOSE")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ctx = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let table = lines
        .iter()
        .position(|l| l.starts_with("id ") && l.contains("total ms"))
        .unwrap_or_else(|| panic!("no summary table\n{ctx}"));
    let events = &lines[..table];
    assert!(events.iter().all(|l| is_fault_line(l)), "{ctx}");
    let injected = events.iter().filter(|l| l.contains(" INJECTED ")).count();
    let closed = events
        .iter()
        .filter(|l| ["RECOVERED", "ABORTED"].iter().any(|w| l.contains(w)))
        .count();
    assert!(injected >= 1, "no fault injected in 20 s\n{ctx}");
    assert_eq!(injected, closed, "a fault without its closing line\n{ctx}");
    let tail = &lines[table + 1..];
    assert!(tail.last().unwrap().starts_with("run directory: "), "{ctx}");
    assert!(
        tail.iter().any(|l| l.starts_with("verdict: ")),
        "no verdict line\n{ctx}"
    );
    // stderr: nothing, or the failed verdict's `Error:` (a loaded machine may breach an SLO).
    let logged = ["TRACE ", "DEBUG ", " INFO ", " WARN ", "ERROR "];
    assert!(
        !logged.iter().any(|w| stderr.contains(w)),
        "log lines on the terminal\n{ctx}"
    );
    assert!(
        out.status.success() || stderr.starts_with("Error: "),
        "{ctx}"
    );
    let run_dir = tail.last().unwrap().trim_start_matches("run directory: ");
    let log = std::fs::read_to_string(dir.path().join(run_dir).join("controller.log"))
        .or_else(|_| std::fs::read_to_string(std::path::Path::new(run_dir).join("controller.log")))
        .unwrap_or_else(|e| panic!("controller.log: {e}\n{ctx}"));
    for want in ["starting the local rack", "run started", "fault injected"] {
        assert!(log.contains(want), "controller.log lacks {want:?}:\n{log}");
    }
    assert!(!log.contains("is already gone"), "{log}");
}
