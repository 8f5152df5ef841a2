# Helpers shared by the CI scripts.

# Prints a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Starts Debian's mosquitto on a free loopback port; sets MOSQ_PORT and MOSQ_PID.
start_mosquitto() {
  MOSQ_PORT=$(free_port)
  local dir; dir=$(mktemp -d)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MOSQ_PORT" > "$dir/mosquitto.conf"
  mosquitto -c "$dir/mosquitto.conf" > "$dir/mosquitto.log" 2>&1 &
  MOSQ_PID=$!
  for _ in $(seq 1 100); do
    if mosquitto_pub -h 127.0.0.1 -p "$MOSQ_PORT" -t ci/probe -m x 2>/dev/null; then return 0; fi
    python3 -c 'import time; time.sleep(0.1)'
  done
  echo "mosquitto did not start:" >&2; cat "$dir/mosquitto.log" >&2; return 1
}
