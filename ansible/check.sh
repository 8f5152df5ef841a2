#!/usr/bin/env bash
# CI check of the Ansible tree, without any Pi: `--syntax-check` of site.yml,
# every role template rendered for every host of the example inventory in
# both failure-detection profiles (tests/render.yml checks the results), and
# `systemd-analyze verify` of the agent unit with and without the chaos
# drop-in. Uses ansible-playbook from PATH, else installs ansible-core from
# PyPI into a venv ($ANSIBLE_VENV, default $TMPDIR/rackpong-ansible-venv).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v ansible-playbook >/dev/null; then
    venv="${ANSIBLE_VENV:-${TMPDIR:-/tmp}/rackpong-ansible-venv}"
    if [ ! -x "$venv/bin/ansible-playbook" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet 'ansible-core>=2.17,<2.19'
    fi
    PATH="$venv/bin:$PATH"
fi
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

ansible-playbook --syntax-check site.yml

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

for profile in safe demo-fast; do
    out="$(mktemp -d)"
    RENDER_DIR="$out" ansible-playbook tests/render.yml -e "k3s_profile=$profile"
    if command -v systemd-analyze >/dev/null; then
        for host in "$out"/*/; do
            verify_unit "${host%/}"
        done
    else
        echo "systemd-analyze not found: unit files not verified" >&2
    fi
    rm -rf "$out"
done
echo "ansible checks passed"
