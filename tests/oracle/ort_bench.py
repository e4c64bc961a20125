"""Times ONNX Runtime (CPU provider) on a model with the same protocol as `ascend-ptq bench`.

    python tests/oracle/ort_bench.py MODEL NAME:D0,D1,... --threads T --runs K --warmup W

Prints JSON: {"median_ms", "min_ms", "max_ms", "threads", "runs"}.
"""
import argparse
import json
import sys
import time

import numpy as np
import onnxruntime as ort


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
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, [int(d) for d in dims.split(",")]).astype(np.float32)
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
