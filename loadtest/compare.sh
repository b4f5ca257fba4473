#!/usr/bin/env bash
# tokend against the no-work HTTP server (the ceiling), in one run on one
# machine: every server pinned to CPU 0, the load generator to CPU 1.
#   cargo build --release -p tokend -p loadtest && loadtest/compare.sh
# DUR (seconds per run, default 5) and CONC (connections, default 32) tune it.
# Results: a table on stdout and JSON per run under /tmp/peer-results.
set -u
cd "$(dirname "$0")/.."
LT=target/release/loadtest
TD=target/release/tokend
[ -d /tmp/lt ] || $LT setup --alg ES256 --tokens 10000 --out /tmp/lt --http-port 18100 --grpc-port 18101
[ -d /tmp/lt-rs ] || $LT setup --alg RS256 --tokens 10000 --out /tmp/lt-rs --http-port 18100 --grpc-port 18101
D=${DUR:-5}
C=${CONC:-32}
res=/tmp/peer-results; mkdir -p $res
run() { # name target url tokens extra...
  local name=$1; shift
  taskset -c 1 $LT run --duration $D --json $res/$name.json "$@" 2>/dev/null | sed "s/^/[$name] /"
}
taskset -c 0 $LT noop --addr 127.0.0.1:18199 2>/dev/null & N=$!
sleep 0.5
run noop --target http-auth --url http://127.0.0.1:18199 --tokens /tmp/lt/tokens.txt --repeat --concurrency $C
kill $N; wait $N 2>/dev/null

RUST_LOG=warn taskset -c 0 $TD serve --config /tmp/lt/tokend.toml 2>/dev/null & T=$!
sleep 1
run auth-repeat --target http-auth --url http://127.0.0.1:18100 --tokens /tmp/lt/tokens.txt --repeat --concurrency $C
run introspect-repeat --target http-introspect --url http://127.0.0.1:18100 --tokens /tmp/lt/tokens.txt --repeat --concurrency $C
run auth-es256-10k-cached --target http-auth --url http://127.0.0.1:18100 --tokens /tmp/lt/tokens.txt --concurrency $C
run grpc-batch-cached --target grpc-batch --url http://127.0.0.1:18101 --tokens /tmp/lt/tokens.txt --batch 1000 --concurrency 4
kill $T; wait $T 2>/dev/null

# The hand-written verifier (axum + jsonwebtoken), no cache, as teams write it.
taskset -c 0 $LT handwritten --addr 127.0.0.1:18198 --jwks /tmp/lt/jwks.json 2>/dev/null & H=$!
sleep 0.5
run handwritten-es256-10k --target http-auth --url http://127.0.0.1:18198 --tokens /tmp/lt/tokens.txt --concurrency $C
kill $H; wait $H 2>/dev/null
taskset -c 0 $LT handwritten --addr 127.0.0.1:18198 --jwks /tmp/lt-rs/jwks.json 2>/dev/null & H=$!
sleep 0.5
run handwritten-rs256-10k --target http-auth --url http://127.0.0.1:18198 --tokens /tmp/lt-rs/tokens.txt --concurrency $C
kill $H; wait $H 2>/dev/null

TOKEND__CACHE__ENABLED=false RUST_LOG=warn taskset -c 0 $TD serve --config /tmp/lt/tokend.toml 2>/dev/null & T=$!
sleep 1
run auth-es256-10k-nocache --target http-auth --url http://127.0.0.1:18100 --tokens /tmp/lt/tokens.txt --concurrency $C
kill $T; wait $T 2>/dev/null
TOKEND__CACHE__ENABLED=false RUST_LOG=warn taskset -c 0 $TD serve --config /tmp/lt-rs/tokend.toml 2>/dev/null & T=$!
sleep 1
run auth-rs256-10k-nocache --target http-auth --url http://127.0.0.1:18100 --tokens /tmp/lt-rs/tokens.txt --concurrency $C
kill $T; wait $T 2>/dev/null

python3 - "$res" <<'PY'
import json, os, sys
res = sys.argv[1]
runs = {f[:-5]: json.load(open(os.path.join(res, f))) for f in os.listdir(res) if f.endswith(".json")}
noop = runs.get("noop", {}).get("requests_per_s")
print(f"{'run':28} {'req/s':>10} {'verdicts/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'÷ noop':>7}")
for name, r in sorted(runs.items()):
    ratio = f"{r['requests_per_s'] / noop:.2f}" if noop else "-"
    print(f"{name:28} {r['requests_per_s']:>10.0f} {r['verdicts_per_s']:>11.0f} {r['latency_ms']['p50']:>8.3f} {r['latency_ms']['p99']:>8.3f} {ratio:>7}")
PY
