//! The Ansible tree is consistent without running Ansible: every YAML file
//! parses, every role site.yml names exists, every notify has its handler,
//! every template and included task file exists, every task is named, and the
//! failure-detection profiles respect Kubernetes' constraints. (CI also runs
//! `ansible-playbook --syntax-check`, see ansible/check.sh.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

fn ansible_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ansible")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(path);
        }
    }
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn list(v: &Value) -> &Vec<Value> {
    v.as_array().expect("a YAML list")
}

fn role_dir(role: &str) -> PathBuf {
    ansible_dir().join("roles").join(role)
}

#[test]
fn every_yaml_file_parses() {
    let mut files = Vec::new();
    yaml_files(&ansible_dir(), &mut files);
    assert!(files.len() >= 20, "found only {files:?}");
    for f in &files {
        load(f);
    }
}

/// Roles named by site.yml, each with its `vars` (role: x, vars: ...).
fn site_roles() -> BTreeSet<String> {
    let site = load(&ansible_dir().join("site.yml"));
    let mut roles = BTreeSet::new();
    for play in list(&site) {
        for role in play.get("roles").map(list).into_iter().flatten() {
            let name = role.as_str().or_else(|| role.get("role")?.as_str());
            roles.insert(name.expect("role name").to_string());
        }
    }
    roles
}

#[test]
fn site_roles_exist_and_their_references_resolve() {
    let roles = site_roles();
    assert!(roles.len() >= 6, "{roles:?}");
    for role in &roles {
        let dir = role_dir(role);
        let handlers: BTreeSet<String> = std::fs::read_to_string(dir.join("handlers/main.yml"))
            .ok()
            .map(|_| load(&dir.join("handlers/main.yml")))
            .map(|h| {
                list(&h)
                    .iter()
                    .map(|t| t["name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let mut task_files = Vec::new();
        yaml_files(&dir.join("tasks"), &mut task_files);
        assert!(
            task_files.iter().any(|f| f.ends_with("tasks/main.yml")),
            "{role}: no tasks/main.yml"
        );
        for file in task_files {
            for task in list(&load(&file)) {
                check_task(role, &dir, task, &handlers);
            }
        }
    }
}

fn check_task(role: &str, dir: &Path, task: &Value, handlers: &BTreeSet<String>) {
    let name = task.get("name").and_then(Value::as_str);
    assert!(
        name.is_some_and(|n| !n.is_empty()),
        "{role}: unnamed task {task}"
    );
    let name = name.unwrap();
    for notified in task.get("notify").into_iter() {
        let notified = notified.as_str().expect("notify is one handler name");
        assert!(
            handlers.contains(notified),
            "{role}/{name}: no handler {notified:?}"
        );
    }
    if let Some(src) = task
        .get("ansible.builtin.template")
        .and_then(|t| t.get("src"))
    {
        let src = src.as_str().unwrap();
        assert!(
            dir.join("templates").join(src).is_file(),
            "{role}/{name}: no template {src}"
        );
    }
    if let Some(inc) = task
        .get("ansible.builtin.include_tasks")
        .and_then(Value::as_str)
    {
        assert!(
            dir.join("tasks").join(inc).is_file(),
            "{role}/{name}: no task file {inc}"
        );
    }
    let text = task.to_string();
    if let Some(i) = text.find("'ansible.builtin.template', '") {
        let rest = &text[i + "'ansible.builtin.template', '".len()..];
        let src = &rest[..rest.find('\'').unwrap()];
        assert!(
            dir.join("templates").join(src).is_file(),
            "{role}/{name}: no template {src}"
        );
    }
    let module = task
        .as_object()
        .unwrap()
        .keys()
        .find(|k| k.starts_with("ansible.builtin."));
    assert!(
        module.is_some(),
        "{role}/{name}: modules are named fully (ansible.builtin.*)"
    );
}

fn secs(v: &Value) -> Duration {
    match v {
        Value::String(s) => humantime::parse_duration(s).unwrap(),
        Value::Number(n) => Duration::from_secs(n.as_u64().unwrap()),
        other => panic!("not a duration: {other}"),
    }
}

#[test]
fn detection_profiles_are_complete_and_consistent() {
    let defaults = load(&role_dir("k3s").join("defaults/main.yml"));
    let profiles = &defaults["k3s_profiles"];
    let (safe, fast) = (&profiles["safe"], &profiles["demo-fast"]);
    for p in [safe, fast] {
        let update = secs(&p["node_status_update_frequency"]);
        let period = secs(&p["node_monitor_period"]);
        let grace = secs(&p["node_monitor_grace_period"]);
        // Kubernetes: the grace period must cover several missed kubelet reports.
        assert!(grace >= 4 * update, "{p}");
        assert!(period < grace, "{p}");
    }
    // The Kubernetes defaults, so reports can quote them.
    assert_eq!(
        secs(&safe["node_monitor_grace_period"]),
        Duration::from_secs(50)
    );
    assert_eq!(
        secs(&safe["not_ready_toleration_seconds"]),
        Duration::from_secs(300)
    );
    for key in [
        "node_monitor_grace_period",
        "not_ready_toleration_seconds",
        "unreachable_toleration_seconds",
    ] {
        assert!(
            secs(&fast[key]) < secs(&safe[key]),
            "demo-fast {key} is not faster"
        );
    }
    let config = std::fs::read_to_string(role_dir("k3s").join("templates/config.yaml.j2")).unwrap();
    for flag in [
        "node-monitor-grace-period=",
        "node-monitor-period=",
        "default-not-ready-toleration-seconds=",
        "default-unreachable-toleration-seconds=",
        "node-status-update-frequency=",
    ] {
        assert!(config.contains(flag), "k3s config template lacks {flag}");
    }
}

#[test]
fn example_inventory_gives_every_node_a_broker_login() {
    let inv = load(&ansible_dir().join("inventory/example/hosts.yml"));
    let all = load(&ansible_dir().join("inventory/example/group_vars/all.yml"));
    let children = &inv["k3s_cluster"]["children"];
    let mut hosts = BTreeSet::new();
    for group in ["server", "agent"] {
        let members = children[group]["hosts"].as_object().expect("hosts");
        hosts.extend(members.keys().cloned());
    }
    let logins: BTreeSet<String> = all["rackpong_mqtt_node_passwords"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(hosts, logins);
    assert_eq!(children["server"]["hosts"].as_object().unwrap().len(), 1);
}
