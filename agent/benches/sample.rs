//! CPU time per health sample (target ≤ 1 ms): taking a sample on this
//! machine's real /proc and /sys and encoding it as the JSON payload, plus
//! the CPU-usage refresh on its own (the sampler skips it when called less
//! than sysinfo's 200 ms minimum apart, as in this tight loop; every real
//! sample at a ≥ 200 ms interval pays it). Run: `cargo bench -p rackpong-agent --bench sample`.

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
    let mut system = sysinfo::System::new().unwrap();
    c.bench_function("cpu_usage_refresh", |b| {
        b.iter(|| {
            system.refresh_cpu_usage();
            black_box(system.global_cpu_usage())
        })
    });
}

criterion_group!(benches, sample);
criterion_main!(benches);
