#!/usr/bin/env bash
# Runs every fuzz target (or those named) over its committed seeds
# (fuzz/seeds/<target>) and a growing corpus (fuzz/corpus/<target>, not
# committed), each for a fixed number of runs or a time:
#   fuzz/run.sh runs 20000            # what CI does
#   fuzz/run.sh seconds 1800 signed   # a campaign: 30 minutes of `signed`
# Needs a nightly toolchain and cargo-fuzz (installed when missing). A crash
# leaves its input in fuzz/artifacts/<target>/ and fails the script; turn it
# into a regression test before fixing it.
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:?runs or seconds}; amount=${2:?how many}; shift 2
case "$mode" in
  runs) limit=(-runs="$amount") ;;
  seconds) limit=(-max_total_time="$amount") ;;
  *) echo "first argument: runs or seconds" >&2; exit 2 ;;
esac
cargo +nightly --version >/dev/null
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz --locked
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "==> fuzz $target (${limit[*]})"
  log="${TMPDIR:-/tmp}/fuzz-$target.log"
  rc=0
  cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    "${limit[@]}" -print_final_stats=1 >"$log" 2>&1 || rc=$?
  grep -E "^(#[0-9]+ +(INITED|DONE)|stat::number_of_executed_units|stat::peak_rss|Done)" "$log" || true
  if [ "$rc" != 0 ]; then
    grep -E "panicked|ERROR|SUMMARY" -A3 "$log" | head -20
    echo "fuzz $target failed: see $log and fuzz/artifacts/$target/"; exit 1
  fi
done
