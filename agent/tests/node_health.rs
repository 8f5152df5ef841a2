//! Health sampling against fake sysfs trees (tests/fixtures/sysfs/*): a Pi 4
//! and a Pi 5 layout, hwmon only, garbage, and nothing at all. A missing or
//! garbage field is null; the sample is still complete and serialisable.

use std::path::PathBuf;

use rackpong_agent::health::{PiSensors, Sampler};
use rackpong_agent::proto::HealthSample;
use rackpong_agent::proto::health::BufferStats;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sysfs")
        .join(name)
}

#[test]
fn pi4_reads_temperature_throttle_bits_uptime_and_load() {
    let mut pi = PiSensors::discover(&fixture("pi4"));
    assert_eq!(pi.temperature_c(), Some(48.686));
    let t = pi.throttle().expect("throttle flags");
    assert_eq!(t.raw, Some(0x50005));
    assert_eq!(t.under_voltage_now, Some(true));
    assert_eq!(t.throttled_now, Some(true));
    assert_eq!(t.freq_capped_now, Some(false));
    assert_eq!(t.under_voltage_occurred, Some(true));
    assert_eq!(t.soft_temp_limit_occurred, Some(false));
    assert_eq!(pi.uptime_s(), Some(12345));
    // eth0 + wlan0; lo is not counted.
    assert_eq!(pi.net_bytes(), Some((98_765_432 + 1000, 12_345_678 + 2000)));
    let load = pi.load().unwrap();
    assert_eq!((load.one, load.five, load.fifteen), (0.52, 0.41, 0.30));
}

#[test]
fn pi5_without_get_throttled_uses_the_hwmon_alarm_and_leaves_the_rest_null() {
    let mut pi = PiSensors::discover(&fixture("pi5"));
    assert_eq!(pi.temperature_c(), Some(61.25));
    let t = pi.throttle().expect("under-voltage from hwmon");
    assert_eq!(t.under_voltage_now, Some(false));
    assert_eq!(t.throttled_now, None, "hwmon says nothing about throttling");
    assert_eq!(
        t.under_voltage_occurred, None,
        "hwmon has no since-boot flag"
    );
    assert_eq!(t.raw, None);
    assert_eq!(pi.uptime_s(), Some(86400));
}

#[test]
fn temperature_falls_back_to_hwmon() {
    let pi = PiSensors::discover(&fixture("hwmon-only"));
    assert_eq!(pi.temperature_c(), Some(39.5));
}

#[test]
fn garbage_and_missing_files_are_null() {
    for name in ["broken", "empty"] {
        let mut pi = PiSensors::discover(&fixture(name));
        assert_eq!(pi.temperature_c(), None, "{name}");
        assert_eq!(pi.throttle(), None, "{name}");
        assert_eq!(pi.uptime_s(), None, "{name}");
        assert!(pi.load().is_none(), "{name}");
        assert_eq!(pi.net_bytes(), None, "{name}");
    }
}

#[test]
fn a_sample_from_a_broken_tree_is_still_complete_and_round_trips() {
    let mut sampler = Sampler::new("pi9", &fixture("broken"));
    let buffer = BufferStats {
        queued: 2,
        capacity: 10,
        dropped: 1,
    };
    let first = sampler.sample(buffer);
    let second = sampler.sample(buffer);
    assert_eq!((first.seq, second.seq), (0, 1));
    assert!(second.ts_ms >= first.ts_ms);
    assert_eq!(first.node, "pi9");
    assert_eq!(first.buffer, buffer);
    assert_eq!(
        (first.temp_c, first.throttle, first.uptime_s),
        (None, None, None)
    );
    // sysinfo still reads this machine's /proc: those fields are present.
    assert!(first.memory.is_some_and(|m| m.total_bytes > 0));
    let json = serde_json::to_value(&first).unwrap();
    assert!(json["temp_c"].is_null() && json["throttle"].is_null() && json["load"].is_null());
    assert_eq!(json["v"], 1);
    let back: HealthSample = serde_json::from_value(json).unwrap();
    assert_eq!(back, first);
}

#[test]
fn network_rates_come_from_counter_deltas_and_skip_a_counter_reset() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("proc/net");
    std::fs::create_dir_all(&dev).unwrap();
    let write = |rx: u64, tx: u64| {
        let text = format!(
            "Inter-| Receive | Transmit\n face |bytes ...\n    lo: 5 0 0 0 0 0 0 0 5 0 0 0 0 0 0 0\n  eth0: {rx} 0 0 0 0 0 0 0 {tx} 0 0 0 0 0 0 0\n"
        );
        std::fs::write(dev.join("dev"), text).unwrap();
    };
    write(1_000, 2_000);
    let mut sampler = Sampler::new("n", dir.path());
    write(1_000_000, 2_000);
    let net = sampler.sample(BufferStats::default()).net.expect("a rate");
    assert!(net.rx_bps > 0.0 && net.tx_bps == 0.0, "{net:?}");
    write(10, 10); // counters went back (interface re-created)
    assert_eq!(sampler.sample(BufferStats::default()).net, None);
    write(20, 10);
    assert!(sampler.sample(BufferStats::default()).net.is_some());
}
