"""Runs a model in ONNX Runtime (CPU, 1 thread) on raw little-endian input files.

    python tests/oracle/ort_run.py MODEL OUT_DIR NAME=FILE:DTYPE:D0,D1,... [...]

Writes OUT_DIR/output_<j>.bin (raw little-endian) and OUT_DIR/outputs.json
([{"name", "dtype", "shape"}...]).
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def main() -> int:
    if len(sys.argv) < 3:
        common.die(__doc__)
    model, out = sys.argv[1], Path(sys.argv[2])
    feeds = {}
    for arg in sys.argv[3:]:
        name, spec = arg.split("=", 1)
        path, dtype, dims = spec.rsplit(":", 2)
        shape = [int(d) for d in dims.split(",")] if dims else []
        feeds[name] = np.fromfile(path, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
    session = common.ort_session(model)
    out.mkdir(parents=True, exist_ok=True)
    listing = []
    for j, (meta, value) in enumerate(zip(session.get_outputs(), session.run(None, feeds))):
        value = np.ascontiguousarray(value)
        value.astype(value.dtype.newbyteorder("<")).tofile(out / f"output_{j}.bin")
        listing.append({"name": meta.name, "dtype": str(value.dtype), "shape": list(value.shape)})
    (out / "outputs.json").write_text(json.dumps(listing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
