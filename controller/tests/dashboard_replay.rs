//! `rackpong replay`: a recorded run (the `clean` fixture journal and a
//! rack record beside it) served on 127.0.0.1:0 and read over the real
//! `GET /events` stream until the replay ends: every fault with the total
//! `report.json` records, the recorded ball totals, births and LED reports
//! on the node tiles, the verdict. Bad run directories fail naming the
//! file and line. No sleeps: the stream is read until a condition holds,
//! under a timeout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rackpong_controller::dashboard::replay::{self, Recording, ReplayError};
use rackpong_controller::journal::event::{Event, JournalLine};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/journals/clean/journal.jsonl")
}

fn started_unix_ms(journal: &Path) -> u64 {
    let first = std::fs::read_to_string(journal).unwrap();
    let line: JournalLine = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    match line.event {
        Event::RunStarted(s) => s.started_unix_ms,
        other => panic!("not run-started: {other:?}"),
    }
}

fn caught(id: &str, worker: &str, node: &str) -> Value {
    json!({"v":1,"ball":{"id":id,"target":worker,"ttl":7,"born_ms":1,
        "hops":[{"worker":"worker-a","node":"pi1","at_ms":2}]},
        "worker":worker,"node":node,"caught_ms":5})
}

/// A run directory: the fixture's journal and a rack record that starts 2 s
/// before the journal (the rack booting) and covers the run.
fn run_dir(extra: &[String]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(), dir.path().join("journal.jsonl")).unwrap();
    let start = started_unix_ms(&fixture()) - 2_000;
    let leds = json!({"v":1,"node":"pi2","seq":3,"ts_ms":start,"pattern":"chaos",
        "green":"on","red":"blink","catches":17});
    let mut lines = vec![
        json!({"type":"start","v":1,"started_unix_ms":start,"rack":"rack"}).to_string(),
        json!({"type":"mqtt","t_ms":10,"topic":"nodes/pi1/status","payload":"online"}).to_string(),
        json!({"type":"mqtt","t_ms":11,"topic":"nodes/pi2/status","payload":"online"}).to_string(),
        json!({"type":"mqtt","t_ms":12,"topic":"workers/worker-b/status","payload":"online"})
            .to_string(),
        json!({"type":"mqtt","t_ms":30,"topic":"nodes/pi2/leds","payload":leds}).to_string(),
        json!({"type":"mqtt","t_ms":40,"topic":"balls/caught","payload":caught("b-1","worker-b","pi2")})
            .to_string(),
        json!({"type":"mqtt","t_ms":41,"topic":"nodes/pi1/status","payload":"maybe"}).to_string(),
        json!({"type":"totals","t_ms":90_000,"caught":1234,"dropped":{"ttl-spent":5},"skipped":0})
            .to_string(),
    ];
    lines.extend(extra.iter().cloned());
    std::fs::write(dir.path().join("rack.jsonl"), lines.join("\n") + "\n").unwrap();
    dir
}

/// Reads `GET /events` until a snapshot satisfies `done`; returns it.
async fn until(url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut resp = reqwest::get(format!("{url}events")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut buf = String::new();
    tokio::time::timeout(WAIT, async {
        loop {
            let chunk = resp.chunk().await.unwrap().expect("the stream ended");
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) else {
                    continue;
                };
                let snap: Value = serde_json::from_str(data.trim()).unwrap();
                if done(&snap) {
                    return snap;
                }
            }
        }
    })
    .await
    .expect("the replay did not reach the end in time")
}

#[tokio::test]
async fn a_recorded_run_is_shown_as_it_was_recorded() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = run_dir(&[]);
    let rec = Recording::load(dir.path()).unwrap();
    assert_eq!(rec.rack_lines, 8);
    let shutdown = CancellationToken::new();
    let listen = "127.0.0.1:0".parse().unwrap();
    let dash = replay::start(listen, "t0ken".into(), rec, 200.0, shutdown.clone())
        .await
        .unwrap();
    let url = dash.url();
    let end = until(&url, |s| s["replay"]["done"] == true).await;

    let report = rackpong_controller::report::load(&fixture()).unwrap();
    let faults = end["story"]["faults"].as_array().unwrap();
    assert_eq!(faults.len(), report.faults.len());
    for (shown, recorded) in faults.iter().zip(&report.faults) {
        assert_eq!(shown["fault_id"], recorded.fault_id.as_str());
        assert_eq!(
            shown["total_ms"].as_u64(),
            recorded.total_ms,
            "{}",
            recorded.fault_id
        );
    }
    assert_eq!(end["story"]["verdict"]["passed"], report.verdict.passed);
    assert_eq!(end["replay"]["speed"], 200.0);
    assert_eq!(end["progress"]["phase"], "replay");
    assert_eq!(end["progress"]["injected"], report.faults.len());
    // The recorded totals, not the one sampled ball; the bad status is counted.
    assert_eq!(end["caught"], 1234);
    assert_eq!(end["dropped_by_reason"]["ttl-spent"], 5);
    assert_eq!(end["malformed"], 1);
    let nodes = end["nodes"].as_array().unwrap();
    let pi2 = nodes.iter().find(|n| n["name"] == "pi2").unwrap();
    assert_eq!(pi2["leds"]["pattern"], "chaos");
    assert_eq!(pi2["leds"]["red"], "blink");
    assert_eq!(pi2["leds"]["catches"], 17);
    // Health came from the journal.
    assert!(nodes.iter().any(|n| n["temp_c"].is_number()), "{nodes:?}");

    // The same state over GET /api/state, and the page is the live one.
    let state: Value = reqwest::get(format!("{url}api/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["replay"]["done"], true);
    let stop = reqwest::Client::new()
        .post(format!("{url}api/stop"))
        .bearer_auth("t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(stop.status(), 409, "a replay has no run to stop");
    shutdown.cancel();
    dash.wait().await;
}

#[test]
fn bad_run_directories_fail_naming_the_file_and_line() {
    let empty = tempfile::tempdir().unwrap();
    let e = Recording::load(empty.path()).unwrap_err();
    assert!(matches!(e, ReplayError::NotARun(_)), "{e}");
    assert!(e.to_string().contains("no journal.jsonl"), "{e}");

    let dir = run_dir(&["{\"type\":\"mqtt\",\"t_ms\":\"soon\"}".to_string()]);
    let e = Recording::load(dir.path()).unwrap_err().to_string();
    let rack = dir.path().join("rack.jsonl");
    assert!(e.starts_with(&format!("{}:9: ", rack.display())), "{e}");

    let dir = run_dir(&[]);
    let journal = dir.path().join("journal.jsonl");
    let mut text = std::fs::read_to_string(&journal).unwrap();
    text.push_str("not json\n");
    std::fs::write(&journal, text).unwrap();
    let e = Recording::load(dir.path()).unwrap_err().to_string();
    let n = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert!(
        e.starts_with(&format!("{}:{n}: ", journal.display())),
        "{e}"
    );

    assert!(matches!(
        replay::check_speed(0.0),
        Err(ReplayError::Speed(_))
    ));
    assert!(replay::check_speed(f64::NAN).is_err());
}

/// The replay reads a run as `rackpong report` does: a line of an event
/// kind this version does not know (a newer controller) is skipped, and so
/// is a last line cut off mid-write (the controller was killed).
#[test]
fn a_newer_or_crashed_run_still_replays() {
    let dir = run_dir(&[]);
    let journal = dir.path().join("journal.jsonl");
    let whole = Recording::load(dir.path()).unwrap();
    let text = std::fs::read_to_string(&journal).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let (seq, t_ms) = (
        last["seq"].as_u64().unwrap(),
        last["t_ms"].as_u64().unwrap(),
    );
    lines.push(json!({"v":1,"seq":seq + 1,"t_ms":t_ms,"type":"from-the-future"}).to_string());
    std::fs::write(
        &journal,
        lines.join("\n") + "\n" + r#"{"v":1,"seq":99999,"t_ms":1,"type":"fault-inj"#,
    )
    .unwrap();
    let read = Recording::load(dir.path()).expect("the unknown and the cut-off line are skipped");
    assert_eq!(read.end_ms, whole.end_ms);
    assert_eq!(read.run_id, whole.run_id);
}

#[test]
fn the_command_reports_a_bad_run_dir_and_exits_non_zero() {
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rackpong"))
        .args(["replay", "--listen", "127.0.0.1:0"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a run directory"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
