#!/usr/bin/env bash
# Fuzzes every reader of outside bytes with cargo-fuzz / libFuzzer (fuzz/fuzz_targets/):
# om_reader, onnx_load, calib_config, aipp_cfg, params_json, calib_bins.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default 45 s, every target)
#
# Seeds are generated from the fixtures and assets (fuzz/make_seeds.py) into a scratch folder,
# never committed. Each target runs for the given time with a per-input timeout and memory
# caps; any crash, hang (-timeout), out-of-memory (-rss_limit_mb) or single allocation above
# -malloc_limit_mb fails the script after all targets ran. The reproducer lands in
# fuzz/artifacts/<target>/; rerun one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>
# cargo-fuzz is installed when missing (`cargo install cargo-fuzz --locked`). On a stable
# toolchain RUSTC_BOOTSTRAP=1 unlocks the sanitizer flags cargo-fuzz passes; FUZZ_SANITIZER=none
# builds without AddressSanitizer. FUZZ_BUILD=dev builds the targets unoptimized (cargo fuzz
# --dev: ~3.5 min cold on 2 cores instead of ~9, at 1/6-1/10 the executions per second; CI
# uses it); the default, release, is optimized with 16 codegen units (1 is cargo-fuzz's default:
# ~80 s more to build for little more speed). The mutation seed is fixed (FUZZ_SEED, default 1) so that a run
# of the same build explores the same inputs: CI stays reproducible, and a failure reruns. A summary table (target, seconds, executions, exec/s,
# result) is printed and, with FUZZ_SUMMARY=FILE, written there.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-45}"
shift || true
all=(om_reader onnx_load calib_config aipp_cfg params_json calib_bins)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
sanitizer="${FUZZ_SANITIZER:-address}"
case "${FUZZ_BUILD:-release}" in
    release) build_flags=(-s "$sanitizer" --release --codegen-units 16) ;;
    dev) build_flags=(-s "$sanitizer" --dev) ;;
    *) echo "fuzz.sh: FUZZ_BUILD must be release or dev, not '$FUZZ_BUILD'" >&2; exit 2 ;;
esac
start=$(date +%s)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked >&2
fi
echo "fuzz.sh: cargo-fuzz ready after $(( $(date +%s) - start )) s" >&2

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 fuzz/make_seeds.py all "$work/corpus" >&2

export RUSTC_BOOTSTRAP=1
build_start=$(date +%s)
cargo fuzz build "${build_flags[@]}" >&2
echo "fuzz.sh: targets built in $(( $(date +%s) - build_start )) s" >&2

summary="$work/summary.txt"
printf '%-14s %8s %12s %10s  %s\n' target seconds executions "exec/s" result > "$summary"
failed=()
for t in "${targets[@]}"; do
    log="$work/$t.log"
    t0=$(date +%s)
    status=0
    # -timeout: one input taking longer is a hang; -rss_limit_mb / -malloc_limit_mb: a reader
    # that allocates by a declared size instead of the bytes present is an out-of-memory.
    cargo fuzz run "${build_flags[@]}" "$t" "$work/corpus/$t" -- \
        -max_total_time="$seconds" -seed="${FUZZ_SEED:-1}" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    result=ok
    if [ "$status" -ne 0 ]; then
        result="FAILED (exit $status): $(grep -m1 -E 'ERROR: libFuzzer|panicked at|ERROR: AddressSanitizer|SUMMARY' "$log" || echo 'see log')"
        failed+=("$t")
        echo "---- fuzz.sh: $t failed; last lines of its log:" >&2
        tail -40 "$log" >&2
    fi
    printf '%-14s %8s %12s %10s  %s\n' "$t" "$(( $(date +%s) - t0 ))" "${execs:-?}" "${rate:-?}" "$result" >> "$summary"
done
cat "$summary"
[ -z "${FUZZ_SUMMARY:-}" ] || cp "$summary" "$FUZZ_SUMMARY"
echo "fuzz.sh: ${#targets[@]} targets in $(( $(date +%s) - start )) s" >&2
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: failing targets: ${failed[*]} (reproducers in fuzz/artifacts/)" >&2
    exit 1
fi
