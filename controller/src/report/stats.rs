//! Summary statistics of durations. Percentiles use the nearest-rank method:
//! the p-th percentile of n sorted values is the value at 1-based rank
//! `ceil(p/100 * n)` (rank 1 for p = 0). It is always an observed value, needs
//! no interpolation and gives the same answer on every machine. Also the
//! per fault kind statistics of a report.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{FaultReport, KindStats, PhaseStats, RefusedFault, Summary};
use crate::model::{FaultKind, Milestone};

/// Nearest-rank percentile of ascending `sorted` values; `None` when empty.
pub fn percentile(sorted: &[u64], p: u32) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    // ceil(p * n / 100) in integers, so no float rounding can move a rank.
    let rank = (u64::from(p) * n).div_ceil(100).clamp(1, n);
    Some(sorted[(rank - 1) as usize])
}

/// Count, min, p5, p50, p95 and max; `None` for no values.
pub fn summarize(values: &[u64]) -> Option<Summary> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    Some(Summary {
        count: sorted.len() as u64,
        min: *sorted.first()?,
        p5: percentile(&sorted, 5)?,
        p50: percentile(&sorted, 50)?,
        p95: percentile(&sorted, 95)?,
        max: *sorted.last()?,
    })
}

/// Statistics per fault kind (kinds in plan order) over injected and refused faults.
pub fn kind_stats(faults: &[FaultReport], refused: &[(FaultKind, RefusedFault)]) -> Vec<KindStats> {
    let kinds: BTreeSet<FaultKind> = faults
        .iter()
        .filter_map(|f| kind_of(&f.kind))
        .chain(refused.iter().map(|(k, _)| *k))
        .collect();
    kinds
        .into_iter()
        .map(|k| one_kind(k, faults, refused))
        .collect()
}

fn kind_of(name: &str) -> Option<FaultKind> {
    [FaultKind::PodKill, FaultKind::NodeKill, FaultKind::Scale]
        .into_iter()
        .find(|k| k.as_str() == name)
}

fn one_kind(
    kind: FaultKind,
    faults: &[FaultReport],
    refused: &[(FaultKind, RefusedFault)],
) -> KindStats {
    let name = kind.as_str();
    let of_kind: Vec<&FaultReport> = faults.iter().filter(|f| f.kind == name).collect();
    let totals: Vec<u64> = of_kind.iter().filter_map(|f| f.total_ms).collect();
    // Phases keyed by milestone order of their ends, then starts.
    let rank = |s: &str| {
        Milestone::COLD_START
            .iter()
            .position(|m| m.as_str() == s)
            .map_or(0, |p| p + 1)
    };
    let mut phases: BTreeMap<(usize, usize, String, String), Vec<u64>> = BTreeMap::new();
    for p in of_kind.iter().flat_map(|f| &f.phases) {
        let key = (rank(&p.to), rank(&p.from), p.from.clone(), p.to.clone());
        phases.entry(key).or_default().push(p.duration_ms);
    }
    KindStats {
        kind: name.into(),
        injected: of_kind.len() as u64,
        recovered: totals.len() as u64,
        refused: refused.iter().filter(|(k, _)| *k == kind).count() as u64,
        total: summarize(&totals),
        phases: phases
            .into_iter()
            .filter_map(|((_, _, from, to), v)| {
                Some(PhaseStats {
                    from,
                    to,
                    summary: summarize(&v)?,
                })
            })
            .collect(),
        predicted_max_ms: of_kind.iter().filter_map(|f| f.predicted_ms).max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_matches_the_definition() {
        let v: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile(&v, 50), Some(10));
        assert_eq!(percentile(&v, 95), Some(19));
        assert_eq!(percentile(&v, 5), Some(1));
        assert_eq!(percentile(&v, 100), Some(20));
        assert_eq!(percentile(&v, 0), Some(1));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn summary_sorts_its_input() {
        let s = summarize(&[300, 100, 200]).unwrap();
        assert_eq!(
            (s.count, s.min, s.p50, s.p95, s.max),
            (3, 100, 200, 300, 300)
        );
        assert!(summarize(&[]).is_none());
    }
}
