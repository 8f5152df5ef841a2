//! The journal on disk: every line is readable as soon as it is appended,
//! seq has no gaps, a run left unfinished is found with what it changed, a
//! cut-off last line is dropped on reopen, and `finish` closes the run.

use std::io::Write;
use std::time::Duration;

use rackpong_controller::journal::event::{Event, FaultInjected, RunOutcome, RunStarted};
use rackpong_controller::journal::{ACTION_NODE_UP, ACTION_RESTORE_REPLICAS};
use rackpong_controller::journal::{
    JOURNAL_FILE, Journal, JournalError, RollbackPlan, UNFINISHED_MARKER, find_unfinished,
    read_journal, rollback_plan,
};
use rackpong_controller::model::ClusterKind;
use rackpong_controller::model::{Detection, FaultKind};
use tokio::time::Instant;

fn started(kind: ClusterKind) -> Event {
    Event::RunStarted(RunStarted {
        run_id: "r".into(),
        started_unix_ms: 1,
        controller_version: "0".into(),
        cluster_kind: kind,
        nodes: vec!["n1".into(), "n2".into()],
        plan_name: "p".into(),
        seed: 1,
        plan: serde_json::json!({}),
        recovery_timeout_ms: 1000,
        min_delivery_rate: 0.9,
        detection: Detection::default(),
    })
}

fn injected(id: &str, kind: FaultKind, node: Option<&str>, from: Option<u32>) -> Event {
    Event::FaultInjected(FaultInjected {
        fault_id: id.into(),
        fault: id.into(),
        kind,
        action: "x".into(),
        targets: node.map(|n| vec![n.to_string()]).unwrap_or_default(),
        node: node.map(String::from),
        replicas_from: from,
        replicas_to: from.map(|f| f + 2),
        hold_ms: None,
        predicted_ms: None,
        predicted_basis: None,
        predicted_phases: Vec::new(),
    })
}

#[test]
fn every_line_is_on_disk_when_append_returns() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let j = Journal::create(dir.path(), "run-a", start).unwrap();
    assert!(j.dir().join(UNFINISHED_MARKER).is_file());
    j.append_at(start, started(ClusterKind::Local)).unwrap();
    for i in 0..5u64 {
        let at = start + Duration::from_millis(100 * i + 7);
        let seq = j
            .append_at(
                at,
                Event::SteadyState {
                    ok: true,
                    detail: format!("{i}"),
                },
            )
            .unwrap();
        assert_eq!(seq, i + 1);
        // Read back without closing: the line is already there.
        let read = read_journal(&j.dir().join(JOURNAL_FILE)).unwrap();
        assert_eq!(read.lines.len() as u64, i + 2);
        assert!(!read.cut);
        assert_eq!(read.lines.last().unwrap().t_ms, 100 * i + 7);
    }
    let seqs: Vec<u64> = read_journal(&j.dir().join(JOURNAL_FILE))
        .unwrap()
        .lines
        .iter()
        .map(|l| l.seq)
        .collect();
    assert_eq!(seqs, (0..6).collect::<Vec<_>>());
}

#[test]
fn finish_ends_the_run_and_removes_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let j = Journal::create(dir.path(), "run-b", Instant::now()).unwrap();
    j.append(started(ClusterKind::Local)).unwrap();
    assert_eq!(find_unfinished(dir.path()).unwrap().len(), 1);
    j.finish(RunOutcome::Completed, None).unwrap();
    assert!(!j.dir().join(UNFINISHED_MARKER).exists());
    assert!(find_unfinished(dir.path()).unwrap().is_empty());
    let read = read_journal(&j.dir().join(JOURNAL_FILE)).unwrap();
    assert!(matches!(
        read.lines.last().unwrap().event,
        Event::RunEnded {
            outcome: RunOutcome::Completed,
            ..
        }
    ));
}

#[test]
fn an_existing_run_dir_gets_a_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let a = Journal::create(dir.path(), "same", Instant::now()).unwrap();
    let b = Journal::create(dir.path(), "same", Instant::now()).unwrap();
    assert_ne!(a.dir(), b.dir());
    assert_eq!(b.run_id(), "same-2");
}

#[test]
fn a_crashed_run_is_found_with_what_it_changed_and_reopened_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = {
        let j = Journal::create(dir.path(), "crashed", Instant::now()).unwrap();
        j.append(started(ClusterKind::K3s)).unwrap();
        j.append(injected("f1", FaultKind::Scale, None, Some(8)))
            .unwrap();
        j.append(injected("f2", FaultKind::Scale, None, Some(10)))
            .unwrap();
        j.append(injected("f3", FaultKind::NodeKill, Some("n2"), None))
            .unwrap();
        j.append(injected("f4", FaultKind::PodKill, Some("n1"), None))
            .unwrap();
        j.dir().to_path_buf()
        // dropped without finish: the controller "crashed"
    };
    // The write of the next line was cut off by the crash.
    let path = run_dir.join(JOURNAL_FILE);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(br#"{"v":1,"seq":5,"t_ms":9,"type":"clus"#)
        .unwrap();
    drop(f);

    let found = find_unfinished(dir.path()).unwrap();
    assert_eq!(found.len(), 1);
    let u = &found[0];
    assert!(u.journal.cut);
    assert_eq!(u.journal.lines.len(), 5);
    assert_eq!(u.cluster_kind(), Some(ClusterKind::K3s));
    assert!(!u.already_ended());
    assert_eq!(
        u.rollback_plan(),
        RollbackPlan {
            replicas: Some(8),
            nodes: vec!["n2".into()]
        }
    );

    let j = u.reopen().unwrap();
    assert_eq!(j.next_seq(), 5);
    j.append(Event::Rollback {
        action: ACTION_NODE_UP.into(),
        ok: true,
        detail: "n2".into(),
    })
    .unwrap();
    j.finish(RunOutcome::Crashed, Some("controller died".into()))
        .unwrap();
    let read = read_journal(&path).unwrap();
    assert!(!read.cut);
    let seqs: Vec<u64> = read.lines.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, (0..7).collect::<Vec<_>>());
    assert!(find_unfinished(dir.path()).unwrap().is_empty());
}

#[test]
fn successful_rollbacks_are_not_repeated() {
    let lines: Vec<_> = [
        injected("f1", FaultKind::Scale, None, Some(4)),
        injected("f2", FaultKind::NodeKill, Some("n1"), None),
        injected("f3", FaultKind::NodeKill, Some("n2"), None),
        Event::Rollback {
            action: ACTION_RESTORE_REPLICAS.into(),
            ok: true,
            detail: "4".into(),
        },
        Event::Rollback {
            action: ACTION_NODE_UP.into(),
            ok: false,
            detail: "n1".into(),
        },
        Event::Rollback {
            action: ACTION_NODE_UP.into(),
            ok: true,
            detail: "n2".into(),
        },
    ]
    .into_iter()
    .enumerate()
    .map(
        |(i, event)| rackpong_controller::journal::event::JournalLine {
            v: 1,
            seq: i as u64,
            t_ms: i as u64,
            event,
        },
    )
    .collect();
    assert_eq!(
        rollback_plan(&lines),
        RollbackPlan {
            replicas: None,
            nodes: vec!["n1".into()]
        }
    );
}

#[test]
fn a_foreign_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.jsonl");
    std::fs::write(&path, "{\"v\":1,\"seq\":0}\nhello\n").unwrap();
    let e = read_journal(&path).unwrap_err();
    assert!(matches!(e, JournalError::BadLine { line: 1, .. }), "{e}");
    assert!(e.to_string().contains("j.jsonl:1"), "{e}");
}

#[test]
fn no_runs_dir_means_nothing_unfinished() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        find_unfinished(&dir.path().join("missing"))
            .unwrap()
            .is_empty()
    );
}
