#!/usr/bin/env bash
# Accuracy of `ascend-ptq calibration` beside ONNX Runtime's quantize_static on the PP-OCR
# models and the YOLO-family detectors (photos and page scans; rec/cls on text-line crops;
# split fixed in calib_accuracy.py), task metrics by our decoders (`ascend-ptq task-metrics`),
# and with --speed the calibration time and peak memory of both at 4-32 images on det and yolox. Builds the
# release binary (unless --bin is given) and runs scripts/calib_accuracy.py; all options go to
# it (see --help there):
#
#   scripts/calib-accuracy.sh [--models det,rec,cls,yolox,yolov8] [--out DIR] [--bin PATH] [--quick] [--speed] [--speed-only]
#
# Tables on stdout; numbers in DIR/accuracy.json and DIR/speed.json (default data/calib-accuracy).
set -euo pipefail
cd "$(dirname "$0")/.."
case " $* " in
    *" -h "* | *" --help "*) ;;
    *" --bin "* | *" --bin="*) ;;
    *) cargo build --release --locked --quiet ;;
esac
py=$(scripts/setup-venv.sh)
exec "$py" scripts/calib_accuracy.py "$@"
