//! rackpong's controller: plays chaos monkey on a rack (local stand-in or
//! k3s), measures detection and recovery to the millisecond from watch events
//! and MQTT messages, and writes journals and reports. `main.rs` only parses
//! flags and calls [`cmd::run`].
//!
//! # Layout
//!
//! Layers run one way: each module imports only the ones listed below it
//! (modules on one line import none of each other).
//!
//! - [`cmd`] — one file per subcommand: parse flags, pick a rig, print.
//! - [`operator`] — the `ChaosExperiment` CRD, its reconciler, and the
//!   runner that hands an experiment to the engine on the k3s rig.
//! - [`rig`] — the one place that wires a run for either cluster: the
//!   broker link, the MQTT feed, the ball factory and its targets, the
//!   engine with its progress, the dashboard, the terminal.
//! - [`engine`], [`factory`], [`dashboard`] — the run loop, the ball
//!   factory, the live dashboard.
//! - [`console`] — the terminal during a run: the progress bar and one line
//!   per fault event; the log file.
//! - [`story`] — the journal told as faults and their recoveries, for the
//!   dashboard and the terminal.
//! - [`estop`] — publishing the rack's signed emergency stop (a short-lived
//!   MQTT client of its own, used by `rackpong estop` and the dashboard).
//! - [`report`] — the reports rendered from a journal (whose verdict is the
//!   run's verdict, also for the exit code and the operator's status).
//! - [`timing`], [`safety`] — recovery milestones and predictions, the
//!   safety rules.
//! - [`cluster`] — the rack behind one trait: the local stand-in (loopback
//!   or one network namespace per node) and k3s (with the signed node
//!   commander in `cluster::k3s::nodecmd`).
//! - [`plan`], [`journal`] — plan files; the run journal (its line format,
//!   `journal::event`, is public: other tools read it).
//! - [`model`] — the core vocabulary: fault kinds, milestones, detection
//!   settings, service level, cluster kind.
//!
//! Inside these, modules other crates have no use for are `pub(crate)`
//! behind deliberate `pub use` re-exports.
//!
//! MQTT messages are decoded once, by `rackpong_agent::proto::RackMessage`.

pub mod cluster;
pub mod cmd;
pub mod console;
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
pub mod story;
pub mod timing;

/// The controller's version, recorded in every run.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
