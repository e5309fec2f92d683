#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] [TARGET...]: coverage-guided fuzzing of the fuzz targets in fuzz/.
#
# test.sh only builds the targets as plain binaries (no coverage instrumentation: running
# them explores nothing). This script builds them the way cargo-fuzz does (SanitizerCoverage
# + AddressSanitizer, debug assertions on, so integer overflow panics too), runs each one
# for SECONDS (default 120) on its committed corpus fuzz/corpus/<target>/ (seeded
# by examples/seed_corpus.rs when empty), minimizes the corpus (libFuzzer -merge=1, what
# `cargo fuzz cmin` does), and prints per target the executions, the corpus size and
# whether it crashed. Exits non-zero on any crash; the crashing input is under
# fuzz/artifacts/<target>/.
#
# Only a stable toolchain is needed: RUSTC_BOOTSTRAP=1 unlocks the -Z flags cargo-fuzz
# passes. Runs at nice 19 with one job, so builds on the same machine go first.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-120}
shift $(($# > 0 ? 1 : 0))
FUZZ_DIR=$ROOT/fuzz
export RUSTC_BOOTSTRAP=1
# One compiler job: other builds share the 2 cores.
export CARGO_BUILD_JOBS=1
NICE=(nice -n 19)

if ! [[ $SECS =~ ^[0-9]+$ ]] || ((SECS == 0)); then
    echo "usage: $0 [SECONDS] [TARGET...]" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    "${NICE[@]}" cargo install cargo-fuzz --locked -j 1 || exit 1
fi
# A compiler probe cached without RUSTC_BOOTSTRAP would make every -Z flag fail.
rm -f "$FUZZ_DIR/target/.rustc_info.json"

cd "$ROOT" || exit 1
if (($# > 0)); then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo fuzz list --fuzz-dir fuzz)
fi

for t in "${TARGETS[@]}"; do
    if [[ -z $(ls -A "fuzz/corpus/$t" 2>/dev/null) ]]; then
        echo "== corpus/$t is empty: writing the seed corpus"
        "${NICE[@]}" cargo run -j 1 --quiet --manifest-path fuzz/Cargo.toml --example seed_corpus || exit 1
        break
    fi
done

# Inputs larger than this are not explored: endpoint_datagram needs room for several
# 1.3 KB Init records; the parsers' largest valid message is an Init.
max_len() {
    case $1 in
    endpoint_datagram) echo 8192 ;;
    etsi014_json | skip_json) echo 4096 ;;
    *) echo 2048 ;;
    esac
}

corpus_size() {
    local n bytes
    n=$(find "fuzz/corpus/$1" -type f | wc -l)
    bytes=$(du -sb "fuzz/corpus/$1" | cut -f1)
    echo "$n files, $((bytes / 1024)) KiB"
}

# Build every target once, then run the binaries: `cargo fuzz run` would rebuild (or fail)
# mid-campaign whenever keymix's or qkd's sources change under it.
BIN=fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release
failed=0
summary=()
built=()
for t in "${TARGETS[@]}"; do
    echo "== $t: building (instrumented)"
    if "${NICE[@]}" cargo fuzz build --fuzz-dir fuzz --debug-assertions "$t"; then
        built+=("$t")
    else
        summary+=("$(printf '%-18s BUILD FAILED' "$t")")
        failed=1
    fi
done

for t in "${built[@]}"; do
    log=$(mktemp)
    mkdir -p "fuzz/artifacts/$t" "fuzz/corpus/$t"
    before=$(ls "fuzz/artifacts/$t" | wc -l)
    echo "== $t: fuzzing ${SECS}s (log $log)"
    start=$(date +%s)
    "${NICE[@]}" "$BIN/$t" -artifact_prefix="fuzz/artifacts/$t/" \
        -max_total_time="$SECS" -max_len="$(max_len "$t")" -timeout=30 \
        -print_final_stats=1 "fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    after=$(ls "fuzz/artifacts/$t" | wc -l)
    if ((rc != 0 || after > before)); then
        result="CRASH (rc $rc): fuzz/artifacts/$t/$(ls -t "fuzz/artifacts/$t" | head -1)"
        grep -m1 -E "panicked|ERROR: (libFuzzer|AddressSanitizer)" "$log"
        failed=1
    else
        result="no crash"
        # What `cargo fuzz cmin` does: keep only inputs that add coverage, so the committed
        # corpus stays small.
        min=$(mktemp -d)
        if "${NICE[@]}" "$BIN/$t" -merge=1 -max_len="$(max_len "$t")" "$min" "fuzz/corpus/$t" >>"$log" 2>&1; then
            rm -rf "fuzz/corpus/$t" && mv "$min" "fuzz/corpus/$t"
        else
            echo "   (corpus minimization failed, see $log)"
            rm -rf "$min"
        fi
    fi
    summary+=("$(printf '%-18s %12s execs in %4ss  corpus %-22s %s' "$t" "${execs:-?}" "$took" "$(corpus_size "$t")," "$result")")
done

echo "== summary (${SECS}s per target; cargo fuzz build --debug-assertions: ASan + SanitizerCoverage)"
printf '%s\n' "${summary[@]}"
exit $failed
