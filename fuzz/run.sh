#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60), starting from the committed
# seeds in fuzz/seeds/<target>. Exits non-zero when any target finds a crash
# (a panic, a failed property assertion, a timeout or an out-of-memory);
# the crashing input is kept in fuzz/artifacts/<target>/ and the command to
# reproduce it is printed.
#
#   fuzz/run.sh             # every target, 60 s each
#   fuzz/run.sh 10 frame    # only `frame`, 10 s
#
# Uses cargo-fuzz (libFuzzer) on the stable toolchain with --sanitizer none:
# coverage-guided, no AddressSanitizer (that needs nightly). Safe Rust gets
# bounds and overflow checks from the build (-a: debug assertions on).
set -euo pipefail
cd "$(dirname "$0")"

secs=${1:-60}
shift || true

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install --locked cargo-fuzz@^0.13 >/dev/null 2>&1 || cargo install --locked cargo-fuzz
fi

flags=(--sanitizer none -O -a)
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/oxtail-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "fuzz: building ${targets[*]}"
if ! cargo fuzz build "${flags[@]}" >"$work/build.log" 2>&1; then
  tail -40 "$work/build.log"
  echo "fuzz: the fuzz targets do not build"
  exit 1
fi
crashed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t" "artifacts/$t"
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  log="$work/$t.log"
  echo "fuzz: $t for ${secs}s (seeds: ${seeds[*]:-none})"
  if cargo fuzz run "${flags[@]}" "$t" "$work/corpus/$t" "${seeds[@]}" -- \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "fuzz: $t ok: $runs inputs, $cov"
  else
    echo "fuzz: $t CRASHED; last lines of its log:"
    tail -40 "$log" | sed 's/^/    /'
    art=$(ls -t "artifacts/$t/" 2>/dev/null | head -1 || true)
    if [ -n "$art" ]; then
      echo "    reproduce: (cd fuzz && cargo fuzz run ${flags[*]} $t artifacts/$t/$art)"
    fi
    crashed+=("$t")
  fi
done

if [ ${#crashed[@]} -gt 0 ]; then
  echo "fuzz: ${#crashed[@]} of ${#targets[@]} targets crashed: ${crashed[*]}"
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${secs}s each without a crash"
