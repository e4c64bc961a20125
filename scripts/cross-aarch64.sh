#!/usr/bin/env bash
# Cross-builds ascend-ptq for aarch64 Linux (what Ascend 310/310B boards run), runs PP-OCRv4 det
# on a real photo under qemu-user, and compares the output with the x86-64 build's; then runs
# the int8 deploy model of a one-image calibration twice under qemu, on a CPU with the Arm
# dot-product extension (SDOT kernels) and on one without (portable kernels): the integer
# layers' sums are exact, so both outputs must be bit-identical.
#
#   scripts/cross-aarch64.sh [--x86-bin PATH]
#
# The aarch64 build is scripts/build-release.sh's (the CLI, the cdylib and the simulator that
# scripts/install.sh and scripts/release.sh install; a no-op after them). The x86-64 reference is
# PATH (CI passes the debug binary scripts/test.sh built), else a release build.
# scripts/setup-cross.sh installs the prerequisites (cross gcc, qemu-user, the rustup target).
set -euo pipefail
cd "$(dirname "$0")/.."
x86=""
while [ $# -gt 0 ]; do
    case "$1" in
        --x86-bin) x86="${2:?cross-aarch64.sh: --x86-bin needs the path of an x86-64 ascend-ptq}"; shift 2 ;;
        --x86-bin=*) x86="${1#*=}"; shift ;;
        -h | --help) sed -n 2,10p "$0"; exit 0 ;;
        *) echo "cross-aarch64.sh: unknown argument '$1' (expected --x86-bin PATH)" >&2; exit 2 ;;
    esac
done
target=aarch64-unknown-linux-gnu
scripts/setup-cross.sh
scripts/fetch-assets.sh >/dev/null
py=$(scripts/setup-venv.sh)
if [ -z "$x86" ]; then
    cargo build --release --locked --quiet
    x86=target/release/ascend-ptq
fi
[ -x "$x86" ] || { echo "cross-aarch64.sh: --x86-bin $x86 is not an executable" >&2; exit 1; }
scripts/build-release.sh --target "$target"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$x86" preprocess scripts/demo-params.json --out "$work/cal" >/dev/null
model=assets/models/ch_PP-OCRv4_det_infer.onnx
args=(run --model "$model" --input_shape "x:1,3,640,640" --input "x=$work/cal/imgs_batch1/batch0001.bin")
"$x86" "${args[@]}" --output_dir "$work/x86" >/dev/null
start=$(date +%s)
qemu-aarch64 -L /usr/aarch64-linux-gnu "target/$target/release/ascend-ptq" "${args[@]}" --output_dir "$work/arm" >/dev/null
echo "cross-aarch64.sh: PP-OCRv4 det 640² under qemu-aarch64 in $(( $(date +%s) - start )) s"
"$py" - "$work/x86/sigmoid_0.tmp_0.bin" "$work/arm/sigmoid_0.tmp_0.bin" <<'PY'
import sys
import numpy as np
a, b = (np.fromfile(p, np.float32) for p in sys.argv[1:3])
cos = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
err = float(np.abs(a - b).max())
print(f"aarch64 vs x86-64 on PP-OCRv4 det: cosine {cos:.8f}, max abs diff {err:.3g} (max |x86| {np.abs(a).max():.3g})")
sys.exit(0 if cos >= 0.99999 and err <= 1e-4 * np.abs(a).max() else 1)
PY
# The int8 layers (issue 19): SDOT (qemu's "max" CPU has FEAT_DotProd) against the portable
# kernels (a Cortex-A53 has no dot product); every other op runs the same code on both.
"$x86" calibration --model "$model" --save_path "$work/q/det" --input_shape "x:1,3,640,640" \
    --data_dir "$work/cal/imgs_batch1" --data_types float32 --batch_num 1 >/dev/null
qargs=(run --model "$work/q/det_deploy_model.onnx" --input_shape "x:1,3,640,640" --input "x=$work/cal/imgs_batch1/batch0001.bin")
start=$(date +%s)
for cpu in max cortex-a53; do
    QEMU_CPU=$cpu qemu-aarch64 -L /usr/aarch64-linux-gnu "target/$target/release/ascend-ptq" "${qargs[@]}" --output_dir "$work/arm-int8-$cpu" >/dev/null
done
echo "cross-aarch64.sh: PP-OCRv4 det int8 deploy model under qemu-aarch64 (SDOT and portable) in $(( $(date +%s) - start )) s"
cmp "$work/arm-int8-max/sigmoid_0.tmp_0.bin" "$work/arm-int8-cortex-a53/sigmoid_0.tmp_0.bin" ||
    { echo "cross-aarch64.sh: the int8 deploy model's output differs between SDOT and the portable kernels" >&2; exit 1; }
echo "cross-aarch64.sh: int8 deploy model: SDOT and portable kernels bit-identical"
