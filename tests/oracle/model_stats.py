"""Independent model statistics with the onnx package, to check `ascend-ptq inspect`.

    python tests/oracle/model_stats.py MODEL.onnx NAME:D0,D1,... [NAME:...]

Fixes the given input shapes, measures the shapes of cube-op tensors by running ONNX Runtime,
and prints JSON:
{"op_histogram": {...}, "parameter_count": N, "macs": {"Conv": .., "ConvTranspose": ..,
"Gemm": .., "MatMul": ..}, "opsets": {...}}. MAC rules: Conv = out elements x (C_in/group x
kernel); ConvTranspose = in elements x (C_out/group x kernel); Gemm/MatMul = out elements x K.
"""
import collections
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main() -> int:
    model = onnx.load(sys.argv[1])
    fixed = {}
    for item in sys.argv[2:]:
        name, dims = item.rsplit(":", 1)
        fixed[name] = [int(d) for d in dims.split(",")]
    for inp in model.graph.input:
        if inp.name in fixed:
            dims = inp.type.tensor_type.shape.dim
            for d, v in zip(dims, fixed[inp.name]):
                d.ClearField("dim_param")
                d.dim_value = v
    # Exact shapes: expose every tensor that a cube op reads or writes as a graph output and
    # run ONNX Runtime once on zeros of the fixed input shapes.
    cube = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul")]
    wanted = {t for n in cube for t in list(n.input[:2]) + [n.output[0]]}
    consts = {t.name for t in model.graph.initializer}
    consts |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {o.name for o in probe.graph.output}
    for name in sorted(wanted - consts - existing):
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros(fixed[i.name], np.float32) for i in sess.get_inputs()}
    shapes = {o.name: list(v.shape) for o, v in zip(sess.get_outputs(), sess.run(None, feeds))}
    params = 0
    for t in model.graph.initializer:
        shapes[t.name] = list(t.dims)
        params += int(np.prod(t.dims))
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    shapes[n.output[0]] = list(a.t.dims)
                    params += int(np.prod(a.t.dims))
    macs = collections.Counter()
    for n in model.graph.node:
        if n.op_type == "Conv":
            w, y = shapes[n.input[1]], shapes[n.output[0]]
            macs["Conv"] += int(np.prod(y)) * int(np.prod(w[1:]))
        elif n.op_type == "ConvTranspose":
            x, w = shapes[n.input[0]], shapes[n.input[1]]
            macs["ConvTranspose"] += int(np.prod(x)) * int(np.prod(w[1:]))
        elif n.op_type in ("Gemm", "MatMul"):
            a, y = shapes[n.input[0]], shapes[n.output[0]]
            trans_a = any(at.name == "transA" and at.i for at in n.attribute)
            k = a[-2] if trans_a else a[-1]
            macs[n.op_type] += int(np.prod(y)) * k
    print(json.dumps({
        "op_histogram": collections.Counter(n.op_type for n in model.graph.node),
        "parameter_count": params,
        "macs": macs,
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
