//! Journal → [`Report`]: gathers each fault's milestones, derives phases,
//! statistics, SLO breaches and the verdict. Pure and deterministic: ordered
//! collections only, no clock.

use std::collections::{BTreeMap, BTreeSet};

use super::model::*;
use super::parse::ReadJournal;
use super::phases::timeline;
use super::stats::kind_stats;
use super::verdict::{breach, verdict};
use crate::journal::event::{
    Event, FaultInjected, FaultOutcome, JournalLine, RunOutcome, RunStarted,
};
use crate::model::{FaultKind, Milestone, ServiceLevel};
use rackpong_agent::proto::HealthSample;

/// A fault while its lines are gathered.
struct FaultAcc {
    injected: FaultInjected,
    injected_ms: u64,
    milestones: Vec<(Milestone, MilestoneAt)>,
    ended: Option<(u64, FaultOutcome)>,
}

/// Everything gathered from the lines, before derivation.
#[derive(Default)]
struct Gathered {
    faults: Vec<FaultAcc>,
    index: BTreeMap<String, usize>,
    refused: Vec<(FaultKind, RefusedFault)>,
    health: BTreeMap<String, Vec<HealthPoint>>,
    agent_versions: BTreeSet<String>,
    service: Vec<ServicePoint>,
    steady: Vec<SteadyCheck>,
    zombies: Vec<Window>,
    overlaps: Vec<Window>,
    rollbacks: Vec<RollbackAction>,
    /// Node signals seen: (t_ms, what, node).
    node_events: Vec<(u64, String, String)>,
    ended: Option<(u64, RunOutcome, Option<String>)>,
    warnings: Vec<String>,
}

/// Builds the report of a journal read by [`super::parse::read_journal`].
pub fn build(read: &ReadJournal) -> Report {
    let Event::RunStarted(start) = &read.lines[0].event else {
        unreachable!("parse_journal guarantees the first line is run-started")
    };
    let mut g = Gathered::default();
    for line in &read.lines[1..] {
        gather(&mut g, line);
    }
    // Lines carry the time things were observed, not written, so a series
    // may be slightly out of order in the file; stable sorts keep ties in
    // journal order.
    for samples in g.health.values_mut() {
        samples.sort_by_key(|h| h.t_ms);
    }
    g.service.sort_by_key(|p| p.t_ms);
    let faults: Vec<FaultReport> = g
        .faults
        .iter()
        .map(|f| {
            let mut r = fault_report(f, start, &g.health);
            super::findings::annotate(&mut r, &f.injected.predicted_phases, &g.node_events);
            r
        })
        .collect();
    let findings = super::findings::findings(&faults);
    let journal = journal_info(read, &g);
    let run = run_meta(start, &g, &journal);
    let slo_breaches = faults
        .iter()
        .filter_map(|f| breach(f, start.recovery_timeout_ms))
        .collect();
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        stats: kind_stats(&faults, &g.refused),
        journal,
        run,
        verdict: Verdict {
            passed: false,
            failures: Vec::new(),
        },
        faults,
        refused: g.refused.into_iter().map(|(_, r)| r).collect(),
        zombies: g.zombies,
        overlaps: g.overlaps,
        slo_breaches,
        steady_state: g.steady,
        rollbacks: g.rollbacks,
        service: g.service,
        health: g
            .health
            .into_iter()
            .map(|(node, samples)| NodeSeries { node, samples })
            .collect(),
        findings,
    };
    report.verdict = verdict(&report);
    report
}

fn gather(g: &mut Gathered, line: &JournalLine) {
    let t_ms = line.t_ms;
    match &line.event {
        Event::RunStarted(_) => {}
        Event::Health { sample } => {
            g.agent_versions.insert(sample.agent_version.clone());
            g.health
                .entry(sample.node.clone())
                .or_default()
                .push(health_point(t_ms, sample));
        }
        Event::Service(s) => g.service.push(service_point(t_ms, s)),
        Event::SteadyState { ok, detail } => g.steady.push(SteadyCheck {
            t_ms,
            ok: *ok,
            detail: detail.clone(),
        }),
        Event::FaultInjected(f) => injected(g, t_ms, f),
        Event::FaultRefused {
            fault,
            kind,
            target,
            reason,
        } => refused(g, t_ms, fault, *kind, target, reason),
        Event::Milestone(m) => milestone(g, t_ms, m),
        Event::Zombie {
            fault_id,
            worker,
            node,
            from_ms,
            to_ms,
        } => g
            .zombies
            .push(window(fault_id, worker, node, *from_ms, *to_ms)),
        Event::Overlap {
            fault_id,
            old_worker,
            new_worker,
            from_ms,
            to_ms,
        } => g
            .overlaps
            .push(window(fault_id, old_worker, new_worker, *from_ms, *to_ms)),
        Event::FaultEnded { fault_id, outcome } => ended(g, t_ms, fault_id, *outcome),
        Event::Cluster { what, name, .. } => {
            if super::findings::NODE_SIGNALS.contains(&what.as_str()) {
                g.node_events.push((t_ms, what.clone(), name.clone()));
            }
        }
        Event::Rollback { action, ok, detail } => g.rollbacks.push(RollbackAction {
            t_ms,
            action: action.clone(),
            ok: *ok,
            detail: detail.clone(),
        }),
        Event::RunEnded { outcome, reason } => g.ended = Some((t_ms, *outcome, reason.clone())),
    }
}

fn refused(
    g: &mut Gathered,
    t_ms: u64,
    fault: &str,
    kind: FaultKind,
    target: &Option<String>,
    reason: &str,
) {
    let refused = RefusedFault {
        t_ms,
        fault: fault.to_string(),
        kind: kind.as_str().into(),
        target: target.clone(),
        reason: reason.to_string(),
    };
    g.refused.push((kind, refused));
}

fn ended(g: &mut Gathered, t_ms: u64, fault_id: &str, outcome: FaultOutcome) {
    match g.index.get(fault_id) {
        Some(&i) => g.faults[i].ended = Some((t_ms, outcome)),
        None => g
            .warnings
            .push(format!("fault-ended for unknown fault {fault_id}")),
    }
}

fn injected(g: &mut Gathered, t_ms: u64, f: &FaultInjected) {
    if g.index.contains_key(&f.fault_id) {
        g.warnings.push(format!(
            "fault {} injected twice; the second is ignored",
            f.fault_id
        ));
        return;
    }
    g.index.insert(f.fault_id.clone(), g.faults.len());
    g.faults.push(FaultAcc {
        injected: f.clone(),
        injected_ms: t_ms,
        milestones: Vec::new(),
        ended: None,
    });
}

fn milestone(g: &mut Gathered, t_ms: u64, m: &crate::journal::event::MilestoneEvent) {
    let Some(&i) = g.index.get(&m.fault_id) else {
        g.warnings.push(format!(
            "milestone {} for unknown fault {}",
            m.milestone.as_str(),
            m.fault_id
        ));
        return;
    };
    let at = MilestoneAt {
        milestone: m.milestone.as_str().into(),
        t_ms,
        source: m.source.clone(),
        precision_ms: m.precision_ms,
        subject: m.subject.clone(),
    };
    g.faults[i].milestones.push((m.milestone, at));
}

fn window(fault_id: &str, worker: &str, other: &str, from_ms: u64, to_ms: u64) -> Window {
    Window {
        fault_id: fault_id.into(),
        worker: worker.into(),
        other: other.into(),
        from_ms,
        to_ms,
        duration_ms: to_ms.saturating_sub(from_ms),
    }
}

fn service_point(t_ms: u64, s: &ServiceLevel) -> ServicePoint {
    ServicePoint {
        t_ms,
        window_ms: s.window_ms,
        sent: s.sent,
        caught: s.caught,
        dropped: s.dropped,
        timed_out: s.timed_out,
        delivery_rate: s.delivery_rate,
        p50_ms: s.p50_ms,
        p95_ms: s.p95_ms,
        p99_ms: s.p99_ms,
    }
}

fn health_point(t_ms: u64, s: &HealthSample) -> HealthPoint {
    HealthPoint {
        t_ms,
        sample_ts_ms: s.ts_ms,
        temp_c: s.temp_c,
        cpu_pct: s.cpu_pct,
        mem_used_bytes: s.memory.map(|m| m.used_bytes),
        mem_total_bytes: s.memory.map(|m| m.total_bytes),
        throttled_now: s.throttle.is_some_and(|t| t.any_now()),
        under_voltage_now: s.throttle.and_then(|t| t.under_voltage_now),
        throttle_raw: s.throttle.and_then(|t| t.raw),
    }
}

fn outcome_name(o: Option<FaultOutcome>) -> &'static str {
    match o {
        Some(FaultOutcome::Recovered) => "recovered",
        Some(FaultOutcome::TimedOut) => "timed-out",
        Some(FaultOutcome::Aborted) => "aborted",
        None => "unfinished",
    }
}

fn fault_report(
    f: &FaultAcc,
    start: &RunStarted,
    health: &BTreeMap<String, Vec<HealthPoint>>,
) -> FaultReport {
    let tl = timeline(f.injected_ms, &f.milestones);
    let outcome = f.ended.map(|(_, o)| o);
    let recovered = outcome == Some(FaultOutcome::Recovered);
    let total_ms = tl
        .phases
        .last()
        .filter(|_| recovered)
        .map(|p| p.end_ms - f.injected_ms);
    let mut notes = tl.notes;
    if recovered
        && tl
            .phases
            .last()
            .is_some_and(|p| p.to != Milestone::ServiceRestored.as_str())
    {
        notes.push(
            "recovered without a service-restored milestone: the total ends at the last milestone"
                .into(),
        );
    }
    let i = &f.injected;
    FaultReport {
        fault_id: i.fault_id.clone(),
        fault: i.fault.clone(),
        kind: i.kind.as_str().into(),
        action: i.action.clone(),
        targets: i.targets.clone(),
        node: i.node.clone(),
        replicas_from: i.replicas_from,
        replicas_to: i.replicas_to,
        injected_ms: f.injected_ms,
        milestones: f.milestones.iter().map(|(_, at)| at.clone()).collect(),
        phases: tl.phases,
        outcome: outcome_name(outcome).into(),
        ended_ms: f.ended.map(|(t, _)| t),
        total_ms,
        precision_ms: tl.precision_ms,
        predicted_ms: i.predicted_ms,
        predicted_basis: i.predicted_basis.clone(),
        within_prediction: total_ms.zip(i.predicted_ms).map(|(t, p)| t <= p),
        overran: None,
        node_signals: None,
        slo_ok: total_ms.is_some_and(|t| t <= start.recovery_timeout_ms),
        health_at_injection: i
            .node
            .as_ref()
            .and_then(|n| health_at(health.get(n)?, f.injected_ms)),
        notes,
    }
}

/// The node's latest health sample at or before `t_ms`.
fn health_at(samples: &[HealthPoint], t_ms: u64) -> Option<HealthPoint> {
    let n = samples.partition_point(|s| s.t_ms <= t_ms);
    samples[..n].last().cloned()
}

fn journal_info(read: &ReadJournal, g: &Gathered) -> JournalInfo {
    let mut warnings = read.warnings.clone();
    warnings.extend(g.warnings.iter().cloned());
    for &(line, expected, found) in &read.seq_gaps {
        warnings.push(format!(
            "line {line}: seq {found} where {expected} was expected; lines were lost"
        ));
    }
    if g.ended.is_none() {
        warnings.push("no run-ended line: the run did not finish (or is still running)".into());
    }
    JournalInfo {
        lines: read.line_count,
        complete: g.ended.is_some() && read.truncated_lines.is_empty() && read.seq_gaps.is_empty(),
        truncated_lines: read.truncated_lines.clone(),
        seq_gaps: read
            .seq_gaps
            .iter()
            .map(|&(line, expected_seq, found_seq)| SeqGap {
                line,
                expected_seq,
                found_seq,
            })
            .collect(),
        last_t_ms: read.lines.iter().map(|l| l.t_ms).max().unwrap_or(0),
        warnings,
    }
}

fn run_meta(s: &RunStarted, g: &Gathered, journal: &JournalInfo) -> RunMeta {
    let d = &s.detection;
    let (outcome, end_reason, duration_ms) = match &g.ended {
        Some((t, o, r)) => (run_outcome_name(*o), r.clone(), *t),
        None => ("incomplete", None, journal.last_t_ms),
    };
    RunMeta {
        run_id: s.run_id.clone(),
        started_unix_ms: s.started_unix_ms,
        controller_version: s.controller_version.clone(),
        agent_versions: g.agent_versions.iter().cloned().collect(),
        cluster_kind: s.cluster_kind.to_string(),
        nodes: s.nodes.clone(),
        node_count: s.nodes.len() as u64,
        plan_name: s.plan_name.clone(),
        seed: s.seed,
        plan: s.plan.clone(),
        recovery_timeout_ms: s.recovery_timeout_ms,
        min_delivery_rate: s.min_delivery_rate,
        detection: DetectionSettings {
            profile: d.profile.clone(),
            node_monitor_grace_s: d.node_monitor_grace_s,
            not_ready_toleration_s: d.not_ready_toleration_s,
            unreachable_toleration_s: d.unreachable_toleration_s,
            readiness_period_s: d.readiness_period_s,
            readiness_failure_threshold: d.readiness_failure_threshold,
            mqtt_keepalive_s: d.mqtt_keepalive_s,
            extra: d.extra.clone(),
        },
        outcome: outcome.into(),
        end_reason,
        duration_ms,
    }
}

fn run_outcome_name(o: RunOutcome) -> &'static str {
    match o {
        RunOutcome::Completed => "completed",
        RunOutcome::Aborted => "aborted",
        RunOutcome::Crashed => "crashed",
    }
}
