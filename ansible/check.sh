#!/usr/bin/env bash
# CI check of the Ansible tree, without any Pi (the roles applied for real
# are .ci/ansible-apply.sh): `--syntax-check` of every playbook,
# `ansible-lint --profile production`, the inventory check against good and
# broken inventories, every role template rendered for every host of the
# example inventory in both failure-detection profiles (tests/render.yml
# checks the results), `systemd-analyze verify` of the agent unit with and
# without the chaos drop-in, mosquitto loading the rendered broker config,
# and the site overlay built with `kubectl kustomize` when kubectl is there.
# Pinned ansible-core and ansible-lint come from ansible/venv.sh.
set -euo pipefail
cd "$(dirname "$0")"
source ./venv.sh
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

for playbook in site.yml upgrade-agent.yml teardown.yml tests/*.yml; do
    ansible-playbook --syntax-check "$playbook" >/dev/null
done
echo "syntax ok: site.yml upgrade-agent.yml teardown.yml tests/*.yml"
ansible-lint --profile production --nocolor -q

check_inventory() { # expect (pass|a message), inventory text
    local inv out
    inv="$(mktemp -d)"
    printf '%s\n' "$2" >"$inv/hosts.yml"
    if out="$(ansible-playbook -i "$inv/hosts.yml" check-inventory.yml -e ansible_connection=local \
        -e token=t0ken -e rackpong_mqtt_controller_password=c -e rackpong_mqtt_worker_password=w \
        -e '{"rackpong_mqtt_node_passwords": {"pi1": "a", "pi2": "b"}}' 2>&1)"; then
        [ "$1" = pass ] || { echo "inventory check passed, expected: $1" >&2; echo "$2" >&2; return 1; }
    else
        [ "$1" != pass ] && grep -qF -- "$1" <<<"$out" || { echo "inventory check: want $1, got:" >&2; echo "$out" >&2; return 1; }
    fi
    rm -rf "$inv"
    echo "inventory check: $1"
}
check_inventory pass 'k3s_cluster: {children: {server: {hosts: {pi1: }}, agent: {hosts: {pi2: }}}}'
check_inventory 'no group `k3s_cluster`' 'rack: {children: {server: {hosts: {pi1: }}, agent: {hosts: {pi2: }}}}'
check_inventory 'no group `agent`' 'k3s_cluster: {children: {server: {hosts: {pi1: }}, agents: {hosts: {pi2: }}}}'
check_inventory 'Group `server` has 2 hosts' 'k3s_cluster: {children: {server: {hosts: {pi1: , pi2: }}, agent: {hosts: {pi3: }}}}'
check_inventory 'Group `agent` has no hosts' 'k3s_cluster: {children: {server: {hosts: {pi1: }}, agent: {}}}'
check_inventory 'Inventory name `10.0.0.2`' 'k3s_cluster: {children: {server: {hosts: {pi1: }}, agent: {hosts: {10.0.0.2: }}}}'

verify_unit() { # rendered dir of one host
    local units
    units="$(mktemp -d)"
    # The binary is not installed here; any executable keeps verify honest
    # about everything else.
    sed 's|^ExecStart=/usr/local/bin/rackpong-agent|ExecStart=/bin/true|' \
        "$1/rackpong-agent.service" >"$units/rackpong-agent.service"
    local out
    out="$(SYSTEMD_UNIT_PATH="$units:" systemd-analyze verify "$units/rackpong-agent.service" 2>&1 || true)"
    mkdir "$units/rackpong-agent.service.d"
    cp "$1/chaos.conf" "$units/rackpong-agent.service.d/chaos.conf"
    out+="$(SYSTEMD_UNIT_PATH="$units:" systemd-analyze verify "$units/rackpong-agent.service" 2>&1 || true)"
    rm -rf "$units"
    if [ -n "$out" ]; then
        echo "systemd-analyze verify ($1):" >&2
        echo "$out" >&2
        return 1
    fi
}

check_broker() { # rendered dir of one host: mosquitto accepts the config
    command -v mosquitto >/dev/null || PATH="$PATH:/usr/sbin"
    if ! command -v mosquitto >/dev/null || ! command -v mosquitto_passwd >/dev/null; then
        echo "mosquitto not found: broker config not loaded" >&2
        return 0
    fi
    local dir port pid
    dir="$(mktemp -d)"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    cp "$1/rackpong.passwd.src" "$dir/passwd" && chmod 600 "$dir/passwd"
    mosquitto_passwd -U "$dir/passwd"
    cp "$1/rackpong.acl" "$dir/acl"
    sed -e "s|^listener .*|listener $port 127.0.0.1|" \
        -e "s|/etc/mosquitto/rackpong.passwd|$dir/passwd|" \
        -e "s|/etc/mosquitto/rackpong.acl|$dir/acl|" \
        "$1/rackpong.conf" >"$dir/mosquitto.conf"
    # Started as root, mosquitto would drop to its own user and lose the temp files.
    echo "user $(id -un)" >>"$dir/mosquitto.conf"
    mosquitto -c "$dir/mosquitto.conf" >"$dir/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
        grep -q "running" "$dir/log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    local ok=0
    grep -q "running" "$dir/log" || ok=1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "$ok" -ne 0 ]; then
        echo "mosquitto refused the rendered config ($1):" >&2
        cat "$dir/log" >&2
    fi
    rm -rf "$dir"
    return "$ok"
}

check_overlay() { # rendered dir of the server: the site overlay builds as intended
    if ! command -v kubectl >/dev/null; then
        echo "kubectl not found: site overlay not built" >&2
        return 0
    fi
    local tree out
    tree="$(mktemp -d)"
    cp -r ../k3s "$tree/k3s"
    mkdir -p "$tree/k3s/overlays/site/secrets"
    cp "$1/kustomization.yaml" "$tree/k3s/overlays/site/"
    for f in worker-username worker-password controller-username controller-password chaos-secret; do
        printf 'x-%s' "$f" >"$tree/k3s/overlays/site/secrets/$f"
    done
    out="$(kubectl kustomize "$tree/k3s/overlays/site")"
    rm -rf "$tree"
    python3 - "$out" <<'PY'
import sys
docs = [d for d in sys.argv[1].split("\n---\n")]
def find(kind, name):
    return [d for d in docs if f"kind: {kind}\n" in d and f"\n  name: {name}" in d]
assert not [d for d in docs if "name: mosquitto" in d or "eclipse-mosquitto" in d], "in-cluster mosquitto still deployed"
ctl = find("Deployment", "rackpong-controller")[0]
wrk = find("Deployment", "rackpong-worker")[0]
assert "name: rackpong-mqtt-controller-" in ctl and "name: rackpong-mqtt-" in wrk and "rackpong-mqtt-controller" not in wrk, "MQTT Secrets"
chaos = [d for d in docs if "kind: Secret\n" in d and "\n  name: rackpong-chaos\n" in d]
assert chaos and "  chaos.key: " in chaos[0] and "secretName: rackpong-chaos" in ctl, "chaos Secret"
cfg = find("ConfigMap", "rackpong-config")[0]
assert "RACKPONG_BROKER: mqtt://192.168.50.11:1883" in cfg, cfg
ns = [d for d in docs if "kind: Namespace\n" in d][0]
assert "rackpong.dev/node-monitor-grace-period: 50s" in ns and "rackpong.dev/detection-profile:" in ns, ns
assert "pod-security.kubernetes.io/enforce: restricted" in ns, ns
print("site overlay: no in-cluster mosquitto, controller and workers on their own logins, broker", "192.168.50.11")
PY
}

for profile in safe demo-fast; do
    out="$(mktemp -d)"
    # demo-fast is also rendered for an air-gapped venue.
    extra=()
    [ "$profile" = safe ] || extra=(-e "airgap_dir=$PWD/files/k3s")
    RENDER_DIR="$out" ansible-playbook tests/render.yml -e "k3s_profile=$profile" "${extra[@]}" >"$out.log" 2>&1 \
        || { cat "$out.log" >&2; exit 1; }
    rm -f "$out.log"
    if command -v systemd-analyze >/dev/null; then
        for host in "$out"/*/; do
            verify_unit "${host%/}"
        done
    else
        echo "systemd-analyze not found: unit files not verified" >&2
    fi
    check_broker "$out/pi1"
    check_overlay "$out/pi1"
    rm -rf "$out"
    echo "profile $profile${extra:+ (air-gapped)}: templates rendered and checked"
done
echo "ansible checks passed"
