//! The restore rule at ball resolution: service-restored is the send time
//! of the first ball of [`RESTORE_RUN`] consecutive delivered balls sent
//! after the last milestone, precise to the gap before that ball; a ball
//! still in flight keeps the decision open.

use super::*;

impl Script {
    fn outcome(&mut self, ms: u64, seq: u64, sent_ms: u64, delivered: bool) {
        let sent = self.at(sent_ms);
        self.obs(
            ms,
            Observation::Ball {
                seq,
                sent,
                delivered,
            },
        );
    }

    /// A pod kill of `w1` replaced by `w9`, serving at 2100 ms.
    fn killed_and_serving() -> Script {
        let mut s = Script::new(&["w1", "w2"]);
        s.inject(1000, fault("f1", FaultKind::PodKill, None, None), &["w1"]);
        s.cl(
            1010,
            K::WorkerTerminating {
                worker: w("w1"),
                node: None,
            },
        );
        s.bring_up("w9", "n2", [1020, 1030, 1500, 2000]);
        s.ball(2100, &[("w9", "n2")]);
        s
    }

    fn restored(&self) -> Option<(u64, u64, String)> {
        self.out.iter().find_map(|o| match o {
            Output::Milestone { at, event } if event.milestone == M::ServiceRestored => {
                Some((self.ms(*at), event.precision_ms, event.source.clone()))
            }
            _ => None,
        })
    }
}

#[test]
fn restored_at_the_first_ball_of_a_delivered_run_with_the_spacing_as_precision() {
    let mut s = Script::killed_and_serving();
    // Balls every 10 ms from 2000 ms; #3 (sent 2030) is lost, #4.. all caught.
    for seq in 0..20u64 {
        let sent = 2000 + seq * 10;
        s.outcome(sent + 5, seq, sent, seq != 3);
    }
    // Sent before serving (2100) do not count: the run starts at #10 (2100).
    assert_eq!(s.restored(), Some((2100, 10, "ball-outcomes".into())));
    assert_eq!(s.ended("f1"), Some((FaultOutcome::Recovered, 2100)));
    assert_phases_add_up(&s.tr);
}

#[test]
fn a_lost_ball_restarts_the_run_and_its_gap_is_the_precision() {
    let mut s = Script::killed_and_serving();
    let sends = [
        2100, 2110, 2120, 2127, 2140, 2150, 2160, 2170, 2180, 2190, 2200, 2210, 2220,
    ];
    for (seq, sent) in sends.iter().enumerate() {
        s.outcome(sent + 3, seq as u64 + 100, *sent, seq != 2);
    }
    // #102 (2120) lost: the run starts at #103, sent 7 ms after #102.
    assert_eq!(s.restored(), Some((2127, 7, "ball-outcomes".into())));
}

#[test]
fn a_ball_in_flight_keeps_restore_undecided_until_it_lands() {
    let mut s = Script::killed_and_serving();
    // #1 has no outcome yet; #2..#12 are delivered.
    s.outcome(2105, 0, 2100, true);
    for seq in 2..13u64 {
        s.outcome(2200 + seq, seq, 2100 + seq * 10, true);
    }
    assert_eq!(s.restored(), None, "#1 could still be lost");
    // It times out: the run starts after it.
    s.outcome(5110, 1, 2110, false);
    assert_eq!(s.restored(), Some((2120, 10, "ball-outcomes".into())));
}

#[test]
fn ball_outcomes_replace_the_service_samples() {
    let mut s = Script::killed_and_serving();
    s.outcome(2095, 0, 2090, true);
    s.service(2300, 1.0);
    assert_eq!(s.restored(), None, "samples no longer decide");
    for seq in 1..=RESTORE_RUN as u64 {
        s.outcome(2400, seq, 2300 + seq, true);
    }
    assert_eq!(s.restored(), Some((2301, 211, "ball-outcomes".into())));
}
