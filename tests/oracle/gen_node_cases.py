"""Writes the ONNX node conformance cases shipped (as generators) in the `onnx` wheel.

    python tests/oracle/gen_node_cases.py OUT_DIR

Layout: OUT_DIR/<case>/model.onnx, OUT_DIR/<case>/test_data_set_<i>/{input,output}_<j>.pb,
OUT_DIR/<case>/tolerance.json ({"rtol": .., "atol": ..}). A stamp file records the onnx
version; when it matches, nothing is regenerated (the folder is a cache).
"""
import json
import os
import shutil
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case import node

# Bump when the written layout or content changes, so cached folders are regenerated.
GENERATOR_VERSION = 2


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = sys.argv[1]
    stamp = os.path.join(out, ".onnx-version")
    version = f"{onnx.__version__} {GENERATOR_VERSION}"
    if os.path.exists(stamp) and open(stamp).read().strip() == version:
        print(f"node cases: cached ({out})")
        return 0
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = node.collect_testcases(None)
    for case in cases:
        d = os.path.join(tmp, case.name)
        os.makedirs(d, exist_ok=True)
        onnx.save(case.model, os.path.join(d, "model.onnx"))
        with open(os.path.join(d, "tolerance.json"), "w") as f:
            json.dump({"rtol": float(case.rtol), "atol": float(case.atol)}, f)
        for i, (inputs, outputs) in enumerate(case.data_sets or []):
            ds = os.path.join(d, f"test_data_set_{i}")
            os.makedirs(ds, exist_ok=True)
            for kind, values, infos in (("input", inputs, case.model.graph.input), ("output", outputs, case.model.graph.output)):
                for j, value in enumerate(values):
                    name = infos[j].name if j < len(infos) else ""
                    if isinstance(value, onnx.TensorProto):
                        t = onnx.TensorProto()
                        t.CopyFrom(value)  # e.g. Cast cases with float8/bfloat16 payloads
                        t.name = name
                    elif isinstance(value, (np.ndarray, np.generic)):
                        t = numpy_helper.from_array(np.asarray(value), name)
                    else:
                        continue  # sequences/optionals: not engine territory
                    with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                        f.write(t.SerializeToString())
    with open(os.path.join(tmp, ".onnx-version"), "w") as f:
        f.write(version)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    print(f"node cases: {len(cases)} written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
