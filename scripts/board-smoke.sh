#!/usr/bin/env bash
# For users with a real Ascend board (or PCIe card) and CANN installed: runs the whole flow
# for real on PP-OCRv4 det and the bundled photos — preprocess → calibration → aipp → ATC build
# of the int8 and fp16 OMs → compare on the NPU — and packs everything a bug report needs
# into one folder (and a .tar.gz of it).
#
#   scripts/board-smoke.sh --soc_version Ascend310B1 [--device 0] [--bin PATH] [--out DIR]
#
# The soc_version must be the one of this board: "Ascend" + the Chip Name of `npu-smi info`.
# Before running: `source /usr/local/Ascend/ascend-toolkit/set_env.sh` (or the nnrt/nnae
# equivalent) so `atc` is on PATH and libascendcl.so can be found.
# Until someone runs it on hardware, this script has only been exercised against our ACL
# simulator and stand-in ATC (tests): please attach the report folder to an issue.
set -euo pipefail
cd "$(dirname "$0")/.."

soc=""
device=0
bin=""
out="data/board-smoke"
while [ $# -gt 0 ]; do
    case "$1" in
        --soc_version) soc="$2"; shift 2 ;;
        --soc_version=*) soc="${1#*=}"; shift ;;
        --device) device="$2"; shift 2 ;;
        --device=*) device="${1#*=}"; shift ;;
        --bin) bin="$2"; shift 2 ;;
        --bin=*) bin="${1#*=}"; shift ;;
        --out) out="$2"; shift 2 ;;
        --out=*) out="${1#*=}"; shift ;;
        -h | --help) sed -n 2,13p "$0"; exit 0 ;;
        *) echo "board-smoke.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$soc" ] || { echo "board-smoke.sh: --soc_version is required (\"Ascend\" + the Chip Name that npu-smi info prints, e.g. Ascend310B1)" >&2; exit 2; }
command -v atc >/dev/null || [ -n "${ASCEND_TOOLKIT_HOME:-}" ] || {
    echo "board-smoke.sh: CANN's toolkit is not loaded: source /usr/local/Ascend/ascend-toolkit/set_env.sh first" >&2
    exit 2
}

scripts/fetch-assets.sh
if [ -z "$bin" ]; then
    cargo build --release --locked --quiet
    bin=target/release/ascend-ptq
fi
mkdir -p "$out"
log="$out/board-smoke.log"
exec > >(tee "$log") 2>&1

model=assets/models/ch_PP-OCRv4_det_infer.onnx
shape="x:1,3,640,640"
echo "== environment"
date -u
uname -a
"$bin" --version
command -v npu-smi >/dev/null && npu-smi info || echo "(npu-smi not found)"
command -v atc || true

echo "== preprocess + calibration"
"$bin" preprocess scripts/demo-params.json --out "$out/calibration"
"$bin" calibration --model "$model" --save_path "$out/quant/det" --input_shape "$shape" \
    --data_dir "$out/calibration/imgs_batch1" --data_types float32 --batch_num 13
"$bin" aipp scripts/demo-params.json --out "$out/det_aipp.cfg"

echo "== ATC build (int8 + fp16)"
"$bin" build --model "$model" --deploy "$out/quant/det_deploy_model.onnx" --input_shape "$shape" \
    --soc_version "$soc" --aipp "$out/det_aipp.cfg" --output_type FP32 --out_dir "$out/om"
"$bin" om-info "$out/om/ch_PP-OCRv4_det_infer_int8.om" --json > "$out/om/int8.om-info.json"
"$bin" om-info "$out/om/ch_PP-OCRv4_det_infer_fp16.om" --json > "$out/om/fp16.om-info.json"

echo "== compare on device $device"
"$bin" compare --int8 "$out/om/ch_PP-OCRv4_det_infer_int8.om" --fp16 "$out/om/ch_PP-OCRv4_det_infer_fp16.om" \
    --images assets/images --params scripts/demo-params.json --reference "$model" \
    --device "$device" --report "$out/compare"

tar -czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")"
echo "board-smoke.sh: report in $out/compare.html; attach $out.tar.gz to a bug report"
