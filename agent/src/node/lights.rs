//! The node role's LED driver: the status pattern (broker link, a chaos
//! fault in force, the rack's emergency stop), the catch flash (the green
//! LED blips off for each catch report of this node's workers, read from
//! `nodes/<node>/catches`), the blinking, and the LED report on `nodes/<node>/leds`
//! that lets the dashboard draw the same LEDs. Reports are published only
//! while connected, so they never take a health sample's place in the
//! store-and-forward buffer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::chaos::ChaosStats;
use crate::leds::{Led, Leds};
use crate::mqtt::MqttLink;
use crate::proto::{LedMode, LedPattern, LedReport, Topics, message};

/// One blink step (fast blink: one step on, one off).
const STEP: Duration = Duration::from_millis(125);
/// How long the green LED goes dark for a catch.
const FLASH: Duration = Duration::from_millis(60);
/// A report with only a new catch count waits at least this long after the last.
const REPORT_GAP: Duration = Duration::from_millis(500);

/// What the driver reads and where it writes.
pub struct LightsConfig {
    pub link: MqttLink,
    pub topics: Topics,
    pub node: String,
    pub leds: Arc<dyn Leds>,
    pub chaos: Arc<ChaosStats>,
    /// Read `nodes/<node>/catches` and blip the green LED per report.
    pub catch_flash: bool,
}

/// The driver's state between events.
struct Lights {
    cfg: LightsConfig,
    topic: String,
    connected: bool,
    pattern: LedPattern,
    catches: u64,
    seq: u64,
    step: u64,
    flash_until: Option<Instant>,
    /// (pattern, catches) last published, and when.
    reported: Option<(LedPattern, u64, Instant)>,
}

/// Drives the LEDs and publishes their reports until `cancel`.
pub async fn drive(cfg: LightsConfig, cancel: CancellationToken) {
    let mut connected = cfg.link.connected();
    let mut catch_open = cfg.catch_flash;
    let mut caught = match cfg.catch_flash {
        // The node's own topic, not the rack's `balls/caught`: every node
        // reading every catch multiplied the stream by the node count, and
        // a frozen node's backlog of them kept the embedded broker's
        // keepalive timer from running out (its Last Will came ~4 s late).
        true => cfg.link.subscribe(cfg.topics.node_catches(&cfg.node)),
        false => mpsc::channel(1).1,
    };
    let chaos = cfg.chaos.clone();
    let mut lights = Lights::new(cfg);
    let mut blink = ticker();
    loop {
        lights.connected = *connected.borrow_and_update();
        lights.update();
        let blinking = lights.red().blinks();
        let flash_end = lights.flash_until;
        let report_at = lights.report_due();
        tokio::select! {
            _ = cancel.cancelled() => return,
            changed = connected.changed() => if changed.is_err() { return },
            _ = chaos.lights_changed() => {}
            msg = caught.recv(), if catch_open => match msg {
                Some(p) => lights.caught(&p.payload),
                None => catch_open = false,
            },
            _ = blink.tick(), if blinking => lights.step += 1,
            _ = sleep_until_opt(flash_end) => lights.flash_until = None,
            _ = sleep_until_opt(report_at) => {}
        }
    }
}

fn ticker() -> Interval {
    let mut i = tokio::time::interval(STEP);
    i.set_missed_tick_behavior(MissedTickBehavior::Skip);
    i
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Lights {
    fn new(cfg: LightsConfig) -> Lights {
        Lights {
            topic: cfg.topics.node_leds(&cfg.node),
            cfg,
            connected: false,
            pattern: LedPattern::BrokerLost,
            catches: 0,
            seq: 0,
            step: 0,
            flash_until: None,
            reported: None,
        }
    }

    fn red(&self) -> LedMode {
        self.pattern.modes(self.connected).1
    }

    /// Recomputes the pattern, sets the LEDs and publishes when due.
    fn update(&mut self) {
        let (fault, estop) = self.cfg.chaos.lights();
        self.pattern = LedPattern::of(self.connected, fault, estop);
        let (green, red) = self.pattern.modes(self.connected);
        let flashing = self.flash_until.is_some();
        self.cfg
            .leds
            .set(Led::Green, green.lit(self.step) && !flashing);
        self.cfg.leds.set(Led::Red, red.lit(self.step));
        if self.report_due().is_some_and(|at| at <= Instant::now()) {
            self.publish();
        }
    }

    fn caught(&mut self, payload: &[u8]) {
        match message::catches(payload) {
            Ok(report) => {
                self.catches += report.caught;
                if self.flash_until.is_none() {
                    self.flash_until = Some(Instant::now() + FLASH);
                }
            }
            Err(e) => tracing::debug!(error = %e, "catch flash: payload ignored"),
        }
    }

    /// When the next report is due: at once for a new pattern, after
    /// [`REPORT_GAP`] for a new catch count, never while disconnected.
    fn report_due(&self) -> Option<Instant> {
        if !self.connected {
            return None;
        }
        match self.reported {
            None => Some(Instant::now()),
            Some((p, _, _)) if p != self.pattern => Some(Instant::now()),
            Some((_, c, at)) if c != self.catches => Some(at + REPORT_GAP),
            Some(_) => None,
        }
    }

    fn publish(&mut self) {
        let (green, red) = self.pattern.modes(self.connected);
        let report = LedReport {
            v: crate::proto::PROTO_VERSION,
            node: self.cfg.node.clone(),
            seq: self.seq,
            ts_ms: crate::now_ms(),
            pattern: self.pattern,
            green,
            red,
            catches: self.catches,
        };
        match serde_json::to_vec(&report) {
            Ok(payload) => self.cfg.link.publish(self.topic.clone(), payload, true),
            Err(e) => tracing::error!(error = %e, "cannot encode an LED report"),
        }
        self.seq += 1;
        self.reported = Some((self.pattern, self.catches, Instant::now()));
    }
}
