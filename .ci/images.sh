#!/usr/bin/env bash
# Builds the four OCI image archives (agent and controller, arm64 and amd64)
# with `cargo xtask images` from the static musl binaries (no Docker), then
# proves them the way a k3s node uses them:
#   1. skopeo inspect: architecture, os, user, entrypoint, labels;
#   2. Debian's containerd (the runtime k3s embeds) imports each archive with
#      `ctr -n k8s.io images import --all-platforms`, as k3s' air-gap import does;
#   3. the amd64 worker image runs under containerd (host network, read-only
#      root filesystem, user 65532, no capabilities) and plays the game with a
#      worker outside the container over a real mosquitto;
#   4. the amd64 controller image runs `rackpong --version` and `rackpong crd`;
#   5. the arm64 binaries, unpacked from their archives with umoci, run under
#      qemu-aarch64-static.
# CI builds with the `release` profile (RACKPONG_IMAGE_PROFILE): `dist`'s
# thin LTO with one codegen unit costs 2-core CI twice the build time, and
# changes nothing the checks look at; users' `cargo xtask images` is `dist`.
# Usage: .ci/images.sh [--no-build]   (needs: containerd runc skopeo umoci jq
#        mosquitto mosquitto-clients qemu-user-static musl-tools curl)
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
profile=${RACKPONG_IMAGE_PROFILE:-release}
export RACKPONG_IMAGE_PROFILE=$profile
version=$(cargo metadata --no-deps --format-version 1 | jq -r '.packages[] | select(.name=="rackpong-agent") | .version')
dist=dist/images
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${CTR_SOCK:-}" ] && [ -S "$CTR_SOCK" ]; then
    for c in $(ctr --address "$CTR_SOCK" -n k8s.io containers ls -q 2>/dev/null); do
      ctr --address "$CTR_SOCK" -n k8s.io tasks kill -s KILL "$c" 2>/dev/null || true
      ctr --address "$CTR_SOCK" -n k8s.io containers rm "$c" 2>/dev/null || true
    done
  fi
  [ -n "${CTRD_PID:-}" ] && { kill "$CTRD_PID" 2>/dev/null || true; wait "$CTRD_PID" 2>/dev/null || true; }
  umount -R "$work/containerd" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

t0=$(date +%s)
if [ "${1:-}" != "--no-build" ]; then
  cargo xtask images
fi
echo "images built in $(( $(date +%s) - t0 )) s"
ls -l "$dist"

echo "== 1. skopeo inspect"
for image in agent controller; do
  for arch in arm64 amd64; do
    archive="$dist/rackpong-$image-$version-$arch.oci.tar"
    size=$(stat -c %s "$archive")
    cfg=$(skopeo inspect --config "oci-archive:$archive")
    bin=$([ "$image" = agent ] && echo rackpong-agent || echo rackpong)
    jq -e --arg arch "$arch" --arg bin "/usr/local/bin/$bin" --arg v "$version" '
      .architecture == $arch and .os == "linux"
      and .config.User == "65532:65532"
      and .config.Entrypoint == [$bin]
      and .config.Labels["org.opencontainers.image.version"] == $v
      and (.config.Labels["org.opencontainers.image.revision"] | length) >= 7
      and (.config.Labels["org.opencontainers.image.source"] | startswith("http"))' <<<"$cfg" >/dev/null \
      || { echo "$archive: unexpected image config:" >&2; jq . <<<"$cfg" >&2; exit 1; }
    # The layer is what a node pulls from its images directory: say its size.
    layer=$(skopeo inspect --raw "oci-archive:$archive" | jq '[.layers[].size] | add')
    echo "$archive: ok ($arch, user 65532, $bin); archive $size bytes, compressed layer $layer bytes"
  done
done

echo "== 2. containerd imports them as k3s does"
mkdir -p "$work/containerd"
CTR_SOCK="$work/containerd/containerd.sock"
: > "$work/containerd/config.toml"
containerd --config "$work/containerd/config.toml" --root "$work/containerd/root" \
  --state "$work/containerd/state" --address "$CTR_SOCK" > "$work/containerd.log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 1 100); do ctr --address "$CTR_SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr --address "$CTR_SOCK" version >/dev/null || { cat "$work/containerd.log" >&2; exit 1; }
ctr_() { ctr --address "$CTR_SOCK" -n k8s.io "$@"; }
# ctr 1.6 has no "drop ALL": drop each capability of its default set (the
# bounding-set check below fails if one is left).
nocaps=()
for c in CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP SETPCAP \
  NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE; do nocaps+=(--cap-drop "CAP_$c"); done
# A node imports only its own architecture: arm64 first, checked, removed.
for arch in arm64 amd64; do
  for image in agent controller; do
    ctr_ images import --all-platforms "$dist/rackpong-$image-$version-$arch.oci.tar"
    ref="docker.io/rackpong/$image:$version"
    # The list is read first: `producer | grep -q` under pipefail fails when
    # grep exits at its match and the producer's next write gets SIGPIPE.
    listed=$(ctr_ images ls)
    grep -q "^$ref " <<<"$listed" || { echo "import did not name $ref" >&2; echo "$listed" >&2; exit 1; }
    grep "^$ref " <<<"$listed" | grep -q "linux/$arch" || { echo "$ref is not linux/$arch" >&2; exit 1; }
    [ "$arch" = arm64 ] && ctr_ images rm "$ref" >/dev/null
  done
done
ctr_ images ls

echo "== 3. the amd64 worker image plays the game"
start_mosquitto
pids+=("$MOSQ_PID")
broker="mqtt://127.0.0.1:$MOSQ_PORT"
p_out=$(free_port); p_in=$(free_port)
host_agent="target/x86_64-unknown-linux-musl/$profile/rackpong-agent"
"$host_agent" worker --name outside --node ci-host --listen "127.0.0.1:$p_out" \
  --peers "http://127.0.0.1:$p_in" --broker "$broker" --rack ci > "$work/outside.log" 2>&1 &
pids+=($!)
ctr_ run -d --net-host --read-only "${nocaps[@]}" "docker.io/rackpong/agent:$version" ctr-worker \
  /usr/local/bin/rackpong-agent worker --name inside --node ci-container \
  --listen "127.0.0.1:$p_in" --peers "http://127.0.0.1:$p_out" --broker "$broker" --rack ci
ready() { curl -sf "http://127.0.0.1:$1/readyz" >/dev/null; }
for _ in $(seq 1 100); do ready "$p_in" && ready "$p_out" && break; sleep 0.2; done
ready "$p_in" && ready "$p_out" || {
  echo "the workers never got ready: inside $(curl -s "http://127.0.0.1:$p_in/readyz"), outside $(curl -s "http://127.0.0.1:$p_out/readyz")" >&2
  ctr_ tasks ls >&2; tail -20 "$work/outside.log" >&2; exit 1; }
curl -sf "http://127.0.0.1:$p_in/healthz" >/dev/null
task_pid=$(ctr_ tasks ls | awk '$1=="ctr-worker" {print $2}')
uid=$(awk '/^Uid:/ {print $2}' "/proc/$task_pid/status")
capeff=$(awk '/^CapEff:/ {print $2}' "/proc/$task_pid/status")
capbnd=$(awk '/^CapBnd:/ {print $2}' "/proc/$task_pid/status")
[ "$uid" = 65532 ] || { echo "worker runs as uid $uid, not 65532" >&2; exit 1; }
[ "$capeff" = 0000000000000000 ] && [ "$capbnd" = 0000000000000000 ] \
  || { echo "worker has capabilities: eff $capeff bnd $capbnd" >&2; exit 1; }
mosquitto_sub -h 127.0.0.1 -p "$MOSQ_PORT" -t 'rackpong/ci/balls/caught' -W 60 > "$work/caught.json" &
pids+=($!)
for _ in $(seq 1 50); do  # the subscription is live once a probe comes back
  mosquitto_pub -h 127.0.0.1 -p "$MOSQ_PORT" -t rackpong/ci/balls/caught -m '{"probe":1}'
  grep -q probe "$work/caught.json" && break; sleep 0.1
done
grep -q probe "$work/caught.json" || { echo "the balls/caught subscription never came up" >&2; exit 1; }
throw() {  # entry port, ball id, target worker
  curl -sf -o /dev/null -w '%{http_code}\n' -H 'content-type: application/json' \
    -d "{\"id\":\"$2\",\"target\":\"$3\",\"ttl\":8,\"born_ms\":$(date +%s%3N),\"hops\":[]}" \
    "http://127.0.0.1:$1/v1/balls" | grep -q 202
}
throw "$p_in" ci-out outside   # thrown into the container, caught outside
throw "$p_out" ci-in inside    # thrown outside, caught in the container
for _ in $(seq 1 100); do [ "$(grep -c '"ball"' "$work/caught.json")" -ge 2 ] && break; sleep 0.1; done
grep '"ball"' "$work/caught.json" > "$work/balls.json" || true
jq -s -e 'map(select(.ball.id=="ci-out" and .worker=="outside" and .ball.hops[0].worker=="inside")) | length == 1' "$work/balls.json" >/dev/null \
  || { echo "ball ci-out was not forwarded from the container and caught outside:" >&2; cat "$work/balls.json" >&2; exit 1; }
jq -s -e 'map(select(.ball.id=="ci-in" and .worker=="inside" and .node=="ci-container")) | length == 1' "$work/balls.json" >/dev/null \
  || { echo "ball ci-in was not caught in the container:" >&2; cat "$work/balls.json" >&2; exit 1; }
echo "the containerised worker caught and forwarded balls (uid $uid, no capabilities, read-only root)"
ctr_ tasks kill -s TERM ctr-worker
for _ in $(seq 1 50); do tasks=$(ctr_ tasks ls); grep -q '^ctr-worker .*RUNNING' <<<"$tasks" || break; sleep 0.1; done
ctr_ tasks rm -f ctr-worker >/dev/null 2>&1 || true
ctr_ containers rm ctr-worker

echo "== 4. the amd64 controller image"
ctr_ run --rm --net-host --read-only "${nocaps[@]}" "docker.io/rackpong/controller:$version" ctr-version \
  /usr/local/bin/rackpong --version | tee "$work/version.txt"
grep -q "$version" "$work/version.txt"
ctr_ run --rm --net-host --read-only "${nocaps[@]}" "docker.io/rackpong/controller:$version" ctr-crd \
  /usr/local/bin/rackpong crd > "$work/crd.yaml"
diff -u k3s/crd/crd.yaml "$work/crd.yaml" || { echo "the image's CRD differs from k3s/crd/crd.yaml" >&2; exit 1; }

echo "== 5. the arm64 binaries under qemu"
for image in agent controller; do
  bin=$([ "$image" = agent ] && echo rackpong-agent || echo rackpong)
  layout="$work/layout-$image"; mkdir -p "$layout"
  tar -xf "$dist/rackpong-$image-$version-arm64.oci.tar" -C "$layout"
  umoci unpack --image "$layout:$version" "$work/bundle-$image" >/dev/null
  f="$work/bundle-$image/rootfs/usr/local/bin/$bin"
  file "$f" | grep -q 'ARM aarch64.*statically linked'
  echo "$bin arm64: $(stat -c %s "$f") bytes, $(qemu-aarch64-static "$f" --version)"
done
echo "images check passed in $(( $(date +%s) - t0 )) s"
