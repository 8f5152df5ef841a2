//! The ChaosExperiment reconciler against a mock API server and a scripted
//! runner: the finalizer is added first, a new experiment starts and its
//! status follows the run, an invalid plan fails without running, a second
//! experiment waits, and suspend or deletion abort the run (rolled back
//! before the finalizer is released).

mod k3s_support;

use std::sync::{Arc, Mutex};

use futures::FutureExt;
use http::Method;
use k3s_support::{ApiServer, mock_client};
use rackpong_controller::operator::reconcile::{
    Context, ExperimentRunner, FINALIZER, OperatorError, REPORTER, RunHandle, RunSummary,
    error_policy, reconcile,
};
use rackpong_controller::operator::{
    ChaosExperiment, ChaosExperimentSpec, ChaosExperimentStatus, Phase,
};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

const BASE: &str = "/apis/rackpong.dev/v1alpha1/namespaces/rackpong/chaosexperiments";

/// Starts runs that end when the test says so, or aborted when cancelled.
#[derive(Default)]
struct Script {
    started: Mutex<Vec<String>>,
    finish: Mutex<Option<oneshot::Receiver<RunSummary>>>,
    cancels: Mutex<Vec<CancellationToken>>,
    refuse: Option<String>,
}

impl ExperimentRunner for Script {
    fn start(
        &self,
        name: &str,
        spec: &ChaosExperimentSpec,
        cancel: CancellationToken,
    ) -> Result<RunHandle, String> {
        if let Some(reason) = &self.refuse {
            return Err(reason.clone());
        }
        assert_eq!(spec.plan["name"], name, "the plan of this experiment");
        self.started.lock().unwrap().push(name.to_string());
        self.cancels.lock().unwrap().push(cancel.clone());
        let finish = self
            .finish
            .lock()
            .unwrap()
            .take()
            .expect("one run scripted");
        let done = async move {
            tokio::select! {
                summary = finish => summary.unwrap(),
                () = cancel.cancelled() => RunSummary {
                    phase: Phase::Aborted,
                    faults_injected: 1,
                    faults_refused: 0,
                    message: Some("aborted and rolled back".into()),
                },
            }
        };
        Ok(RunHandle {
            run_id: "20261121-2048-pod-kill".into(),
            done: done.boxed(),
        })
    }
}

fn experiment(name: &str, finalized: bool) -> ChaosExperiment {
    let path = format!(
        "{}/../k3s/examples/pod-kill.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut exp: ChaosExperiment =
        serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    exp.metadata.name = Some(name.into());
    exp.metadata.uid = Some(format!("uid-{name}"));
    exp.metadata.generation = Some(1);
    exp.metadata.resource_version = Some("2001".into());
    exp.spec.plan["name"] = name.into();
    if finalized {
        exp.metadata.finalizers = Some(vec![FINALIZER.into()]);
    }
    exp
}

fn setup(script: Script) -> (Arc<Context>, ApiServer, Arc<Script>) {
    let (client, api) = mock_client();
    let script = Arc::new(script);
    (
        Arc::new(Context::new(
            client,
            "rackpong",
            "rackpong-operator-7d9f-x2k",
            script.clone(),
        )),
        api,
        script,
    )
}

/// Expects the whole status of `name` written with server-side apply by the
/// operator's field manager, answers it and returns the status.
async fn status_patch(api: &mut ApiServer, exp: &ChaosExperiment) -> Value {
    let name = exp.metadata.name.clone().unwrap();
    let call = api
        .expect(
            Method::PATCH,
            &format!("{BASE}/{name}/status?&force=true&fieldManager=rackpong-operator"),
        )
        .await;
    assert_eq!(call.body["apiVersion"], "rackpong.dev/v1alpha1");
    assert_eq!(call.body["kind"], "ChaosExperiment");
    let status = call.body["status"].clone();
    let mut answered = exp.clone();
    answered.status =
        Some(serde_json::from_value::<ChaosExperimentStatus>(status.clone()).unwrap_or_default());
    call.answer(200, serde_json::to_vec(&answered).unwrap());
    status
}

#[tokio::test]
async fn the_finalizer_is_added_before_anything_runs() {
    let (ctx, mut api, script) = setup(Script::default());
    let exp = experiment("pod-kill", false);
    let op = tokio::spawn(reconcile(Arc::new(exp.clone()), ctx));
    let call = api
        .expect(Method::PATCH, &format!("{BASE}/pod-kill?"))
        .await;
    assert_eq!(
        call.body,
        json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] }
        ])
    );
    call.answer(
        200,
        serde_json::to_vec(&experiment("pod-kill", true)).unwrap(),
    );
    op.await.unwrap().unwrap();
    assert!(script.started.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_new_experiment_runs_and_its_status_follows_the_run() {
    let (tx, rx) = oneshot::channel();
    let (ctx, mut api, script) = setup(Script {
        finish: Mutex::new(Some(rx)),
        ..Script::default()
    });
    let exp = experiment("pod-kill", true);
    let op = tokio::spawn(reconcile(Arc::new(exp.clone()), ctx.clone()));
    let running = status_patch(&mut api, &exp).await;
    assert_eq!(running["phase"], "Running");
    assert_eq!(running["runId"], "20261121-2048-pod-kill");
    assert_eq!(running["observedGeneration"], 1);
    assert!(running["startedAt"].as_str().is_some());
    op.await.unwrap().unwrap();
    assert_eq!(
        *script.started.lock().unwrap(),
        vec!["pod-kill".to_string()]
    );

    // A second experiment waits for the first.
    let other = experiment("node-faults", true);
    let op = tokio::spawn(reconcile(Arc::new(other.clone()), ctx.clone()));
    let pending = status_patch(&mut api, &other).await;
    assert_eq!(pending["phase"], "Pending");
    assert_eq!(
        pending["message"],
        "waiting for experiment pod-kill to finish"
    );
    op.await.unwrap().unwrap();

    tx.send(RunSummary {
        phase: Phase::Succeeded,
        faults_injected: 6,
        faults_refused: 1,
        message: None,
    })
    .unwrap();
    let done = status_patch(&mut api, &exp).await;
    assert_eq!(done["phase"], "Succeeded");
    assert_eq!(done["faultsInjected"], 6);
    assert_eq!(done["faultsRefused"], 1);
    assert!(done["finishedAt"].as_str().is_some());
    // The whole status is applied: what the Running status said is kept.
    assert_eq!(done["runId"], "20261121-2048-pod-kill");
    assert_eq!(done["startedAt"], running["startedAt"]);
    assert!(done.get("message").is_none(), "{done}");

    // Reconciling the finished experiment again starts nothing.
    let mut finished = exp.clone();
    finished.status = Some(serde_json::from_value(done).unwrap());
    reconcile(Arc::new(finished), ctx).await.unwrap();
    api.assert_no_request();
    assert_eq!(script.started.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_experiment_the_runner_refuses_fails_with_the_reason() {
    let reason = "plan.yaml:12: faults[0].pod-kill: count must be at least 1";
    let (ctx, mut api, _) = setup(Script {
        refuse: Some(reason.into()),
        ..Script::default()
    });
    let exp = experiment("pod-kill", true);
    let op = tokio::spawn(reconcile(Arc::new(exp.clone()), ctx));
    let failed = status_patch(&mut api, &exp).await;
    assert_eq!(failed["phase"], "Failed");
    assert_eq!(failed["message"], reason);
    op.await.unwrap().unwrap();
}

#[tokio::test]
async fn suspend_aborts_a_running_experiment() {
    let (_tx, rx) = oneshot::channel();
    let (ctx, mut api, script) = setup(Script {
        finish: Mutex::new(Some(rx)),
        ..Script::default()
    });
    let exp = experiment("pod-kill", true);
    let op = tokio::spawn(reconcile(Arc::new(exp.clone()), ctx.clone()));
    status_patch(&mut api, &exp).await;
    op.await.unwrap().unwrap();

    let mut suspended = exp.clone();
    suspended.spec.suspend = true;
    suspended.metadata.generation = Some(2);
    reconcile(Arc::new(suspended), ctx).await.unwrap();
    assert!(script.cancels.lock().unwrap()[0].is_cancelled());
    let aborted = status_patch(&mut api, &exp).await;
    assert_eq!(aborted["phase"], "Aborted");
    assert_eq!(aborted["message"], "aborted and rolled back");
}

#[tokio::test]
async fn deleting_a_running_experiment_rolls_it_back_before_releasing_it() {
    let (_tx, rx) = oneshot::channel();
    let (ctx, mut api, script) = setup(Script {
        finish: Mutex::new(Some(rx)),
        ..Script::default()
    });
    let exp = experiment("pod-kill", true);
    let op = tokio::spawn(reconcile(Arc::new(exp.clone()), ctx.clone()));
    status_patch(&mut api, &exp).await;
    op.await.unwrap().unwrap();

    let mut deleting = exp.clone();
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    let op = tokio::spawn(reconcile(Arc::new(deleting.clone()), ctx));
    // The run is cancelled and records its end before the finalizer goes.
    let aborted = status_patch(&mut api, &exp).await;
    assert_eq!(aborted["phase"], "Aborted");
    assert!(script.cancels.lock().unwrap()[0].is_cancelled());
    let release = api
        .expect(Method::PATCH, &format!("{BASE}/pod-kill?"))
        .await;
    assert_eq!(
        release.body,
        json!([
            { "op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER },
            { "op": "remove", "path": "/metadata/finalizers/0" }
        ])
    );
    release.answer(200, serde_json::to_vec(&exp).unwrap());
    op.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_run_left_running_by_a_restarted_operator_is_marked_aborted() {
    let (ctx, mut api, script) = setup(Script::default());
    let mut exp = experiment("pod-kill", true);
    exp.status = Some(ChaosExperimentStatus {
        phase: Some(Phase::Running),
        run_id: Some("20261121-2048-pod-kill".into()),
        observed_generation: Some(1),
        ..ChaosExperimentStatus::default()
    });
    let op = tokio::spawn(reconcile(Arc::new(exp.clone()), ctx));
    let aborted = status_patch(&mut api, &exp).await;
    assert_eq!(aborted["phase"], "Aborted");
    assert_eq!(aborted["message"], "the operator restarted during the run");
    op.await.unwrap().unwrap();
    assert!(script.started.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_failed_reconcile_is_counted_and_left_as_a_warning_event() {
    let (ctx, mut api, _) = setup(Script::default());
    let exp = Arc::new(experiment("pod-kill", true));
    let gone = kube::Error::Api(
        kube::core::Status::failure("etcdserver: request timed out", "Timeout")
            .with_code(504)
            .boxed(),
    );
    let action = error_policy(exp, &OperatorError::Kube(gone), ctx.clone());
    assert_eq!(
        action,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(15))
    );
    let call = api
        .expect(
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/rackpong/events?",
        )
        .await;
    let ev = call.body.clone();
    call.answer(201, ev.to_string());
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["reason"], "ReconcileFailed");
    assert_eq!(ev["action"], "Reconcile");
    assert_eq!(ev["reportingController"], REPORTER);
    assert_eq!(ev["reportingInstance"], "rackpong-operator-7d9f-x2k");
    assert_eq!(ev["regarding"]["kind"], "ChaosExperiment");
    assert_eq!(ev["regarding"]["name"], "pod-kill");
    assert!(
        ev["note"].as_str().unwrap().contains("request timed out"),
        "{ev}"
    );
    let text = ctx.metrics().encode();
    assert!(
        text.contains("rackpong_operator_reconcile_failures_total{error=\"kube\"} 1"),
        "{text}"
    );
}
