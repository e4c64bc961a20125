"""The reference `preprocess_data.py` (../shared/seed/scripts/, not ours: imported, never
copied) for the cases its command line cannot give.

    reference_variants.py pad VALUE SCRIPT SECTION.json OUT_DIR IMAGE...
        The script's own colour pipeline (prepare_image_input) with its letterbox padding
        VALUE instead of black: what `pad_value: VALUE` must give.
    reference_variants.py gray SCRIPT SECTION.json OUT_DIR IMAGE...
        Our definition of grey, which the script cannot do (its imread returns three
        channels): cv2.cvtColor(cv2.imread(path), COLOR_BGR2GRAY) -> float32 -> the script's
        letterbox / cv2.resize -> (x - mean) / std in float32.

SECTION.json is a `detPreParams` object (camelCase keys, scales = 1/std). Writes
OUT_DIR/<name>.f32 (float32 CHW) per image and prints one name per line.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np


def load_reference(script: str):
    spec = importlib.util.spec_from_file_location("preprocess_data", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def padded(ref, value: int, p: dict, images: list[str]) -> list[np.ndarray]:
    # prepare_image_input_color calls the module's `letterbox` without a colour.
    ref.letterbox = functools.partial(ref.letterbox, color=(value, value, value))
    stds = [1.0 / s for s in p["scales"]]
    out = ref.prepare_image_input(
        images, p["isFixResize"], 3, p["netInputHeight"], p["netInputWidth"], p["isBGR2RGB"], p["means"], stds
    )
    return list(out)


def gray(ref, p: dict, images: list[str]) -> list[np.ndarray]:
    h, w = p["netInputHeight"], p["netInputWidth"]
    mean, std = p["means"][0], 1.0 / p["scales"][0]
    result = []
    for path in images:
        im = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2GRAY).astype(np.float32)
        im = ref.letterbox(im, (h, w)) if p["isFixResize"] else cv2.resize(im, (w, h))
        result.append(((im - mean) / std)[None].astype(np.float32))
    return result


def main() -> None:
    args = sys.argv[1:]
    if len(args) < 5:
        raise SystemExit(__doc__)
    mode = args.pop(0)
    value = int(args.pop(0)) if mode == "pad" else None
    script, section, out = args[0], json.loads(Path(args[1]).read_text()), Path(args[2])
    images = args[3:]
    ref = load_reference(script)
    tensors = padded(ref, value, section, images) if mode == "pad" else gray(ref, section, images)
    out.mkdir(parents=True, exist_ok=True)
    for path, t in zip(images, tensors):
        name = Path(path).name
        np.ascontiguousarray(t, dtype=np.float32).tofile(out / f"{name}.f32")
        print(name)


if __name__ == "__main__":
    main()
