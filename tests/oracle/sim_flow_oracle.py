"""Independent side of tests/sim_flow.rs (preprocess → calibration → build --simulate → compare).

frames IMAGES_DIR W H AIPP_CFG OUT_DIR
    For every image (sorted by name): the uint8 frame a camera pipeline feeds a static-AIPP
    model (OpenCV imread + INTER_LINEAR resize to W×H, packed HWC in OpenCV's B,G,R order) into
    OUT_DIR/frames/batchNNNN.bin, and what the AIPP unit makes of it into
    OUT_DIR/aipp_in/batchNNNN.bin (float32 CHW): the R/B swap when rbuv_swap_switch is true,
    then (px − mean_chn − min_chn) · var_reci_chn with the parameters read from AIPP_CFG,
    every step rounded to fp16 as the unit outputs fp16.

metrics REPORT_JSON OUTPUTS_DIR
    OUTPUTS_DIR/int8/<k>/ and OUTPUTS_DIR/fp16/<k>/ hold `ascend-ptq run` results of input k
    (our CPU engine: the deploy model, and the fp32 model with every op output rounded to fp16).
    Recomputes msaccucmp's metrics (docs/ascend-formats.md §13) from them with numpy and checks them against the
    int8-vs-fp16 rows of the compare report. Prints the checked values.
"""

import json
import pathlib
import re
import sys

import cv2
import numpy as np

EPS = np.finfo(float).eps


def aipp_params(cfg_text):
    fields = dict(re.findall(r"^\s*(\w+)\s*:\s*([^\s#]+)", cfg_text, re.M))
    assert fields.get("input_format") == "RGB888_U8", fields
    assert fields.get("csc_switch", "false") == "false", fields
    swap = fields.get("rbuv_swap_switch", "false") == "true"
    f16 = np.float16
    mean = [f16(float(fields.get(f"mean_chn_{c}", 0))) for c in range(3)]
    mini = [f16(float(fields.get(f"min_chn_{c}", 0))) for c in range(3)]
    var = [f16(float(fields.get(f"var_reci_chn_{c}", 1))) for c in range(3)]
    return mean, mini, var, swap


def frames(images, w, h, cfg, out):
    mean, mini, var, swap = aipp_params(pathlib.Path(cfg).read_text())
    out = pathlib.Path(out)
    (out / "frames").mkdir(parents=True, exist_ok=True)
    (out / "aipp_in").mkdir(parents=True, exist_ok=True)
    paths = sorted(p for p in pathlib.Path(images).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))
    for i, p in enumerate(paths, 1):
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        frame = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_LINEAR)
        frame.astype(np.uint8).tofile(out / "frames" / f"batch{i:04d}.bin")
        px = (frame[:, :, ::-1] if swap else frame).astype(np.float32)
        chw = np.empty((3, h, w), np.float32)
        for c in range(3):
            v = (px[:, :, c] - np.float32(mean[c])).astype(np.float16)
            v = (v.astype(np.float32) - np.float32(mini[c])).astype(np.float16)
            chw[c] = (v.astype(np.float32) * np.float32(var[c])).astype(np.float16).astype(np.float32)
        chw.tofile(out / "aipp_in" / f"batch{i:04d}.bin")
    print(len(paths))


def msaccucmp(x, y):
    x = x.astype(np.float64).ravel()
    y = y.astype(np.float64).ravel()
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    cos = 1.0 if nx < EPS and ny < EPS else min(1.0, float(np.dot(x / nx, y / ny)))
    d = np.abs(x - y)
    big = np.abs(y) > EPS
    rel = np.zeros_like(x)
    rel[big] = np.abs(x[big] / y[big] - 1.0)
    red = 0.0 if np.sqrt(np.sum(y * y)) <= EPS else float(np.sqrt(np.sum((x - y) ** 2) / np.sum(y * y)))
    return {
        "cosine_similarity": cos,
        "max_absolute_error": float(d.max()),
        "accumulated_relative_error": float(rel.sum()),
        "relative_euclidean_distance": red,
        "mean_absolute_error": float(d.mean()),
        "root_mean_square_error": float(np.sqrt(np.mean(d * d))),
        "max_relative_error": float(rel.max()),
        "mean_relative_error": float(rel.mean()),
    }


def close(a, b):
    return abs(a - b) <= 1e-9 + 1e-6 * max(abs(a), abs(b))


def metrics(report_path, outputs_dir):
    report = json.loads(pathlib.Path(report_path).read_text())
    root = pathlib.Path(outputs_dir)
    checked = 0
    for row in report["inputs"]:
        k = row["index"]
        # Both `ascend-ptq run` listings hold the model outputs in model order, as the OM does.
        files = [o["file"] for o in json.loads((root / "int8" / str(k) / "outputs.json").read_text())["outputs"]]
        assert len(files) == len(row["outputs"]), (files, row["outputs"])
        for pos, om in enumerate(row["outputs"]):
            name = om["output"]
            x = np.fromfile(root / "int8" / str(k) / files[pos], np.float32)
            y = np.fromfile(root / "fp16" / str(k) / files[pos], np.float32)
            want = msaccucmp(x, y)
            got = om["int8_vs_fp16"]
            for key, v in want.items():
                if not close(got[key], v):
                    sys.exit(f"input {k} output {name}: report {key} = {got[key]!r}, numpy on the CPU outputs = {v!r}")
            checked += 1
            print(f"input {k} output {name}: cosine {want['cosine_similarity']:.6f} max_abs {want['max_absolute_error']:.6g}")
    if checked == 0:
        sys.exit("the report has no rows")
    print(f"checked {checked} row(s)")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "frames":
        frames(args[0], int(args[1]), int(args[2]), args[3], args[4])
    elif cmd == "metrics":
        metrics(args[0], args[1])
    else:
        sys.exit(f"unknown command {cmd}")
