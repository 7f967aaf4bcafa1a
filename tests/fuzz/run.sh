#!/usr/bin/env bash
# Runs every libFuzzer target built in build-fuzz/ for FUZZ_SECONDS each (default 20), on a scratch copy of
# its seed corpus (tests/fuzz/corpus/<name>/; runs never write into the repository) with its dictionary
# (tests/fuzz/<name>.dict) when there is one. Crash inputs are kept under $FUZZ_ARTIFACTS (default
# build-fuzz/artifacts/). FUZZ_JOBS targets run at once (default: the number of cores; each target is one process
# on one core, so the wall time is divided without taking time from any target). Prints ok / not ok per target and
# "N passed, N failed"; exits 1 on any failure.
#   CC=clang cmake -S . -B build-fuzz -DWARDEN_FUZZ=ON -DWARDEN_SANITIZE=ON && cmake --build build-fuzz
#   FUZZ_SECONDS=60 bash tests/fuzz/run.sh
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
seconds=${FUZZ_SECONDS:-20}
artifacts=${FUZZ_ARTIFACTS:-$build/artifacts}
mkdir -p "$artifacts"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/warden-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

passed=0
failed=0
shopt -s nullglob
targets=("$build"/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then
    echo "not ok - no fuzz targets in $build (build with -DWARDEN_FUZZ=ON first)"
    echo "0 passed, 1 failed"
    exit 1
fi
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
# run_one BIN: one target; its verdict into $scratch/NAME.verdict ("ok ..." or "not ok ..." and the report)
run_one() {
    local bin="$1" name corpus log runs
    name=$(basename "$bin")
    name=${name#fuzz_}
    corpus="$scratch/$name"
    mkdir -p "$corpus"
    if [ -d "$root/tests/fuzz/corpus/$name" ]; then
        cp -R "$root/tests/fuzz/corpus/$name/." "$corpus/"
    fi
    local args=(-max_total_time="$seconds" -max_len=262144 -timeout=10 -rss_limit_mb=2048
          -artifact_prefix="$artifacts/${name}-" -print_final_stats=1)
    if [ -f "$root/tests/fuzz/$name.dict" ]; then
        args+=(-dict="$root/tests/fuzz/$name.dict")
    fi
    log="$scratch/$name.log"
    if "$bin" "${args[@]}" "$corpus" >"$log" 2>&1; then
        runs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
        echo "ok - fuzz_$name (${runs:-?} runs in ${seconds}s)" >"$scratch/$name.verdict"
    else
        { echo "not ok - fuzz_$name"
          grep -E 'ERROR|SUMMARY|Test unit written|runtime error' "$log" | head -20 | sed 's/^/#   /'; } >"$scratch/$name.verdict"
        cp "$log" "$artifacts/${name}.log"
    fi
}
running=0
for bin in "${targets[@]}"; do
    [ -x "$bin" ] && [ -f "$bin" ] || continue
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_one "$bin" &
    running=$((running + 1))
done
wait
for bin in "${targets[@]}"; do
    [ -x "$bin" ] && [ -f "$bin" ] || continue
    name=$(basename "$bin")
    v="$scratch/${name#fuzz_}.verdict"
    if [ -f "$v" ] && head -1 "$v" | grep -q '^ok - '; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        [ -f "$v" ] || echo "not ok - $name (no verdict)" >"$v"
    fi
    cat "$v"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
