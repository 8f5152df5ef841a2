use std::time::Duration;

use rackpong_agent::proto::{Throttle, Topics};
use tokio::time::Instant;

use super::board::{Board, badges};
use super::view::Badge;
use crate::model::Progress;

fn progress(open: usize) -> Progress {
    Progress {
        phase: "faults",
        elapsed: Duration::from_secs(3),
        duration: Duration::from_secs(30),
        injected: 2,
        refused: 1,
        open,
        last: "pod kill".into(),
    }
}

#[test]
fn the_recovery_timer_runs_while_faults_are_open() {
    let mut b = Board::new(Topics::default(), None, 4);
    let t0 = Instant::now();
    b.set_progress(progress(0), t0);
    assert_eq!(b.snapshot(t0).progress.unwrap().open_for_ms, None);
    b.set_progress(progress(1), t0);
    // A second fault opening keeps the timer of the first.
    b.set_progress(progress(2), t0 + Duration::from_secs(1));
    let p = b
        .snapshot(t0 + Duration::from_millis(2500))
        .progress
        .unwrap();
    assert_eq!(p.open_for_ms, Some(2500));
    assert_eq!((p.injected, p.refused, p.open), (2, 1, 2));
    b.set_progress(progress(0), t0 + Duration::from_secs(3));
    let p = b.snapshot(t0 + Duration::from_secs(4)).progress.unwrap();
    assert_eq!(p.open_for_ms, None);
}

#[test]
fn stale_defaults_to_three_observed_intervals() {
    let topics = Topics::default();
    let mut b = Board::new(topics.clone(), None, 4);
    let t0 = Instant::now();
    let sample = |seq: u64| {
        format!(
            r#"{{"v":1,"node":"pi1","seq":{seq},"ts_ms":{},"cpu_pct":null,"load":null,"memory":null,
            "swap":null,"disk":null,"net":null,"temp_c":null,"throttle":null,"uptime_s":null,"agent_version":"x"}}"#,
            seq * 500
        )
    };
    b.apply(&topics.node_health("pi1"), sample(1).as_bytes(), t0)
        .unwrap();
    b.apply(&topics.node_health("pi1"), sample(2).as_bytes(), t0)
        .unwrap();
    let n = &b.snapshot(t0 + Duration::from_millis(1400)).nodes[0];
    assert_eq!((n.status, n.stale_after_ms), ("online", 1500));
    assert_eq!(
        b.snapshot(t0 + Duration::from_millis(1600)).nodes[0].status,
        "stale"
    );
}

#[test]
fn only_set_throttle_flags_become_badges() {
    assert!(badges(Throttle::from_bits(0)).is_empty());
    assert!(badges(Throttle::default()).is_empty());
    assert_eq!(
        badges(Throttle::from_bits(0x1)),
        vec![Badge {
            label: "UNDER-VOLTAGE",
            now: true
        }]
    );
}

#[test]
fn the_ball_lane_keeps_only_the_latest_balls() {
    let topics = Topics::default();
    let mut b = Board::new(topics.clone(), None, 2);
    for i in 0..5 {
        let ball = format!(
            r#"{{"v":1,"ball":{{"id":"b{i}","target":"w","ttl":1,"born_ms":1,"hops":[]}},"worker":"w","node":"n","caught_ms":3}}"#
        );
        b.apply(&topics.balls_caught(), ball.as_bytes(), Instant::now())
            .unwrap();
    }
    let s = b.snapshot(Instant::now());
    let ids: Vec<&str> = s.balls.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids, ["b3", "b4"]);
    assert_eq!(s.caught, 5);
    assert_eq!(s.balls[1].hops, ["w"]);
    assert_eq!(s.balls[1].flight_ms, Some(2));
}

#[test]
fn offline_workers_leave_the_page_after_a_while() {
    let topics = Topics::default();
    let mut b = Board::new(topics.clone(), None, 4);
    let t0 = Instant::now();
    b.apply(&topics.worker_status("w-old"), b"offline", t0)
        .unwrap();
    b.apply(&topics.worker_status("w-new"), b"online", t0)
        .unwrap();
    assert_eq!(b.snapshot(t0).unplaced_workers.len(), 2);
    let later = t0 + super::board::FORGET_OFFLINE_WORKER;
    let names: Vec<String> = b
        .snapshot(later)
        .unplaced_workers
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["w-new"]);
    // Back online: shown again.
    b.apply(&topics.worker_status("w-old"), b"online", later)
        .unwrap();
    assert_eq!(b.snapshot(later).unplaced_workers.len(), 2);
}

fn journal_line(json: &str) -> crate::journal::event::JournalLine {
    serde_json::from_str(json).unwrap()
}

#[test]
fn the_story_runs_on_the_journal_clock_and_fault_events_are_urgent() {
    let mut b = Board::new(Topics::default(), None, 4);
    let t0 = Instant::now();
    assert!(b.snapshot(t0).story.is_none(), "no run, no story");
    let service = r#"{"v":1,"seq":1,"t_ms":1000,"type":"service","window_ms":5000,"sent":1,"caught":1,
        "dropped":0,"timed_out":0,"delivery_rate":1.0,"p50_ms":2.0,"p95_ms":3.0,"p99_ms":4.0}"#;
    assert!(!b.apply_journal(&journal_line(service), t0));
    let injected = r#"{"v":1,"seq":2,"t_ms":2000,"type":"fault-injected","fault_id":"f1","fault":"k",
        "kind":"pod-kill","action":"graceful","targets":["w1"],"node":"n1","replicas_from":null,
        "replicas_to":null,"predicted_ms":null,"predicted_basis":null}"#;
    let at = t0 + Duration::from_secs(1);
    assert!(
        b.apply_journal(&journal_line(injected), at),
        "an injection is urgent"
    );
    // Journal time 1000 was t0, so 1.5 s later it is 2500.
    let st = b.snapshot(t0 + Duration::from_millis(1500)).story.unwrap();
    assert_eq!(
        (st.now_ms, st.story.faults.len(), st.story.service.len()),
        (2500, 1, 1)
    );
    let ended =
        r#"{"v":1,"seq":3,"t_ms":3000,"type":"run-ended","outcome":"aborted","reason":null}"#;
    assert!(b.apply_journal(&journal_line(ended), t0 + Duration::from_secs(2)));
    let st = b.snapshot(t0 + Duration::from_secs(60)).story.unwrap();
    assert_eq!(st.now_ms, 3000, "the clock stops when the run ends");
    assert_eq!(st.story.run_outcome.as_deref(), Some("aborted"));
    assert!(!st.finished && st.verdict.is_none());
}

#[test]
fn killed_workers_are_forgotten_so_a_long_run_stays_bounded() {
    let topics = Topics::default();
    let mut b = Board::new(topics.clone(), None, 4);
    let t0 = Instant::now();
    // A pod kill every second for ten minutes: each replacement has a new name.
    for i in 0..600u64 {
        let at = t0 + Duration::from_secs(i);
        b.apply(&topics.worker_status(&format!("w-{i}")), b"online", at)
            .unwrap();
        if i > 0 {
            let old = format!("w-{}", i - 1);
            b.apply(&topics.worker_status(&old), b"offline", at)
                .unwrap();
        }
    }
    let forget = super::board::FORGET_OFFLINE_WORKER.as_secs() as usize;
    assert!(b.worker_entries() <= forget + 2, "{}", b.worker_entries());
}

#[test]
fn led_reports_reach_the_node_tile_newest_first() {
    let topics = Topics::default();
    let mut b = Board::new(topics.clone(), None, 4);
    let t0 = Instant::now();
    let report = |seq: u64, pattern: &str, red: &str| {
        format!(
            r#"{{"v":1,"node":"n1","seq":{seq},"ts_ms":100,"pattern":"{pattern}","green":"on","red":"{red}","catches":{seq}}}"#
        )
    };
    b.apply(
        &topics.node_leds("n1"),
        report(5, "chaos", "blink").as_bytes(),
        t0,
    )
    .unwrap();
    // An older one (a QoS 1 re-send) does not win.
    b.apply(
        &topics.node_leds("n1"),
        report(4, "ok", "off").as_bytes(),
        t0,
    )
    .unwrap();
    let leds = b.snapshot(t0).nodes[0].leds.clone().unwrap();
    assert_eq!((leds.pattern, leds.catches), ("chaos", 5));
    assert_eq!(leds.red, rackpong_agent::proto::LedMode::Blink);
    let e = b.apply(&topics.node_leds("n1"), b"{", t0).unwrap_err();
    assert!(e.to_string().starts_with("leds: "), "{e}");
}

#[test]
fn a_replay_shrinks_the_stale_threshold_by_its_speed() {
    let topics = Topics::default();
    let mut b = Board::new(topics.clone(), Some(Duration::from_secs(6)), 4);
    b.set_speed(10.0);
    let t0 = Instant::now();
    b.apply(&topics.node_status("n1"), b"online", t0).unwrap();
    let h = br#"{"v":1,"node":"n1","seq":1,"ts_ms":1,"cpu_pct":null,"load":null,"memory":null,
        "swap":null,"disk":null,"net":null,"temp_c":40.0,"throttle":null,"uptime_s":1,"agent_version":"x"}"#;
    b.apply(&topics.node_health("n1"), h, t0).unwrap();
    let n = &b.snapshot(t0 + Duration::from_millis(700)).nodes[0];
    assert_eq!((n.status, n.stale_after_ms), ("stale", 600));
}
