# Shared by the interop scripts (sourced): a work folder removed on exit with
# every process started into PIDS, free ports, failure, and waiting for a URL.
# The sourcing script sets INTEROP (its name in failure messages) first.

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fail() { echo "${INTEROP:-interop} FAILED: $*" >&2; exit 1; }

# wait_for URL TENTHS LOG WHAT: until URL answers 2xx, for TENTHS tenths of a
# second; otherwise print LOG and fail with "WHAT did not start".
wait_for() {
  local url=$1 tenths=$2 log=$3 what=$4
  for _ in $(seq "$tenths"); do
    if curl -fs "$url" >/dev/null; then return 0; fi
    sleep 0.1
  done
  cat "$log"
  fail "$what did not start"
}
