#!/usr/bin/env bash
# Builds the release `oxtail` and the benchmark driver, then runs every
# whole-process benchmark (BENCHMARKS.md). Pass --quick for a short smoke
# run, --only shim,rtt,… for a subset.
#
#   bench/run.sh                 # full run (several minutes)
#   bench/run.sh --quick         # fewer repetitions, 100 k instead of 1 M records
#
# Results: a markdown table on stdout; JSON and the machine description in
# bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
echo "bench: building release binaries" >&2
cargo build --release --locked --bin oxtail >&2
CARGO_TARGET_DIR=target cargo build --release --manifest-path bench/Cargo.toml >&2
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "kernel: $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "tmp fs: $(df -hT "${TMPDIR:-/tmp}" | awk 'NR==2 {print $2, $3" total"}')"
  free -h
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee bench/results/machine.txt >&2
./target/release/oxtail-bench --oxtail "$PWD/target/release/oxtail" --json bench/results/latest.json "$@" \
  | tee bench/results/latest.md
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a bench/results/machine.txt >&2
