#!/usr/bin/env bash
# Times our engine and ONNX Runtime on the same model, input shape and thread count, in the
# same run, and prints a table with the ratio (ours / ORT; below 1 means we are faster).
#
#   scripts/bench-vs-ort.sh                          every model of the asset set, threads 1 and 2
#   scripts/bench-vs-ort.sh det,yolov8 [THREADS...]  some of them (keys below)
#   scripts/bench-vs-ort.sh MODEL.onnx NAME:SHAPE [THREADS...]
# RUNS (default 10) timed runs after 2 warm-up runs each, in ROUNDS (default 1) alternating
# rounds of RUNS/ROUNDS runs per engine; printed: the median of the round medians and the
# fastest run of each engine, with both ratios. On a shared machine whose load comes in bursts,
# several rounds put both engines in the same bursts; the fastest runs are those the load
# touched least.
# ASCEND_PTQ_BIN times another build of ours (default: target/release/ascend-ptq, rebuilt).
# Shapes are those of scripts/calib_accuracy.py (each model's own preprocessing).
# The two engines run alternately per (model, threads) pair, so a load change on a shared
# machine hits both sides of a ratio about equally; check `uptime` all the same.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/fetch-assets.sh >/dev/null
py=$(scripts/setup-venv.sh)
m=assets/models
declare -A file=(
    [det]=$m/ch_PP-OCRv4_det_infer.onnx [rec]=$m/ch_PP-OCRv4_rec_infer.onnx [cls]=$m/ch_ppocr_mobile_v2.0_cls_infer.onnx
    [yolox]=$m/ddddocr_common_det.onnx [yolov8]=$m/yolov8n-doclaynet.onnx [picodet]=$m/layout_cdla.onnx [centerface]=$m/centerface.onnx
)
declare -A shape=(
    [det]=x:1,3,640,640 [rec]=x:1,3,48,320 [cls]=x:1,3,48,192
    [yolox]=images:1,3,416,416 [yolov8]=images:1,3,1024,1024 [picodet]=image:1,3,800,608 [centerface]=input.1:1,3,512,512
)
order=(det rec cls yolox yolov8 picodet centerface)
jobs=()
if [ $# -ge 2 ] && [[ $1 == *.onnx ]]; then
    file[custom]=$1 shape[custom]=$2 jobs=(custom)
    shift 2
elif [ $# -ge 1 ] && [[ $1 != [0-9]* ]]; then
    IFS=, read -ra jobs <<<"$1"
    shift
else
    jobs=("${order[@]}")
fi
for k in "${jobs[@]}"; do
    [ -n "${file[$k]:-}" ] || { echo "bench-vs-ort: unknown model key '$k' (one of ${order[*]})" >&2; exit 2; }
done
threads=("$@")
[ ${#threads[@]} -gt 0 ] || threads=(1 2)
runs=${RUNS:-10}
rounds=${ROUNDS:-1}
per_round=$(( (runs + rounds - 1) / rounds ))
bin=${ASCEND_PTQ_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --locked --quiet
    bin=target/release/ascend-ptq
fi
echo "machine: $(nproc) cores, $(uptime | sed 's/.*load/load/')"
echo "runs: $((per_round * rounds)) per engine and row, in $rounds alternating round(s)"
printf '| %-10s | %-22s | %7s | %10s | %10s | %6s | %8s | %8s | %9s |\n' model shape threads ours_ms ort_ms ratio ours_min ort_min min_ratio
printf '|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n' ------------ ------------------------ --------- ------------ ------------ -------- ---------- ---------- -----------
for k in "${jobs[@]}"; do
    for t in "${threads[@]}"; do
        results=()
        for ((r = 0; r < rounds; r++)); do
            results+=("$("$bin" bench --model "${file[$k]}" --input_shape "${shape[$k]}" --threads "$t" --runs "$per_round" --json)")
            results+=("$("$py" tests/oracle/ort_bench.py "${file[$k]}" "${shape[$k]}" --threads "$t" --runs "$per_round")")
        done
        "$py" - "$k" "${shape[$k]#*:}" "$t" "${results[@]}" <<'PY'
import json, statistics, sys
k, s, t = sys.argv[1:4]
runs = [json.loads(a) for a in sys.argv[4:]]
ours, ort = runs[0::2], runs[1::2]
med = lambda rs: statistics.median(r["median_ms"] for r in rs)
low = lambda rs: min(r["min_ms"] for r in rs)
mo, mr, lo, lr = med(ours), med(ort), low(ours), low(ort)
print(f"| {k:<10} | {s:<22} | {t:>7} | {mo:10.2f} | {mr:10.2f} | {mo / mr:6.2f} | {lo:8.2f} | {lr:8.2f} | {lo / lr:9.2f} |")
PY
    done
done
