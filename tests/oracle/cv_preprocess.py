"""OpenCV reference for `ascend-ptq preprocess`.

    cv_preprocess.py SECTION.json OUT_DIR IMAGE...

SECTION.json is one `*_pre_params` object in plain JSON (des_width, des_height,
des_channels, fixed_scale, is_BGR2RGB, means, stds, optional pad_value/pad_mode).
For every image it writes OUT_DIR/<name>.u8 (uint8 HWC in model channel order,
before normalisation) and OUT_DIR/<name>.f32 (float32 CHW, normalised), the way
the usual calibration scripts do it: cv2.imread (IMREAD_COLOR) -> YOLO
letterbox or stretch with cv2.resize INTER_LINEAR -> BGR2GRAY or BGR->RGB ->
(img - means) / stds. Prints one line per image: name height width channels.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np


def letterbox(img: np.ndarray, width: int, height: int, pad: int, mode: str) -> np.ndarray:
    h, w = img.shape[:2]
    r = min(height / h, width / w)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    if (new_w, new_h) != (w, h):
        img = cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = width - new_w, height - new_h
    if mode == "top_left":
        top, left, bottom, right = 0, 0, dh, dw
    else:
        dw, dh = dw / 2, dh / 2
        top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
        left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad, pad, pad))


def prepare(path: str, p: dict) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"cv_preprocess: cannot read {path}")
    if p["fixed_scale"]:
        img = letterbox(img, p["des_width"], p["des_height"], p.get("pad_value", 114), p.get("pad_mode", "center"))
    else:
        img = cv2.resize(img, (p["des_width"], p["des_height"]), interpolation=cv2.INTER_LINEAR)
    if p["des_channels"] == 1:
        return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[:, :, None]
    if p["is_BGR2RGB"]:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    p = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    means = np.array(p["means"], dtype=np.float64)
    stds = np.array(p["stds"], dtype=np.float64)
    for path in sys.argv[3:]:
        img = prepare(path, p)
        name = Path(path).name
        (out / f"{name}.u8").write_bytes(np.ascontiguousarray(img).tobytes())
        norm = ((img.astype(np.float64) - means) / stds).astype(np.float32).transpose(2, 0, 1)
        (out / f"{name}.f32").write_bytes(np.ascontiguousarray(norm).tobytes())
        print(name, *img.shape)


if __name__ == "__main__":
    main()
