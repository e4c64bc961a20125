#!/usr/bin/env bash
# Fuzzes the OM reader (`om_info_from_bytes`) with cargo-fuzz / libFuzzer.
# Usage: scripts/fuzz-om.sh [SECONDS] [extra libFuzzer args...]   (default 900 s)
# Needs `cargo install cargo-fuzz`. On a stable toolchain RUSTC_BOOTSTRAP=1 unlocks the
# nightly-only sanitizer flags; set FUZZ_SANITIZER=none if AddressSanitizer is unavailable.
# Crashes land in fuzz/artifacts/om_reader/; reproduce with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run om_reader fuzz/artifacts/om_reader/<file>
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-900}"
shift || true
sanitizer="${FUZZ_SANITIZER:-address}"
corpus=fuzz/corpus/om_reader
# Seeds are generated (fuzz/make_seeds.py), not committed; the corpus folder is git-ignored.
if [ -z "$(ls -A "$corpus" 2>/dev/null)" ]; then
    python3 fuzz/make_seeds.py "$corpus"
fi
# Work on a scratch copy so new inputs found by the run do not pile up in the repository.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$corpus"/* "$work"/
RUSTC_BOOTSTRAP=1 cargo fuzz run -s "$sanitizer" om_reader "$work" -- -max_total_time="$seconds" -print_final_stats=1 "$@"
