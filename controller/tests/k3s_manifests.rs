//! The k3s/ manifests: every YAML file parses (serde-saphyr), the committed
//! CRD is exactly what `rackpong crd` prints, the example experiments are
//! valid ChaosExperiments, and the worker manifests say what the k3s
//! backend relies on (labels, Downward API, probes). The RBAC rules are
//! checked against every call the code makes in `k3s_rbac.rs`.

use std::path::{Path, PathBuf};

use rackpong_controller::cluster::k3s::{CHAOS_LABEL, WORKER_SELECTOR};
use rackpong_controller::operator::{ChaosExperiment, crd_yaml};
use serde_json::Value;

fn k3s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../k3s")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// Every document of every YAML file under k3s/, with its file.
fn documents() -> Vec<(PathBuf, Value)> {
    let mut files = Vec::new();
    yaml_files(&k3s_dir(), &mut files);
    files.sort();
    assert!(files.len() >= 10, "found only {files:?}");
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let parsed: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(!parsed.is_empty(), "{}: no document", file.display());
        docs.extend(parsed.into_iter().map(|d| (file.clone(), d)));
    }
    docs
}

fn named<'a>(docs: &'a [(PathBuf, Value)], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn every_manifest_parses_and_names_its_kind() {
    for (file, doc) in documents() {
        let kind = doc["kind"].as_str();
        assert!(
            kind.is_some_and(|k| !k.is_empty()),
            "{}: no kind",
            file.display()
        );
        assert!(
            doc["apiVersion"].as_str().is_some(),
            "{}: no apiVersion",
            file.display()
        );
        if !matches!(kind, Some("Kustomization" | "Component")) {
            assert!(
                doc["metadata"]["name"].as_str().is_some(),
                "{}: no name",
                file.display()
            );
        }
    }
}

#[test]
fn the_committed_crd_is_what_rackpong_crd_prints() {
    let committed = std::fs::read_to_string(k3s_dir().join("crd/crd.yaml")).unwrap();
    assert_eq!(
        committed,
        crd_yaml().unwrap(),
        "k3s/crd/crd.yaml is stale: run `cargo run -p rackpong-controller -- crd > k3s/crd/crd.yaml`"
    );
    let crd: Value = serde_saphyr::from_str(&committed).unwrap();
    assert_eq!(crd["metadata"]["name"], "chaosexperiments.rackpong.dev");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert_eq!(
        schema["properties"]["spec"]["properties"]["plan"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
}

#[test]
fn the_example_experiments_are_chaos_experiments_with_plans() {
    let dir = k3s_dir().join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // examples/invalid/: checked against the CEL rules (k3s_crd_cel)
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let exp: ChaosExperiment =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let plan = &exp.spec.plan;
        assert_eq!(plan["name"], exp.metadata.name.clone().unwrap().as_str());
        assert!(plan["faults"].as_array().is_some_and(|f| !f.is_empty()));
        assert_eq!(
            plan["safety"]["opt-in-label"],
            format!("{CHAOS_LABEL}=true")
        );
        seen += 1;
    }
    assert!(seen >= 2);
}

fn env<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no env {name}"))
}

#[test]
fn workers_carry_the_labels_probe_and_names_the_backend_relies_on() {
    let docs = documents();
    let deploy = named(&docs, "Deployment", "rackpong-worker");
    let (key, value) = WORKER_SELECTOR.split_once('=').unwrap();
    assert_eq!(deploy["spec"]["selector"]["matchLabels"][key], value);
    let template = &deploy["spec"]["template"];
    assert_eq!(template["metadata"]["labels"][key], value);
    assert_eq!(template["metadata"]["labels"][CHAOS_LABEL], "true");
    let c = &template["spec"]["containers"][0];
    assert_eq!(c["args"][0], "worker");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(
        env(c, "POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env(c, "NODE_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    let peers = named(&docs, "Service", "rackpong-worker-peers");
    assert_eq!(peers["spec"]["clusterIP"], "None");
    assert_eq!(peers["spec"]["publishNotReadyAddresses"], true);
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--peers-dns=rackpong-worker-peers:8080")
    );
    let ingress = named(&docs, "Service", "rackpong-worker");
    assert_eq!(ingress["spec"]["type"], "NodePort");
    let pdb = named(&docs, "PodDisruptionBudget", "rackpong-worker");
    assert_eq!(pdb["spec"]["selector"]["matchLabels"][key], value);
}

#[test]
fn the_controller_runs_the_operator_with_an_ingress_and_a_persistent_runs_dir() {
    let docs = documents();
    let deploy = named(&docs, "Deployment", "rackpong-controller");
    let spec = &deploy["spec"]["template"]["spec"];
    let c = &spec["containers"][0];
    assert_eq!(c["args"][0], "operator");
    let svc = named(&docs, "Service", "rackpong-worker");
    let port = &svc["spec"]["ports"][0]["port"];
    assert_eq!(
        env(c, "RACKPONG_INGRESS")["value"],
        format!("http://rackpong-worker:{port}").as_str()
    );
    let runs = env(c, "RACKPONG_RUNS_DIR")["value"].as_str().unwrap();
    let mounted = c["volumeMounts"].as_array().unwrap();
    assert!(
        mounted.iter().any(|m| m["mountPath"] == runs),
        "{runs} is not a volume"
    );
}
