//! rackpong's controller: plays chaos monkey on a rack (local stand-in or
//! k3s), measures detection and recovery to the millisecond from watch events
//! and MQTT messages, and writes journals and reports. `main.rs` only parses
//! flags and calls [`cmd::run`].
//!
//! # Layout
//!
//! Layers run one way: each module imports only the ones listed below it.
//!
//! - [`cmd`] — one file per subcommand: parse flags, pick a rig, print.
//! - [`operator`] — the `ChaosExperiment` CRD, its reconciler, and the
//!   runner that hands an experiment to the engine on the k3s rig.
//! - [`rig`] — the one place that wires a run for either cluster: the
//!   broker link, the MQTT feed, the ball factory and its targets, the
//!   engine with its progress, the dashboard.
//! - [`engine`], [`factory`], [`dashboard`] — the run loop, the ball
//!   factory, the live dashboard; none imports another.
//! - [`estop`] — publishing the rack's signed emergency stop (a short-lived
//!   MQTT client of its own, used by `rackpong estop` and the dashboard).
//! - [`cluster`] — the rack behind one trait: the local stand-in and k3s
//!   (with the signed node commander in `cluster::k3s::nodecmd`).
//! - [`timing`], [`safety`], [`plan`], [`journal`], [`report`] — recovery
//!   milestones, the safety rules, plan files, the run journal, and the
//!   reports rendered from it (whose verdict is the run's verdict).
//! - [`model`] — the core vocabulary: fault kinds, milestones, detection
//!   settings, service level.
//!
//! MQTT messages are decoded once, by `rackpong_agent::proto::RackMessage`.

pub mod cluster;
pub mod cmd;
pub mod dashboard;
pub mod engine;
pub mod estop;
pub mod factory;
pub mod journal;
pub mod model;
pub mod operator;
pub mod plan;
pub mod report;
pub mod rig;
pub mod safety;
pub mod timing;

/// The controller's version, recorded in every run.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
