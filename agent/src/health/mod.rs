//! Node health sampling: CPU, memory, swap and root disk from `sysinfo`
//! (which reads the real `/proc`), plus the Pi specifics, network counters,
//! uptime and load average from files under a configurable root ([`sysfs`]).
//! Whatever cannot be read is `None`; a sample is always produced.

pub mod sysfs;

use std::path::Path;
use std::time::Instant;

use sysinfo::{DiskRefreshKind, Disks, System};

pub use sysfs::{PiSensors, SysfsRootError, validate_root};

use crate::proto::HealthSample;
use crate::proto::health::{BufferStats, NetRates, Usage};

/// Takes health samples of this node; `seq` increases by one per sample.
pub struct Sampler {
    node: String,
    pi: PiSensors,
    system: Option<System>,
    /// The disk list, and the index of the one mounted at `/`.
    disks: Option<(Disks, usize)>,
    /// Byte counters at the previous sample, for the rates.
    last_net: Option<((u64, u64), Instant)>,
    last_cpu: Instant,
    next_seq: u64,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("node", &self.node)
            .field("pi", &self.pi)
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl Sampler {
    /// Locates the sensors under `root` and primes the CPU and network
    /// counters (rates in the first sample cover the time since now).
    pub fn new(node: impl Into<String>, root: &Path) -> Self {
        let mut system = System::new().ok();
        if let Some(s) = system.as_mut() {
            s.refresh_cpu_usage();
        }
        let disks =
            Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage())
                .ok()
                .and_then(|d| {
                    let root = d.iter().position(|d| d.mount_point() == Path::new("/"))?;
                    Some((d, root))
                });
        let pi = PiSensors::discover(root);
        let last_net = pi.net_bytes().map(|b| (b, Instant::now()));
        Self {
            node: node.into(),
            pi,
            system,
            disks,
            last_net,
            last_cpu: Instant::now(),
            next_seq: 0,
        }
    }

    /// Takes one sample; `buffer` is the publisher's store-and-forward state.
    pub fn sample(&mut self, buffer: BufferStats) -> HealthSample {
        let seq = self.next_seq;
        self.next_seq += 1;
        let (cpu_pct, memory, swap) = self.cpu_and_memory();
        HealthSample {
            v: crate::proto::PROTO_VERSION,
            node: self.node.clone(),
            seq,
            ts_ms: crate::now_ms(),
            cpu_pct,
            load: self.pi.load(),
            memory,
            swap,
            disk: self.root_disk(),
            net: self.net_rates(),
            temp_c: self.pi.temperature_c(),
            throttle: self.pi.throttle(),
            uptime_s: self.pi.uptime_s(),
            agent_version: crate::VERSION.to_string(),
            buffer,
        }
    }

    fn cpu_and_memory(&mut self) -> (Option<f32>, Option<Usage>, Option<Usage>) {
        let Some(s) = self.system.as_mut() else {
            return (None, None, None);
        };
        // CPU % compares two readings; too close together it is noise.
        let cpu = if self.last_cpu.elapsed() >= sysinfo::MINIMUM_CPU_UPDATE_INTERVAL {
            s.refresh_cpu_usage();
            self.last_cpu = Instant::now();
            let cpu = s.global_cpu_usage();
            (cpu.is_finite() && !s.cpus().is_empty()).then_some(cpu.clamp(0.0, 100.0))
        } else {
            None
        };
        s.refresh_memory();
        let usage = |used, total| {
            (total > 0).then_some(Usage {
                used_bytes: used,
                total_bytes: total,
            })
        };
        let memory = usage(s.used_memory(), s.total_memory());
        // No swap is a valid state (the Pi role turns it off): 0 of 0.
        let swap = Some(Usage {
            used_bytes: s.used_swap(),
            total_bytes: s.total_swap(),
        });
        (cpu, memory, swap)
    }

    fn root_disk(&mut self) -> Option<Usage> {
        let (disks, i) = self.disks.as_mut()?;
        let root = &mut disks[*i];
        // Only the root file system: refreshing the whole list re-reads the mount table.
        root.refresh_specifics(DiskRefreshKind::nothing().with_storage());
        let total = root.total_space();
        (total > 0).then(|| Usage {
            used_bytes: total.saturating_sub(root.available_space()),
            total_bytes: total,
        })
    }

    fn net_rates(&mut self) -> Option<NetRates> {
        let now = Instant::now();
        let bytes = self.pi.net_bytes();
        let previous = std::mem::replace(&mut self.last_net, bytes.map(|b| (b, now)));
        let ((rx0, tx0), then) = previous?;
        let (rx, tx) = bytes?;
        let secs = now.duration_since(then).as_secs_f64();
        // A counter that went down (interface gone, wrapped) gives no rate this time.
        let (drx, dtx) = (rx.checked_sub(rx0)?, tx.checked_sub(tx0)?);
        (secs > 0.0).then(|| NetRates {
            rx_bps: drx as f64 / secs,
            tx_bps: dtx as f64 / secs,
        })
    }
}
