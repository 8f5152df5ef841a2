//! The plan as written in YAML, with source locations kept (serde-saphyr's
//! `Spanned`) so semantic checks can name the line of the offending key, and
//! its validation into [`super::Plan`].

use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

mod validate;

use validate::validate;

use super::{KillModeSpec, NodeAction, Plan, Problem};

/// A humantime duration ("30s", "1m 30s", "500ms").
#[derive(Debug, Clone, Copy)]
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map(Dur).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?}: {e} (use e.g. \"30s\", \"1m 30s\", \"500ms\")"
            ))
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPlan {
    name: Spanned<String>,
    #[serde(default)]
    seed: u64,
    duration: Spanned<Dur>,
    steady_state: RawSteady,
    #[serde(default)]
    safety: RawSafety,
    recovery_timeout: Spanned<Dur>,
    #[serde(default)]
    balls: RawBalls,
    faults: Vec<RawFault>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSteady {
    min_ready_workers: Spanned<u32>,
    min_delivery_rate: Spanned<f64>,
    #[serde(default)]
    window: Option<Spanned<Dur>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSafety {
    #[serde(default)]
    max_unavailable: Option<Spanned<u32>>,
    #[serde(default)]
    namespaces: Vec<Spanned<String>>,
    #[serde(default)]
    opt_in_label: Option<Spanned<String>>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    allow_zero: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBalls {
    #[serde(default)]
    rate_per_s: Option<Spanned<f64>>,
    #[serde(default)]
    ttl: Option<Spanned<u32>>,
    #[serde(default)]
    timeout: Option<Spanned<Dur>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFault {
    name: Spanned<String>,
    at: Spanned<Dur>,
    #[serde(default)]
    every: Option<Spanned<Dur>>,
    #[serde(default)]
    times: Option<Spanned<u32>>,
    #[serde(default)]
    jitter: Option<Spanned<Dur>>,
    #[serde(default)]
    pod_kill: Option<Spanned<RawPodKill>>,
    #[serde(default)]
    node_kill: Option<Spanned<RawNodeKill>>,
    #[serde(default)]
    scale: Option<Spanned<RawScale>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPodKill {
    #[serde(default)]
    count: Option<Spanned<u32>>,
    #[serde(default)]
    percent: Option<Spanned<u32>>,
    #[serde(default = "graceful")]
    mode: KillModeSpec,
}

fn graceful() -> KillModeSpec {
    KillModeSpec::Graceful
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNodeKill {
    action: NodeAction,
    down_for: Spanned<Dur>,
    #[serde(default)]
    node: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawScale {
    #[serde(default)]
    min: Option<Spanned<u32>>,
    #[serde(default)]
    max: Option<Spanned<u32>>,
    /// A fixed count; `to: 0` (with `hold`) is a cold start.
    #[serde(default)]
    to: Option<Spanned<u32>>,
    #[serde(default)]
    hold: Option<Spanned<Dur>>,
}

/// Default opt-in label, the one the k3s manifests put on workers and nodes.
pub const DEFAULT_OPT_IN_LABEL: &str = "rackpong.dev/chaos=true";

/// Collects semantic problems with their lines.
#[derive(Default)]
struct Check {
    problems: Vec<Problem>,
}

impl Check {
    fn at(&mut self, loc: Location, reason: impl Into<String>) {
        self.problems.push(problem(Some(loc), reason.into()));
    }

    fn require(&mut self, ok: bool, loc: Location, reason: impl FnOnce() -> String) {
        if !ok {
            self.at(loc, reason());
        }
    }
}

fn problem(loc: Option<Location>, reason: String) -> Problem {
    let known = loc.filter(|l| l.line() > 0);
    Problem {
        line: known.map(|l| l.line()),
        column: known.map(|l| l.column()),
        reason,
    }
}

/// Parses and validates; all semantic problems are reported at once.
pub(super) fn parse(text: &str) -> Result<Plan, Vec<Problem>> {
    let raw: RawPlan = serde_saphyr::from_str(text).map_err(|e| {
        let plain = e.without_snippet();
        vec![problem(plain.location(), syntax_reason(plain))]
    })?;
    let mut check = Check::default();
    let plan = validate(raw, &mut check);
    if check.problems.is_empty() {
        Ok(plan)
    } else {
        check.problems.sort_by_key(|p| (p.line, p.column));
        Err(check.problems)
    }
}

/// serde-saphyr's message without its " at line X column Y" suffix (the
/// location is reported separately).
fn syntax_reason(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
