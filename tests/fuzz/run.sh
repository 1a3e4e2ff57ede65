#!/bin/sh
# Runs one fuzz target: replays its regression inputs (tests/fuzz/regressions/TARGET), then
# fuzzes for SECONDS on a copy of its seed corpus kept in build/fuzz/corpus/TARGET (so runs
# build on each other but never grow the committed corpus). Crashes go to
# build/fuzz/crashes/TARGET/, the full libFuzzer log to build/fuzz/logs/TARGET.log.
# Prints one line: `fuzz TARGET: EXECS execs, CRASHES crashes, SECONDS s`; exits 1 when a
# regression fails again or the run found a crash, leak, timeout or out-of-memory.
# Usage: tests/fuzz/run.sh TARGET SECONDS   (from the repository root, after `make fuzz-build`)
set -u
target=${1:?usage: run.sh TARGET SECONDS}
seconds=${2:?usage: run.sh TARGET SECONDS}
bin=build/fuzz/fuzz_$target
seeds=tests/fuzz/corpus/$target
regressions=tests/fuzz/regressions/$target
corpus=build/fuzz/corpus/$target
crashes=build/fuzz/crashes/$target
log=build/fuzz/logs/$target.log

[ -x "$bin" ] || { echo "fuzz $target: $bin is missing (make fuzz-build)" >&2; exit 1; }
mkdir -p "$corpus" "$crashes" build/fuzz/logs
[ -d "$seeds" ] && cp -R "$seeds/." "$corpus/"

# Options for every run: a slow input is a bug (10 s), so is memory beyond 2 GiB.
opts="-timeout=10 -rss_limit_mb=2048 -print_final_stats=1"
[ -f "tests/fuzz/$target.dict" ] && opts="$opts -dict=tests/fuzz/$target.dict"
[ -f "tests/fuzz/$target.options" ] && opts="$opts $(cat "tests/fuzz/$target.options")"

status=0
: >"$log"
if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions" 2>/dev/null)" ]; then
    # Given files, libFuzzer runs each once and exits non-zero on the first failure.
    if ! "$bin" $opts "$regressions"/* >>"$log" 2>&1; then
        echo "fuzz $target: a regression input fails again (see $log)" >&2
        status=1
    fi
fi

before=$(ls "$crashes" | wc -l)
start=$(date +%s)
# shellcheck disable=SC2086
"$bin" $opts -max_total_time="$seconds" -artifact_prefix="$crashes/" "$corpus" >>"$log" 2>&1 || status=1
elapsed=$(($(date +%s) - start))
after=$(ls "$crashes" | wc -l)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
echo "fuzz $target: ${execs:-0} execs, $((after - before)) crashes, $elapsed s"
if [ "$status" -ne 0 ]; then
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz check failed|artifact_prefix|Test unit written)' "$log" | head -n 12 >&2
fi
exit "$status"
