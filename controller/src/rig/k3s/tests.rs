use super::*;

#[test]
fn the_ingress_must_be_an_http_url() {
    assert!(matches!(ingress(None), Err(WireError::NoIngress)));
    for bad in ["rack.local:30080", "http://", "ftp://x", ""] {
        assert!(
            matches!(ingress(Some(bad)), Err(WireError::BadIngress(_))),
            "{bad}"
        );
    }
    assert_eq!(
        ingress(Some(" http://rack.local:30080/ ")).unwrap(),
        "http://rack.local:30080"
    );
}

#[test]
fn a_pdb_becomes_the_safety_rules_budget() {
    let p: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "rackpong-worker", "namespace": "rackpong"},
        "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app.kubernetes.io/name": "rackpong-worker"}}}
    }))
    .unwrap();
    assert_eq!(
        pdb(&p),
        Pdb {
            min_available: Some(PdbValue::Percent(50)),
            max_unavailable: None
        }
    );
    let p: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "w"},
        "spec": {"maxUnavailable": 1}
    }))
    .unwrap();
    assert_eq!(
        pdb(&p),
        Pdb {
            min_available: None,
            max_unavailable: Some(PdbValue::Count(1))
        }
    );
    assert_eq!(pdb_value(&IntOrString::Int(-1)), None);
    assert_eq!(
        pdb_value(&IntOrString::String("3".into())),
        Some(PdbValue::Count(3))
    );
}
