"""Checks a fake-quant model in ONNX Runtime against its float model.

    python tests/oracle/ort_fake_quant_check.py FAKE_QUANT.onnx FLOAT.onnx NAME:D0,D1,... BIN [BIN ...]

Each BIN is one raw little-endian float32 batch for input NAME of shape D0,D1,.... Both models
run in ONNX Runtime (CPU, 1 thread) on every BIN; the outputs of all batches are concatenated
and compared. Prints `rounds=<n> cosine=<c> max_abs=<m>` and exits 0 when the fake-quant model
holds fake-quantization (ONNX Round nodes) and its cosine against float is >= 0.9; exits 1
otherwise, 2 when a model cannot be loaded or run.
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

MIN_COSINE = 0.9


def main() -> int:
    if len(sys.argv) < 5:
        common.die(__doc__)
    fake_path, float_path, spec, bins = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    name, dims = spec.split(":", 1)
    shape = [int(d) for d in dims.split(",")]

    import onnx

    rounds = sum(n.op_type == "Round" for n in onnx.load(fake_path).graph.node)
    fake, ref = common.ort_session(fake_path), common.ort_session(float_path)
    fake_out, ref_out = [], []
    for b in bins:
        x = np.fromfile(b, dtype="<f4")
        if x.size != np.prod(shape):
            common.die(f"{b}: {x.size} float32 values, expected {np.prod(shape)} for {name}:{dims}")
        feeds = {name: x.reshape(shape)}
        try:
            fake_out += [o.astype(np.float64).ravel() for o in fake.run(None, feeds)]
            ref_out += [o.astype(np.float64).ravel() for o in ref.run(None, feeds)]
        except Exception as e:  # noqa: BLE001
            common.die(f"running {b}: {e}")
    a, r = np.concatenate(fake_out), np.concatenate(ref_out)
    cosine = float(a @ r / (np.linalg.norm(a) * np.linalg.norm(r)))
    print(f"rounds={rounds} cosine={cosine:.6f} max_abs={float(np.max(np.abs(a - r))):.6g}")
    if rounds == 0:
        print("the fake-quant model has no Round node: nothing is fake-quantized", file=sys.stderr)
        return common.EXIT_DIFFERENT
    if not cosine >= MIN_COSINE:
        print(f"cosine {cosine:.6f} < {MIN_COSINE}", file=sys.stderr)
        return common.EXIT_DIFFERENT
    return common.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
