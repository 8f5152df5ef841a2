//! The schema of `spec.plan` in the ChaosExperiment CRD, with the CEL rules
//! (`x-kubernetes-validations`) the API server enforces on admission: what
//! the plan validator checks that a schema can express (durations that
//! parse, positive where they must be, `down-for` within the agents' limit,
//! percent in 1..=100, counts ≥ 1, exactly one action per fault and one
//! amount per pod-kill, scale bounds ordered, a cold start opted in). Struct
//! and field rules come from `#[x_kube(validation)]`; duration strings get
//! theirs from [`duration_schema`] (a schema function: the derive cannot
//! attach rules to a `String`'s own schema). Schema only: the operator reads
//! `spec.plan` as JSON and still validates it in full with the plan parser,
//! reporting the reason in `status`. Every object keeps unknown fields
//! (`x-kubernetes-preserve-unknown-fields`), so a key the API server does not
//! know still reaches the parser, which names it.
//!
//! Field names are kebab-case as in plan files; in CEL a `-` is written
//! `__dash__` (`self.pod__dash__kill`), as Kubernetes escapes it.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// A humantime duration ("30s", "1m 30s", "500ms", "2h"), as the plan
/// parser accepts them (`humantime::parse_duration`; a test keeps the two
/// in step).
pub const DURATION_PATTERN: &str = r"^\s*([0-9]+(\.[0-9]+)?\s*(nsec|ns|usec|us|µs|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|w|months|month|M|years|year|y)\s*)+$";

/// A duration made only of zeros ("0s", "0 ms").
const ZERO_PATTERN: &str = r"^\s*(0+(\.0+)?\s*[a-zA-Zµ]+\s*)+$";

/// The compact form CEL's `duration()` parses ("10m", "1m30s", "500ms").
const COMPACT_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";

/// The agents refuse a longer node fault (their default `--chaos-max-down`).
pub const MAX_DOWN_FOR: &str = "10m";

fn rule(expr: &str, message: &str) -> serde_json::Value {
    serde_json::json!({ "rule": expr, "message": message })
}

/// A duration string; `positive` adds "longer than 0s", `max` an upper
/// bound checked by CEL for the compact form (others: by the operator).
fn duration_schema(positive: bool, max: Option<&str>) -> schemars::Schema {
    let mut rules = vec![rule(
        &format!("self.matches({})", cel_string(DURATION_PATTERN)),
        "must be a duration such as 30s, 1m 30s or 500ms",
    )];
    if positive {
        rules.push(rule(
            &format!("!self.matches({})", cel_string(ZERO_PATTERN)),
            "must be longer than 0s",
        ));
    }
    if let Some(max) = max {
        rules.push(rule(
            &format!(
                "!self.matches({}) || duration(self) <= duration('{max}')",
                cel_string(COMPACT_PATTERN)
            ),
            &format!("must be at most {max} (the agents' limit)"),
        ));
    }
    schemars::json_schema!({
        "type": "string",
        "maxLength": 64,
        "x-kubernetes-validations": rules,
    })
}

/// `s` as a CEL raw string literal (no escapes to get wrong).
fn cel_string(s: &str) -> String {
    format!("r'{s}'")
}

fn duration(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    duration_schema(false, None)
}

fn positive_duration(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    duration_schema(true, None)
}

fn down_for(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    duration_schema(true, Some(MAX_DOWN_FOR))
}

/// A cold start anywhere in the plan needs the plan's opt-in.
const ZERO_NEEDS_OPT_IN: &str = "!self.faults.exists(f, has(f.scale) && has(f.scale.to) && f.scale.to == 0) || (has(self.safety) && has(self.safety.allow__dash__zero) && self.safety.allow__dash__zero)";

/// The experiment plan, exactly as in a plan file (kebab-case keys).
#[derive(Debug, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
#[x_kube(validation = Rule::new(ZERO_NEEDS_OPT_IN).message(
    "a scale to 0 is planned unavailability: the plan must opt in with safety: {allow-zero: true}"
))]
pub struct CrdPlan {
    #[x_kube(validation = Rule::new("size(self) > 0").message("name must not be empty"))]
    #[schemars(length(max = 253))]
    pub name: String,
    pub seed: Option<u64>,
    #[schemars(schema_with = "positive_duration")]
    pub duration: String,
    pub steady_state: CrdSteadyState,
    pub safety: Option<CrdSafety>,
    #[schemars(schema_with = "positive_duration")]
    pub recovery_timeout: String,
    pub balls: Option<CrdBalls>,
    #[schemars(length(max = 64))]
    pub faults: Vec<CrdFault>,
}

/// The steady-state hypothesis.
#[derive(Debug, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct CrdSteadyState {
    pub min_ready_workers: u32,
    #[x_kube(validation = Rule::new("self >= 0.0 && self <= 1.0")
        .message("min-delivery-rate must be between 0 and 1"))]
    pub min_delivery_rate: f64,
    #[serde(default)]
    #[schemars(schema_with = "positive_duration")]
    pub window: Option<String>,
}

/// What the run may touch.
#[derive(Debug, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct CrdSafety {
    pub max_unavailable: Option<u32>,
    #[x_kube(validation = Rule::new(
        "self.all(n, size(n) <= 63 && n.matches(r'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'))"
    ).message("namespaces must be valid namespace names"))]
    #[schemars(length(max = 32), inner(length(max = 63)))]
    pub namespaces: Option<Vec<String>>,
    #[x_kube(validation = Rule::new(r"self.matches(r'^[^=]+=[^=]+$')")
        .message("opt-in-label must be key=value"))]
    #[schemars(length(max = 317))]
    pub opt_in_label: Option<String>,
    pub dry_run: Option<bool>,
    /// The opt-in to planned unavailability (`scale: {to: 0}`).
    pub allow_zero: Option<bool>,
}

/// The ball factory's traffic.
#[derive(Debug, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct CrdBalls {
    #[x_kube(validation = Rule::new("self > 0.0 && self <= 10000.0")
        .message("rate-per-s must be above 0 and at most 10000"))]
    pub rate_per_s: Option<f64>,
    #[x_kube(validation = Rule::new("self >= 1").message("ttl must be at least 1"))]
    pub ttl: Option<u32>,
    #[serde(default)]
    #[schemars(schema_with = "positive_duration")]
    pub timeout: Option<String>,
}

const ONE_ACTION: &str = "(has(self.pod__dash__kill) ? 1 : 0) + (has(self.node__dash__kill) ? 1 : 0) + (has(self.scale) ? 1 : 0) == 1";

/// One fault and when it fires.
#[derive(Debug, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
#[x_kube(validation = Rule::new(ONE_ACTION)
    .message("a fault must have exactly one of pod-kill, node-kill or scale"))]
#[x_kube(validation = Rule::new("!has(self.times) || self.times <= 1 || has(self.every)")
    .message("times above 1 needs every"))]
pub struct CrdFault {
    #[x_kube(validation = Rule::new("size(self) > 0").message("fault name must not be empty"))]
    #[schemars(length(max = 253))]
    pub name: String,
    #[schemars(schema_with = "duration")]
    pub at: String,
    #[serde(default)]
    #[schemars(schema_with = "positive_duration")]
    pub every: Option<String>,
    #[x_kube(validation = Rule::new("self >= 1").message("times must be at least 1"))]
    pub times: Option<u32>,
    #[serde(default)]
    #[schemars(schema_with = "duration")]
    pub jitter: Option<String>,
    pub pod_kill: Option<CrdPodKill>,
    pub node_kill: Option<CrdNodeKill>,
    pub scale: Option<CrdScale>,
}

/// Kills workers.
#[derive(Debug, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
#[x_kube(validation = Rule::new("has(self.count) != has(self.percent)")
    .message("pod-kill takes count or percent (exactly one)"))]
pub struct CrdPodKill {
    #[x_kube(validation = Rule::new("self >= 1").message("count must be at least 1"))]
    pub count: Option<u32>,
    #[x_kube(validation = Rule::new("self >= 1 && self <= 100")
        .message("percent must be between 1 and 100"))]
    pub percent: Option<u32>,
    #[x_kube(validation = Rule::new("self in ['graceful', 'forced']")
        .message("mode must be graceful or forced"))]
    #[schemars(length(max = 16))]
    pub mode: Option<String>,
}

/// Takes a node down.
#[derive(Debug, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct CrdNodeKill {
    // `partition` is admitted as the plan parser admits it (the rules are
    // never stricter than the parser); the k3s backend refuses it when the
    // fault fires, journaled as a refused fault with its reason.
    #[x_kube(validation = Rule::new("self in ['stop-k3s', 'reboot', 'net-drop', 'power-relay', 'cordon-drain', 'partition']")
        .message("action must be stop-k3s, reboot, net-drop, power-relay, cordon-drain or partition"))]
    #[schemars(length(max = 16))]
    pub action: String,
    #[schemars(schema_with = "down_for")]
    pub down_for: String,
    #[schemars(length(max = 253))]
    pub node: Option<String>,
}

/// Changes the replica count: `min`/`max`, or `to` (0 with `hold`: a cold start).
#[derive(Debug, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
#[x_kube(validation = Rule::new("has(self.to) ? !has(self.min) && !has(self.max) : has(self.min) && has(self.max)")
    .message("scale takes to, or min and max"))]
#[x_kube(validation = Rule::new("!has(self.min) || self.min >= 1")
    .message("scale min must be at least 1 (a cold start is to: 0 with hold)"))]
#[x_kube(validation = Rule::new("!has(self.min) || !has(self.max) || self.max >= self.min")
    .message("scale max is below min"))]
#[x_kube(validation = Rule::new("!has(self.hold) || (has(self.to) && self.to == 0)")
    .message("hold is only for to: 0 (a cold start)"))]
#[x_kube(validation = Rule::new("!has(self.to) || self.to != 0 || has(self.hold)")
    .message("scale to 0 needs hold: how long to stay at zero before scaling back"))]
pub struct CrdScale {
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub to: Option<u32>,
    #[serde(default)]
    #[schemars(schema_with = "positive_duration")]
    pub hold: Option<String>,
}

/// The plan's schema, with the description `kubectl explain` shows.
pub fn plan_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = g.subschema_for::<CrdPlan>();
    s.insert(
        "description".into(),
        "The experiment plan, exactly as in a plan file (kebab-case keys): name, seed, duration, steady-state, safety, recovery-timeout, balls, faults. The API server checks the CEL rules; the operator validates it in full with the plan parser before anything is touched and reports the reason in status.".into(),
    );
    s
}
