//! The in-cluster operator (`rackpong operator`): the `ChaosExperiment`
//! custom resource ([`crd`]), the reconciler that follows each experiment's
//! status ([`reconcile`]), and the runner that hands its plan to the engine
//! on the shared k3s rig ([`runner`]), kubelet's probes ([`health`]) and
//! the operator's counters ([`metrics`]).

pub(crate) mod crd;
pub mod crd_plan;
pub(crate) mod health;
pub(crate) mod metrics;
pub mod reconcile;
pub mod runner;

pub use crd::{
    ChaosExperiment, ChaosExperimentSpec, ChaosExperimentStatus, CrdError, Phase, crd_yaml,
};
pub use runner::{OperatorRunError, serve};
