#!/usr/bin/env bash
# Times our engine and ONNX Runtime on the same model, input shape and thread count, in the
# same run, and prints the ratio (ours / ORT; below 1 means we are faster).
#
#   scripts/bench-vs-ort.sh [MODEL] [NAME:SHAPE] [THREADS...]
# Defaults: PP-OCRv4 det at x:1,3,640,640, threads 1 and 2.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-assets.sh >/dev/null
py=$(scripts/setup-venv.sh)
model=${1:-assets/models/ch_PP-OCRv4_det_infer.onnx}
shape=${2:-x:1,3,640,640}
shift $(( $# > 2 ? 2 : $# )) || true
threads=("$@")
[ ${#threads[@]} -gt 0 ] || threads=(1 2)
runs=${RUNS:-10}
cargo build --release --locked --quiet
printf '%-8s %12s %12s %8s\n' threads ours_ms ort_ms ratio
for t in "${threads[@]}"; do
    ours=$(target/release/ascend-ptq bench --model "$model" --input_shape "$shape" --threads "$t" --runs "$runs" --json)
    ort=$("$py" tests/oracle/ort_bench.py "$model" "$shape" --threads "$t" --runs "$runs")
    "$py" - "$t" "$ours" "$ort" <<'PY'
import json, sys
t, ours, ort = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"{t:<8} {ours['median_ms']:12.2f} {ort['median_ms']:12.2f} {ours['median_ms'] / ort['median_ms']:8.2f}")
PY
done
