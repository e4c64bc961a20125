"""The ten msaccucmp metrics (docs/ascend-formats.md §13) computed with numpy, written
from the definitions independently of the Rust code, as the oracle of tests/compare_flow.rs.

Usage: msaccucmp_metrics.py CASES.json
CASES.json: [{"x": "a.bin", "x_dtype": "float32", "y": "b.bin", "y_dtype": "float16"}, ...]
(raw little-endian arrays; x = my output, y = golden). Prints a JSON list of metric dicts in
the same order; NaN is printed as null."""
import json
import math
import sys

import numpy as np

EPS = np.finfo(float).eps
F32_EPS = np.finfo(np.float32).eps


def cosine(x, y):
    if x.size == 1:
        return 1.0
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx <= EPS and ny < EPS:
        return 1.0
    if nx ** 0.5 <= EPS or ny ** 0.5 <= EPS:
        return math.nan
    r = float(((x / nx) * (y / ny)).sum())
    return min(r, 1.0)  # Python's min keeps a NaN first argument


def normalized(v):
    lo, hi = v.min(), v.max()
    rng = hi - lo
    w = (v - lo) / rng if rng != 0 else v
    return np.maximum(w, F32_EPS)


def kl(x, y):
    p, q = normalized(x), normalized(y)
    p, q = p / p.sum(), q / q.sum()
    r = float((p * np.log(p / q)).sum())
    return 0.0 if abs(r) < EPS else r


def metrics(x, y):
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.abs(x - y)
        rel = np.where(np.abs(y) > EPS, np.abs(x / y - 1), 0.0)
        ysq = (y ** 2).sum()
        red = 0.0 if ysq ** 0.5 <= EPS else float((((x - y) ** 2).sum() / ysq) ** 0.5)
        return {
            "cosine_similarity": cosine(x, y),
            "max_absolute_error": float(d.max()),
            "accumulated_relative_error": float(rel.sum()),
            "relative_euclidean_distance": red,
            "kullback_leibler_divergence": kl(x, y),
            "standard_deviation": [[float(x.mean()), float(x.std())], [float(y.mean()), float(y.std())]],
            "mean_absolute_error": float(d.mean()),
            "root_mean_square_error": float(np.sqrt((d ** 2).mean())),
            "max_relative_error": float(rel.max()),
            "mean_relative_error": float(rel.mean()),
        }


def nan_to_none(v):
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, list):
        return [nan_to_none(a) for a in v]
    if isinstance(v, dict):
        return {k: nan_to_none(a) for k, a in v.items()}
    return v


def main():
    cases = json.load(open(sys.argv[1]))
    out = []
    for c in cases:
        x = np.fromfile(c["x"], dtype=np.dtype(c["x_dtype"]).newbyteorder("<")).astype(np.float64)
        y = np.fromfile(c["y"], dtype=np.dtype(c["y_dtype"]).newbyteorder("<")).astype(np.float64)
        out.append(nan_to_none(metrics(x, y)))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
