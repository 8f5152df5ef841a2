//! What the cluster exposes about failure detection, for the predicted
//! bounds: pod `tolerationSeconds` for `node.kubernetes.io/not-ready` and
//! `unreachable` (as admitted on a live worker pod, where the
//! DefaultTolerationSeconds plugin adds them; else the pod template), the
//! readiness probe's `periodSeconds`/`failureThreshold` from the Deployment,
//! and the profile annotations the Ansible role writes on the namespace or
//! the Deployment (the Deployment wins):
//! `rackpong.dev/detection-profile: demo-fast` and
//! `rackpong.dev/node-monitor-grace-period: 20s`.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, PodSpec, Toleration};
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::api::{self, map_err};
use super::{GRACE_ANNOTATION, Inner, PROFILE_ANNOTATION};
use crate::cluster::ClusterError;
use crate::model::Detection;

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

pub(crate) async fn read(inner: &Inner) -> Result<Detection, ClusterError> {
    let ns_name = &inner.config.namespace;
    let namespace = Api::<Namespace>::all(inner.client.clone())
        .get(ns_name)
        .await
        .map_err(|e| {
            map_err(e, "read namespace", || {
                ClusterError::Missing(format!("namespace {ns_name}"))
            })
        })?;
    let deploy_name = &inner.config.deployment;
    let deployment = api::deployments(inner)
        .get(deploy_name)
        .await
        .map_err(|e| {
            map_err(e, "read worker Deployment", || {
                ClusterError::Missing(format!("Deployment {ns_name}/{deploy_name}"))
            })
        })?;
    let lp = ListParams::default()
        .labels(&inner.config.worker_selector)
        .limit(1);
    let pod = api::pods(inner)
        .list(&lp)
        .await
        .map_err(super::api::kube_err("list workers"))?
        .items
        .into_iter()
        .next();
    let template = template_spec(&deployment);
    let tolerations = match pod.as_ref().and_then(|p| p.spec.as_ref()) {
        Some(spec) => (spec.tolerations.as_deref(), "pod"),
        None => (template.and_then(|s| s.tolerations.as_deref()), "template"),
    };
    Ok(assemble(&namespace, &deployment, template, tolerations))
}

fn template_spec(d: &Deployment) -> Option<&PodSpec> {
    d.spec.as_ref().and_then(|s| s.template.spec.as_ref())
}

fn assemble(
    namespace: &Namespace,
    deployment: &Deployment,
    template: Option<&PodSpec>,
    (tolerations, toleration_source): (Option<&[Toleration]>, &str),
) -> Detection {
    let mut extra = BTreeMap::new();
    let annotation = |key: &str| -> Option<(String, &'static str)> {
        if let Some(v) = deployment.annotations().get(key) {
            return Some((v.clone(), "deployment"));
        }
        namespace
            .annotations()
            .get(key)
            .map(|v| (v.clone(), "namespace"))
    };
    let profile = match annotation(PROFILE_ANNOTATION) {
        Some((p, source)) => {
            extra.insert("profile_source".into(), source.into());
            p
        }
        None => {
            extra.insert("profile_source".into(), "not annotated".into());
            "unknown".into()
        }
    };
    let node_monitor_grace_s =
        annotation(GRACE_ANNOTATION).and_then(|(v, _)| match humantime::parse_duration(&v) {
            Ok(d) => Some(d.as_secs()),
            Err(err) => {
                tracing::warn!(%err, value = v, "bad {GRACE_ANNOTATION} annotation");
                extra.insert("node_monitor_grace_error".into(), format!("{v:?}: {err}"));
                None
            }
        });
    let probe = template
        .into_iter()
        .flat_map(|s| s.containers.iter())
        .find_map(|c| c.readiness_probe.as_ref());
    if tolerations.is_some() {
        extra.insert("toleration_source".into(), toleration_source.into());
    }
    Detection {
        profile,
        node_monitor_grace_s,
        not_ready_toleration_s: toleration_seconds(tolerations, NOT_READY),
        unreachable_toleration_s: toleration_seconds(tolerations, UNREACHABLE),
        // Kubernetes' defaults when the probe leaves them out.
        readiness_period_s: probe.map(|p| non_negative(p.period_seconds.unwrap_or(10))),
        readiness_failure_threshold: probe.map(|p| non_negative(p.failure_threshold.unwrap_or(3))),
        mqtt_keepalive_s: None,
        extra,
    }
}

fn non_negative(v: i32) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn toleration_seconds(tolerations: Option<&[Toleration]>, key: &str) -> Option<u64> {
    tolerations?
        .iter()
        .find(|t| t.key.as_deref() == Some(key) && t.effect.as_deref() == Some("NoExecute"))
        .and_then(|t| t.toleration_seconds)
        .and_then(|s| u64::try_from(s).ok())
}
