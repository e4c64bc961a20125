"""Independent check of one `ascend-ptq convert` result against the QDQ model it came from
(docs/ascend-formats.md §2, §3, §6, §15).

usage: qdq_check.py QDQ.onnx REFERENCE.onnx SAVE_PREFIX INPUT_NAME INPUT.bin ASCEND_PTQ_BINARY MIN_QDQ_COSINE

- integer_form (below) builds from REFERENCE.onnx (the QDQ model, or it without the pairs convert
  removes) alone, independently of convert, the same model computed in the integer domain with
  the deploy format's two differences from ONNX QDQ made explicit (docs/ascend-formats.md §15.2):
  activations quantized by multiplying with float32(1/scale) (AscendQuant) instead of dividing,
  and each quantized layer run on the integers (q - zp) x (w - zp_w) + bias_int, then times
  float32(scale_x * scale_w). Checked against it:
  - our engine's int8 execution of the deploy model (ASCEND_PTQ_BINARY run) equals our engine
    on that reference: per float output cosine >= 0.99999 and max abs error <= 1e-4 * max|output|
    (an INT8 output exactly), and every AscendQuant output equals the reference's
    QuantizeLinear output element for element;
  - the fake-quant model is standard ONNX and, in ONNX Runtime, equals the reference in ONNX
    Runtime (same bar);
- reported, not exact: our engine's deploy execution against ONNX Runtime on the reference and
  on REFERENCE.onnx itself (cosine, max abs error; cosine >= MIN_QDQ_COSINE required), and how
  many quantized activations differ by a step from ONNX Runtime's. The float ops of two runtimes
  differ in the last bits (e.g. ORT's Sigmoid is an approximation); at each requantization a value
  that lands on a rounding boundary then moves a whole step, and deep models carry that on;
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
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

qdq_path, ref_path, prefix, input_name, input_bin, binary, min_qdq_cos = sys.argv[1:8]
min_qdq_cos = float(min_qdq_cos)
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


def weight_ints(consts, prod, dq):
    """(integers, scale, zero point, axis) a weight DequantizeLinear stands for: its integer
    constant, or QuantizeLinear of its float constant computed here."""
    scale = consts[dq.input[1]].astype(np.float32)
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
    if dq.input[0] in consts:
        ints = consts[dq.input[0]]
        zp = consts[dq.input[2]] if len(dq.input) > 2 and dq.input[2] else np.zeros(scale.shape, ints.dtype)
        return ints, scale, zp, axis
    q = prod[dq.input[0]]
    w = consts[q.input[0]].astype(np.float32)
    zp = consts[q.input[2]] if len(q.input) > 2 and q.input[2] else np.zeros(scale.shape, np.uint8)
    s, z = scale, zp.astype(np.int64)
    if scale.size > 1:
        shape = [1] * w.ndim
        shape[axis] = -1
        s, z = scale.reshape(shape), z.reshape(shape)
    info = np.iinfo(zp.dtype)
    return np.clip(np.rint(w / s).astype(np.int64) + z, info.min, info.max).astype(zp.dtype), scale, zp, axis


def integer_form(path):
    """REFERENCE.onnx computed in the integer domain, built here from its Q/DQ nodes alone:
    - each activation QuantizeLinear(x, s, zp) becomes QuantizeLinear(Mul(x, float32(1/s)), 1, zp)
      (the deploy format's reciprocal multiplication, §15.2);
    - each Conv / ConvTranspose / Gemm / MatMul reading DQ(Q(x)) and a dequantized constant weight
      becomes layer(float(q - zp_x), float(w_int - zp_w)) + round(bias / deq) then * deq, with
      deq = float32(s_x * s_w[c]): integer-valued float products that ONNX Runtime sums exactly
      while the sums stay below 2^24."""
    m = onnx.load(path)
    g = m.graph
    consts = constants(g)
    prod = {o: n for n in g.node for o in n.output}
    nodes = []

    def const(name, value):
        g.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def is_dq(t):
        return t in prod and prod[t].op_type == "DequantizeLinear"

    for n in g.node:
        if n.op_type == "QuantizeLinear" and n.input[0] not in consts:
            sc = consts[n.input[1]].astype(np.float32)
            if sc.size != 1:
                fail(f"{n.name}: per-channel activation quantization in a converted model")
            scaled = f"{n.name}.scaled_input"
            nodes.append(onnx.helper.make_node("Mul", [n.input[0], const(f"{n.name}.inv_scale", np.float32(1) / sc.reshape(()))],
                                               [scaled], name=f"{n.name}.mul_inv_scale"))
            n.input[0], n.input[1] = scaled, const(f"{n.name}.unit_scale", np.ones_like(sc))
        act = prod.get(n.input[0]) if n.input else None
        wdq = prod.get(n.input[1]) if len(n.input) > 1 else None
        layer = (
            n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul")
            and act is not None and act.op_type == "DequantizeLinear"
            and act.input[0] in prod and prod[act.input[0]].op_type == "QuantizeLinear"
            and prod[act.input[0]].input[0] not in consts
            and wdq is not None and wdq.op_type == "DequantizeLinear"
            and (wdq.input[0] in consts or (wdq.input[0] in prod and prod[wdq.input[0]].input[0] in consts))
        )
        if not layer:
            nodes.append(n)
            continue
        sx = consts[act.input[1]].astype(np.float32).reshape(())
        zx = consts[act.input[2]] if len(act.input) > 2 and act.input[2] else np.uint8(0)
        ints, sw, zw, _ = weight_ints(consts, prod, wdq)
        if len(set(zw.reshape(-1).tolist())) != 1:
            fail(f"{n.name}: weight zero points differ per channel")
        w_int = ints.astype(np.int64) - int(zw.reshape(-1)[0])
        group = next((a.i for a in n.attribute if a.name == "group"), 1)
        sw_out = np.tile(sw.reshape(-1), group) if n.op_type == "ConvTranspose" and sw.size > 1 else sw.reshape(-1)
        deq = (sw_out * sx).astype(np.float32)
        xi = f"{n.name}.int_input"
        nodes.append(onnx.helper.make_node("Cast", [act.input[0]], [f"{xi}.cast"], name=f"{xi}.cast", to=onnx.TensorProto.FLOAT))
        nodes.append(onnx.helper.make_node("Sub", [f"{xi}.cast", const(f"{xi}.zp", np.float32(zx))], [xi], name=f"{xi}.sub"))
        out = n.output[0]
        acc = f"{n.name}.int_acc"
        layer_node = onnx.helper.make_node(n.op_type, [xi, const(f"{n.name}.int_weight", w_int.astype(np.float32))], [acc],
                                           name=n.name + ".integer")
        layer_node.attribute.extend(n.attribute)
        nodes.append(layer_node)
        rank = 2 + (ints.ndim - 2 if n.op_type in ("Conv", "ConvTranspose") else 0)
        shape = [1, -1] + [1] * (rank - 2) if n.op_type in ("Conv", "ConvTranspose") else [-1]
        if len(n.input) > 2 and n.input[2] and n.op_type != "MatMul":
            b = n.input[2]
            bdq = prod.get(b)
            if bdq is not None and bdq.op_type == "DequantizeLinear":
                bi = consts[bdq.input[0]].astype(np.int64)
                bs = np.broadcast_to(consts[bdq.input[1]].astype(np.float32), bi.shape)
                if consts[bdq.input[0]].dtype == np.int32 and np.array_equal(bs.view(np.uint32), np.broadcast_to(deq, bi.shape).view(np.uint32)):
                    b_int = bi
                else:
                    b_int = np.rint((bi * bs.astype(np.float64)) / np.broadcast_to(deq, bi.shape).astype(np.float64))
            else:
                b_int = np.rint(consts[b].astype(np.float64) / np.broadcast_to(deq, consts[b].shape).astype(np.float64))
            nodes.append(onnx.helper.make_node("Add", [acc, const(f"{n.name}.int_bias", b_int.astype(np.float32).reshape(shape))],
                                               [acc + ".biased"], name=n.name + ".int_bias_add"))
            acc += ".biased"
        nodes.append(onnx.helper.make_node("Mul", [acc, const(f"{n.name}.deq", deq.reshape(shape) if deq.size > 1 else deq.reshape(()))],
                                           [out], name=n.name + ".deq"))
    del g.node[:]
    g.node.extend(nodes)
    out = prefix + "_integer_form_reference.onnx"
    onnx.save(m, out)
    return out


def with_outputs(path, names, out):
    m = onnx.load(path)
    have = {o.name for o in m.graph.output}
    for n in dict.fromkeys(names):
        if n not in have:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(n))
    onnx.save(m, out)
    return out


def engine_run(path, tag):
    """Our engine (`ascend-ptq run`) on `path`: every graph output by name."""
    out_dir = f"{prefix}_check_{tag}"
    subprocess.run([binary, "run", "--model", path, "--input", f"{input_name}={input_bin}", "--output_dir", out_dir],
                   check=True, capture_output=True)
    listing = json.load(open(os.path.join(out_dir, "outputs.json")))["outputs"]
    dtypes = {"float": np.float32, "float16": np.float16, "int8": np.int8, "uint8": np.uint8, "int32": np.int32}
    return {o["name"]: np.fromfile(os.path.join(out_dir, o["file"]), dtypes[o["dtype"]]).reshape(o["shape"]) for o in listing}


def ort_run(path):
    sess = session(path)
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {input_name: x})))


def to_int8(q):
    return q.astype(np.int32) - (128 if q.dtype == np.uint8 else 0)


def compare(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return cos(a, b), float(np.abs(a - b).max()), float(np.abs(a).max())


dims = [d.dim_value for d in deploy.graph.input[0].type.tensor_type.shape.dim]
x = np.fromfile(input_bin, np.float32).reshape(dims)
int_ref = integer_form(ref_path)
# The activation each converted layer quantizes: the Q output in the reference, the AscendQuant
# output in the deploy model.
dnodes = {n.name: n for n in deploy.graph.node}
pairs = [(layer["source_nodes"][0], dnodes[layer["name"]].input[0]) for layer in report["layers"] if layer["name"] in dnodes]
ref_model = onnx.load(int_ref)
q_out = {n.name: n.output[0] for n in ref_model.graph.node if n.op_type == "QuantizeLinear"}
pairs = [(q_out[q], d) for q, d in pairs if q in q_out]
model_outputs = [o.name for o in ref_model.graph.output]
engine = engine_run(with_outputs(prefix + "_deploy_model.onnx", [d for _, d in pairs], prefix + "_check_deploy.onnx"), "deploy")
engine_ref = engine_run(with_outputs(int_ref, [q for q, _ in pairs], prefix + "_check_ref.onnx"), "reference")
ort_ref = ort_run(prefix + "_check_ref.onnx")
ort_qdq = ort_run(ref_path)

result = {"outputs": [], "vs_onnx_runtime_integer_form": [], "vs_onnx_runtime_qdq": []}
trailing = report.get("trailing_quant")
for name in model_outputs:
    if name not in engine:
        fail(f"engine has no output '{name}' (has {sorted(engine)})")
    e, r = engine[name], engine_ref[name]
    if e.shape != r.shape:
        fail(f"output {name}: engine shape {e.shape}, reference {r.shape}")
    if ort_qdq[name].dtype in (np.int8, np.uint8):
        if e.dtype != np.int8:
            fail(f"output {name} is {ort_qdq[name].dtype} in the QDQ model; the deploy model gives {e.dtype}, expected int8")
        for key, want in (("outputs", to_int8(r)), ("vs_onnx_runtime_integer_form", to_int8(ort_ref[name])),
                          ("vs_onnx_runtime_qdq", to_int8(ort_qdq[name]))):
            diff = np.abs(e.astype(np.int32) - want)
            if key == "outputs" and diff.max() > 0:
                fail(f"int8 output {name}: {int((diff > 0).sum())} values differ from the integer-form reference")
            result[key].append({"name": name, "int8": True, "steps_off": int((diff > 0).sum()), "count": int(diff.size)})
        continue
    c, err, peak = compare(r, e)
    if c < 0.99999 or err > 1e-4 * peak:
        fail(f"output {name}: engine deploy vs engine integer-form reference cosine {c:.8f}, max abs error {err:.3e} (bound {1e-4 * peak:.3e})")
    result["outputs"].append({"name": name, "cosine": c, "max_abs_error": err, "max_abs_reference": peak})
    c, err, peak = compare(ort_ref[name], e)
    result["vs_onnx_runtime_integer_form"].append({"name": name, "cosine": c, "max_abs_error": err, "max_abs_reference": peak})
    c, err, peak = compare(ort_qdq[name], e)
    result["vs_onnx_runtime_qdq"].append({"name": name, "cosine": c, "max_abs_error": err, "max_abs_reference": peak})
    if c < min_qdq_cos:
        fail(f"output {name}: engine deploy vs ORT on the QDQ model itself: cosine {c:.8f} < {min_qdq_cos}")

# Quantized activations: the deploy model's AscendQuant outputs equal the reference's
# QuantizeLinear outputs on our engine exactly; against ONNX Runtime, count the one-step flips.
flips, total = 0, 0
for q, d in pairs:
    e = engine[d].astype(np.int32)
    if not np.array_equal(e, to_int8(engine_ref[q])):
        fail(f"AscendQuant output {d} differs from QuantizeLinear output {q} of the integer-form reference (same engine)")
    diff = e != to_int8(ort_ref[q])
    flips, total = flips + int(diff.sum()), total + int(diff.size)
result["quantized_activations"] = {"count": total, "differ_from_onnx_runtime": flips, "tensors": len(pairs)}

# Fake-quant model: standard ops, runs in ORT, equals the integer-form reference there.
fake_path = prefix + "_fake_quant_model.onnx"
fake = onnx.load(fake_path)
for n in fake.graph.node:
    if n.domain not in ("", "ai.onnx") or n.op_type.startswith("Ascend"):
        fail(f"fake-quant node {n.name} is {n.domain}::{n.op_type}, not a standard op")
fake_out = ort_run(fake_path)
for name in model_outputs:
    r = ort_ref[name].astype(np.float64)
    if trailing and name == trailing["output"]:
        r = to_int8(ort_ref[name]) - trailing["offset_d"]  # fake-quant yields q - offset_d
    c, err, peak = compare(r, fake_out[name])
    if c < 0.99999 or err > max(1e-4 * peak, 1e-6):
        fail(f"fake-quant vs integer-form reference, both in ORT, on {name}: cosine {c:.8f}, max abs {err:.3e}")

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
