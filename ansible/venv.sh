# Sourced by ansible/check.sh and .ci/ansible-apply.sh (and .ci/run's install
# step): puts pinned ansible-core and ansible-lint from PyPI on PATH, in a
# venv at $ANSIBLE_VENV (default $TMPDIR/rackpong-ansible-venv). The pins are
# the versions CI proves; ansible-core 2.19 is the newest that runs on
# Debian 12's Python 3.11.
RACKPONG_ANSIBLE_PINS=(ansible-core==2.19.14 ansible-lint==26.10.1)
rackpong_ansible_venv() {
    local venv="${ANSIBLE_VENV:-${TMPDIR:-/tmp}/rackpong-ansible-venv}"
    local stamp="$venv/.rackpong-pins"
    if [ "$(cat "$stamp" 2>/dev/null)" != "${RACKPONG_ANSIBLE_PINS[*]}" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "${RACKPONG_ANSIBLE_PINS[@]}"
        echo "${RACKPONG_ANSIBLE_PINS[*]}" >"$stamp"
    fi
    PATH="$venv/bin:$PATH"
    export PATH
}
rackpong_ansible_venv
