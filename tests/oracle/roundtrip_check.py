#!/usr/bin/env python3
"""Check that two ONNX models give bit-identical outputs on real photos.

Usage:
  roundtrip_check.py --original A.onnx --candidate B.onnx --images DIR
                     [--max-images N] [--kind auto|det|rec|cls|generic]
                     [--height H] [--width W] [--json]

Both models run in onnxruntime (CPUExecutionProvider, one thread, deterministic
compute). Inputs are built from the first N photos of DIR (sorted by name,
default 3) and fed identically to both models; every output must match
bit for bit (same output names in the same order, same dtypes, same shapes,
same bytes).

Input shapes: declared dims are kept; dynamic dims are resolved as
  N (batch)  -> 1
  C          -> 3
  H, W       -> by model kind, detected from the original model's first output
                rank (override with --kind):
                  det     (rank-4 output, e.g. N x 1 x H x W map): 640 x 640
                  rec     (rank-3 output, N x T x classes):         48 x 320
                  cls     (rank-2 output, N x classes):             48 x 192
                  generic: H = 640, W = 640 if H is dynamic else 320
--height/--width override the dynamic H/W (fixed dims always win).
The photo is converted to RGB (L for C=1), resized with Pillow bilinear to
W x H, scaled to float32 as (x/255 - 0.5)/0.5 and laid out NCHW.
Non-image inputs get deterministic pseudo-random data (dynamic dims -> 1).

Exit status: 0 bit-identical, 1 different (or the candidate failed to run),
2 usage or load error (message on stderr naming the file).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from pathlib import Path

import numpy as np

from common import (
    EXIT_DIFFERENT,
    EXIT_OK,
    EXIT_USAGE,
    die,
    image_to_nchw,
    list_images,
    ort_session,
)

KIND_HW = {"det": (640, 640), "rec": (48, 320), "cls": (48, 192)}

ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int16)": np.int16,
    "tensor(uint16)": np.uint16,
    "tensor(int32)": np.int32,
    "tensor(uint32)": np.uint32,
    "tensor(int64)": np.int64,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}
FLOAT_TYPES = ("tensor(float)", "tensor(float16)", "tensor(double)")


def is_fixed(d) -> bool:
    return isinstance(d, int) and d > 0


def detect_kind(session) -> str:
    outs = session.get_outputs()
    rank = len(outs[0].shape) if outs and outs[0].shape is not None else -1
    return {4: "det", 3: "rec", 2: "cls"}.get(rank, "generic")


def is_image_input(inp) -> bool:
    s = inp.shape
    return (
        inp.type in FLOAT_TYPES
        and s is not None
        and len(s) == 4
        and (not is_fixed(s[1]) or s[1] in (1, 3))
    )


def image_shape(inp, kind: str, height: int | None, width: int | None) -> list[int]:
    n, c, h, w = inp.shape
    n = n if is_fixed(n) else 1
    c = c if is_fixed(c) else 3
    h_dyn = not is_fixed(h)
    if kind in KIND_HW:
        dh, dw = KIND_HW[kind]
    else:
        dh, dw = 640, (640 if h_dyn else 320)
    h = h if not h_dyn else (height or dh)
    w = w if is_fixed(w) else (width or dw)
    return [n, c, h, w]


def build_feed(inputs, shapes, image_path: Path, index: int) -> dict:
    feed = {}
    for inp, shape in zip(inputs, shapes):
        dtype = ORT_DTYPES.get(inp.type)
        if dtype is None:
            die(f"input '{inp.name}' has unsupported type {inp.type}")
        if is_image_input(inp):
            n, c, h, w = shape
            x = image_to_nchw(image_path, h, w, c)
            if n > 1:
                x = np.repeat(x, n, axis=0)
            feed[inp.name] = x.astype(dtype, copy=False)
        else:
            rng = np.random.default_rng(zlib.crc32(inp.name.encode()) + index)
            if np.issubdtype(dtype, np.floating):
                x = rng.uniform(-1.0, 1.0, size=shape)
            elif dtype is np.bool_:
                x = rng.integers(0, 2, size=shape)
            else:
                x = rng.integers(0, 4, size=shape)
            feed[inp.name] = np.ascontiguousarray(x.astype(dtype))
    return feed


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float | None:
    """Largest |a-b| (NaN in the same place counts as 0, elsewhere as inf)."""
    if a.shape != b.shape:
        return None
    if a.size == 0:
        return 0.0
    try:
        x = a.astype(np.float64)
        y = b.astype(np.float64)
    except (TypeError, ValueError):
        return None if a.tobytes() != b.tobytes() else 0.0
    nx, ny = np.isnan(x), np.isnan(y)
    if np.any(nx != ny):
        return math.inf
    with np.errstate(invalid="ignore"):
        d = np.abs(x - y)
    d[nx & ny] = 0.0
    d[(x == y)] = 0.0  # equal infinities
    return float(d.max())


def bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def json_num(x):
    """JSON has no inf/NaN: report those (and 'not comparable') as null."""
    return x if x is not None and math.isfinite(x) else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    ap.add_argument("--original", required=True, help="reference model")
    ap.add_argument("--candidate", required=True, help="model that must match it")
    ap.add_argument("--images", required=True, help="folder of photos")
    ap.add_argument("--max-images", type=int, default=3, metavar="N", help="default 3")
    ap.add_argument("--kind", choices=["auto", "det", "rec", "cls", "generic"], default="auto")
    ap.add_argument("--height", type=int, help="value for a dynamic H dim")
    ap.add_argument("--width", type=int, help="value for a dynamic W dim")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args(argv)
    if args.max_images < 1:
        die("--max-images must be >= 1")
    for v, name in ((args.height, "--height"), (args.width, "--width")):
        if v is not None and v < 1:
            die(f"{name} must be >= 1")

    images = list_images(args.images, args.max_images)
    orig = ort_session(args.original)
    cand = ort_session(args.candidate)

    kind = detect_kind(orig) if args.kind == "auto" else args.kind
    inputs = orig.get_inputs()
    shapes = []
    for inp in inputs:
        if is_image_input(inp):
            shapes.append(image_shape(inp, kind, args.height, args.width))
        else:
            shapes.append([d if is_fixed(d) else 1 for d in (inp.shape or [])])

    orig_out = [o.name for o in orig.get_outputs()]
    cand_out = [o.name for o in cand.get_outputs()]
    problems: list[str] = []
    orig_in = [(i.name, i.type) for i in inputs]
    cand_in = [(i.name, i.type) for i in cand.get_inputs()]
    if orig_in != cand_in:
        problems.append(f"inputs differ: original {orig_in} != candidate {cand_in}")
    if orig_out != cand_out:
        problems.append(f"output names differ: original {orig_out} != candidate {cand_out}")

    per_image = []
    overall_max: float | None = 0.0
    identical = not problems
    if not problems:
        for idx, img in enumerate(images):
            feed = build_feed(inputs, shapes, img, idx)
            try:
                ref = orig.run(None, feed)
            except Exception as e:  # noqa: BLE001
                die(f"original model {args.original} failed on {img.name}: {e}")
            entry = {
                "image": img.name,
                "inputs": {k: list(v.shape) for k, v in feed.items()},
                "bitwise_equal": True,
                "outputs": [],
            }
            try:
                got = cand.run(None, feed)
            except Exception as e:  # noqa: BLE001
                entry["bitwise_equal"] = False
                entry["error"] = f"candidate failed: {e}"
                problems.append(f"candidate {args.candidate} failed on {img.name}: {e}")
                per_image.append(entry)
                identical = False
                overall_max = None
                continue
            for name, a, b in zip(orig_out, ref, got):
                a, b = np.asarray(a), np.asarray(b)
                eq = bitwise_equal(a, b)
                mad = max_abs_diff(a, b)
                o = {
                    "name": name,
                    "shape": list(a.shape),
                    "dtype": str(a.dtype),
                    "max_abs_diff": mad,
                    "bitwise_equal": eq,
                }
                if b.shape != a.shape:
                    o["candidate_shape"] = list(b.shape)
                if b.dtype != a.dtype:
                    o["candidate_dtype"] = str(b.dtype)
                entry["outputs"].append(o)
                entry["bitwise_equal"] &= eq
                if mad is None or overall_max is None:
                    overall_max = None
                else:
                    overall_max = max(overall_max, mad)
            identical &= entry["bitwise_equal"]
            per_image.append(entry)
    else:
        overall_max = None

    if args.json:
        for e in per_image:
            for o in e["outputs"]:
                o["max_abs_diff"] = json_num(o["max_abs_diff"])
        report = {
            "original": args.original,
            "candidate": args.candidate,
            "kind": kind,
            "images": len(per_image),
            "outputs": orig_out,
            "bit_identical": bool(identical),
            "max_abs_diff": json_num(overall_max),
            "per_image": per_image,
        }
        if problems:
            report["problems"] = problems
        print(json.dumps(report, allow_nan=False))
    else:
        print(f"original:  {args.original}")
        print(f"candidate: {args.candidate}")
        dims = ", ".join(f"{i.name}={'x'.join(map(str, s))}" for i, s in zip(inputs, shapes))
        print(f"kind: {kind}   inputs: {dims}")
        for k, e in enumerate(per_image, 1):
            print(
                f"[{k}/{len(per_image)}] {e['image']}"
                + (f"  ERROR: {e['error']}" if "error" in e else "")
            )
            for o in e["outputs"]:
                shape = "x".join(map(str, o["shape"]))
                if "candidate_shape" in o:
                    shape += " vs " + "x".join(map(str, o["candidate_shape"]))
                dtype = o["dtype"] + (
                    f" vs {o['candidate_dtype']}" if "candidate_dtype" in o else ""
                )
                print(
                    f"  {o['name']}  {shape} {dtype}  max_abs_diff={o['max_abs_diff']}"
                    f"  bitwise_equal={'yes' if o['bitwise_equal'] else 'NO'}"
                )
        for p in problems:
            print(f"problem: {p}")
        verdict = "bit-identical" if identical else "DIFFERENT"
        print(
            f"result: {verdict} ({len(per_image)} image(s), {len(orig_out)} output(s), "
            f"max_abs_diff={overall_max})"
        )
    return EXIT_OK if identical else EXIT_DIFFERENT


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(EXIT_USAGE)
    except Exception:  # noqa: BLE001 - an oracle crash must not read as "different"
        import traceback

        traceback.print_exc()
        sys.exit(EXIT_USAGE)
