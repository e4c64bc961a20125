"""Reference inputs and outputs from ONNX Runtime on real photos.

    python tests/oracle/ort_reference.py --model M --shape 1,3,H,W --images DIR --out OUT [--max-images N]

For each of the first N photos (sorted by name) writes OUT/input_<k>.bin (float32 NCHW,
bilinear resize, (x/255 - 0.5)/0.5), OUT/output_<k>_<j>.bin (raw little-endian outputs of
ORT's CPU provider, 1 thread) and OUT/reference.json describing them.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--shape", required=True, help="N,C,H,W of the image input")
    ap.add_argument("--images", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-images", type=int, default=2)
    ap.add_argument("--pick", help="comma-separated image file names to use instead of the first N")
    args = ap.parse_args()
    n, c, h, w = (int(v) for v in args.shape.split(","))
    session = common.ort_session(args.model)
    inp = session.get_inputs()[0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ref = {"input": inp.name, "shape": [n, c, h, w], "cases": []}
    images = common.list_images(args.images)
    if args.pick:
        wanted = args.pick.split(",")
        images = [p for p in images if p.name in wanted]
        if len(images) != len(wanted):
            common.die(f"--pick: not all of {wanted} are in {args.images}")
    else:
        images = images[: args.max_images]
    for k, image in enumerate(images):
        x = np.concatenate([common.image_to_nchw(image, h, w, c)] * n, axis=0)
        x.astype("<f4").tofile(out / f"input_{k}.bin")
        outputs = session.run(None, {inp.name: x})
        case = {"image": image.name, "outputs": []}
        for j, (meta, value) in enumerate(zip(session.get_outputs(), outputs)):
            value = np.ascontiguousarray(value)
            value.astype(value.dtype.newbyteorder("<")).tofile(out / f"output_{k}_{j}.bin")
            case["outputs"].append({"name": meta.name, "shape": list(value.shape), "dtype": str(value.dtype)})
        ref["cases"].append(case)
    (out / "reference.json").write_text(json.dumps(ref, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
