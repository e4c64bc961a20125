"""Independent numpy reference of HFMG activation calibration (docs/ascend-formats.md §4.2).

Usage: hfmg_ref.py CASES.json  →  prints a JSON list of results, one per case.
Each case: {"data": "<raw little-endian float32 file>", "batches": [n1, n2, ...] (element
counts of consecutive batches), "num_of_bins": 4096, "asymmetric": bool}
Result: {"scale": f, "offset": i, "clip_min": f, "clip_max": f, "left": i, "right": i}

Per batch: a histogram over the running [min, max] (widened by the batch), merged with the
previous one by re-binning under a uniform-density assumption; then the inward window search
and the L2 loss of re-quantizing into 256 bins; scale/offset by the min-max rule of §3.
Bin arithmetic is float64 (the project's documented choice), in real units.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np

FLT_EPSILON = float(np.finfo(np.float32).eps)
f32 = np.float32


def hist(x: np.ndarray, lo: float, hi: float, nbins: int) -> np.ndarray:
    h = np.zeros(nbins, dtype=np.int64)
    if lo == hi:
        h[nbins // 2] += x.size
        return h
    idx = np.floor((x.astype(np.float64) - lo) / (hi - lo) * nbins).astype(np.int64)
    np.add.at(h, np.minimum(idx, nbins - 1), 1)
    return h


def merge(old: np.ndarray, old_range, new: np.ndarray, new_range) -> np.ndarray:
    n = new.size
    (a, b), (lo, hi) = old_range, new_range
    same = math.isclose(lo, a, abs_tol=FLT_EPSILON) and math.isclose(hi, b, abs_tol=FLT_EPSILON)
    out = new.copy()
    if same:
        return out + old
    w_old, w_new = (b - a) / old.size, (hi - lo) / n
    for i in np.nonzero(old)[0]:
        c = int(old[i])
        lower, upper = a + i * w_old, a + (i + 1) * w_old
        il = min(math.floor((lower - lo) / w_new), n - 1)
        ih = min(math.floor((upper - lo) / w_new), n - 1)
        if il == ih:
            out[il] += c
        else:
            part = math.floor(c * ((lo + (il + 1) * w_new) - lower) / (upper - lower))
            out[il] += part
            out[ih] += c - part
    return out


def windows(h: np.ndarray) -> list:
    total = int(h.sum())
    step = max(math.ceil(total / 100000), 1)
    min_bins = math.ceil(h.size / 4)
    left, right = 0, h.size - 1
    out = []
    while right - left > min_bins:
        l, r, ls, rs = left, right, 0, 0
        while l < r and ls < step:
            ls += h[l]
            l += 1
        while l < r and rs < step:
            rs += h[r]
            r -= 1
        if right - r >= l - left:
            right = r
        else:
            left = l
        out.append((left, right))
    return out


def loss(h: np.ndarray, w: float, left: int, right: int) -> float:
    """L2 error of mapping every source bin onto 256 uniform bins spanning the window."""
    dst_w = w * (right - left + 1) / 256
    if dst_w < FLT_EPSILON:
        return 0.0
    nz = np.nonzero(h)[0]
    density = h[nz] / w
    begin = (nz - left) * w
    end = begin + w
    bi = np.clip(np.floor(begin / dst_w), 0, 255)
    ei = np.clip(np.floor(end / dst_w), 0, 255)
    half = dst_w / 2

    def integral(d0, d1):
        return (d1**3 - d0**3) / 3 * density

    center = bi * dst_w + half
    same = integral(begin - center, end - center)
    split = integral(begin - center, half) + (ei - bi - 1) * integral(-half, half) + integral(-half, end - ei * dst_w - half)
    return float(np.sum(np.where(bi == ei, same, split)))


def min_max_scale(cmin: float, cmax: float, asymmetric: bool):
    cmin, cmax = f32(cmin), f32(cmax)
    if asymmetric:
        mx, mn = max(cmax, f32(0)), min(cmin, f32(0))
        scale = (mx - mn) / f32(255)
        if scale < FLT_EPSILON:
            return 1.0, -128
        offset = f32(-128) - mn / scale if mx != mn else f32(-128)
        return float(scale), int(np.round(offset))
    negative = abs(cmax) < abs(cmin)
    scale = max(abs(cmax), abs(cmin)) / f32(128 if negative else 127)
    return (1.0 if scale < FLT_EPSILON else float(scale)), 0


def hfmg(x: np.ndarray, batches: list, nbins: int, asymmetric: bool) -> dict:
    h, rng, pos = None, None, 0
    for n in batches:
        b = x[pos : pos + n]
        pos += n
        lo, hi = float(b.min()), float(b.max())
        if h is None:
            h, rng = hist(b, lo, hi, nbins), (lo, hi)
            continue
        new_rng = (min(lo, rng[0]), max(hi, rng[1]))
        h, rng = merge(h, rng, hist(b, *new_rng, nbins), new_rng), new_rng
    lo, hi = rng
    if lo == hi:
        scale, offset = min_max_scale(lo, hi, asymmetric)
        return {"scale": scale, "offset": offset, "clip_min": lo, "clip_max": hi, "left": 0, "right": 0}
    w = (hi - lo) / nbins
    ws = windows(h)
    losses = [loss(h, w, l, r) for l, r in ws]
    left, right = ws[int(np.argmin(losses))]
    cmin, cmax = float(f32(lo + left * w)), float(f32(lo + (right + 1) * w))
    scale, offset = min_max_scale(cmin, cmax, asymmetric)
    return {"scale": scale, "offset": offset, "clip_min": cmin, "clip_max": cmax, "left": left, "right": right}


def main() -> None:
    cases = json.load(open(sys.argv[1]))
    out = []
    for c in cases:
        x = np.fromfile(c["data"], dtype="<f4")
        out.append(hfmg(x, c["batches"], int(c["num_of_bins"]), bool(c["asymmetric"])))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
