//! Behaviour of the journal → report model on the fixture journals and on
//! hand-made bad input: verdicts, phases, health at injection, statistics,
//! cut-off lines and clear errors.

use std::path::{Path, PathBuf};

use rackpong_controller::report::{self, Report, ReportError, parse};

fn load(name: &str) -> Report {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/journals")
        .join(name)
        .join("journal.jsonl");
    report::load(&path).unwrap()
}

fn failure_kinds(r: &Report) -> Vec<&str> {
    r.verdict.failures.iter().map(|f| f.kind.as_str()).collect()
}

#[test]
fn clean_run_passes_with_complete_timelines() {
    let r = load("clean");
    assert!(r.verdict.passed, "{:?}", r.verdict);
    assert!(r.journal.complete);
    assert_eq!(r.faults.len(), 4);
    for f in &r.faults {
        let total = f.total_ms.unwrap();
        assert_eq!(
            f.phases.iter().map(|p| p.duration_ms).sum::<u64>(),
            total,
            "{}",
            f.fault_id
        );
        assert_eq!(f.phases.first().unwrap().start_ms, f.injected_ms);
        assert!(f.phases.windows(2).all(|w| w[0].end_ms == w[1].start_ms));
        assert_eq!(f.phases.len(), 7, "every milestone observed");
        assert!(f.slo_ok && f.within_prediction == Some(true));
    }
    let pod = r.stats.iter().find(|k| k.kind == "pod-kill").unwrap();
    let total = pod.total.as_ref().unwrap();
    assert_eq!(
        (total.count, total.min, total.p50, total.max),
        (3, 5400, 6000, 7200)
    );
    assert_eq!(r.overlaps.len(), 1);
}

#[test]
fn health_at_injection_is_the_latest_sample_at_or_before_it() {
    let r = load("clean");
    for f in &r.faults {
        let node = f.node.as_deref().unwrap();
        let series = r.health.iter().find(|s| s.node == node).unwrap();
        let expected = series.samples.iter().rfind(|s| s.t_ms <= f.injected_ms);
        assert_eq!(f.health_at_injection.as_ref(), expected, "{}", f.fault_id);
        assert!(expected.is_some());
    }
}

#[test]
fn refused_faults_are_listed_and_do_not_fail_the_run() {
    let r = load("refused");
    assert!(r.verdict.passed, "{:?}", r.verdict);
    assert_eq!(r.refused.len(), 2);
    assert!(r.refused[0].reason.contains("broker"));
    let node = r.stats.iter().find(|k| k.kind == "node-kill").unwrap();
    assert_eq!((node.injected, node.refused), (0, 1));
    // The scale fault saw serving before ready: merged, noted, still adds up.
    let scale = &r.faults[1];
    assert!(
        scale
            .notes
            .iter()
            .any(|n| n.contains("serving at 41900 ms is earlier than ready"))
    );
    assert_eq!(
        scale.phases.iter().map(|p| p.duration_ms).sum::<u64>(),
        scale.total_ms.unwrap()
    );
}

#[test]
fn aborted_run_fails_and_records_rollback() {
    let r = load("aborted");
    assert_eq!(r.run.outcome, "aborted");
    assert_eq!(failure_kinds(&r), ["run-aborted", "slo"]);
    assert_eq!(r.faults[1].outcome, "aborted");
    assert_eq!(r.rollbacks.len(), 2);
    assert!(!r.rollbacks[1].ok);
}

#[test]
fn a_node_that_never_came_back_breaches_the_slo() {
    let r = load("node-lost");
    let f = &r.faults[0];
    assert_eq!(
        (f.outcome.as_str(), f.total_ms, f.slo_ok),
        ("timed-out", None, false)
    );
    assert_eq!(r.slo_breaches.len(), 1);
    assert_eq!(r.zombies[0].duration_ms, 6500);
    assert!(failure_kinds(&r).contains(&"steady-state"));
}

#[test]
fn a_journal_cut_off_mid_line_renders_as_incomplete() {
    let r = load("truncated");
    assert!(!r.journal.complete);
    assert_eq!(r.journal.truncated_lines, [181]);
    assert_eq!(r.run.outcome, "incomplete");
    assert_eq!(r.faults[3].outcome, "unfinished");
    assert_eq!(failure_kinds(&r), ["incomplete", "slo"]);
    assert!(report::render(&r).is_ok());
}

#[test]
fn a_crashed_run_with_lines_appended_after_the_cut_is_read() {
    let r = load("crashed");
    assert_eq!(r.journal.truncated_lines, [181]);
    assert_eq!(r.run.outcome, "crashed");
    assert_eq!(r.rollbacks.len(), 1);
    assert!(failure_kinds(&r).contains(&"run-crashed"));
}

#[test]
fn a_run_with_nothing_but_its_start_still_renders() {
    let r = load("empty-run");
    assert!(r.faults.is_empty() && r.health.is_empty());
    assert_eq!(failure_kinds(&r), ["incomplete"]);
    assert!(report::render(&r).is_ok());
}

fn parse_err(text: &str) -> String {
    let path = Path::new("runs/x/journal.jsonl");
    match parse::parse_journal(path, text.as_bytes()) {
        Err(e @ ReportError::NotAJournal { .. }) => e.to_string(),
        other => panic!("expected NotAJournal, got {other:?}"),
    }
}

const START: &str = r#"{"v":1,"seq":0,"t_ms":0,"type":"run-started","run_id":"r","started_unix_ms":0,"controller_version":"0","cluster_kind":"local","nodes":[],"plan_name":"p","seed":1,"plan":null,"recovery_timeout_ms":1000,"min_delivery_rate":0.9,"detection":{"profile":"local","node_monitor_grace_s":null,"not_ready_toleration_s":null,"unreachable_toleration_s":null,"readiness_period_s":null,"readiness_failure_threshold":null,"mqtt_keepalive_s":null}}"#;

#[test]
fn bad_input_names_file_line_and_reason() {
    assert_eq!(
        parse_err(""),
        "runs/x/journal.jsonl:1: the file is empty: no run-started line"
    );
    assert!(parse_err("{\"level\":\"info\",\"msg\":\"hi\"}\n").starts_with("runs/x/journal.jsonl:1: not a rackpong journal: the first line must be a v1 run-started line"));
    let service = r#"{"v":1,"seq":0,"t_ms":0,"type":"steady-state","ok":true,"detail":""}"#;
    assert!(
        parse_err(service)
            .contains(":1: not a rackpong journal: the first line must be run-started")
    );
    let v2 = START.replace(r#""v":1"#, r#""v":2"#);
    assert!(parse_err(&v2).contains(":1: journal line version 2 is not supported"));
    let garbage = format!("{START}\nhello world\n{START}\n");
    assert!(
        parse_err(&garbage).starts_with("runs/x/journal.jsonl:2: not a journal line"),
        "{}",
        parse_err(&garbage)
    );
    let twice = format!("{START}\n{}\n", START.replace(r#""seq":0"#, r#""seq":1"#));
    assert!(parse_err(&twice).contains(":2: a second run-started line"));
}

#[test]
fn an_event_of_a_newer_controller_is_skipped_with_a_warning() {
    let future = r#"{"v":1,"seq":1,"t_ms":5,"type":"balloon-popped","colour":"red"}"#;
    let end = r#"{"v":1,"seq":2,"t_ms":9,"type":"run-ended","outcome":"completed","reason":null}"#;
    let text = format!("{START}\n{future}\n{end}\n");
    let read = parse::parse_journal(Path::new("j"), text.as_bytes()).unwrap();
    assert_eq!(read.lines.len(), 2);
    assert!(
        read.seq_gaps.is_empty(),
        "a skipped line is not a lost line"
    );
    assert!(
        read.warnings[0].starts_with("line 2: event skipped"),
        "{:?}",
        read.warnings
    );
}

#[test]
fn seq_gaps_and_blank_lines_are_reported_not_fatal() {
    let text = format!(
        "{START}\n\n{}\n",
        r#"{"v":1,"seq":5,"t_ms":10,"type":"run-ended","outcome":"completed","reason":null}"#
    );
    let read = parse::parse_journal(Path::new("j"), text.as_bytes()).unwrap();
    assert_eq!(read.seq_gaps, [(3, 1, 5)]);
    assert_eq!(read.line_count, 2);
}

#[test]
fn a_journal_written_by_the_real_engine_reads_as_written() {
    let r = load("engine-fake");
    assert!(r.verdict.passed, "{:?}", r.verdict);
    assert_eq!((r.faults.len(), r.refused.len()), (2, 1));
    for f in &r.faults {
        assert_eq!(
            f.phases.len(),
            7,
            "{}: every milestone observed",
            f.fault_id
        );
        assert_eq!(f.total_ms, Some(1000));
        assert!(f.notes.is_empty(), "{:?}", f.notes);
    }
    assert!(r.journal.warnings.is_empty(), "{:?}", r.journal.warnings);
}
