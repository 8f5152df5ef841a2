//! Stall probe for the hop benchmark (`STALL_PROBE=1`): finds out who stops
//! when a hop takes tens of milliseconds. Two sleepers wake every
//! millisecond and record how late they woke: a plain OS thread (late only
//! when the whole process or the VM was not running) and a task on the
//! game's tokio runtime (late also when a runtime thread is blocked or its
//! queue is long). The VM's steal time (`/proc/stat`) is read beside them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A lateness above this is a stall.
const STALL: Duration = Duration::from_millis(5);
const PERIOD: Duration = Duration::from_millis(1);

/// Lateness figures of one sleeper.
#[derive(Default)]
struct Lateness {
    max_us: AtomicU64,
    stalls: AtomicU64,
    stalled_us: AtomicU64,
}

impl Lateness {
    fn record(&self, late: Duration) {
        let us = late.as_micros() as u64;
        self.max_us.fetch_max(us, Ordering::Relaxed);
        if late > STALL {
            self.stalls.fetch_add(1, Ordering::Relaxed);
            self.stalled_us.fetch_add(us, Ordering::Relaxed);
        }
    }

    fn line(&self, who: &str) -> String {
        format!(
            "{who}: {} stalls > {} ms ({:.1} ms in all), max {:.1} ms",
            self.stalls.load(Ordering::Relaxed),
            STALL.as_millis(),
            self.stalled_us.load(Ordering::Relaxed) as f64 / 1e3,
            self.max_us.load(Ordering::Relaxed) as f64 / 1e3
        )
    }
}

/// The two sleepers, running until dropped.
pub struct Probe {
    thread: Arc<Lateness>,
    runtime: Arc<Lateness>,
    stop: Arc<AtomicBool>,
    steal_before: u64,
}

/// Starts a probe when `STALL_PROBE` is set.
pub fn start() -> Option<Probe> {
    std::env::var_os("STALL_PROBE")?;
    let thread = Arc::new(Lateness::default());
    let runtime = Arc::new(Lateness::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (t, s) = (thread.clone(), stop.clone());
    std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            let before = Instant::now();
            std::thread::sleep(PERIOD);
            t.record(before.elapsed().saturating_sub(PERIOD));
        }
    });
    let (r, s) = (runtime.clone(), stop.clone());
    tokio::spawn(async move {
        while !s.load(Ordering::Relaxed) {
            let before = Instant::now();
            tokio::time::sleep(PERIOD).await;
            // tokio's timer rounds up to the next millisecond tick.
            r.record(before.elapsed().saturating_sub(2 * PERIOD));
        }
    });
    Some(Probe {
        thread,
        runtime,
        stop,
        steal_before: steal_ticks(),
    })
}

impl Probe {
    /// One line: the stalls each sleeper saw and the steal time meanwhile.
    pub fn report(&self) -> String {
        let steal = steal_ticks().saturating_sub(self.steal_before);
        format!(
            "stall probe: {}; {}; VM steal {} ms",
            self.thread.line("OS thread"),
            self.runtime.line("runtime task"),
            steal * 10
        )
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The machine's steal time so far, in clock ticks (the 8th field of `cpu`).
fn steal_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let cpu = s.lines().next()?.to_string();
            cpu.split_whitespace().nth(8)?.parse().ok()
        })
        .unwrap_or(0)
}
