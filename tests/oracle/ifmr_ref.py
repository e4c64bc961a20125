"""Independent numpy reference of IFMR activation calibration (docs/ascend-formats.md §4.1).

Usage: ifmr_ref.py CASES.json  →  prints a JSON list of results, one per case.
Each case: {"data": "<raw little-endian float32 file>", "asymmetric": bool,
            "max_percentile": p, "min_percentile": p,
            "search_start": s, "search_end": e, "search_step": st}
Result: {"scale": f, "offset": i, "clip_max": f, "candidate": i, "mse": f}

Conventions fixed by the project (src/quant/ifmr.rs module doc): the parameters are the
float32 values of the .cfg proto; ranks and ratios are computed in float64 from them;
quantization arithmetic is float32 and round-half-to-even; the mean squared error is float64.
"""

from __future__ import annotations

import json
import sys

import numpy as np

FLT_EPSILON = float(np.finfo(np.float32).eps)
f32 = np.float32


def rank(p: float, n: int) -> int:
    """1-based rank from the top of the percentile value among n elements."""
    return 1 if 1.0 - p < FLT_EPSILON else n - int(p * n)


def ifmr(x: np.ndarray, asymmetric: bool, max_p: float, min_p: float, start: float, end: float, step: float) -> dict:
    x = x.astype(np.float32).ravel()
    n = x.size
    k_max, k_min = rank(max_p, n), rank(min_p, n)
    kth_largest = np.partition(x, n - k_max)[n - k_max]
    kth_smallest = np.partition(x, k_min - 1)[k_min - 1]
    max_init = max(f32(0), kth_largest)
    min_init = min(f32(0), kth_smallest)
    if asymmetric:
        bound, divisor = f32(max_init), f32(255)
    else:
        negative = abs(max_init) < abs(min_init)
        bound, divisor = f32(max(abs(max_init), abs(min_init))), f32(128 if negative else 127)
    ratios = np.arange(start, end, step, dtype=np.float64).astype(np.float32)
    his = ratios * bound
    scales = ((his - f32(min_init)) if asymmetric else his) / divisor
    scales = np.where(scales < FLT_EPSILON, f32(1), scales).astype(np.float32)
    losses = []
    for hi, s in zip(his, scales):
        lo = f32(min_init) if asymmetric else -hi
        fq = np.round(np.clip(x, lo, hi) / s) * s
        e = (fq - x).astype(np.float64)
        losses.append(float(np.mean(e * e)))
    best = int(np.argmin(losses))
    scale = scales[best]
    offset = int(-np.round(f32(min_init) / scale) - 128) if asymmetric else 0
    return {"scale": float(scale), "offset": offset, "clip_max": float(his[best]), "candidate": best, "mse": losses[best]}


def main() -> None:
    cases = json.load(open(sys.argv[1]))
    out = []
    for c in cases:
        x = np.fromfile(c["data"], dtype="<f4")
        p = {k: float(f32(c[k])) for k in ("max_percentile", "min_percentile", "search_start", "search_end", "search_step")}
        out.append(ifmr(x, bool(c["asymmetric"]), p["max_percentile"], p["min_percentile"], p["search_start"], p["search_end"], p["search_step"]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
