"""Times ONNX Runtime (CPU provider) on a model with the same protocol as `ascend-ptq bench`.

    python tests/oracle/ort_bench.py MODEL NAME:D0,D1,... --threads T --runs K --warmup W

Prints JSON: {"median_ms", "min_ms", "max_ms", "threads", "runs"}.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def fixed_shape(path: str, name: str, shape: list[int], tmp: Path) -> str:
    """`path` itself, or a copy in `tmp` whose input `name` has `shape` and whose outputs are dynamic."""
    import onnx

    m = onnx.load(path)
    (inp,) = [i for i in m.graph.input if i.name == name]
    dims = inp.type.tensor_type.shape.dim
    if [d.dim_value if d.HasField("dim_value") else -1 for d in dims] == shape or any(d.HasField("dim_param") for d in dims):
        return path
    for d, v in zip(dims, shape, strict=True):
        d.dim_value = v
    for o in m.graph.output:
        for k, d in enumerate(o.type.tensor_type.shape.dim):
            d.Clear()
            d.dim_param = f"{o.name}_d{k}"
    del m.graph.value_info[:]
    out = tmp / "model.onnx"
    onnx.save(m, str(out))
    return str(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("shape")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    a = ap.parse_args()
    name, dims = a.shape.rsplit(":", 1)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    shape = [int(d) for d in dims.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        # A model whose declared input shape differs (centerface: [10,3,32,32]) is fixed to
        # the benchmarked shape first: ORT refuses other shapes on fixed dims.
        model = fixed_shape(a.model, name, shape, Path(tmp))
        sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    times = []
    for i in range(a.warmup + a.runs):
        t = time.perf_counter()
        sess.run(None, {name: x})
        if i >= a.warmup:
            times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    print(json.dumps({"median_ms": times[len(times) // 2], "min_ms": times[0], "max_ms": times[-1],
                      "threads": a.threads, "runs": a.runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
