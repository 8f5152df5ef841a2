//! Safety rules: pure decisions over the cluster as last seen and the plan's
//! limits. Only opted-in targets; never more workers unavailable than the plan
//! allows; never the last ready replica; PodDisruptionBudgets respected; no
//! node fault that would leave more than half the nodes NotReady or that
//! touches a protected node (k3s server, broker's node, controller's node).
//! The one exception to the last-replica rule is a planned cold start
//! (`scale: {to: 0, hold}`), which the plan must opt in to with
//! `safety.allow-zero`, and during which no other fault fires.
//! Every refusal carries its rule and a reason, which the engine journals as
//! `fault-refused`.

use rand::Rng;
use rand::seq::IndexedRandom;

use crate::cluster::{NodeInfo, WorkerInfo};
use crate::plan::{Amount, SafetyLimits};

/// A PodDisruptionBudget value: an absolute count or a percentage of the
/// expected replicas (rounded up, as Kubernetes does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PdbValue {
    Count(u32),
    Percent(u32),
}

impl PdbValue {
    fn resolve(self, expected: u32) -> u32 {
        match self {
            PdbValue::Count(n) => n,
            PdbValue::Percent(p) => (expected * p).div_ceil(100),
        }
    }
}

/// The workers' PodDisruptionBudget, as the k3s backend reads it (`None`
/// fields are unset; the local rack has none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pdb {
    pub min_available: Option<PdbValue>,
    pub max_unavailable: Option<PdbValue>,
}

impl Pdb {
    /// How many more healthy workers may be disrupted, like the PDB status
    /// field `disruptionsAllowed`.
    pub fn disruptions_allowed(&self, expected: u32, healthy: u32) -> u32 {
        let desired_healthy = match (self.min_available, self.max_unavailable) {
            (Some(min), _) => min.resolve(expected),
            (None, Some(max)) => expected.saturating_sub(max.resolve(expected)),
            (None, None) => 0,
        };
        healthy.saturating_sub(desired_healthy)
    }
}

/// The cluster as last observed, which every decision is made against.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    pub nodes: &'a [NodeInfo],
    pub workers: &'a [WorkerInfo],
    /// Desired replicas of the workers.
    pub replicas: u32,
    pub pdb: Option<Pdb>,
}

/// Which rule refused a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The backend's namespace is not one the plan allows.
    Namespace,
    /// Nothing opted in (or nothing eligible) to be a target.
    NoTarget,
    /// More workers would be unavailable than `max-unavailable`.
    MaxUnavailable,
    /// No ready worker would be left.
    LastReplica,
    /// The workers' PodDisruptionBudget allows fewer disruptions.
    Pdb,
    /// More than half of the nodes would be NotReady.
    HalfNodes,
    /// The node runs the k3s server, the broker or the controller.
    ProtectedNode,
    /// Another fault is still recovering (a cold start would take its replacements).
    Recovering,
    /// A planned scale-to-zero is in progress: nothing else fires until it recovered.
    PlannedZero,
}

/// A fault the rules refuse, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub rule: Rule,
    pub reason: String,
}

fn refuse(rule: Rule, reason: impl Into<String>) -> Refusal {
    Refusal {
        rule,
        reason: reason.into(),
    }
}

impl View<'_> {
    fn healthy(&self) -> impl Iterator<Item = &WorkerInfo> {
        self.workers.iter().filter(|w| w.ready && !w.terminating)
    }

    fn ready_count(&self) -> u32 {
        self.healthy().count() as u32
    }

    /// Desired replicas not currently ready.
    pub fn unavailable(&self) -> u32 {
        self.replicas.saturating_sub(self.ready_count())
    }

    /// Whether taking `lost` more ready workers is within every worker rule.
    fn check_worker_loss(&self, lost: u32, limits: &SafetyLimits) -> Result<(), Refusal> {
        let ready = self.ready_count();
        if lost >= ready && lost > 0 {
            return Err(refuse(
                Rule::LastReplica,
                format!("would take {lost} of the {ready} ready workers: none would be left"),
            ));
        }
        let unavailable = self.unavailable();
        if unavailable + lost > limits.max_unavailable {
            return Err(refuse(
                Rule::MaxUnavailable,
                format!(
                    "would make {} workers unavailable ({unavailable} already + {lost}); the plan allows {}",
                    unavailable + lost,
                    limits.max_unavailable
                ),
            ));
        }
        if let Some(pdb) = self.pdb {
            let allowed = pdb.disruptions_allowed(self.replicas, ready);
            if lost > allowed {
                return Err(refuse(
                    Rule::Pdb,
                    format!(
                        "the PodDisruptionBudget allows {allowed} disruption(s) now, the fault needs {lost}"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Refuses when the backend's namespace is not one the plan allows (an empty
/// list allows the backend's own).
pub fn namespace(ns: Option<&str>, limits: &SafetyLimits) -> Result<(), Refusal> {
    match ns {
        Some(ns) if !limits.namespaces.is_empty() && !limits.namespaces.iter().any(|a| a == ns) => {
            Err(refuse(
                Rule::Namespace,
                format!(
                    "namespace {ns:?} is not in the plan's namespaces {:?}",
                    limits.namespaces
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Chooses the workers a pod-kill takes (seeded), or refuses.
pub fn pod_kill(
    view: View<'_>,
    limits: &SafetyLimits,
    amount: Amount,
    rng: &mut impl Rng,
) -> Result<Vec<String>, Refusal> {
    let mut eligible: Vec<&WorkerInfo> = view.healthy().filter(|w| w.chaos_opt_in).collect();
    eligible.sort_by(|a, b| a.name.cmp(&b.name));
    if eligible.is_empty() {
        return Err(refuse(
            Rule::NoTarget,
            format!(
                "no ready worker opted in ({} workers, label {})",
                view.workers.len(),
                limits.opt_in_label
            ),
        ));
    }
    let want = amount.of(eligible.len());
    if want > eligible.len() {
        return Err(refuse(
            Rule::NoTarget,
            format!(
                "wants {want} workers, only {} are ready and opted in",
                eligible.len()
            ),
        ));
    }
    view.check_worker_loss(want as u32, limits)?;
    let mut chosen: Vec<String> = eligible
        .choose_multiple(rng, want)
        .map(|w| w.name.clone())
        .collect();
    chosen.sort();
    Ok(chosen)
}

/// The node a node fault takes and the ready workers it takes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeChoice {
    pub node: String,
    pub workers: Vec<String>,
}

/// Chooses the node a node fault takes (the plan's `node`, or a seeded
/// random eligible one), or refuses.
pub fn node_kill(
    view: View<'_>,
    limits: &SafetyLimits,
    fixed: Option<&str>,
    rng: &mut impl Rng,
) -> Result<NodeChoice, Refusal> {
    if let Some(name) = fixed {
        let node = view.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            refuse(
                Rule::NoTarget,
                format!("node {name:?} is not in the cluster"),
            )
        })?;
        return check_node(view, limits, node);
    }
    let mut nodes: Vec<&NodeInfo> = view.nodes.iter().collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut ok = Vec::new();
    let mut why = Vec::new();
    for n in nodes {
        match check_node(view, limits, n) {
            Ok(c) => ok.push(c),
            Err(r) => why.push((n.name.as_str(), r)),
        }
    }
    if let Some(choice) = ok.choose(rng) {
        return Ok(choice.clone());
    }
    let rule = why.first().map_or(Rule::NoTarget, |(_, r)| r.rule);
    let detail: Vec<String> = why.iter().map(|(n, r)| format!("{n}: {r}")).collect();
    Err(refuse(
        rule,
        format!("no node may be faulted ({})", detail.join("; ")),
    ))
}

fn check_node(
    view: View<'_>,
    limits: &SafetyLimits,
    node: &NodeInfo,
) -> Result<NodeChoice, Refusal> {
    let name = &node.name;
    if let Some(why) = &node.protected {
        return Err(refuse(
            Rule::ProtectedNode,
            format!("node {name} is protected ({why})"),
        ));
    }
    if !node.chaos_opt_in {
        return Err(refuse(
            Rule::NoTarget,
            format!("node {name} has not opted in ({})", limits.opt_in_label),
        ));
    }
    if !node.ready || node.cordoned {
        return Err(refuse(
            Rule::NoTarget,
            format!("node {name} is already NotReady or cordoned"),
        ));
    }
    let total = view.nodes.len();
    let not_ready = view.nodes.iter().filter(|n| !n.ready).count();
    if (not_ready + 1) * 2 > total {
        return Err(refuse(
            Rule::HalfNodes,
            format!(
                "would leave {} of {total} nodes NotReady (more than half)",
                not_ready + 1
            ),
        ));
    }
    let mut workers: Vec<String> = view
        .healthy()
        .filter(|w| w.node.as_deref() == Some(name.as_str()))
        .map(|w| w.name.clone())
        .collect();
    workers.sort();
    view.check_worker_loss(workers.len() as u32, limits)
        .map_err(|r| refuse(r.rule, format!("node {name}: {}", r.reason)))?;
    Ok(NodeChoice {
        node: name.clone(),
        workers,
    })
}

/// Checks a new replica count: zero only when the plan opted in to it.
pub fn scale(to: u32, limits: &SafetyLimits) -> Result<(), Refusal> {
    if to == 0 && !limits.allow_zero {
        return Err(refuse(
            Rule::LastReplica,
            "would scale the workers to zero (the plan has not opted in with allow-zero)",
        ));
    }
    Ok(())
}

/// Checks a planned scale to zero (a cold start): the plan opted in, there
/// are workers to take, and no other fault is still recovering (its
/// replacement would be taken for the cold start's and its timing lost).
/// The last-replica rule knows this is planned: it is not applied.
pub fn scale_to_zero(
    view: View<'_>,
    limits: &SafetyLimits,
    recovering: &[String],
) -> Result<(), Refusal> {
    scale(0, limits)?;
    if view.replicas == 0 {
        return Err(refuse(Rule::NoTarget, "the workers are already at zero"));
    }
    if !recovering.is_empty() {
        return Err(refuse(
            Rule::Recovering,
            format!(
                "{} still recovering: a cold start now would take its replacements",
                recovering.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Refuses any fault while the cold start `open` is in progress.
pub fn planned_zero(open: Option<&str>) -> Result<(), Refusal> {
    match open {
        Some(id) => Err(refuse(
            Rule::PlannedZero,
            format!(
                "the workers are at a planned zero ({id}): nothing else fires until it has recovered"
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
