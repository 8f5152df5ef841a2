//! Summary statistics of durations. Percentiles use the nearest-rank method:
//! the p-th percentile of n sorted values is the value at 1-based rank
//! `ceil(p/100 * n)` (rank 1 for p = 0). It is always an observed value, needs
//! no interpolation and gives the same answer on every machine.

use super::model::Summary;

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
