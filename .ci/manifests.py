#!/usr/bin/env python3
"""Checks of the rendered manifests that no schema expresses.

Usage: manifests.py RENDERED.yaml... --crd k3s/crd/crd.yaml --examples k3s/examples/*.yaml

- every ChaosExperiment example validates against the CRD's own
  openAPIV3Schema (jsonschema; the x-kubernetes-* extensions are ignored);
- every pod template of a rendered overlay meets the Pod Security `restricted`
  level its namespace enforces (non-root, RuntimeDefault seccomp, no privilege
  escalation, all capabilities dropped, only the allowed volume types, no host
  namespaces or ports).
"""
import argparse
import sys

import jsonschema
import yaml

ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                   "persistentVolumeClaim", "projected", "secret"}


def docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def check_examples(crd_path, examples):
    crd = next(d for d in docs(crd_path) if d.get("kind") == "CustomResourceDefinition")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    problems = []
    for path in examples:
        for d in docs(path):
            if d.get("kind") != crd["spec"]["names"]["kind"]:
                continue
            body = {k: v for k, v in d.items() if k not in ("apiVersion", "kind", "metadata")}
            for err in jsonschema.Draft7Validator(schema).iter_errors(body):
                problems.append(f"{path}: {d['metadata']['name']}: {'/'.join(map(str, err.path))}: {err.message}")
            print(f"{path}: {d['metadata']['name']} matches the CRD schema")
    return problems


def pod_problems(where, spec):
    out = []
    psc = spec.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            out.append(f"{where}: {flag}")
    for v in spec.get("volumes", []):
        kind = next(k for k in v if k != "name")
        if kind not in ALLOWED_VOLUMES:
            out.append(f"{where}: volume {v['name']} is {kind}")
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        csc = c.get("securityContext", {})
        name = f"{where}/{c['name']}"
        if not (csc.get("runAsNonRoot", psc.get("runAsNonRoot"))):
            out.append(f"{name}: runAsNonRoot is not true")
        seccomp = csc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile is {seccomp}")
        if csc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation is not false")
        if "ALL" not in csc.get("capabilities", {}).get("drop", []):
            out.append(f"{name}: capabilities not dropped")
        if set(csc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds capabilities")
        if any("hostPort" in p for p in c.get("ports", [])):
            out.append(f"{name}: hostPort")
    return out


def check_pods(rendered):
    problems = []
    for path in rendered:
        for d in docs(path):
            template = d.get("spec", {}).get("template", {}).get("spec")
            if template:
                problems += pod_problems(f"{path}: {d['kind']}/{d['metadata']['name']}", template)
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rendered", nargs="+")
    ap.add_argument("--crd", required=True)
    ap.add_argument("--examples", nargs="+", required=True)
    a = ap.parse_args()
    problems = check_examples(a.crd, a.examples) + check_pods(a.rendered)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"{len(a.rendered)} rendered overlays meet Pod Security 'restricted'")


if __name__ == "__main__":
    main()
