//! The ChaosExperiment CRD's CEL rules (`x-kubernetes-validations`),
//! evaluated as the API server would on admission by a real CEL
//! implementation (kube-cel on the `cel` crate: Kubernetes' CEL libraries,
//! field-name escaping and defaulting), on the committed `k3s/crd/crd.yaml`:
//! every rule compiles and stays within the API server's cost budget; every
//! example in `k3s/examples/` and every plan in `plans/` is admitted; every
//! example in `k3s/examples/invalid/` is refused with the message its
//! `# expect-cel:` line names, and the operator (the plan parser) refuses it
//! too, with its `# expect-operator:` reason.

use std::path::{Path, PathBuf};

use kube::core::cel::{
    CompiledSchema, ValidationErrors, Validator, WarningKind, compile_schema, estimate_rule_cost,
};
use rackpong_controller::operator::ChaosExperiment;
use rackpong_controller::operator::crd_plan::DURATION_PATTERN;
use rackpong_controller::operator::runner::plan_of;
use serde_json::{Value, json};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// The committed CRD's `openAPIV3Schema`.
fn schema() -> Value {
    let text = std::fs::read_to_string(repo("k3s/crd/crd.yaml")).unwrap();
    let crd: Value = serde_saphyr::from_str(&text).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> (String, Value) {
    let text = std::fs::read_to_string(path).unwrap();
    let v: Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (text, v)
}

fn admit(schema: &Value, object: &Value) -> Result<(), ValidationErrors> {
    Validator::new().validate(schema, object, None)
}

/// Every compiled node's rules, depth first.
fn walk<'a>(node: &'a CompiledSchema, out: &mut Vec<&'a CompiledSchema>) {
    out.push(node);
    let children = node
        .properties
        .values()
        .chain(node.items.as_deref())
        .chain(node.additional_properties.as_deref());
    for c in children {
        walk(c, out);
    }
}

#[test]
fn every_rule_compiles_and_fits_the_cost_budget() {
    let compiled = compile_schema(&schema());
    let mut nodes = Vec::new();
    walk(&compiled, &mut nodes);
    let mut rules = 0;
    for node in nodes {
        assert!(!node.has_errors(), "{:?}", node.compilation_errors());
        for r in node.validations.iter().flatten() {
            rules += 1;
            let over: Vec<_> = estimate_rule_cost(&r.rule.rule, node)
                .into_iter()
                .filter(|w| w.kind == WarningKind::CostExceeded)
                .collect();
            assert!(over.is_empty(), "{over:?}");
        }
    }
    assert!(rules >= 25, "only {rules} rules in the CRD");
}

#[test]
fn the_examples_and_every_plan_file_are_admitted() {
    let schema = schema();
    let mut seen = 0;
    for path in yaml_files("k3s/examples") {
        let (_, exp) = load(&path);
        admit(&schema, &exp).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 2);
    // The rules are never stricter than the plan parser: every plan file
    // of the repository is admitted as a ChaosExperiment's plan.
    for path in yaml_files("plans") {
        let (_, plan) = load(&path);
        let exp = experiment(plan);
        admit(&schema, &exp).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

fn experiment(plan: Value) -> Value {
    json!({
        "apiVersion": "rackpong.dev/v1alpha1",
        "kind": "ChaosExperiment",
        "metadata": {"name": "x", "namespace": "rackpong"},
        "spec": {"plan": plan},
    })
}

/// The `# key: value` header line of an example.
fn header<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
        .unwrap_or_else(|| panic!("no `# {key}:` line"))
}

#[test]
fn every_invalid_example_is_refused_by_the_rules_and_by_the_operator() {
    let schema = schema();
    let files = yaml_files("k3s/examples/invalid");
    assert!(files.len() >= 12, "{files:?}");
    for path in files {
        let (text, exp) = load(&path);
        let errors = match admit(&schema, &exp) {
            Ok(()) => panic!("{}: admitted", path.display()),
            Err(e) => e,
        };
        let want = header(&text, "expect-cel");
        let messages: Vec<String> = errors.as_slice().iter().map(|e| e.to_string()).collect();
        assert!(
            messages.iter().any(|m| m.contains(want)),
            "{}: wanted {want:?}, got {messages:?}",
            path.display()
        );
        // Refused for that reason only: the rest of the example is valid.
        assert_eq!(messages.len(), 1, "{}: {messages:?}", path.display());
        let typed: ChaosExperiment = serde_json::from_value(exp).unwrap();
        let name = typed.metadata.name.clone().unwrap();
        let reason = plan_of(&name, &typed.spec).unwrap_err();
        let want = header(&text, "expect-operator");
        assert!(
            reason.contains(want),
            "{}: the operator said {reason:?}, wanted {want:?}",
            path.display()
        );
    }
}

/// The rules' duration pattern accepts what the plan parser
/// (`humantime::parse_duration`) accepts, and refuses what it refuses.
#[test]
fn the_duration_rule_agrees_with_the_plan_parser() {
    let schema = schema();
    let base: Value = serde_saphyr::from_str(
        "name: d\nduration: 1m\nsteady-state: {min-ready-workers: 1, min-delivery-rate: 0.5}\nrecovery-timeout: 1m\nfaults: [{name: p, at: 1s, pod-kill: {count: 1}}]\n",
    )
    .unwrap();
    let samples = [
        "30s",
        "1m 30s",
        "1m30s",
        "500ms",
        "2h",
        "1day",
        "3 days",
        "10min",
        "1 hour 5 minutes",
        "250us",
        "7 weeks",
        "1M",
        "2y",
        "90 s",
        "soon",
        "",
        "1.5s",
        "-1s",
        "s",
        "30",
        "10 parsecs",
        "1h-2m",
        "0.5h",
        "1.s",
        ".5s",
    ];
    for s in samples {
        let mut plan = base.clone();
        plan["faults"][0]["at"] = json!(s);
        let cel = admit(&schema, &experiment(plan)).is_ok();
        let parser = humantime::parse_duration(s).is_ok();
        assert_eq!(cel, parser, "{s:?}: CEL {cel}, parser {parser}");
    }
    assert!(DURATION_PATTERN.starts_with('^') && DURATION_PATTERN.ends_with('$'));
}

/// Positive durations and the down-for limit in their other spellings.
#[test]
fn zero_and_limit_rules_cover_every_spelling() {
    let schema = schema();
    let plan = |down_for: &str, timeout: &str| {
        experiment(json!({
            "name": "d", "duration": "1m", "recovery-timeout": timeout,
            "steady-state": {"min-ready-workers": 1, "min-delivery-rate": 1},
            "faults": [{"name": "n", "at": "1s",
                        "node-kill": {"action": "net-drop", "down-for": down_for}}],
        }))
    };
    for zero in ["0s", "0 ms", "00m 0s", "0.0s"] {
        assert!(admit(&schema, &plan("10s", zero)).is_err(), "{zero}");
    }
    for ok in ["10m", "9m59s", "600s", "1 minute"] {
        admit(&schema, &plan(ok, "1m")).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for long in ["11m", "1h", "601s", "10m1s", "0.2h"] {
        assert!(admit(&schema, &plan(long, "1m")).is_err(), "{long}");
    }
}
