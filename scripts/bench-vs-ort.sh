#!/usr/bin/env bash
# Times our engine and ONNX Runtime on the same model, input shape and thread count, in the
# same run, and prints a table with the ratio (ours / ORT; below 1 means we are faster).
#
#   scripts/bench-vs-ort.sh                          every model of the asset set, threads 1 and 2
#   scripts/bench-vs-ort.sh det,yolov8 [THREADS...]  some of them (keys below)
#   scripts/bench-vs-ort.sh MODEL.onnx NAME:SHAPE [THREADS...]
# RUNS (default 10) timed runs after 2 warm-up runs each; the medians are printed.
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
bin=${ASCEND_PTQ_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --locked --quiet
    bin=target/release/ascend-ptq
fi
echo "machine: $(nproc) cores, $(uptime | sed 's/.*load/load/')"
printf '| %-10s | %-22s | %7s | %10s | %10s | %6s |\n' model shape threads ours_ms ort_ms ratio
printf '|%s|%s|%s|%s|%s|%s|\n' ------------ ------------------------ --------- ------------ ------------ --------
for k in "${jobs[@]}"; do
    for t in "${threads[@]}"; do
        ours=$("$bin" bench --model "${file[$k]}" --input_shape "${shape[$k]}" --threads "$t" --runs "$runs" --json)
        ort=$("$py" tests/oracle/ort_bench.py "${file[$k]}" "${shape[$k]}" --threads "$t" --runs "$runs")
        "$py" - "$k" "${shape[$k]#*:}" "$t" "$ours" "$ort" <<'PY'
import json, sys
k, s, t, ours, ort = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
r = ours["median_ms"] / ort["median_ms"]
print(f"| {k:<10} | {s:<22} | {t:>7} | {ours['median_ms']:10.2f} | {ort['median_ms']:10.2f} | {r:6.2f} |")
PY
    done
done
