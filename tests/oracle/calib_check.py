"""Independent check of one `ascend-ptq calibration` result (docs/ascend-formats.md §2, §3, §4.3, §6, §7.1).

usage: calib_check.py FLOAT.onnx SAVE_PREFIX INPUT_NAME INPUT.bin ENGINE_DEPLOY_OUT.bin MIN_COSINE

- the fake-quant model uses standard ONNX ops only and runs in plain ONNX Runtime;
- its output on INPUT.bin equals our engine's int8 execution of the deploy model
  (ENGINE_DEPLOY_OUT.bin): cosine >= 0.99999 and max abs error <= 1e-4 * max|output|;
- fake-quant vs float (ORT) cosine >= MIN_COSINE;
- the deploy model follows §2 for every layer of quant_report.json: AscendQuant attributes, int8
  weights equal to ARQ recomputed here from the float weights (Conv+BN folded here when the
  layer absorbed a BatchNormalization, and the equalization gains of quant_report.json applied),
  int32 bias, UINT64 dequant param bit layout;
- the record file carries the same numbers as quant_report.json.
Prints a JSON line of measured values.
"""
import json
import re
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

float_path, prefix, input_name, input_bin, engine_out, min_cos = sys.argv[1:7]
min_cos = float(min_cos)
deploy = onnx.load(prefix + "_deploy_model.onnx")
fake_path = prefix + "_fake_quant_model.onnx"
fake = onnx.load(fake_path)
quant = json.load(open(prefix + "_quant_report.json"))
record = open(prefix + "_record.txt").read()
float_model = onnx.load(float_path)


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


# 1. fake-quant: standard ops, runs in ORT, equals the engine's deploy execution.
for n in fake.graph.node:
    if n.domain not in ("", "ai.onnx") or n.op_type.startswith("Ascend"):
        fail(f"fake-quant node {n.name} is {n.domain}::{n.op_type}, not a standard op")
shape = [d.dim_value for d in float_model.graph.input[0].type.tensor_type.shape.dim]
x = np.fromfile(input_bin, np.float32)
fake_shape = [d.dim_value for d in fake.graph.input[0].type.tensor_type.shape.dim]
x = x.reshape(fake_shape)
so = ort.SessionOptions()
so.intra_op_num_threads = 2
fq = ort.InferenceSession(fake_path, so, providers=["CPUExecutionProvider"]).run(None, {input_name: x})[0].ravel().astype(np.float64)
fl = ort.InferenceSession(float_path, so, providers=["CPUExecutionProvider"]).run(None, {input_name: x})[0].ravel().astype(np.float64)
eng = np.fromfile(engine_out, np.float32).astype(np.float64)
if eng.size != fq.size:
    fail(f"engine output has {eng.size} values, fake-quant {fq.size}")


def cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


cos_deploy = cos(fq, eng)
max_err = float(np.abs(fq - eng).max())
bound = 1e-4 * float(np.abs(fq).max())
if cos_deploy < 0.99999 or max_err > bound:
    fail(f"fake-quant (ORT) vs engine deploy: cosine {cos_deploy:.8f}, max abs error {max_err:.3e} (bound {bound:.3e})")
cos_float = cos(fq, fl)
if cos_float < min_cos:
    fail(f"fake-quant vs float cosine {cos_float:.5f} < {min_cos}")

# 2. deploy structure.
dc = constants(deploy.graph)
fc = constants(float_model.graph)
nodes = {n.name: n for n in deploy.graph.node}
float_nodes = {n.name: n for n in float_model.graph.node}
opset = {o.domain: o.version for o in deploy.opset_import}
if opset.get("", opset.get("ai.onnx")) != {o.domain: o.version for o in float_model.opset_import}.get(""):
    fail("deploy opset differs from the source model's")


def attr(n, name):
    for a in n.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return None


def arq(w, per_channel):
    """Symmetric int8, per output channel (axis 0) or per tensor; /128 when the negative side dominates."""
    flat = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)
    scale = (np.maximum(np.abs(lo), np.abs(hi)) / np.where(np.abs(lo) > np.abs(hi), 128, 127)).astype(np.float32)
    scale = np.where(scale < np.finfo(np.float32).eps, np.float32(1), scale).astype(np.float32)
    q = np.clip(np.round(flat / scale[:, None]), -128, 127).astype(np.int8).reshape(w.shape)
    return q, scale


def fold_bn(w, b, bn):
    gamma, beta, mean, var = (fc[i].astype(np.float32) for i in bn.input[1:5])
    eps = attr(bn, "epsilon") or 1e-5
    k = (gamma / np.sqrt(var + np.float32(eps))).astype(np.float32)
    return (w * k.reshape(-1, *[1] * (w.ndim - 1))).astype(np.float32), ((b - mean) * k + beta).astype(np.float32)


# Equalization (quant_report.json "equalized"): the producer conv's output channel c was multiplied by
# gains[c] and the depthwise weights' channel c divided by it, after BN folding.
producer_gain = {}
consumer_gain = {}
for e in quant.get("equalized", []):
    g = np.array(e["gains"], np.float32)
    if e["producer_conv"]:
        producer_gain[e["producer_conv"]] = g
    for dw in e["depthwise_convs"]:
        consumer_gain[dw] = g

checked_weights = 0
off_by_one = 0
total_weights = 0
for layer in quant["quantized_layers"]:
    name = layer["name"]
    q = nodes.get(layer["inserted_nodes"][0])
    if q is None or q.op_type != "AscendQuant" or q.domain not in ("",):
        fail(f"{name}: quant node {layer['inserted_nodes'][0]} missing or not a default-domain AscendQuant")
    scale_d, offset_d = np.float32(layer["scale_d"]), layer["offset_d"]
    if np.float32(attr(q, "scale")) != np.float32(1) / scale_d or attr(q, "offset") != offset_d or attr(q, "dst_type") != b"INT8":
        fail(f"{name}: AscendQuant attributes {attr(q, 'scale')}, {attr(q, 'offset')}, {attr(q, 'dst_type')}")
    ln = nodes[name]
    if ln.input[0] != q.output[0]:
        fail(f"{name}: data input is {ln.input[0]}, not the AscendQuant output")
    dq = nodes.get(name + ".dequant")
    if dq is None or dq.op_type != "AscendDequant" or attr(dq, "dtype") != 0:
        fail(f"{name}: AscendDequant missing or dtype != 0")
    param = dc[dq.input[1]]
    if param.dtype != np.uint64:
        fail(f"{name}: dequant param is {param.dtype}, expected uint64")
    scale_w = np.array(layer["scale_w"], np.float32)
    expect = (scale_w * scale_d).astype(np.float32).view(np.uint32).astype(np.uint64)
    if not np.array_equal(param, expect):
        fail(f"{name}: dequant param bits differ from f32(scale_w*scale_d) with shift 0 / offset_w 0")
    if layer["op_type"] in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
        wq = dc[ln.input[1]]
        if wq.dtype != np.int8:
            fail(f"{name}: weight is {wq.dtype}, expected int8")
        fnode = float_nodes[name]
        w = fc[fnode.input[1]].astype(np.float32)
        b = fc[fnode.input[2]].astype(np.float32) if len(fnode.input) > 2 and fnode.input[2] else np.zeros(w.shape[0], np.float32)
        folded = [bn for bn in layer["original_nodes"][1:]]
        if folded:
            w, b = fold_bn(w, b, float_nodes[folded[0]])
        if name in producer_gain:
            g = producer_gain[name]
            w = (w * g.reshape(-1, *[1] * (w.ndim - 1))).astype(np.float32)
            b = (b * g).astype(np.float32)
        if name in consumer_gain:
            w = (w / consumer_gain[name].reshape(-1, *[1] * (w.ndim - 1))).astype(np.float32)
        rewritten = bool(folded) or name in producer_gain or name in consumer_gain
        if layer["op_type"] == "ConvTranspose":
            # per output channel = axis 1 of [C_in, C_out/g, k, k] (group 1 here)
            q_t, s = arq(np.ascontiguousarray(np.swapaxes(w, 0, 1)), layer["channel_wise"])
            q_ref = np.swapaxes(q_t, 0, 1)
        else:
            q_ref, s = arq(w, layer["channel_wise"])
        if not np.allclose(s, scale_w, rtol=1e-6, atol=0):
            fail(f"{name}: scale_w differs from ARQ recomputed here (max rel {np.max(np.abs(s - scale_w) / scale_w):.2e})")
        diff = np.abs(q_ref.astype(np.int32) - wq.astype(np.int32))
        if diff.max() > (1 if rewritten else 0):
            fail(f"{name}: int8 weights differ from ARQ by up to {diff.max()}")
        off_by_one += int((diff > 0).sum())
        total_weights += wq.size
        checked_weights += 1
        if len(ln.input) > 2 and ln.input[2]:
            bq = dc[ln.input[2]]
            if bq.dtype != np.int32:
                fail(f"{name}: bias is {bq.dtype}, expected int32")
            deq = (scale_w * scale_d).astype(np.float32).astype(np.float64)
            ref = np.round(b.astype(np.float64) / deq)
            if np.abs(ref - bq).max() > (1 if rewritten else 0):
                fail(f"{name}: int32 bias differs from round(b / deq_scale) by {np.abs(ref - bq).max()}")
if off_by_one > max(1, total_weights // 1000):
    fail(f"{off_by_one} of {total_weights} weights differ by one")

# 3. the record file carries quant_report.json's numbers.
entries = re.findall(r'record \{\s*key: "([^"]*)"\s*value \{(.*?)\}\s*\}', record, re.S)
if len(entries) != len(quant["quantized_layers"]):
    fail(f"record has {len(entries)} entries, quant_report.json {len(quant['quantized_layers'])} layers")
for (key, body), layer in zip(entries, quant["quantized_layers"]):
    sd = float(re.search(r"scale_d: (\S+)", body).group(1))
    od = int(re.search(r"offset_d: (\S+)", body).group(1))
    sw = [float(v) for v in re.findall(r"scale_w: (\S+)", body)]
    # AveragePool has no weights: no scale_w in the record (formats §7.1), 1/area in the report.
    want_sw = [] if layer["op_type"] == "AveragePool" else layer["scale_w"]
    if key != layer["name"] or np.float32(sd) != np.float32(layer["scale_d"]) or od != layer["offset_d"] or not np.array_equal(np.float32(sw), np.float32(want_sw)):
        fail(f"record entry {key} differs from quant_report.json")

print(json.dumps({
    "layers": len(quant["quantized_layers"]),
    "weights_checked": checked_weights,
    "weights_off_by_one": off_by_one,
    "fake_vs_deploy_cosine": cos_deploy,
    "fake_vs_deploy_max_abs": max_err,
    "fake_vs_float_cosine": cos_float,
}))
