#!/usr/bin/env bash
# RS256 without cache: the hand-written verifier and tokend, interleaved, on CPU 0.
# Needs: cargo build --release -p tokend -p loadtest; loadtest setup for /tmp/lt-rs (compare.sh does it).
cd "$(dirname "$0")/.."
LT=target/release/loadtest; TD=target/release/tokend
for round in 1 2; do
taskset -c 0 $LT handwritten --addr 127.0.0.1:18198 --jwks /tmp/lt-rs/jwks.json 2>/dev/null & H=$!; sleep 0.5
taskset -c 1 $LT run --duration 4 --concurrency 32 --target http-auth --url http://127.0.0.1:18198 --tokens /tmp/lt-rs/tokens.txt 2>/dev/null | grep throughput | sed "s/^/hand r$round /"
kill $H; wait $H 2>/dev/null
TOKEND__CACHE__ENABLED=false RUST_LOG=warn taskset -c 0 $TD serve --config /tmp/lt-rs/tokend.toml 2>/dev/null & T=$!; sleep 1
taskset -c 1 $LT run --duration 4 --concurrency 32 --target http-auth --url http://127.0.0.1:18100 --tokens /tmp/lt-rs/tokens.txt 2>/dev/null | grep throughput | sed "s/^/tokend r$round /"
kill $T; wait $T 2>/dev/null
done
