"""Writes a calibration set with one input per --data_types dtype, and what amct_onnx
would feed for it (docs/ascend-formats.md §1.2): the files of each directory in Python's sorted(os.listdir)
order, each read with numpy.fromfile(dtype), then converted with astype(np.float32).

usage: calib_dtypes.py OUT_DIR
  OUT_DIR/<dtype>/{9,10}.bin          the data files (shape 2x3x5), named so that byte-wise
                                      order differs from numeric order
  OUT_DIR/expected/<dtype>.<i>.f32    batch i of <dtype> as little-endian float32
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

DTYPES = ["float64", "float32", "float16", "int8", "int16", "int32", "int64",
          "uint8", "uint16", "uint32", "uint64", "bool"]
SHAPE = (2, 3, 5)
N = 2 * 3 * 5


def values(dtype: str, rng: np.random.Generator) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt == np.bool_:
        # Raw bytes other than 0/1 are read as True too.
        return np.frombuffer(rng.integers(0, 4, N, dtype=np.uint8).tobytes(), dtype=np.bool_)
    if dt.kind == "f":
        info = np.finfo(dt)
        special = [np.inf, -np.inf, np.nan, 0.0, -0.0, info.max, info.min, info.tiny, info.smallest_subnormal,
                   1e300 if dt == np.float64 else 1.0, 16777217.0, 0.1, 1.0000000596046448]
        rest = rng.normal(0, 100, N - len(special))
        return np.array(special + list(rest)).astype(dt)
    info = np.iinfo(dt)
    special = [info.min, info.max, 0, 1, info.max - 1, 16777217 if info.max > 16777217 else info.max // 2]
    rest = rng.integers(info.min, info.max, N - len(special), dtype=dt, endpoint=True)
    return np.concatenate([np.array(special, dtype=dt), rest])


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    rng = np.random.default_rng(7)
    np.seterr(over="ignore")  # float64 -> float32 overflows to inf on purpose
    (out / "expected").mkdir(parents=True, exist_ok=True)
    for dtype in DTYPES:
        d = out / dtype
        d.mkdir(parents=True, exist_ok=True)
        for name in ["9.bin", "10.bin"]:
            values(dtype, rng).tofile(d / name)
        for i, name in enumerate(sorted(os.listdir(d))):
            arr = np.fromfile(d / name, dtype=dtype).reshape(SHAPE)
            arr.astype(np.float32).astype("<f4").tofile(out / "expected" / f"{dtype}.{i}.f32")


if __name__ == "__main__":
    main()
