//! The controller's RBAC rules as written in `k3s/base/controller-rbac.yaml`,
//! and whether one of them allows a recorded [`ApiCall`].

use serde_json::Value;

use super::ApiCall;

/// One grant of a rule: (verb, apiGroup, resource, namespaced, resourceName).
pub type Grant = (String, String, String, bool, Option<String>);

fn rbac() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../k3s/base/controller-rbac.yaml"
    );
    serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every (verb, group, resource, scope, name) the controller's Role and
/// ClusterRole grant.
pub fn grants() -> Vec<Grant> {
    let mut out = Vec::new();
    for doc in rbac() {
        let namespaced = match doc["kind"].as_str() {
            Some("Role") => true,
            Some("ClusterRole") => false,
            _ => continue,
        };
        let s = |x: &Value| x.as_str().unwrap().to_string();
        for rule in doc["rules"].as_array().unwrap() {
            let names: Vec<Option<String>> = match rule["resourceNames"].as_array() {
                Some(n) => n.iter().map(|x| Some(s(x))).collect(),
                None => vec![None],
            };
            for g in rule["apiGroups"].as_array().unwrap() {
                for r in rule["resources"].as_array().unwrap() {
                    for v in rule["verbs"].as_array().unwrap() {
                        for n in &names {
                            out.push((s(v), s(g), s(r), namespaced, n.clone()));
                        }
                    }
                }
            }
        }
    }
    out
}

pub fn allows(g: &Grant, c: &ApiCall) -> bool {
    g.0 == c.verb
        && g.1 == c.group
        && g.2 == c.resource
        && g.3 == c.namespaced
        && (g.4.is_none() || g.4 == c.name)
}
