//! The operator's own metrics, served as `GET /metrics` by the probe server:
//! reconciles and failed reconciles by error kind (as kube-rs'
//! controller-rs counts them), so a user can alert on an operator that keeps
//! failing. The failure is also left as a Warning Event on the experiment by
//! the reconciler's error policy.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of a failed reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    /// `kube` (an API request failed) or `finalizer`.
    error: String,
}

/// The operator's counters.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    failures: Family<FailureLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("rackpong_operator");
        let reconciles = Counter::default();
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register(
            "reconciles",
            "ChaosExperiment reconciles started",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_failures",
            "ChaosExperiment reconciles that failed (retried), by error kind",
            failures.clone(),
        );
        Metrics {
            registry,
            reconciles,
            failures,
        }
    }
}

impl Metrics {
    /// One reconcile started.
    pub fn reconciled(&self) {
        self.reconciles.inc();
    }

    /// One reconcile failed with an error of `kind`.
    pub fn failed(&self, kind: &str) {
        self.failures
            .get_or_create(&FailureLabels {
                error: kind.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_by_kind() {
        let m = Metrics::default();
        m.reconciled();
        m.reconciled();
        m.failed("kube");
        let text = m.encode();
        assert!(
            text.contains("rackpong_operator_reconciles_total 2"),
            "{text}"
        );
        assert!(
            text.contains("rackpong_operator_reconcile_failures_total{error=\"kube\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
