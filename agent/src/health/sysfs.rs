//! Readings from files under the configurable root (`--sysfs-root`): CPU
//! temperature (thermal zones, hwmon fallback), the Raspberry Pi throttle
//! flags (firmware `get_throttled` node, hwmon `rpi_volt` `in0_lcrit_alarm`,
//! `vcgencmd get_throttled` only when the root is the real `/`), uptime and
//! load average. A file that is missing or holds garbage gives `None`.

use std::path::{Path, PathBuf};

use crate::proto::Throttle;
use crate::proto::health::LoadAvg;

/// The Pi-specific files found under one root, located once at start.
#[derive(Debug, Clone)]
pub struct PiSensors {
    root: PathBuf,
    /// Temperature files in millidegrees, best first.
    temp_files: Vec<PathBuf>,
    /// The firmware's `get_throttled` node (hex bit field).
    get_throttled: Option<PathBuf>,
    /// hwmon `rpi_volt` under-voltage alarm (0/1, "now" only).
    lcrit_alarm: Option<PathBuf>,
    /// Whether `vcgencmd` is worth running (real root, not yet found missing).
    vcgencmd: bool,
}

/// Why a `--sysfs-root` is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SysfsRootError {
    #[error("--sysfs-root {path}: not a readable directory: {source}")]
    NotADir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "--sysfs-root {path}: holds none of sys/class/thermal, sys/class/hwmon, sys/devices/platform, proc"
    )]
    Empty { path: PathBuf },
}

/// The trees read under the root, relative to it.
const TREES: &[&str] = &[
    "sys/class/thermal",
    "sys/class/hwmon",
    "sys/devices/platform",
    "proc",
];

/// Checks `root` before sampling starts: it must be a directory holding at
/// least one of the expected trees. Returns what the sensors found there
/// could not supply (e.g. no temperature on a non-Pi `/`), for one warning.
pub fn validate_root(root: &Path) -> Result<Vec<&'static str>, SysfsRootError> {
    std::fs::read_dir(root).map_err(|source| SysfsRootError::NotADir {
        path: root.to_path_buf(),
        source,
    })?;
    if !TREES.iter().any(|t| root.join(t).is_dir()) {
        return Err(SysfsRootError::Empty {
            path: root.to_path_buf(),
        });
    }
    let mut pi = PiSensors::discover(root);
    let mut missing = Vec::new();
    if pi.temperature_c().is_none() {
        missing.push("CPU temperature (no readable thermal zone or hwmon temp*_input)");
    }
    if pi.throttle().is_none() {
        missing.push("throttle flags (no get_throttled, rpi_volt in0_lcrit_alarm or vcgencmd)");
    }
    Ok(missing)
}

impl PiSensors {
    pub fn discover(root: &Path) -> Self {
        let get_throttled = find_get_throttled(root);
        let real_root = root == Path::new("/");
        Self {
            root: root.to_path_buf(),
            temp_files: temperature_files(root),
            lcrit_alarm: hwmon_named(root, &["rpi_volt"])
                .into_iter()
                .map(|d| d.join("in0_lcrit_alarm"))
                .find(|p| p.exists()),
            vcgencmd: real_root && get_throttled.is_none(),
            get_throttled,
        }
    }

    /// CPU temperature in °C from the first readable source.
    pub fn temperature_c(&self) -> Option<f32> {
        self.temp_files.iter().find_map(|p| {
            let milli: i64 = read_trimmed(p)?.parse().ok()?;
            let c = milli as f32 / 1000.0;
            (-60.0..=200.0).contains(&c).then_some(c)
        })
    }

    /// The throttle flags; `None` when no source is readable.
    pub fn throttle(&mut self) -> Option<Throttle> {
        let bits = self
            .get_throttled
            .as_deref()
            .and_then(|p| parse_hex_bits(&read_trimmed(p)?));
        let bits = bits.or_else(|| self.vcgencmd_bits());
        let alarm = self
            .lcrit_alarm
            .as_deref()
            .and_then(|p| match read_trimmed(p)?.as_str() {
                "0" => Some(false),
                "1" => Some(true),
                _ => None,
            });
        match (bits, alarm) {
            (Some(bits), _) => Some(Throttle::from_bits(bits)),
            (None, Some(now)) => Some(Throttle {
                under_voltage_now: Some(now),
                ..Throttle::default()
            }),
            (None, None) => None,
        }
    }

    fn vcgencmd_bits(&mut self) -> Option<u32> {
        if !self.vcgencmd {
            return None;
        }
        match std::process::Command::new("vcgencmd")
            .arg("get_throttled")
            .output()
        {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                parse_hex_bits(text.trim().strip_prefix("throttled=")?)
            }
            Ok(_) => None,
            Err(e) => {
                // Not a Pi (or no firmware tools): stop trying.
                tracing::debug!(error = %e, "vcgencmd unavailable, throttle flags from sysfs only");
                self.vcgencmd = false;
                None
            }
        }
    }

    /// Seconds since boot, from `proc/uptime`.
    pub fn uptime_s(&self) -> Option<u64> {
        let text = read_trimmed(&self.root.join("proc/uptime"))?;
        let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
        (secs.is_finite() && secs >= 0.0).then_some(secs as u64)
    }

    /// Bytes received and sent so far, summed over every interface but `lo`,
    /// from `proc/net/dev`. (One file read; sysinfo's per-interface sysfs
    /// walk costs about 1 ms per sample, the whole budget.)
    pub fn net_bytes(&self) -> Option<(u64, u64)> {
        let text = std::fs::read_to_string(self.root.join("proc/net/dev")).ok()?;
        let mut total = (0u64, 0u64);
        let mut any = false;
        // Two header lines, then `iface: rx_bytes packets errs drop fifo frame compressed multicast tx_bytes ...`.
        for line in text.lines().skip(2) {
            let (iface, counters) = line.split_once(':')?;
            if iface.trim() == "lo" {
                continue;
            }
            let fields: Vec<&str> = counters.split_whitespace().collect();
            let rx: u64 = fields.first()?.parse().ok()?;
            let tx: u64 = fields.get(8)?.parse().ok()?;
            total = (total.0.saturating_add(rx), total.1.saturating_add(tx));
            any = true;
        }
        any.then_some(total)
    }

    /// 1/5/15-minute load average, from `proc/loadavg`.
    pub fn load(&self) -> Option<LoadAvg> {
        let text = read_trimmed(&self.root.join("proc/loadavg"))?;
        let mut it = text.split_whitespace().map(|f| f.parse::<f64>().ok());
        let (one, five, fifteen) = (it.next()??, it.next()??, it.next()??);
        [one, five, fifteen]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0)
            .then_some(LoadAvg { one, five, fifteen })
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.trim().to_string())
}

/// `get_throttled` prints the bit field in hex, with or without `0x`.
fn parse_hex_bits(s: &str) -> Option<u32> {
    let s = s.trim();
    let digits = s.strip_prefix("0x").unwrap_or(s);
    u32::from_str_radix(digits, 16).ok()
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// hwmon devices whose `name` is one of `names`, in that preference order.
fn hwmon_named(root: &Path, names: &[&str]) -> Vec<PathBuf> {
    let devices = sorted_entries(&root.join("sys/class/hwmon"));
    names
        .iter()
        .flat_map(|want| {
            devices
                .iter()
                .filter(move |d| read_trimmed(&d.join("name")).as_deref() == Some(*want))
                .cloned()
        })
        .collect()
}

/// Thermal zones of the CPU/SoC first, then any other zone, then hwmon.
fn temperature_files(root: &Path) -> Vec<PathBuf> {
    let zones = sorted_entries(&root.join("sys/class/thermal"));
    let zones: Vec<&PathBuf> = zones
        .iter()
        .filter(|z| {
            z.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("thermal_zone"))
        })
        .collect();
    let is_cpu = |z: &&&PathBuf| {
        read_trimmed(&z.join("type")).is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t.contains("cpu") || t.contains("soc") || t == "x86_pkg_temp"
        })
    };
    let mut files: Vec<PathBuf> = zones
        .iter()
        .filter(is_cpu)
        .map(|z| z.join("temp"))
        .collect();
    files.extend(zones.iter().filter(|z| !is_cpu(z)).map(|z| z.join("temp")));
    let hwmon = hwmon_named(root, &["cpu_thermal", "coretemp", "k10temp", "soc_thermal"]);
    files.extend(hwmon.into_iter().map(|d| d.join("temp1_input")));
    files
}

/// The firmware node: `sys/devices/platform/<bus>/<x>:firmware/get_throttled`
/// (`soc/soc:firmware` on a Pi 4; other bus names on other boards and kernels).
fn find_get_throttled(root: &Path) -> Option<PathBuf> {
    let platform = root.join("sys/devices/platform");
    let is_fw = |p: &Path| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("firmware"))
    };
    for bus in sorted_entries(&platform) {
        let candidates = std::iter::once(bus.clone()).chain(sorted_entries(&bus));
        for dir in candidates.filter(|d| is_fw(d)) {
            let file = dir.join("get_throttled");
            if file.is_file() {
                return Some(file);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_bit_fields_parse_with_or_without_prefix() {
        assert_eq!(parse_hex_bits("50005"), Some(0x50005));
        assert_eq!(parse_hex_bits("0x80008\n"), Some(0x80008));
        assert_eq!(parse_hex_bits("zz"), None);
        assert_eq!(parse_hex_bits(""), None);
    }
}
