//! The node role's Prometheus metrics (prometheus-client), refreshed from
//! the MQTT link's counters at scrape time.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::chaos::ChaosStats;
use crate::leds::LedState;
use crate::mqtt::MqttLink;
use crate::proto::HealthSample;

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric of the node role.
pub struct NodeMetrics {
    registry: Registry,
    samples: Counter,
    last_seq: Gauge,
    cpu_pct: FloatGauge,
    temp_c: FloatGauge,
    throttle: Family<Labels, Gauge>,
    mqtt_connected: Gauge,
    buffer_queued: Gauge,
    buffer_capacity: Gauge,
    buffer_dropped: Counter,
    connects: Counter,
    reconnects: Counter,
    connection_failures: Counter,
    mqtt_published: Counter,
    led: Family<Labels, Gauge>,
    chaos_commands: Family<Labels, Counter>,
    chaos_active: Family<Labels, Gauge>,
    chaos_deadline: FloatGauge,
    chaos_estop: Gauge,
    chaos_estop_seq: Gauge,
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetrics").finish_non_exhaustive()
    }
}

/// Brings a counter up to a monotonic value counted elsewhere.
fn catch_up(counter: &Counter, value: u64) {
    let have = counter.get();
    if value > have {
        counter.inc_by(value - have);
    }
}

impl NodeMetrics {
    pub fn new(node: &str) -> Self {
        let mut registry = Registry::with_prefix("rackpong");
        let m = Self::unregistered();
        let info: Family<Labels, Gauge> = Family::default();
        info.get_or_create(&vec![
            ("node", node.to_string()),
            ("version", crate::VERSION.to_string()),
        ])
        .set(1);
        registry.register("node_info", "Node name and agent version", info);
        m.register_health(&mut registry);
        m.register_mqtt(&mut registry);
        m.register_chaos(&mut registry);
        Self { registry, ..m }
    }

    fn unregistered() -> Self {
        Self {
            registry: Registry::default(),
            samples: Counter::default(),
            last_seq: Gauge::default(),
            cpu_pct: FloatGauge::default(),
            temp_c: FloatGauge::default(),
            throttle: Family::default(),
            mqtt_connected: Gauge::default(),
            buffer_queued: Gauge::default(),
            buffer_capacity: Gauge::default(),
            buffer_dropped: Counter::default(),
            connects: Counter::default(),
            reconnects: Counter::default(),
            connection_failures: Counter::default(),
            mqtt_published: Counter::default(),
            led: Family::default(),
            chaos_commands: Family::default(),
            chaos_active: Family::default(),
            chaos_deadline: FloatGauge::default(),
            chaos_estop: Gauge::default(),
            chaos_estop_seq: Gauge::default(),
        }
    }

    fn register_health(&self, r: &mut Registry) {
        r.register("node_samples", "Health samples taken", self.samples.clone());
        r.register(
            "node_last_seq",
            "Sequence number of the last sample",
            self.last_seq.clone(),
        );
        r.register(
            "node_cpu_percent",
            "CPU busy percent in the last sample (NaN if unknown)",
            self.cpu_pct.clone(),
        );
        r.register(
            "node_temperature_celsius",
            "SoC temperature in the last sample (NaN if unknown)",
            self.temp_c.clone(),
        );
        r.register(
            "node_throttle",
            "Raspberry Pi throttle flags (1 set, 0 clear; absent if unknown)",
            self.throttle.clone(),
        );
        r.register("node_led", "Status LED state (1 on)", self.led.clone());
    }

    fn register_mqtt(&self, r: &mut Registry) {
        let gauges = [
            (
                "mqtt_connected",
                "1 while connected to the broker",
                &self.mqtt_connected,
            ),
            (
                "mqtt_buffer_queued",
                "Messages waiting in the store-and-forward buffer (its depth)",
                &self.buffer_queued,
            ),
            (
                "mqtt_buffer_capacity",
                "Bound of the store-and-forward buffer",
                &self.buffer_capacity,
            ),
        ];
        for (name, help, g) in gauges {
            r.register(name, help, g.clone());
        }
        let counters = [
            (
                "mqtt_buffer_dropped",
                "Messages dropped (oldest first) past the bound",
                &self.buffer_dropped,
            ),
            (
                "mqtt_connects",
                "Successful broker connections (first included)",
                &self.connects,
            ),
            (
                "mqtt_reconnects",
                "Successful broker connections after the first",
                &self.reconnects,
            ),
            (
                "mqtt_connection_failures",
                "Failed connection attempts and dropped connections",
                &self.connection_failures,
            ),
            (
                "mqtt_published",
                "Messages acknowledged by the broker",
                &self.mqtt_published,
            ),
        ];
        for (name, help, c) in counters {
            r.register(name, help, c.clone());
        }
    }

    fn register_chaos(&self, r: &mut Registry) {
        r.register(
            "chaos_commands",
            "Chaos commands by result (accepted/rejected) and reason (action or rejection code)",
            self.chaos_commands.clone(),
        );
        r.register(
            "chaos_active_fault",
            "1 for the reversible fault in force, by action (absent when none)",
            self.chaos_active.clone(),
        );
        r.register(
            "chaos_deadman_deadline_seconds",
            "Unix time at which the dead-man timer restores the node (0 when no fault)",
            self.chaos_deadline.clone(),
        );
        r.register(
            "chaos_estop_engaged",
            "1 while the rack's emergency stop is in force on this node (commands refused)",
            self.chaos_estop.clone(),
        );
        r.register(
            "chaos_estop_seq",
            "seq of the last emergency stop or clear this node honoured (0: none)",
            self.chaos_estop_seq.clone(),
        );
    }

    /// Records a sample just taken.
    pub fn record_sample(&self, s: &HealthSample) {
        self.samples.inc();
        self.last_seq.set(s.seq as i64);
        self.cpu_pct.set(s.cpu_pct.map_or(f64::NAN, f64::from));
        self.temp_c.set(s.temp_c.map_or(f64::NAN, f64::from));
        let t = s.throttle.unwrap_or_default();
        let flags = [
            ("under_voltage", "now", t.under_voltage_now),
            ("freq_capped", "now", t.freq_capped_now),
            ("throttled", "now", t.throttled_now),
            ("soft_temp_limit", "now", t.soft_temp_limit_now),
            ("under_voltage", "since_boot", t.under_voltage_occurred),
            ("freq_capped", "since_boot", t.freq_capped_occurred),
            ("throttled", "since_boot", t.throttled_occurred),
            ("soft_temp_limit", "since_boot", t.soft_temp_limit_occurred),
        ];
        for (flag, when, value) in flags {
            let labels = vec![("flag", flag.to_string()), ("when", when.to_string())];
            match value {
                Some(v) => {
                    self.throttle.get_or_create(&labels).set(i64::from(v));
                }
                None => {
                    self.throttle.remove(&labels);
                }
            }
        }
    }

    /// Encodes everything in the Prometheus text format.
    pub fn render(&self, link: &MqttLink, leds: LedState, chaos: &ChaosStats) -> String {
        self.refresh_chaos(chaos);
        let stats = link.buffer_stats();
        let c = link.counters();
        self.mqtt_connected
            .set(i64::from(*link.connected().borrow()));
        self.buffer_queued.set(stats.queued as i64);
        self.buffer_capacity.set(stats.capacity as i64);
        catch_up(&self.buffer_dropped, stats.dropped);
        catch_up(&self.connects, c.connects);
        catch_up(&self.reconnects, c.connects.saturating_sub(1));
        catch_up(&self.connection_failures, c.connection_failures);
        catch_up(&self.mqtt_published, c.published);
        for (color, on) in [("green", leds.green), ("red", leds.red)] {
            self.led
                .get_or_create(&vec![("color", color.to_string())])
                .set(i64::from(on));
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String");
        out
    }
}

impl NodeMetrics {
    fn refresh_chaos(&self, chaos: &ChaosStats) {
        for ((result, reason), n) in chaos.by_outcome() {
            let labels = vec![
                ("result", result.to_string()),
                ("reason", reason.to_string()),
            ];
            catch_up(&self.chaos_commands.get_or_create(&labels), n);
        }
        let estop = chaos.estop();
        self.chaos_estop
            .set(i64::from(estop.as_ref().is_some_and(|e| e.engaged)));
        self.chaos_estop_seq
            .set(estop.map_or(0, |e| i64::try_from(e.seq).unwrap_or(i64::MAX)));
        self.chaos_active.clear();
        match chaos.active() {
            Some((action, restore_at_ms)) => {
                self.chaos_active
                    .get_or_create(&vec![("action", action.as_str().to_string())])
                    .set(1);
                self.chaos_deadline.set(restore_at_ms as f64 / 1000.0);
            }
            None => {
                self.chaos_deadline.set(0.0);
            }
        }
    }
}
