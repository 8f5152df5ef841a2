#!/usr/bin/env bash
# Renders every kustomize overlay and validates what a cluster would be sent:
# - every object strictly (no unknown fields) against the Kubernetes 1.31 and
#   1.33 OpenAPI schemas (kubernetes-validate from PyPI ships them: offline);
# - the ChaosExperiment examples against the CRD's own schema, and the pods
#   against Pod Security `restricted` (.ci/manifests.py);
# - the committed CRD equal to `rackpong crd`;
# - yamllint over k3s/.
# Usage: .ci/manifests.sh   (needs: kubectl with kustomize, python3-venv, a built target/debug/rackpong)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/ci-venv
[ -x "$venv/bin/kubernetes-validate" ] || {
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q kubernetes-validate==1.37.0 yamllint==1.38.0
}
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
rendered=()
for overlay in k3s/overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" > "$out/$name.yaml"
  rendered+=("$out/$name.yaml")
  for v in 1.31.0 1.33.0; do
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$v" "$out/$name.yaml"
  done
  echo "overlay $name: $(grep -c '^kind:' "$out/$name.yaml") objects valid against Kubernetes 1.31 and 1.33 (strict)"
done
"$venv/bin/kubernetes-validate" --strict --quiet -k 1.33.0 k3s/crd/crd.yaml
"$venv/bin/python" .ci/manifests.py "${rendered[@]}" --crd k3s/crd/crd.yaml --examples k3s/examples/*.yaml
exe=${RACKPONG_EXE:-target/debug/rackpong}
diff -u k3s/crd/crd.yaml <("$exe" crd) || { echo "k3s/crd/crd.yaml differs from 'rackpong crd': regenerate it" >&2; exit 1; }
echo "k3s/crd/crd.yaml is 'rackpong crd'"
"$venv/bin/yamllint" -s -c .yamllint.yaml k3s
echo "yamllint: k3s/ clean"
