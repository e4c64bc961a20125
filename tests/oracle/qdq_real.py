"""ONNX Runtime `quantize_static` QDQ models of the real asset models, for `ascend-ptq convert`
(docs/ascend-formats.md §15.4), made the way scripts/calib_accuracy.py makes its ORT baseline
(its prepare_ort_model: opset 13, input shape fixed, quant_pre_process), with the settings that
give the QDQ layout amct_onnx convert accepts: QDQ on the inputs of the listed op types only
(OpTypesToExcludeOutputQuantization), two-input MatMuls excluded.

usage: qdq_real.py KEY OUTDIR      KEY: det | rec | cls | yolox | yolov8

Calibrates on four photos of assets/images (det: and a page) and writes OUTDIR/KEY_qdq.onnx
and OUTDIR/KEY_input.bin (a held-out photo, det: a held-out page, preprocessed as the model
expects); prints a JSON
line with the paths, the input name and shape, and the settings.
"""
import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import calib_accuracy  # noqa: E402  (the ORT baseline's model preparation)

# Under assets/. The text detector calibrates on a page too and is checked on another page (on
# photos without text its map is empty: nothing to compare).
CALIB = ("images/astronaut.png", "images/chelsea.png", "images/page.png", "images/motorcycle_left.png")
HELD_OUT = {"det": "text/typewriter.png"}
DET_CALIB = ("text/linn.png",)

# key: (shape, per_channel, activation type, symmetric activations, op types, normalization)
SETTINGS = {
    "det": ((1, 3, 256, 256), True, QuantType.QInt8, False, ["Conv", "ConvTranspose", "Add"], "imagenet"),
    "rec": ((1, 3, 48, 320), False, QuantType.QInt8, True, ["Conv", "MatMul", "Gemm"], "half"),
    "cls": ((1, 3, 48, 192), False, QuantType.QUInt8, False, ["Conv", "MatMul", "Gemm"], "half"),
    "yolox": ((1, 3, 416, 416), True, QuantType.QUInt8, False, ["Conv"], "raw255"),
    "yolov8": ((1, 3, 1024, 1024), True, QuantType.QInt8, True, ["Conv", "Add"], "unit"),
}


def preprocess(photo: str, shape, norm: str) -> np.ndarray:
    img = cv2.imread(str(REPO / "assets" / photo), cv2.IMREAD_COLOR)
    img = cv2.resize(img, (shape[3], shape[2]), interpolation=cv2.INTER_LINEAR)[:, :, ::-1].astype(np.float32)
    if norm == "imagenet":
        img = (img / 255.0 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    elif norm == "half":
        img = (img / 255.0 - 0.5) / 0.5
    elif norm == "unit":
        img = img / 255.0
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None].astype(np.float32))


class Reader:
    def __init__(self, name, arrays):
        self.name, self.arrays, self.i = name, arrays, 0

    def get_next(self):
        if self.i >= len(self.arrays):
            return None
        self.i += 1
        return {self.name: self.arrays[self.i - 1]}

    def rewind(self):
        self.i = 0


def two_input_matmuls(model: onnx.ModelProto) -> list[str]:
    consts = {t.name for t in model.graph.initializer} | {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] not in consts]


def main() -> None:
    key, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    shape, per_channel, act_type, symmetric, op_types, norm = SETTINGS[key]
    spec = dataclasses.replace(calib_accuracy.MODELS[key], shape=shape)
    prepared = calib_accuracy.prepare_ort_model(spec, out / f"{key}_prepared.onnx")
    excluded = two_input_matmuls(onnx.load(str(prepared)))
    qdq_path = out / f"{key}_qdq.onnx"
    quantize_static(
        str(prepared),
        str(qdq_path),
        Reader(spec.input_name, [preprocess(p, shape, norm) for p in CALIB + (DET_CALIB if key == "det" else ())]),
        quant_format=QuantFormat.QDQ,
        per_channel=per_channel,
        activation_type=act_type,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        op_types_to_quantize=op_types,
        nodes_to_exclude=excluded,
        extra_options={"ActivationSymmetric": symmetric, "OpTypesToExcludeOutputQuantization": op_types},
    )
    x = preprocess(HELD_OUT.get(key, "images/coffee.png"), shape, norm)
    x.tofile(out / f"{key}_input.bin")
    print(json.dumps({
        "model": str(qdq_path),
        "input": str(out / f"{key}_input.bin"),
        "input_name": spec.input_name,
        "input_shape": f"{spec.input_name}:{','.join(map(str, shape))}",
        "per_channel": per_channel,
        "activation_type": "uint8" if act_type == QuantType.QUInt8 else "int8",
        "symmetric_activations": symmetric,
        "op_types": op_types,
        "excluded_two_input_matmuls": len(excluded),
    }))


if __name__ == "__main__":
    main()
