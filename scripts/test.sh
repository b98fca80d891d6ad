#!/usr/bin/env bash
# Runs the whole test suite with every feature, against a NATS server and a Mosquitto broker.
#
# Brokers: ORBITALIS_NATS_URL (default nats://127.0.0.1:4222) and ORBITALIS_MQTT_URL (default
# mqtt://127.0.0.1:1883). One already listening is used as is; a missing local one is started
# (and installed with apt-get when its binary is missing) and stopped again on exit.
# Arguments go to `cargo test`, e.g. `scripts/test.sh -- --nocapture`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export ORBITALIS_NATS_URL="${ORBITALIS_NATS_URL:-nats://127.0.0.1:4222}"
export ORBITALIS_MQTT_URL="${ORBITALIS_MQTT_URL:-mqtt://127.0.0.1:1883}"

STARTED=()
WORK="$(mktemp -d)"
cleanup() {
  for pid in "${STARTED[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# "scheme://[user@]host:port/..." -> "host port" (default port $2).
host_port() {
  local rest="${1#*://}"
  rest="${rest%%/*}"
  rest="${rest##*@}"
  if [[ "$rest" == *:* ]]; then echo "${rest%:*} ${rest##*:}"; else echo "$rest $2"; fi
}

listening() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

is_local() {
  [[ "$1" == 127.0.0.1 || "$1" == localhost || "$1" == ::1 ]]
}

find_bin() {
  command -v "$1" 2>/dev/null || { [[ -x "/usr/sbin/$1" ]] && echo "/usr/sbin/$1"; } || true
}

ensure_installed() { # binary package
  if [[ -z "$(find_bin "$1")" ]]; then
    local sudo=""
    if [[ "$(id -u)" -ne 0 ]] && command -v sudo >/dev/null; then sudo="sudo"; fi
    echo "installing $2" >&2
    $sudo apt-get update -q
    $sudo apt-get install -y -q "$2"
  fi
  local bin
  bin="$(find_bin "$1")"
  [[ -n "$bin" ]] || { echo "error: $1 is still missing after installing $2" >&2; exit 1; }
  echo "$bin"
}

wait_listening() { # name host port log
  for _ in $(seq 1 150); do
    if listening "$2" "$3"; then return 0; fi
    sleep 0.2
  done
  echo "error: $1 does not listen on $2:$3 after 30 s; its log:" >&2
  cat "$4" >&2 || true
  exit 1
}

ensure_nats() {
  local host port bin
  read -r host port < <(host_port "$ORBITALIS_NATS_URL" 4222)
  if listening "$host" "$port"; then echo "NATS: using the server on $host:$port"; return; fi
  is_local "$host" || { echo "error: no NATS server at $ORBITALIS_NATS_URL" >&2; exit 1; }
  bin="$(ensure_installed nats-server nats-server)"
  "$bin" -a "$host" -p "$port" >"$WORK/nats.log" 2>&1 &
  STARTED+=($!)
  wait_listening nats-server "$host" "$port" "$WORK/nats.log"
  echo "NATS: started on $host:$port"
}

ensure_mosquitto() {
  local host port bin
  read -r host port < <(host_port "$ORBITALIS_MQTT_URL" 1883)
  if listening "$host" "$port"; then echo "MQTT: using the broker on $host:$port"; return; fi
  is_local "$host" || { echo "error: no MQTT broker at $ORBITALIS_MQTT_URL" >&2; exit 1; }
  bin="$(ensure_installed mosquitto mosquitto)"
  printf 'listener %s %s\nallow_anonymous true\npersistence false\n' "$port" "$host" >"$WORK/mosquitto.conf"
  chmod a+r "$WORK/mosquitto.conf"
  "$bin" -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
  STARTED+=($!)
  wait_listening mosquitto "$host" "$port" "$WORK/mosquitto.log"
  echo "MQTT: started on $host:$port"
}

ensure_nats
ensure_mosquitto
# The reconnection tests start their own brokers: make sure both binaries exist.
ensure_installed nats-server nats-server >/dev/null
ensure_installed mosquitto mosquitto >/dev/null

cargo test --workspace --all-features "$@"
