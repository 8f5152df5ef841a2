#!/usr/bin/env bash
# Applies the Ansible roles for real to this machine and proves the result
# from the outside (ansible/README.md, "Checks"):
#   1. tests/apply.yml: the mosquitto and rackpong_agent roles as the example
#      inventory's first node (pi1), connection local, service management off
#      (rackpong_manage_services=false: no systemd here), throw-away secrets,
#      a free loopback port; a second run must report changed=0.
#   2. mosquitto started by hand with the installed /etc/mosquitto config;
#      mosquitto_pub/sub check logins and the ACL (mosquitto drops a refused
#      publish silently, so every check is a subscriber that sees, or does
#      not see, a message before a marker published after it).
#   3. The installed unit: systemd-analyze verify, then its ExecStart run as
#      the unit's (dynamic) user with its environment and credentials; it must
#      publish a health sample with the installed login. upgrade-agent.yml's
#      wait for online + a fresh health sample runs against it.
#   4. tests/kubeconfig.yml: the kubeconfig fetch with a fake server file.
#   5. teardown.yml (service management off, packages kept) removes what the
#      roles installed; a second run reports changed=0. It also runs on exit,
#      so a failed run leaves nothing behind and the script can be re-run.
# This writes real paths (/etc/mosquitto/conf.d/rackpong.conf and
# rackpong.{acl,passwd,passwd.src}, /etc/rackpong, /usr/local/bin/rackpong-agent,
# /etc/systemd/system/rackpong-agent.service); run as root, in CI only.
# RACKPONG_AGENT_BIN: the x86_64 agent to install (default: the debug build
# `cargo test --workspace` leaves in target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
source .ci/lib.sh
source ansible/venv.sh
export ANSIBLE_CONFIG="$repo/ansible/ansible.cfg"
command -v mosquitto >/dev/null || PATH="$PATH:/usr/sbin"

bin="$(realpath "${RACKPONG_AGENT_BIN:-target/debug/rackpong-agent}")"
[ -x "$bin" ] || { echo "no agent binary at $bin (run cargo test --workspace or set RACKPONG_AGENT_BIN)" >&2; exit 1; }

work="$(mktemp -d)"
chmod 755 "$work"
pids=()
torn_down=0
# The hand-started mosquitto persists retained messages; remove its database
# afterwards unless one was there before.
mosq_db=/var/lib/mosquitto/mosquitto.db
keep_db=0; [ -e "$mosq_db" ] && keep_db=1
keep_run=0; [ -e /run/mosquitto ] && keep_run=1
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$torn_down" -eq 0 ]; then
        (cd ansible && ansible-playbook teardown.yml --limit pi1 -e "@$work/vars.yml" >/dev/null 2>&1) || true
    fi
    [ "$keep_db" = 1 ] || rm -f "$mosq_db"
    [ "$keep_run" = 1 ] || rm -rf /run/mosquitto
    rm -rf "$work"
}
trap cleanup EXIT

port="$(free_port)"
secret() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }
ctl_pw="$(secret)"; wrk_pw="$(secret)"
cat >"$work/vars.yml" <<VARS
ansible_connection: local
ansible_host: 127.0.0.1
ansible_python_interpreter: /usr/bin/python3
rackpong_manage_services: false
rackpong_teardown_packages: false
rackpong_mqtt_port: $port
mosquitto_bind_address: 127.0.0.1
rackpong_agent_http_addr: "127.0.0.1:0"
rackpong_agent_binary_src: "$bin"
rackpong_mqtt_controller_password: "$ctl_pw"
rackpong_mqtt_worker_password: "$wrk_pw"
rackpong_mqtt_node_passwords: {pi1: "$(secret)", pi2: "$(secret)", pi3: "$(secret)", pi4: "$(secret)", pi5: "$(secret)"}
rackpong_chaos_secret: "$(secret)$(secret)"
token: "$(secret)"
VARS
chmod 600 "$work/vars.yml"

play() { # playbook, log file: runs it from ansible/ with the vars above
    (cd ansible && ansible-playbook "$1" --limit pi1 -e "@$work/vars.yml") >"$2" 2>&1 || { cat "$2" >&2; return 1; }
}
recap_changed() { sed -n 's/^pi1 *:.* changed=\([0-9]*\).*/\1/p' "$1"; }

echo "-- apply mosquitto + rackpong_agent to this machine as pi1"
play tests/apply.yml "$work/apply1.log"
echo "first run: changed=$(recap_changed "$work/apply1.log")"
play tests/apply.yml "$work/apply2.log"
[ "$(recap_changed "$work/apply2.log")" = 0 ] || { echo "second run changed something:" >&2; cat "$work/apply2.log" >&2; exit 1; }
echo "second run: changed=0"

echo "-- mosquitto by hand with the installed config (port $port)"
install -d -o mosquitto -g mosquitto /run/mosquitto
mosquitto -c /etc/mosquitto/mosquitto.conf >"$work/mosquitto.out" 2>&1 &
pids+=($!)
node_pw="$(cat /etc/rackpong/mqtt-password)"
ready=0
for _ in $(seq 100); do
    if mosquitto_pub -h 127.0.0.1 -p "$port" -u controller -P "$ctl_pw" -t rackpong/rack/ci/probe -m x 2>/dev/null; then ready=1; break; fi
    python3 -c 'import time; time.sleep(0.1)'
done
[ "$ready" = 1 ] || { echo "mosquitto did not start:" >&2; cat "$work/mosquitto.out" /var/log/mosquitto/mosquitto.log >&2; exit 1; }

pub() { mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -u "$1" -P "$2" -t "$3" -m "$4"; }
# A subscriber as a user on some filters; the controller publishes markers on
# a topic the subscriber may read ($mark_<name>): once a marker arrives,
# everything published before it has been routed (mosquitto is one thread).
sub_start() { # name user password marker-topic filter...
    local name="$1" user="$2" pw="$3" mark="$4"; shift 4
    local args=()
    for t in "$@"; do args+=(-t "$t"); done
    printf -v "mark_$name" '%s' "$mark"
    mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -v -u "$user" -P "$pw" "${args[@]}" -t "$mark" >"$work/sub-$name" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        pub controller "$ctl_pw" "$mark" ready
        grep -qx "$mark ready" "$work/sub-$name" && return 0
        python3 -c 'import time; time.sleep(0.1)'
    done
    echo "subscriber $name ($user) did not start" >&2; return 1
}
sync_sub() { # name: publishes a marker and waits for it, so earlier messages have arrived
    local m="m$RANDOM$RANDOM" mark="mark_$1"
    pub controller "$ctl_pw" "${!mark}" "$m"
    for _ in $(seq 100); do
        grep -q " $m$" "$work/sub-$1" && return 0
        python3 -c 'import time; time.sleep(0.1)'
    done
    echo "marker $m never reached subscriber $1" >&2; return 1
}
fails=0
expect() { # delivered|dropped subscriber user password topic
    local want="$1" sub="$2" user="$3" pw="$4" topic="$5" m="p$RANDOM$RANDOM"
    pub "$user" "$pw" "$topic" "$m" || true
    sync_sub "$sub"
    local got=dropped
    grep -qx "$topic $m" "$work/sub-$sub" && got=delivered
    if [ "$got" = "$want" ]; then echo "ok   $user -> $topic: $got"; else echo "FAIL $user -> $topic: $got, want $want" >&2; fails=$((fails + 1)); fi
}

echo "-- logins"
if pub pi1 "$node_pw" rackpong/rack/nodes/pi1/status online; then echo "ok   pi1 with the installed password: accepted"; else echo "FAIL pi1 refused" >&2; fails=$((fails + 1)); fi
if pub pi1 "wrong-$node_pw" rackpong/rack/nodes/pi1/status online 2>/dev/null; then echo "FAIL wrong password accepted" >&2; fails=$((fails + 1)); else echo "ok   pi1 with a wrong password: refused"; fi
if mosquitto_pub -h 127.0.0.1 -p "$port" -t rackpong/rack/x -m x 2>/dev/null; then echo "FAIL anonymous accepted" >&2; fails=$((fails + 1)); else echo "ok   anonymous: refused"; fi

echo "-- ACL (controller subscribes to rackpong/rack/# as the in-cluster controller does)"
sub_start ctl controller "$ctl_pw" rackpong/rack/ci/mark 'rackpong/rack/#'
for t in status health cmd/ack; do expect delivered ctl pi1 "$node_pw" "rackpong/rack/nodes/pi1/$t"; done
for t in status health cmd/ack; do expect dropped ctl pi1 "$node_pw" "rackpong/rack/nodes/pi2/$t"; done
expect dropped ctl pi1 "$node_pw" rackpong/rack/nodes/pi1/cmd
expect dropped ctl pi1 "$node_pw" rackpong/rack/balls/caught
expect dropped ctl pi1 "$node_pw" rackpong/rack/estop
expect delivered ctl worker "$wrk_pw" rackpong/rack/balls/caught
expect delivered ctl worker "$wrk_pw" rackpong/rack/balls/dropped
expect delivered ctl worker "$wrk_pw" rackpong/rack/workers/rackpong-worker-abc/status
for t in nodes/pi1/status nodes/pi1/health nodes/pi1/cmd estop controller/status; do expect dropped ctl worker "$wrk_pw" "rackpong/rack/$t"; done
expect delivered ctl controller "$ctl_pw" rackpong/rack/controller/status
# The node reads its own commands and the emergency stop, not another node's commands.
sub_start node1 pi1 "$node_pw" rackpong/rack/nodes/pi1/cmd rackpong/rack/nodes/pi2/cmd rackpong/rack/estop
expect delivered node1 controller "$ctl_pw" rackpong/rack/nodes/pi1/cmd
expect delivered node1 controller "$ctl_pw" rackpong/rack/estop
expect dropped node1 controller "$ctl_pw" rackpong/rack/nodes/pi2/cmd

echo "-- the installed unit"
unit=/etc/systemd/system/rackpong-agent.service
out="$(systemd-analyze verify "$unit" 2>&1 || true)"
[ -z "$out" ] || { echo "systemd-analyze verify $unit:" >&2; echo "$out" >&2; exit 1; }
echo "ok   systemd-analyze verify $unit"
cmp "$bin" /usr/local/bin/rackpong-agent
grep -qx 'DynamicUser=yes' "$unit"
[ ! -e /etc/systemd/system/rackpong-agent.service.d/chaos.conf ] # pi1 is the server: never chaos
# DynamicUser: a uid of systemd's dynamic range that no account uses.
uid=61184; while getent passwd "$uid" >/dev/null || getent group "$uid" >/dev/null; do uid=$((uid + 1)); done
creds="$work/credentials"; install -d -m 0500 -o "$uid" "$creds"
state="$work/state"; install -d -m 0700 -o "$uid" "$state"
envs=()
while IFS= read -r line; do envs+=("$line"); done < <(grep -E '^[A-Z_]+=' "$(sed -n 's/^EnvironmentFile=//p' "$unit")")
while IFS= read -r line; do
    case "$line" in
        LoadCredential=*) c="${line#LoadCredential=}"; install -m 0400 -o "$uid" "${c#*:}" "$creds/${c%%:*}" ;;
        Environment=*) envs+=("$(sed "s|%d|$creds|g" <<<"${line#Environment=}")") ;;
    esac
done <"$unit"
envs+=("RACKPONG_CHAOS_STATE_FILE=$state/chaos-state.json" RACKPONG_INTERVAL=1s)
exec_start="$(sed -n 's/^ExecStart=//p' "$unit")"
health="$work/health"
mosquitto_sub -h 127.0.0.1 -p "$port" -u controller -P "$ctl_pw" -t rackpong/rack/nodes/pi1/health -R -C 1 -W 60 >"$health" &
hsub=$!
# shellcheck disable=SC2086 # ExecStart is a command line
setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs --inh-caps=-all \
    env -i "${envs[@]}" CREDENTIALS_DIRECTORY="$creds" $exec_start >"$work/agent.log" 2>&1 &
agent=$!
pids+=("$agent")
wait "$hsub" || { echo "no health sample from the installed agent:" >&2; cat "$work/agent.log" >&2; exit 1; }
python3 - "$health" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["node"] == "pi1" and s["v"] == 1, s
print(f"ok   health sample from the installed agent (ExecStart as a dynamic uid, installed login): node={s['node']} seq={s['seq']} version={s['agent_version']}")
PY

echo "-- upgrade-agent.yml's wait (online + a fresh health sample) against it"
play upgrade-agent.yml "$work/upgrade.log"
grep -q 'online and publishing' "$work/upgrade.log" || { cat "$work/upgrade.log" >&2; exit 1; }
[ "$(recap_changed "$work/upgrade.log")" = 0 ] || { echo "upgrade-agent.yml changed an unchanged node:" >&2; cat "$work/upgrade.log" >&2; exit 1; }
echo "ok   upgrade-agent.yml: pi1 online with a fresh health sample, changed=0"
kill "$agent"; wait "$agent" 2>/dev/null || true

echo "-- kubeconfig fetch with a fake server file"
cat >"$work/k3s.yaml" <<'YAML'
apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: ZmFrZS1jYQ==
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: ZmFrZS1jZXJ0
    client-key-data: ZmFrZS1rZXk=
YAML
for run in 1 2; do
    (cd ansible && FAKE_K3S_YAML="$work/k3s.yaml" KUBECONFIG_OUT="$work/kube/config" \
        ansible-playbook tests/kubeconfig.yml --limit pi1 -e ansible_connection=local -e ansible_python_interpreter=/usr/bin/python3) >"$work/kube$run.log" 2>&1 \
        || { cat "$work/kube$run.log" >&2; exit 1; }
done
grep -q 'server: https://192.168.50.11:6443' "$work/kube/config"
[ "$(recap_changed "$work/kube2.log")" = 0 ] || { cat "$work/kube2.log" >&2; exit 1; }
echo "ok   kubeconfig written 0600 with server https://192.168.50.11:6443; second run changed=0"

echo "-- teardown.yml"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
play teardown.yml "$work/teardown1.log"
play teardown.yml "$work/teardown2.log"
torn_down=1
[ "$(recap_changed "$work/teardown2.log")" = 0 ] || { echo "second teardown changed something:" >&2; cat "$work/teardown2.log" >&2; exit 1; }
for f in /etc/rackpong /usr/local/bin/rackpong-agent "$unit" /etc/mosquitto/conf.d/rackpong.conf /etc/mosquitto/rackpong.acl /etc/mosquitto/rackpong.passwd /etc/mosquitto/rackpong.passwd.src; do
    [ ! -e "$f" ] || { echo "teardown left $f" >&2; exit 1; }
done
echo "ok   teardown removed everything the roles installed; second run changed=0"

[ "$fails" -eq 0 ] || { echo "$fails ACL/login checks failed" >&2; exit 1; }
echo "ansible apply checks passed"
