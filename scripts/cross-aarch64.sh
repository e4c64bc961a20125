#!/usr/bin/env bash
# Cross-builds ascend-ptq for aarch64 Linux (what Ascend 310/310B boards run), runs PP-OCRv4 det
# on a real photo under qemu-user, and compares the output with the x86-64 build's.
# Needs (Debian): gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user, and
# `rustup target add aarch64-unknown-linux-gnu`.
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
scripts/fetch-assets.sh >/dev/null
py=$(scripts/setup-venv.sh)
cargo build --release --locked --quiet
cargo build --release --locked --quiet --target "$target"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
target/release/ascend-ptq preprocess scripts/demo-params.json --out "$work/cal" >/dev/null
model=assets/models/ch_PP-OCRv4_det_infer.onnx
args=(run --model "$model" --input_shape "x:1,3,640,640" --input "x=$work/cal/imgs_batch1/batch0001.bin")
target/release/ascend-ptq "${args[@]}" --output_dir "$work/x86" >/dev/null
qemu-aarch64 -L /usr/aarch64-linux-gnu "target/$target/release/ascend-ptq" "${args[@]}" --output_dir "$work/arm" >/dev/null
"$py" - "$work/x86/sigmoid_0.tmp_0.bin" "$work/arm/sigmoid_0.tmp_0.bin" <<'PY'
import sys
import numpy as np
a, b = (np.fromfile(p, np.float32) for p in sys.argv[1:3])
cos = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
err = float(np.abs(a - b).max())
print(f"aarch64 vs x86-64 on PP-OCRv4 det: cosine {cos:.8f}, max abs diff {err:.3g} (max |x86| {np.abs(a).max():.3g})")
sys.exit(0 if cos >= 0.99999 and err <= 1e-4 * np.abs(a).max() else 1)
PY
