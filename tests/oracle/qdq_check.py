"""Independent check of one `ascend-ptq convert` result against the QDQ model it came from
(docs/ascend-formats.md §2, §3, §6, §15).

usage: qdq_check.py QDQ.onnx REFERENCE.onnx SAVE_PREFIX INPUT_NAME INPUT.bin ENGINE_OUT_DIR

- our engine's int8 execution of the deploy model (ENGINE_OUT_DIR, as `ascend-ptq run` writes it)
  equals ONNX Runtime running REFERENCE.onnx (the QDQ model, or it without the pairs convert
  removes) with graph optimizations off, i.e. the QDQ arithmetic as ONNX defines it: per float
  output cosine >= 0.99999 and max abs error <= 1e-4 * max|output|; an INT8 output (trailing
  QuantizeLinear) equals ORT's, shifted by 128 for UINT8, within one step;
- the fake-quant model is standard ONNX, runs in ORT and gives the same outputs;
- every converted layer of convert_report.json, recomputed here from the QDQ model: its int8
  weight equals round(w / scale) (QuantizeLinear of the float weight, or the integer initializer
  of the DequantizeLinear; minus 128 for UINT8; transposed for Gemm transB = 1) exactly, its int32
  bias equals ORT's INT32 bias (or round(b / (scale_d * scale_w))), its AscendQuant carries
  scale = 1/scale_d and offset = zero point (- 128 for UINT8), its UINT64 dequant param holds
  float32(scale_w * scale_d) in bits 0-31 and nothing else;
- the record file lists the same scales.
Prints a JSON line of measured values.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

qdq_path, ref_path, prefix, input_name, input_bin, engine_dir = sys.argv[1:7]
qdq = onnx.load(qdq_path)
deploy = onnx.load(prefix + "_deploy_model.onnx")
report = json.load(open(prefix + "_convert_report.json"))


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def constants(graph):
    out = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = numpy_helper.to_array(a.t)
    return out


def session(path):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def cos(a, b):
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(a @ b / (na * nb))


ref_sess = session(ref_path)
dims = [d.dim_value for d in deploy.graph.input[0].type.tensor_type.shape.dim]
x = np.fromfile(input_bin, np.float32).reshape(dims)
ref_out = dict(zip([o.name for o in ref_sess.get_outputs()], ref_sess.run(None, {input_name: x})))

listing = json.load(open(os.path.join(engine_dir, "outputs.json")))
listing = listing["outputs"] if isinstance(listing, dict) else listing
engine = {}
for o in listing:
    dtype = {"float32": np.float32, "int8": np.int8, "uint8": np.uint8, "int32": np.int32}[o["dtype"]]
    engine[o["name"]] = np.fromfile(os.path.join(engine_dir, o["file"]), dtype).reshape(o["shape"])

result = {"outputs": []}
trailing = report.get("trailing_quant")
for name, r in ref_out.items():
    if name not in engine:
        fail(f"engine has no output '{name}' (has {sorted(engine)})")
    e = engine[name]
    if e.shape != r.shape:
        fail(f"output {name}: engine shape {e.shape}, ORT {r.shape}")
    if r.dtype in (np.int8, np.uint8):
        if e.dtype != np.int8:
            fail(f"output {name} is {r.dtype} in the QDQ model; the deploy model gives {e.dtype}, expected int8")
        want = r.astype(np.int32) - (128 if r.dtype == np.uint8 else 0)
        diff = np.abs(e.astype(np.int32) - want)
        if diff.max() > 1:
            fail(f"int8 output {name}: max step difference {diff.max()}")
        result["outputs"].append({"name": name, "int8": True, "steps_off": int((diff > 0).sum()), "count": int(diff.size)})
        continue
    a, b = r.ravel().astype(np.float64), e.ravel().astype(np.float64)
    c, err, bound = cos(a, b), float(np.abs(a - b).max()), 1e-4 * float(np.abs(a).max())
    if c < 0.99999 or err > bound:
        fail(f"output {name}: engine deploy vs ORT QDQ cosine {c:.8f}, max abs error {err:.3e} (bound {bound:.3e})")
    result["outputs"].append({"name": name, "cosine": c, "max_abs_error": err, "max_abs_reference": float(np.abs(a).max())})

# Fake-quant model: standard ops, ORT, same outputs as the engine.
fake_path = prefix + "_fake_quant_model.onnx"
fake = onnx.load(fake_path)
for n in fake.graph.node:
    if n.domain not in ("", "ai.onnx") or n.op_type.startswith("Ascend"):
        fail(f"fake-quant node {n.name} is {n.domain}::{n.op_type}, not a standard op")
fake_sess = session(fake_path)
for o, v in zip(fake_sess.get_outputs(), fake_sess.run(None, {input_name: x})):
    e = engine[o.name].astype(np.float64)
    if trailing and o.name == trailing["output"]:
        e = e - trailing["offset_d"]  # fake-quant yields q - offset_d
    a = v.ravel().astype(np.float64)
    err, bound = float(np.abs(a - e.ravel()).max()), 1e-4 * max(float(np.abs(a).max()), 1e-30)
    if cos(a, e.ravel()) < 0.99999 or err > max(bound, 1e-6):
        fail(f"fake-quant (ORT) vs engine deploy on {o.name}: cosine {cos(a, e.ravel()):.8f}, max abs {err:.3e}")

# Per layer, recomputed from the QDQ model.
qc, dc = constants(qdq.graph), constants(deploy.graph)
qnodes = {n.name: n for n in qdq.graph.node}
dnodes = {n.name: n for n in deploy.graph.node}
by_output = {o: n for n in deploy.graph.node for o in n.output}


def qdq_ints(node_name):
    """The integers a weight/bias DequantizeLinear dequantizes, and its params (scale, zp, axis, dtype)."""
    dq = qnodes[node_name]
    scale = qc[dq.input[1]].astype(np.float32)
    src = dq.input[0]
    if src in qc:
        ints = qc[src]
        zp = qc[dq.input[2]] if len(dq.input) > 2 and dq.input[2] else np.zeros_like(scale, dtype=ints.dtype)
    else:
        q = next(n for n in qdq.graph.node if src in n.output)
        w = qc[q.input[0]].astype(np.float32)
        zp = qc[q.input[2]] if len(q.input) > 2 and q.input[2] else np.zeros_like(scale, dtype=np.uint8)
        axis = next((a.i for a in q.attribute if a.name == "axis"), 1)
        s, z = scale, zp.astype(np.int64)
        if scale.size > 1:
            shape = [1] * w.ndim
            shape[axis] = -1
            s, z = scale.reshape(shape), z.reshape(shape)
        info = np.iinfo(zp.dtype)
        ints = np.clip(np.rint(w / s).astype(np.int64) + z, info.min, info.max).astype(zp.dtype)
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
    return ints, scale, zp, axis


layers = []
for layer in report["layers"]:
    name, op = layer["name"], layer["op_type"]
    node = dnodes.get(name)
    if node is None:
        fail(f"layer {name} is missing from the deploy model")
    src = layer["source_nodes"]
    w_dq = [s for s in src[2:] if qnodes[s].op_type == "DequantizeLinear"][0]
    ints, sw, zp, axis = qdq_ints(w_dq)
    want = ints.astype(np.int32) - (128 if ints.dtype == np.uint8 else 0)
    trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
    qnode = qnodes[w_dq]
    orig = next(n for n in qdq.graph.node if n.name == name)
    if op == "Gemm" and next((a.i for a in orig.attribute if a.name == "transB"), 0) == 1:
        want = want.T
        if trans_b != 0:
            fail(f"{name}: Gemm transB should be 0 after the offline transpose")
    got = dc[node.input[1]]
    if got.dtype != np.int8 or got.shape != want.shape or not np.array_equal(got.astype(np.int32), want):
        fail(f"{name}: int8 weight differs from round(w / scale) of the QDQ model")
    # scale_w per output channel.
    if op == "ConvTranspose" and sw.size > 1:
        group = next((a.i for a in orig.attribute if a.name == "group"), 1)
        sw_out = np.tile(sw, group)
    else:
        sw_out = sw.reshape(-1)
    x_scale = np.float32(qc[qnodes[src[1]].input[1]])
    x_zp_t = qc[qnodes[src[1]].input[2]] if len(qnodes[src[1]].input) > 2 else np.uint8(0)
    offset = int(x_zp_t) - (128 if x_zp_t.dtype == np.uint8 else 0)
    quant = by_output[node.input[0]]
    attrs = {a.name: a for a in quant.attribute}
    if quant.op_type != "AscendQuant" or np.float32(attrs["scale"].f) != np.float32(1.0) / x_scale or attrs["offset"].f != offset:
        fail(f"{name}: AscendQuant {quant.name} scale {attrs['scale'].f} offset {attrs['offset'].f}, want {1 / x_scale} {offset}")
    deq = next(n for n in deploy.graph.node if n.op_type == "AscendDequant" and n.name == name + ".dequant")
    param = dc[deq.input[1]]
    want_bits = (sw_out.astype(np.float32) * x_scale).astype(np.float32).view(np.uint32).astype(np.uint64)
    if param.dtype != np.uint64 or not np.array_equal(param, want_bits):
        fail(f"{name}: dequant param {param[:4]} != float32 bits of scale_w * scale_d {want_bits[:4]}")
    bias_ok = None
    if len(node.input) > 2 and node.input[2] and op != "MatMul":
        b = dc[node.input[2]]
        b_src = orig.input[2]
        b_dq = next((n for n in qdq.graph.node if b_src in n.output and n.op_type == "DequantizeLinear"), None)
        if b_dq is not None and qc[b_dq.input[0]].dtype == np.int32:
            bias_ok = "int32 from the QDQ model"
            bi, bs = qc[b_dq.input[0]], qc[b_dq.input[1]].astype(np.float32)
            deq_scale = (sw_out * x_scale).astype(np.float32)
            if np.array_equal(np.broadcast_to(bs, deq_scale.shape).view(np.uint32), deq_scale.view(np.uint32)):
                want_b = bi
            else:
                want_b = np.rint((bi.astype(np.float64) * bs) / deq_scale.astype(np.float64)).astype(np.int32)
                bias_ok = "requantized"
        else:
            bf = qc[b_src].astype(np.float64)
            want_b = np.rint(bf / (sw_out * x_scale).astype(np.float32).astype(np.float64)).astype(np.int32)
            bias_ok = "float quantized"
        if b.dtype != np.int32 or not np.array_equal(b.reshape(-1), want_b.reshape(-1)):
            fail(f"{name}: int32 bias differs ({bias_ok}): {b.reshape(-1)[:4]} vs {want_b.reshape(-1)[:4]}")
    layers.append({"name": name, "op_type": op, "weights": int(got.size), "bias": bias_ok})

record = open(prefix + "_record.txt").read()
for layer in report["layers"]:
    if f'key: "{layer["name"]}"' not in record:
        fail(f"record has no entry for {layer['name']}")
result["layers"] = layers
print(json.dumps(result))
