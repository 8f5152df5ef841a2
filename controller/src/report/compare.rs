//! Side-by-side comparison of two runs: per fault kind and phase, both
//! runs' figures, the change in p50, and whether the difference is larger
//! than the runs' own spread.
//!
//! "Larger than the spread" means the two runs' p5–p95 ranges (nearest-rank,
//! see [`super::stats`]) do not overlap, with at least [`MIN_SAMPLES`]
//! samples on each side. With fewer than 20 samples p5–p95 is simply
//! min–max, so the test is deliberately conservative for small runs.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde::Serialize;

use super::fmt as f;
use super::markdown::cell;
use super::model::{KindStats, Report, Summary};

/// Fewest samples per run for a spread judgement.
pub const MIN_SAMPLES: u64 = 2;

/// The comparison of run A (baseline) with run B.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub run_a: RunSide,
    pub run_b: RunSide,
    pub rows: Vec<CompareRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSide {
    pub run_id: String,
    pub plan_name: String,
    pub detection_profile: String,
    pub passed: bool,
}

/// One fault kind and phase (or the total) in both runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompareRow {
    pub kind: String,
    /// `from → to`, or `total`.
    pub phase: String,
    pub a: Option<Summary>,
    pub b: Option<Summary>,
    /// p50 of B minus p50 of A (ms).
    pub p50_change_ms: Option<i64>,
    /// The same as a percentage of A's p50.
    pub p50_change_pct: Option<f64>,
    /// `larger than spread`, `within spread` or `too few samples`.
    pub judgement: String,
}

/// Compares two reports.
pub fn compare(a: &Report, b: &Report) -> Comparison {
    let kinds: BTreeSet<&str> = a
        .stats
        .iter()
        .chain(&b.stats)
        .map(|k| k.kind.as_str())
        .collect();
    let mut rows = Vec::new();
    for kind in kinds {
        let ka = a.stats.iter().find(|k| k.kind == kind);
        let kb = b.stats.iter().find(|k| k.kind == kind);
        for phase in phases(ka, kb) {
            let pick = |k: Option<&KindStats>| k.and_then(|k| summary_of(k, &phase));
            rows.push(row(kind, &phase, pick(ka), pick(kb)));
        }
    }
    Comparison {
        run_a: side(a),
        run_b: side(b),
        rows,
    }
}

fn side(r: &Report) -> RunSide {
    RunSide {
        run_id: r.run.run_id.clone(),
        plan_name: r.run.plan_name.clone(),
        detection_profile: r.run.detection.profile.clone(),
        passed: r.verdict.passed,
    }
}

fn phase_label(from: &str, to: &str) -> String {
    format!("{from} → {to}")
}

/// Phases of either run in A's order, then B's new ones, then the total.
fn phases(a: Option<&KindStats>, b: Option<&KindStats>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in [a, b].into_iter().flatten() {
        for p in &k.phases {
            let label = phase_label(&p.from, &p.to);
            if !out.contains(&label) {
                out.push(label);
            }
        }
    }
    out.push("total".into());
    out
}

fn summary_of(k: &KindStats, phase: &str) -> Option<Summary> {
    if phase == "total" {
        return k.total.clone();
    }
    k.phases
        .iter()
        .find(|p| phase_label(&p.from, &p.to) == phase)
        .map(|p| p.summary.clone())
}

fn row(kind: &str, phase: &str, a: Option<Summary>, b: Option<Summary>) -> CompareRow {
    let both = a.as_ref().zip(b.as_ref());
    let p50_change_ms = both.map(|(a, b)| b.p50 as i64 - a.p50 as i64);
    let p50_change_pct = both.and_then(|(a, b)| {
        (a.p50 > 0).then(|| (b.p50 as f64 - a.p50 as f64) * 100.0 / a.p50 as f64)
    });
    let judgement = match both {
        Some((a, b)) if a.count >= MIN_SAMPLES && b.count >= MIN_SAMPLES => {
            if a.p95 < b.p5 || b.p95 < a.p5 {
                "larger than spread"
            } else {
                "within spread"
            }
        }
        _ => "too few samples",
    };
    CompareRow {
        kind: kind.into(),
        phase: phase.into(),
        a,
        b,
        p50_change_ms,
        p50_change_pct,
        judgement: judgement.into(),
    }
}

fn figures(s: &Option<Summary>) -> String {
    s.as_ref().map_or_else(
        || "—".into(),
        |s| {
            format!(
                "n={} p50 {} (p5–p95 {}–{})",
                s.count,
                f::secs(s.p50),
                f::secs(s.p5),
                f::secs(s.p95)
            )
        },
    )
}

/// The comparison as Markdown.
pub fn markdown(c: &Comparison) -> String {
    let mut out = String::from("# rackpong comparison\n\n");
    out.push_str("| | Run A (baseline) | Run B |\n|---|---|---|\n");
    let _ = writeln!(out, "| Run | `{}` | `{}` |", c.run_a.run_id, c.run_b.run_id);
    let _ = writeln!(
        out,
        "| Plan | {} | {} |",
        cell(&c.run_a.plan_name),
        cell(&c.run_b.plan_name)
    );
    let _ = writeln!(
        out,
        "| Failure detection | {} | {} |",
        cell(&c.run_a.detection_profile),
        cell(&c.run_b.detection_profile)
    );
    let verdict = |p: bool| if p { "passed" } else { "failed" };
    let _ = writeln!(
        out,
        "| Verdict | {} | {} |\n",
        verdict(c.run_a.passed),
        verdict(c.run_b.passed)
    );
    if c.rows.is_empty() {
        out.push_str("Neither run injected a fault.\n\n");
    } else {
        out.push_str("| Kind | Phase | Run A | Run B | Change in p50 | Difference |\n|---|---|---|---|---|---|\n");
    }
    for r in &c.rows {
        let change = match (r.p50_change_ms, r.p50_change_pct) {
            (Some(ms), Some(pct)) => format!("{ms:+} ms ({pct:+.1} %)"),
            (Some(ms), None) => format!("{ms:+} ms"),
            _ => "—".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {change} | {} |",
            r.kind,
            cell(&r.phase),
            figures(&r.a),
            figures(&r.b),
            r.judgement
        );
    }
    out.push_str(
        "\n\"Larger than spread\": with at least 2 samples in each run, the runs' p5–p95 ranges (nearest-rank) do not overlap; \
         below 20 samples that is min–max.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(count: u64, p5: u64, p50: u64, p95: u64) -> Option<Summary> {
        Some(Summary {
            count,
            min: p5,
            p5,
            p50,
            p95,
            max: p95,
        })
    }

    #[test]
    fn spread_judgement() {
        assert_eq!(
            row("k", "total", s(5, 100, 150, 200), s(5, 300, 350, 400)).judgement,
            "larger than spread"
        );
        assert_eq!(
            row("k", "total", s(5, 100, 150, 200), s(5, 190, 250, 300)).judgement,
            "within spread"
        );
        assert_eq!(
            row("k", "total", s(1, 100, 100, 100), s(5, 300, 350, 400)).judgement,
            "too few samples"
        );
        let r = row("k", "total", s(5, 100, 200, 300), s(5, 100, 150, 300));
        assert_eq!(
            (r.p50_change_ms, r.p50_change_pct),
            (Some(-50), Some(-25.0))
        );
    }
}
