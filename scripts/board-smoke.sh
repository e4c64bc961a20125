#!/usr/bin/env bash
# For users with a real Ascend board (or PCIe card) and CANN installed: runs the whole flow
# for real on PP-OCRv4 det and photos — preprocess → calibration → aipp → ATC build of the
# int8 and fp16 OMs → compare on the NPU — and packs everything a bug report needs into one
# folder (and a .tar.gz of it).
#
#   board-smoke.sh --soc_version Ascend310B1 [--device 0] [--assets DIR] [--out DIR] [--bin PATH]
#   board-smoke.sh --simulate [--model det|cls] [--assets DIR] [--out DIR] [--bin PATH]
#
# Runs from a release bundle (bin/board-smoke.sh: the bundle's bin/ascend-ptq, no cargo, no
# Python, no internet) or from the repository (scripts/board-smoke.sh: fetches the assets and
# builds first). --assets DIR holds models/ch_PP-OCRv4_det_infer.onnx (and
# models/ch_ppocr_mobile_v2.0_cls_infer.onnx for --model cls) and images/ with photos; the
# default is the bundle's share/ascend_ptq/assets (when the bundle was packed with assets) or
# the repository's assets/. Copy an assets folder from a host that ran scripts/fetch-assets.sh
# to a board without internet.
# The soc_version must be the one of this board: "Ascend" + the Chip Name of `npu-smi info`.
# Before running: `source /usr/local/Ascend/ascend-toolkit/set_env.sh` (or the nnrt/nnae
# equivalent) so `atc` is on PATH and libascendcl.so can be found.
# --simulate needs no CANN: simulated OMs compared through the bundled ACL simulator on the
# CPU — it checks the bundle works on this machine and is never a hardware result.
# Until someone runs it on hardware, the real path has only been exercised against our ACL
# simulator and stand-in ATC (tests): please attach the report folder to an issue.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

soc=""
device=0
bin=""
out="board-smoke"
assets=""
simulate=0
which=det
while [ $# -gt 0 ]; do
    case "$1" in
        --soc_version) soc="${2:?board-smoke.sh: --soc_version needs a value}"; shift 2 ;;
        --soc_version=*) soc="${1#*=}"; shift ;;
        --device) device="${2:?board-smoke.sh: --device needs a number}"; shift 2 ;;
        --device=*) device="${1#*=}"; shift ;;
        --bin) bin="${2:?board-smoke.sh: --bin needs a path}"; shift 2 ;;
        --bin=*) bin="${1#*=}"; shift ;;
        --out) out="${2:?board-smoke.sh: --out needs a directory}"; shift 2 ;;
        --out=*) out="${1#*=}"; shift ;;
        --assets) assets="${2:?board-smoke.sh: --assets needs a directory}"; shift 2 ;;
        --assets=*) assets="${1#*=}"; shift ;;
        --model) which="${2:?board-smoke.sh: --model needs det or cls}"; shift 2 ;;
        --model=*) which="${1#*=}"; shift ;;
        --simulate) simulate=1; shift ;;
        -h | --help) sed -n 2,23p "$0"; exit 0 ;;
        *) echo "board-smoke.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

# Where we run from: an unpacked bundle (bin/ next to share/ascend_ptq/) or the repository.
if [ -f "$here/../share/ascend_ptq/board-smoke-params.json" ]; then
    prefix=$(cd "$here/.." && pwd)
    params_src="$prefix/share/ascend_ptq/board-smoke-params.json"
    sim_lib="$prefix/lib/ascend_ptq/libascendcl_sim.so"
    [ -n "$bin" ] || bin="$prefix/bin/ascend-ptq"
    [ -n "$assets" ] || assets="$prefix/share/ascend_ptq/assets"
else
    repo=$(cd "$here/.." && pwd)
    params_src="$repo/scripts/calib-params.json"
    sim_lib="$repo/target/release/libascendcl_sim.so"
    if [ -z "$assets" ]; then
        "$repo/scripts/fetch-assets.sh"
        assets="$repo/assets"
    fi
    if [ -z "$bin" ]; then
        (cd "$repo" && cargo build --release --locked --quiet -p ascend-ptq -p ascend-acl-sim)
        bin="$repo/target/release/ascend-ptq"
    fi
fi

case "$which" in
    det) model_file=ch_PP-OCRv4_det_infer.onnx; shape="x:1,3,640,640"; section=det_pre_params; task=db; batches=13 ;;
    cls) model_file=ch_ppocr_mobile_v2.0_cls_infer.onnx; shape="x:1,3,48,192"; section=cls_pre_params; task=cls; batches=8 ;;
    *) echo "board-smoke.sh: --model '$which': expected det or cls" >&2; exit 2 ;;
esac
assets=$(cd "$assets" 2>/dev/null && pwd) || { echo "board-smoke.sh: --assets: folder '$assets' does not exist (copy one made by scripts/fetch-assets.sh, or pass --assets DIR)" >&2; exit 2; }
model="$assets/models/$model_file"
[ -f "$model" ] || { echo "board-smoke.sh: $model is missing (--assets DIR must hold models/$model_file)" >&2; exit 2; }
compgen -G "$assets/images/*" > /dev/null || { echo "board-smoke.sh: $assets/images holds no photos" >&2; exit 2; }
[ -x "$bin" ] || { echo "board-smoke.sh: --bin: $bin is not an executable" >&2; exit 2; }
if [ "$simulate" = 1 ]; then
    [ -z "$soc" ] || { echo "board-smoke.sh: give --soc_version or --simulate, not both" >&2; exit 2; }
    [ -f "$sim_lib" ] || { echo "board-smoke.sh: the ACL simulator $sim_lib is missing" >&2; exit 2; }
    soc=Ascend310P3
else
    [ -n "$soc" ] || { echo "board-smoke.sh: --soc_version is required (\"Ascend\" + the Chip Name that npu-smi info prints, e.g. Ascend310B1), or --simulate" >&2; exit 2; }
    command -v atc >/dev/null || [ -n "${ASCEND_TOOLKIT_HOME:-}" ] || {
        echo "board-smoke.sh: CANN's toolkit is not loaded: source /usr/local/Ascend/ascend-toolkit/set_env.sh first (or run --simulate)" >&2
        exit 2
    }
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
log="$out/board-smoke.log"
exec > >(tee "$log") 2>&1

# The preprocessing parameters with img_root pointing at the assets' photos (kept in the report).
params="$out/params.json"
sed "s#\"img_root\": *\"[^\"]*\"#\"img_root\": \"$assets/images\"#" "$params_src" > "$params"
stem="${model_file%.onnx}"
echo "== environment"
date -u
uname -a
"$bin" --version
if [ "$simulate" = 1 ]; then
    echo "SIMULATED: OMs built with build --simulate and run by the ACL simulator on the CPU (not an NPU result)"
else
    command -v npu-smi >/dev/null && npu-smi info || echo "(npu-smi not found)"
    command -v atc || true
fi

echo "== preprocess + calibration ($which)"
"$bin" preprocess "$params" --section "$section" --out "$out/calibration"
"$bin" calibration --model "$model" --save_path "$out/quant/$which" --input_shape "$shape" \
    --data_dir "$out/calibration/imgs_batch1" --data_types float32 --batch_num "$batches"
"$bin" aipp "$params" --section "$section" --out "$out/${which}_aipp.cfg"

echo "== ATC build (int8 + fp16)"
build_args=(--model "$model" --deploy "$out/quant/${which}_deploy_model.onnx" --input_shape "$shape"
    --soc_version "$soc" --aipp "$out/${which}_aipp.cfg" --output_type FP32 --out_dir "$out/om")
if [ "$simulate" = 1 ]; then build_args+=(--simulate); fi
"$bin" build "${build_args[@]}"
"$bin" om-info "$out/om/${stem}_int8.om" --json > "$out/om/int8.om-info.json"
"$bin" om-info "$out/om/${stem}_fp16.om" --json > "$out/om/fp16.om-info.json"

echo "== compare on device $device"
compare_args=(--int8 "$out/om/${stem}_int8.om" --fp16 "$out/om/${stem}_fp16.om" --images "$assets/images" --params "$params"
    --section "$section" --reference "$model" --task "$task" --device "$device" --report "$out/compare")
if [ "$simulate" = 1 ]; then compare_args+=(--acl-lib "$sim_lib"); fi
status=0
"$bin" compare "${compare_args[@]}" || status=$?
# 3 is a failing verdict: still a finished run worth reporting.
[ "$status" = 0 ] || [ "$status" = 3 ] || exit "$status"

tar -czf "$out.tar.gz" -C "$(dirname "$out")" "$(basename "$out")"
echo "board-smoke.sh: report in $out/compare.html; attach $out.tar.gz to a bug report"
