//! `rackpong demo`: everything on this machine with no setup — an embedded
//! MQTT broker, a local stand-in rack (default 4 nodes, 8 workers), the ball
//! factory and the default plan (pod kills, a node kill, a scale change),
//! with the progress bar and one line per fault event in the terminal; prints
//! the summary, renders the report and prints the run directory at the end.
//! With `--dashboard` the page can stay up after the run showing the verdict
//! (`--dashboard-linger`). With `--isolation netns` every node is a network
//! namespace and the built-in plan also cuts one node's network (net-drop).

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::IsolationArg;
use crate::cluster::local::Isolation;
use crate::dashboard::DashboardArgs;
use crate::engine::RunSummary;
use crate::plan::{self, FaultAction, Plan, PlanError};
use crate::rig::{LocalSetup, RigError};

/// Flags of `rackpong demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Length of the fault window (humantime, e.g. `90s`), overriding the plan's `duration`.
    #[arg(long, env = "RACKPONG_DEMO_DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Nodes of the local rack (each a process group on its own 127.0.1.x
    /// address, or in its own network namespace with `--isolation netns`).
    #[arg(long, env = "RACKPONG_DEMO_NODES", default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub nodes: u8,
    /// Worker replicas at start.
    #[arg(long, env = "RACKPONG_DEMO_WORKERS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: u32,
    /// Experiment plan (YAML) instead of the built-in demo plan (plans/demo.yaml).
    #[arg(long, env = "RACKPONG_PLAN")]
    pub plan: Option<PathBuf>,
    /// Directory the run directory is written under.
    #[arg(long, env = "RACKPONG_RUNS_DIR", default_value = "runs")]
    pub runs_dir: PathBuf,
    #[command(flatten)]
    pub isolation: IsolationArg,
    /// The node agents' catch flash: every node agent reads its workers'
    /// catch reports (`nodes/<node>/catches`) to blip its green LED; `false`
    /// leaves those subscriptions out.
    #[arg(long, env = "RACKPONG_DEMO_LED_CATCH_FLASH", default_value_t = true, action = clap::ArgAction::Set)]
    pub led_catch_flash: bool,
    #[command(flatten)]
    pub dashboard: DashboardArgs,
}

/// The plan the demo runs: `--plan` or the built-in one sized to
/// `--workers` (with a net-drop when the rack is `isolated`), with
/// `--duration` applied.
pub fn demo_plan(args: &DemoArgs, isolated: bool) -> Result<Plan, PlanError> {
    let mut p = match &args.plan {
        Some(path) => plan::load(path)?,
        None => fit_to_workers(plan::default_demo(), args.workers),
    };
    if let Some(d) = args.duration {
        p.duration = d;
    }
    Ok(if isolated && args.plan.is_none() {
        with_net_drop(p)
    } else {
        p
    })
}

/// The built-in plan is written for 8 workers: keep its proportions for
/// another count (steady state at 3/4, scale range 3/4 ..= 5/4).
fn fit_to_workers(mut p: Plan, workers: u32) -> Plan {
    let three_quarters = (workers * 3 / 4).max(1);
    p.steady_state.min_ready_workers = three_quarters;
    for f in &mut p.faults {
        if let FaultAction::Scale { min, max } = &mut f.action {
            *min = three_quarters;
            *max = (workers * 5 / 4).max(three_quarters + 1);
        }
    }
    p
}

/// On an isolated rack the demo also cuts a node's network near the end:
/// its workers keep running unseen while they are replaced, so the report
/// shows the overlap of old and new workers a real cut produces. Placed
/// from the run's length (50 s and 8 s down in the default 60 s), so the
/// link comes back before the window ends whatever `--duration` says.
fn with_net_drop(mut p: Plan) -> Plan {
    let at = p
        .duration
        .saturating_sub(Duration::from_secs(10))
        .max(p.duration / 2);
    let down_for = Duration::from_secs(8).min(p.duration / 4);
    p.faults.push(plan::FaultSpec {
        name: "cut-a-node".into(),
        schedule: plan::Schedule {
            at,
            every: None,
            times: 1,
            jitter: Duration::ZERO,
        },
        action: FaultAction::NodeKill {
            action: plan::NodeAction::NetDrop,
            down_for,
            node: None,
        },
    });
    p
}

/// `rackpong demo`: the run, its report, and the dashboard's verdict.
pub async fn run(args: DemoArgs, cancel: CancellationToken) -> Result<(), super::CliError> {
    let isolation = args.isolation.chosen();
    let plan = demo_plan(&args, isolation == Isolation::Netns).map_err(RigError::from)?;
    let setup = LocalSetup {
        nodes: args.nodes,
        workers: args.workers,
        runs_dir: args.runs_dir,
        progress: true,
        exe: None,
        observe: None,
        isolation,
        led_catch_flash: args.led_catch_flash,
    };
    // The dashboard's stop ends the run; only Ctrl-C ends the lingering page.
    let run = cancel.child_token();
    let (result, dashboard) =
        crate::rig::run_local_dashboard(setup, plan, run, &args.dashboard).await;
    let summary: RunSummary = match result {
        Ok(s) => s,
        Err(e) => {
            if let Some(d) = dashboard {
                d.stop().await;
            }
            return Err(e.into());
        }
    };
    let verdict = super::print_finished(&summary);
    if let Some(mut d) = dashboard {
        d.show_verdict(verdict.as_ref()).await;
        d.linger(args.dashboard.dashboard_linger, &cancel).await;
        d.stop().await;
    }
    Ok(summary.verdict()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(workers: u32) -> DemoArgs {
        DemoArgs {
            duration: Some(Duration::from_secs(20)),
            nodes: 4,
            workers,
            plan: None,
            runs_dir: "runs".into(),
            isolation: IsolationArg::default(),
            led_catch_flash: true,
            dashboard: DashboardArgs::default(),
        }
    }

    #[test]
    fn the_default_plan_is_sized_to_the_worker_count() {
        let p = demo_plan(&args(8), false).unwrap();
        assert_eq!(p.duration, Duration::from_secs(20));
        assert_eq!(p.steady_state.min_ready_workers, 6);
        let p = demo_plan(&args(2), false).unwrap();
        assert_eq!(p.steady_state.min_ready_workers, 1);
        let scale = p.faults.iter().find_map(|f| match f.action {
            FaultAction::Scale { min, max } => Some((min, max)),
            _ => None,
        });
        assert_eq!(scale, Some((1, 2)));
    }

    #[test]
    fn an_isolated_rack_adds_a_net_drop_and_the_loopback_rack_does_not() {
        let net_drops = |p: &Plan| {
            p.faults
                .iter()
                .filter(|f| {
                    matches!(
                        f.action,
                        FaultAction::NodeKill {
                            action: plan::NodeAction::NetDrop,
                            ..
                        }
                    )
                })
                .count()
        };
        let cut_of = |p: &Plan| match p.faults.last().map(|f| (f.schedule.at, &f.action)) {
            Some((at, FaultAction::NodeKill { down_for, .. })) => (at, *down_for),
            other => panic!("the last fault is not the cut: {other:?}"),
        };
        let mut a = args(8);
        a.duration = None;
        let isolated = demo_plan(&a, true).unwrap();
        assert_eq!(net_drops(&isolated), 1);
        assert_eq!(
            cut_of(&isolated),
            (Duration::from_secs(50), Duration::from_secs(8))
        );
        assert_eq!(net_drops(&demo_plan(&a, false).unwrap()), 0);
        // A shorter run keeps the cut, and its end, inside the window.
        for secs in [12, 20, 30] {
            a.duration = Some(Duration::from_secs(secs));
            let p = demo_plan(&a, true).unwrap();
            let (at, down_for) = cut_of(&p);
            assert!(
                at + down_for < p.duration,
                "{secs} s: {at:?} + {down_for:?}"
            );
        }
    }

    #[test]
    fn a_bad_plan_file_fails_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "name: x\n").unwrap();
        let a = DemoArgs {
            plan: Some(path.clone()),
            ..args(8)
        };
        let e = demo_plan(&a, false).unwrap_err().to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
    }
}
