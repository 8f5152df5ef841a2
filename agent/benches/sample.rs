//! Time per health sample (target ≤ 1 ms of CPU): taking a sample on this
//! machine's real /proc and /sys and encoding it as the JSON payload. In this
//! tight loop the CPU-usage refresh is skipped (sysinfo needs 200 ms between
//! two readings, and so does the sampler); every real sample at a ≥ 200 ms
//! interval pays it: one read of /proc/stat, benched on its own.
//! Run: `cargo bench -p rackpong-agent --bench sample`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use rackpong_agent::health::{PiSensors, Sampler};
use rackpong_agent::proto::health::BufferStats;

fn sample(c: &mut Criterion) {
    let mut sampler = Sampler::new("bench", Path::new("/"));
    c.bench_function("sample_and_encode (real /, no cpu refresh)", |b| {
        b.iter(|| {
            let s = sampler.sample(BufferStats::default());
            black_box(serde_json::to_vec(&s).unwrap())
        })
    });
    let pi4 = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs/pi4");
    let mut pi = PiSensors::discover(&pi4);
    c.bench_function(
        "pi_sensors (pi4 fixture: temp, throttle, uptime, load)",
        |b| b.iter(|| black_box((pi.temperature_c(), pi.throttle(), pi.uptime_s(), pi.load()))),
    );
    c.bench_function("cpu_refresh_proxy (read /proc/stat)", |b| {
        b.iter(|| black_box(std::fs::read_to_string("/proc/stat").unwrap().len()))
    });
}

criterion_group!(benches, sample);
criterion_main!(benches);
