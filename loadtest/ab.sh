#!/bin/bash
# Two (or more) tokend binaries against each other, interleaved: each round
# starts every binary in turn on CPU 0, warms it for 2 s and loads it for
# 5 s from CPU 1 with `loadtest run`, and prints its throughput and its own
# CPU time per unit (request, or verdict for gRPC batches) from /proc.
#
#   cp target/release/tokend /tmp/tokend-before   # then change, rebuild
#   loadtest/ab.sh 3 grpc-batch 18101 es256 0 /tmp/tokend-before target/release/tokend -- --batch 1000 --concurrency 4
#
# Arguments: rounds, loadtest target, port the target listens on, the pool
# under /tmp/lt-pools (made by `loadtest setup` or compare.py), repeat one
# token (1) or walk the pool (0), the binaries, then `--` and extra
# `loadtest run` arguments. EXTRA_ENV="K=V ..." is passed to each server.
# GENERATOR=wrk drives the `http-auth` target with `wrk -t1 -c32` instead
# (a Lua script walking the pool, or repeating its first token; the extra
# arguments are ignored): the generator that does not saturate first.
#
#   GENERATOR=wrk loadtest/ab.sh 5 http-auth 18100 es256 1 /tmp/tokend-before target/release/tokend --
set -u
ROUNDS=$1; TARGET=$2; PORT=$3; POOL=/tmp/lt-pools/$4; REPEAT=$5; shift 5
BINS=(); while [ "$1" != "--" ]; do BINS+=("$1"); shift; done; shift
LT="$(dirname "$0")/../target/release/loadtest"
R=""; [ "$REPEAT" = 1 ] && R="--repeat"
OUT=$(mktemp -d)
cat > "$OUT/pool.lua" <<LUA
local requests, i = {}, 0
init = function(args)
  for token in io.lines("$POOL/tokens.txt") do
    requests[#requests + 1] = wrk.format("GET", "/auth", {["Authorization"] = "Bearer " .. token})
    if "$REPEAT" == "1" then break end
  end
end
request = function()
  i = i % #requests + 1
  return requests[i]
end
LUA
# One run of `$1` seconds; with --json, its result where `loadtest run` puts it.
drive() {
  if [ "${GENERATOR:-loadtest}" = wrk ]; then
    taskset -c 1 wrk -t1 -c32 -d"$1"s -s "$OUT/pool.lua" "http://127.0.0.1:$PORT" > "$OUT/wrk.txt" 2>&1
    python3 - "$OUT/wrk.txt" "$1" > "$OUT/run.json" <<'PY'
import json, re, sys
text, seconds = open(sys.argv[1]).read(), int(sys.argv[2])
n = int(re.search(r"(\d+) requests in", text).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
print(json.dumps({"requests_per_s": n / seconds, "inactive": int(bad.group(1)) if bad else 0,
                  "errors": sum(map(int, errors.groups())) if errors else 0}))
PY
  else
    shift
    taskset -c 1 "$LT" run --target "$TARGET" --url "http://127.0.0.1:$PORT" --tokens "$POOL/tokens.txt" $R "$@" >/dev/null 2>&1
  fi
}
for r in $(seq "$ROUNDS"); do for b in "${BINS[@]}"; do
  env ${EXTRA_ENV:-} taskset -c 0 "$b" serve --config "$POOL/tokend.toml" > "$OUT/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  drive 2 --duration 2 "$@"
  T0=$(awk '{print $14+$15}' /proc/$PID/stat)
  drive 5 --duration 5 --json "$OUT/run.json" "$@"
  T1=$(awk '{print $14+$15}' /proc/$PID/stat)
  kill $PID; wait $PID 2>/dev/null
  python3 - "$OUT/run.json" "$r" "$b" "$T0" "$T1" <<'PY'
import json, os, sys
path, r, b, t0, t1 = sys.argv[1:]
d = json.load(open(path))
units = d.get("verdicts_per_s", d["requests_per_s"]) * 5
cpu = (int(t1) - int(t0)) / os.sysconf("SC_CLK_TCK")
print(f"round {r} {b:40} {units / 5:>10.0f}/s  server {cpu * 1e6 / max(units, 1):.2f} µs per unit"
      f"  errors {d['errors']} inactive {d['inactive']}")
PY
done; done
rm -rf "$OUT"
