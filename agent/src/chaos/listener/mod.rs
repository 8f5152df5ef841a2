//! The chaos listener task: reads commands from `nodes/<node>/cmd`, admits
//! them through the [`Guard`], acks on `nodes/<node>/cmd/ack`, runs the
//! action's steps and owns the dead-man timer that restores the node. It
//! also reads the rack's emergency stop ([`halt`]), which restores the node
//! and refuses commands until cleared.

mod halt;
mod stats;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use stats::ChaosStats;

use super::ChaosConfig;
use super::deadman::{ActiveFault, PersistedState, StateFile};
use super::estop::EstopGate;
use super::guard::{Guard, Rejection};
use super::ratelog::LogLimiter;
use super::runner::{Runner, Step, default_route_iface};
use crate::now_ms;
use crate::proto::{ChaosAction, CommandAck, NodeCommand, PROTO_VERSION, Topics};

/// Where acks go. The node role's MQTT link implements it; tests may use a
/// plain client. Must not block (the link queues).
pub trait AckSink: Send + Sync {
    fn publish_ack(&self, topic: String, payload: Vec<u8>);
}

/// The running listener.
#[derive(Debug)]
pub struct ChaosHandle {
    pub task: JoinHandle<()>,
    pub stats: Arc<ChaosStats>,
}

/// What the listener reads: its node's command topic and, when subscribed,
/// the rack's estop topic (a bare command receiver converts into inputs
/// without the estop).
#[derive(Debug)]
pub struct Inputs {
    pub commands: mpsc::Receiver<rumqttc::Publish>,
    pub estop: Option<mpsc::Receiver<rumqttc::Publish>>,
}

impl From<mpsc::Receiver<rumqttc::Publish>> for Inputs {
    fn from(commands: mpsc::Receiver<rumqttc::Publish>) -> Self {
        Self {
            commands,
            estop: None,
        }
    }
}

/// Starts the listener over its inputs and an ack sink. On `cancel` it
/// restores any fault in force, then ends.
pub fn spawn_with(
    commands: impl Into<Inputs>,
    acks: Arc<dyn AckSink>,
    topics: &Topics,
    node: &str,
    cfg: ChaosConfig,
    runner: Arc<dyn Runner>,
    cancel: CancellationToken,
) -> ChaosHandle {
    spawn_counted(
        commands,
        acks,
        topics,
        node,
        cfg,
        runner,
        Arc::new(ChaosStats::default()),
        cancel,
    )
}

/// [`spawn_with`], counting into `stats` (shared with the node's /metrics).
#[allow(clippy::too_many_arguments)]
pub fn spawn_counted(
    inputs: impl Into<Inputs>,
    acks: Arc<dyn AckSink>,
    topics: &Topics,
    node: &str,
    cfg: ChaosConfig,
    runner: Arc<dyn Runner>,
    stats: Arc<ChaosStats>,
    cancel: CancellationToken,
) -> ChaosHandle {
    let window_ms = cfg.window.as_millis() as u64;
    let too_large_log = LogLimiter::new(cfg.log_interval);
    let listener = Listener {
        guard: Guard::new(cfg.secret.clone(), node, window_ms, cfg.nonce_capacity),
        estop: EstopGate::new(cfg.secret.clone(), topics.rack(), window_ms),
        node: node.to_string(),
        ack_topic: topics.node_cmd_ack(node),
        state: StateFile::new(cfg.state_file.clone()),
        cfg,
        acks,
        runner,
        active: None,
        stats: stats.clone(),
        too_large_log,
    };
    let task = tokio::spawn(listener.run(inputs.into(), cancel));
    ChaosHandle { task, stats }
}

struct Listener {
    guard: Guard,
    estop: EstopGate,
    node: String,
    ack_topic: String,
    state: StateFile,
    cfg: ChaosConfig,
    acks: Arc<dyn AckSink>,
    runner: Arc<dyn Runner>,
    /// The fault in force and when the dead-man timer fires.
    active: Option<(ActiveFault, Instant)>,
    stats: Arc<ChaosStats>,
    too_large_log: LogLimiter,
}

impl Listener {
    async fn run(mut self, inputs: Inputs, cancel: CancellationToken) {
        tracing::info!(node = %self.node, state_file = ?self.state.path(), estop = inputs.estop.is_some(), "chaos commands enabled");
        let Inputs {
            mut commands,
            estop,
        } = inputs;
        let mut estop_open = estop.is_some();
        let mut estop = estop.unwrap_or_else(|| mpsc::channel(1).1);
        self.resume_persisted().await;
        let mut open = true;
        loop {
            self.stats.set_active(self.active.as_ref().map(|(f, _)| f));
            self.stats.set_estop(self.estop.last());
            let deadline = self.active.as_ref().map(|(_, at)| *at);
            tokio::select! {
                // The stop first: a command queued behind it must meet it.
                biased;
                _ = cancel.cancelled() => break,
                msg = estop.recv(), if estop_open => match msg {
                    Some(publish) => self.on_estop(&publish).await,
                    None => estop_open = false,
                },
                // A failed restore re-arms itself (logged in `restore`).
                _ = sleep_until_opt(deadline) => { let _ = self.restore("dead-man timer").await; }
                msg = commands.recv(), if open => match msg {
                    Some(publish) => self.handle(&publish).await,
                    // The link is gone; keep the dead-man timer until cancelled.
                    None => open = false,
                },
            }
        }
        let left = self.active.is_some() && self.restore("agent shutdown").await.is_err();
        self.stats.set_active(self.active.as_ref().map(|(f, _)| f));
        if left {
            tracing::error!(
                "chaos: node left faulted at shutdown; the state file restores it on the next start"
            );
        }
    }

    /// Picks up a fault left by a previous run of the agent.
    async fn resume_persisted(&mut self) {
        let state = match self.state.load_state() {
            Ok(state) => state,
            Err(e) => {
                tracing::error!(error = %e, "chaos: unreadable state file discarded; cannot tell what to restore");
                let _ = self.state.clear();
                return;
            }
        };
        self.guard
            .resume(&state.nonces, state.last_admitted_issued_ms);
        if let Some(stop) = state.estop.as_ref().filter(|r| r.engaged) {
            tracing::warn!(id = %stop.id, seq = stop.seq, by = %stop.by, "chaos: emergency stop still in force from before the restart");
        }
        self.estop.resume(state.estop);
        match state.fault {
            None => {}
            Some(fault) => {
                let left = fault.restore_at_ms.saturating_sub(now_ms());
                tracing::warn!(
                    ?fault,
                    left_ms = left,
                    "chaos: resuming a fault left by a previous run"
                );
                let at = Instant::now() + Duration::from_millis(left);
                self.active = Some((fault, at));
            }
        }
    }

    /// Persists the replay state with `fault` (atomically, durably).
    fn persist(&self, fault: Option<&ActiveFault>) -> Result<(), super::deadman::StateError> {
        let (mut nonces, last) = self.guard.replay_state();
        let oldest_live = now_ms().saturating_sub(self.cfg.window.as_millis() as u64);
        nonces.retain(|(issued, _)| *issued >= oldest_live);
        self.state.save_state(&PersistedState {
            fault: fault.cloned(),
            nonces,
            last_admitted_issued_ms: last,
            estop: self.estop.last().cloned(),
        })
    }

    async fn handle(&mut self, publish: &rumqttc::Publish) {
        let received_ms = now_ms();
        if publish.retain {
            // A retained command would replay on every (re)connect: never run it.
            let id = self
                .guard
                .check(&publish.payload, received_ms)
                .map_or_else(|r| r.id, |c| c.id);
            return self.reject(&id, &Rejection::Retained, received_ms);
        }
        match self.guard.check(&publish.payload, received_ms) {
            Ok(cmd) => {
                // Before anything runs: a restart from here on still refuses its replay.
                if let Err(e) = self.persist(self.active.as_ref().map(|(f, _)| f)) {
                    tracing::error!(error = %e, "chaos: nonce not persisted; a replay after a restart is refused only by its window");
                }
                if let Some(reason) = self.stopped(cmd.action) {
                    return self.reject(&cmd.id, &reason, received_ms);
                }
                self.dispatch(cmd, received_ms).await
            }
            Err(rejected) => self.reject(&rejected.id, &rejected.reason, received_ms),
        }
    }

    async fn dispatch(&mut self, cmd: NodeCommand, received_ms: u64) {
        let outcome = match cmd.action {
            ChaosAction::Restore => return self.restore_command(&cmd, received_ms).await,
            ChaosAction::PowerRelay => Err(Rejection::UnsupportedAction(
                "power-relay is executed by the controller's GPIO relay, not the agent".into(),
            )),
            _ if self.active.is_some() => Err(self.busy()),
            ChaosAction::Reboot => return self.reboot(&cmd, received_ms).await,
            ChaosAction::StopK3s | ChaosAction::NetDrop => self.prepare(&cmd, received_ms),
        };
        match outcome {
            Ok(fault) => self.inflict(fault, &cmd, received_ms).await,
            Err(reason) => self.reject(&cmd.id, &reason, received_ms),
        }
    }

    fn busy(&self) -> Rejection {
        let (fault, _) = self.active.as_ref().expect("busy only with a fault");
        Rejection::Busy(format!(
            "{} from command {:?} in force until {} (send restore first)",
            fault.action.as_str(),
            fault.id,
            fault.restore_at_ms
        ))
    }

    /// Validates a reversible command into the fault it will inflict.
    fn prepare(&self, cmd: &NodeCommand, received_ms: u64) -> Result<ActiveFault, Rejection> {
        let down_for = Duration::from_secs(cmd.down_for_s);
        if down_for.is_zero() || down_for > self.cfg.max_down {
            return Err(Rejection::BadDuration(format!(
                "down_for_s must be 1..={} for {}",
                self.cfg.max_down.as_secs(),
                cmd.action.as_str()
            )));
        }
        let iface = match cmd.action {
            ChaosAction::NetDrop => Some(self.uplink()?),
            _ => None,
        };
        let started_ms = received_ms + self.grace_for(cmd.action).as_millis() as u64;
        Ok(ActiveFault {
            id: cmd.id.clone(),
            action: cmd.action,
            iface,
            started_ms,
            restore_at_ms: started_ms + down_for.as_millis() as u64,
        })
    }

    fn uplink(&self) -> Result<String, Rejection> {
        if let Some(iface) = &self.cfg.uplink {
            return Ok(iface.clone());
        }
        let table = std::fs::read_to_string(&self.cfg.route_table)
            .map_err(|e| Rejection::NoUplink(format!("{}: {e}", self.cfg.route_table.display())))?;
        default_route_iface(&table)
            .ok_or_else(|| Rejection::NoUplink("no default route; set --chaos-uplink".into()))
    }

    fn grace_for(&self, action: ChaosAction) -> Duration {
        match action {
            ChaosAction::NetDrop | ChaosAction::Reboot => self.cfg.ack_grace,
            _ => Duration::ZERO,
        }
    }

    /// Persists, acks, then runs the fault's steps and arms the dead-man timer.
    async fn inflict(&mut self, fault: ActiveFault, cmd: &NodeCommand, received_ms: u64) {
        if let Err(e) = self.persist(Some(&fault)) {
            tracing::error!(error = %e, "chaos: fault not persisted; only the in-memory dead-man timer will restore it");
        }
        let reason = format!(
            "{} for {} s; dead-man restore at {}",
            cmd.action.as_str(),
            cmd.down_for_s,
            fault.restore_at_ms
        );
        self.accept(
            cmd,
            received_ms,
            Some(fault.started_ms),
            Some(fault.restore_at_ms),
            reason,
        );
        tokio::time::sleep(self.grace_for(cmd.action)).await;
        let restore_at = Instant::now() + Duration::from_secs(cmd.down_for_s);
        let steps = fault.inflict_steps();
        // Armed even if a step fails: a half-inflicted fault still gets undone.
        self.active = Some((fault, restore_at));
        if let Err(e) = self.run_steps(&steps).await {
            self.send_ack(ack(
                &cmd.id,
                &self.node,
                false,
                format!("failed: {e}"),
                received_ms,
            ));
        }
    }

    async fn reboot(&mut self, cmd: &NodeCommand, received_ms: u64) {
        let started = received_ms + self.cfg.ack_grace.as_millis() as u64;
        self.accept(cmd, received_ms, Some(started), None, "reboot".into());
        tokio::time::sleep(self.cfg.ack_grace).await;
        if let Err(e) = self.run_steps(&[Step::Reboot]).await {
            self.send_ack(ack(
                &cmd.id,
                &self.node,
                false,
                format!("failed: {e}"),
                received_ms,
            ));
        }
    }

    async fn restore_command(&mut self, cmd: &NodeCommand, received_ms: u64) {
        let reason = match &self.active {
            Some((fault, _)) => format!(
                "restored {} from command {:?}",
                fault.action.as_str(),
                fault.id
            ),
            None => "nothing to restore".to_string(),
        };
        let why = format!("restore command {:?}", cmd.id);
        match self.restore(&why).await {
            Ok(()) => self.accept(cmd, received_ms, Some(now_ms()), None, reason),
            Err(e) => {
                let reason = format!("failed: {e}; retried every {:?}", self.cfg.restore_retry);
                self.send_ack(ack(&cmd.id, &self.node, false, reason, received_ms));
            }
        }
    }

    /// Undoes the fault in force. A failed step keeps it in force and retries
    /// after `restore_retry`: the node must come back without anyone's help.
    async fn restore(&mut self, why: &str) -> Result<(), super::runner::RunnerError> {
        let Some((fault, _)) = self.active.take() else {
            return Ok(());
        };
        tracing::warn!(why, ?fault, "chaos: restoring the node");
        if why == "dead-man timer" {
            self.stats.deadman_restores.fetch_add(1, Ordering::Relaxed);
        }
        let result = self.run_steps(&fault.restore_steps()).await;
        match &result {
            Ok(()) => {
                if let Err(e) = self.persist(None) {
                    tracing::error!(error = %e, "chaos: restored, but the state file remains");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, retry_in = ?self.cfg.restore_retry, "chaos: restore failed, will retry");
                self.active = Some((fault, Instant::now() + self.cfg.restore_retry));
            }
        }
        result
    }

    async fn run_steps(&self, steps: &[Step]) -> Result<(), super::runner::RunnerError> {
        for step in steps {
            if let Err(e) = self.runner.run(step).await {
                self.stats.step_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(?step, error = %e, "chaos: step failed");
                return Err(e);
            }
        }
        Ok(())
    }

    fn accept(
        &self,
        cmd: &NodeCommand,
        received_ms: u64,
        started: Option<u64>,
        restore_by: Option<u64>,
        reason: String,
    ) {
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.stats.count("accepted", cmd.action.as_str());
        tracing::warn!(id = %cmd.id, action = cmd.action.as_str(), down_for_s = cmd.down_for_s, %reason, "chaos: command accepted");
        let mut a = ack(&cmd.id, &self.node, true, reason, received_ms);
        a.started_ms = started;
        a.restore_by_ms = restore_by;
        self.send_ack(a);
    }

    fn reject(&mut self, id: &str, reason: &Rejection, received_ms: u64) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        self.stats.count("rejected", reason.code());
        if matches!(reason, Rejection::Malformed(_)) {
            self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        }
        // Anyone who may publish can send these at will: log one per interval.
        if matches!(reason, Rejection::TooLarge(_)) {
            match self.too_large_log.allow(Instant::now()) {
                Some(suppressed) => {
                    tracing::warn!(id, code = reason.code(), %reason, suppressed, every = ?self.cfg.log_interval, "chaos: command rejected (too-large logged at most once per interval; suppressed = since the last line)")
                }
                None => tracing::debug!(id, %reason, "chaos: command rejected"),
            }
        } else {
            tracing::warn!(id, code = reason.code(), %reason, "chaos: command rejected");
        }
        self.send_ack(ack(id, &self.node, false, reason.to_string(), received_ms));
    }

    fn send_ack(&self, ack: CommandAck) {
        let payload = serde_json::to_vec(&ack).expect("an ack always serialises");
        self.acks.publish_ack(self.ack_topic.clone(), payload);
    }
}

fn ack(id: &str, node: &str, accepted: bool, reason: String, received_ms: u64) -> CommandAck {
    CommandAck {
        v: PROTO_VERSION,
        id: id.to_string(),
        node: node.to_string(),
        accepted,
        reason,
        received_ms,
        started_ms: None,
        restore_by_ms: None,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
