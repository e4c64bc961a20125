"""Hand-built QDQ graphs for `ascend-ptq convert` (docs/ascend-formats.md §15), one per pattern
and one per refusal, written with onnx.helper (no exporter, no torch).

usage: qdq_cases.py OUTDIR

Writes OUTDIR/<case>.onnx, and for the cases that convert OUTDIR/<case>_input.bin (float32) and
OUTDIR/<case>_reference.onnx: the model whose ONNX Runtime output the converted deploy model must
equal — the QDQ model itself, or for the cases where convert removes a pair in front of a float
op, the QDQ model with exactly those Q/DQ nodes deleted here (independently of convert). Prints
the manifest (JSON list) of every case: what convert must report, or the words its error must
contain.
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(18)
manifest = []


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def f32(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def q_int(w, scale, zp, dtype, axis=None):
    """ONNX QuantizeLinear in numpy: saturate(rint(w / scale) + zp)."""
    info = np.iinfo(dtype)
    if axis is not None:
        shape = [1] * w.ndim
        shape[axis] = -1
        scale, zp = np.reshape(scale, shape), np.reshape(zp, shape)
    return np.clip(np.rint(w / np.float32(scale)).astype(np.int64) + np.asarray(zp, np.int64), info.min, info.max).astype(dtype)


class G:
    """A graph under construction."""

    def __init__(self):
        self.nodes, self.inits = [], []

    def c(self, name, array):
        self.inits.append(init(name, array))
        return name

    def node(self, op, inputs, outputs, name, **attrs):
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))
        return outputs[0]

    def qdq(self, x, name, scale, zp, dtype=np.int8, axis=None):
        """x → QuantizeLinear → DequantizeLinear; returns the DQ output."""
        s = self.c(f"{name}.scale", np.array(scale, np.float32))
        z = self.c(f"{name}.zp", np.array(zp, dtype))
        kw = {} if axis is None else {"axis": axis}
        self.node("QuantizeLinear", [x, s, z], [f"{name}.q_out"], f"{name}.Q", **kw)
        return self.node("DequantizeLinear", [f"{name}.q_out", s, z], [f"{name}.dq_out"], f"{name}.DQ", **kw)

    def wdq(self, name, ints, scale, zp=None, axis=None):
        """An integer constant → DequantizeLinear (weights as ONNX Runtime writes them)."""
        q = self.c(f"{name}_quantized", ints)
        s = self.c(f"{name}_scale", np.array(scale, np.float32))
        inputs = [q, s]
        if zp is not None:
            inputs.append(self.c(f"{name}_zp", np.array(zp, ints.dtype)))
        kw = {} if axis is None else {"axis": axis}
        return self.node("DequantizeLinear", inputs, [f"{name}_dq"], f"{name}.DQ", **kw)

    def model(self, inputs, outputs, opset=13):
        graph = helper.make_graph(self.nodes, "qdq_case", inputs, outputs, self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="qdq_cases.py")
        m.ir_version = 8 if opset <= 17 else 10
        return m


def vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def save(name, model, input_shape=None, expect=None, error=None, reference=None):
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(OUT / f"{name}.onnx"))
    entry = {"name": name, "model": str(OUT / f"{name}.onnx")}
    if error is not None:
        entry["error"] = error
    else:
        x = rng.uniform(-2.0, 3.0, input_shape).astype(np.float32)
        x.tofile(OUT / f"{name}_input.bin")
        onnx.save(reference or model, str(OUT / f"{name}_reference.onnx"))
        entry.update(
            input=str(OUT / f"{name}_input.bin"),
            input_name=model.graph.input[0].name,
            input_shape=",".join(map(str, input_shape)),
            reference=str(OUT / f"{name}_reference.onnx"),
            expect=expect,
        )
    manifest.append(entry)


def strip(model, remove):
    """`model` without the Q/DQ nodes named in `remove`: each DQ output is replaced by the Q's input."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    by_name = {n.name: n for n in m.graph.node}
    rename = {}
    for q_name, dq_name in remove:
        q, dq = by_name[q_name], by_name[dq_name]
        rename[dq.output[0]] = q.input[0]
    keep = [n for n in m.graph.node if n.name not in {x for pair in remove for x in pair}]
    for n in keep:
        for k, i in enumerate(n.input):
            n.input[k] = rename.get(i, i)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    return m


def expect(converted=0, adds=0, trailing=False, removed=0, folded=0, warnings=(), branches=0):
    return {"converted": converted, "adds": adds, "branches": branches, "trailing": trailing, "removed": removed, "folded": folded,
            "warnings": list(warnings)}


# 1. Conv, int8 asymmetric activation, per-channel int8 weight, INT32 bias DQ (as ORT writes).
g = G()
w = f32(6, 3, 3, 3, scale=0.3)
sw = (np.abs(w).reshape(6, -1).max(1) / 127).astype(np.float32)
sx = np.float32(5.0 / 255)
xq = g.qdq("x", "x_in", sx, -26)
wq = g.wdq("conv.w", q_int(w, sw, 0, np.int8, axis=0), sw, np.zeros(6, np.int8), axis=0)
b = f32(6)
bs = (sx * sw).astype(np.float32)
bq = g.wdq("conv.b", np.rint(b / bs).astype(np.int32), bs, np.zeros(6, np.int32), axis=0)
g.node("Conv", [xq, wq, bq], ["y"], "conv", pads=[1, 1, 1, 1])
save("conv_int8_per_channel", g.model([vi("x", [1, 3, 8, 8])], [vi("y", [1, 6, 8, 8])]), [1, 3, 8, 8], expect(converted=1))

# 2. Conv, uint8 activation (zp 130), float weight quantized by a Q/DQ pair per channel, float
#    bias, stride 2, group 3 (depthwise).
g = G()
w = f32(3, 1, 3, 3, scale=0.5)
sw = (np.abs(w).reshape(3, -1).max(1) / 127).astype(np.float32)
xq = g.qdq("x", "x_in", np.float32(5.0 / 255), 130, np.uint8)
g.c("dw.w", w)
wq = g.qdq("dw.w", "dw.w", sw, np.zeros(3, np.int8), np.int8, axis=0)
g.c("dw.b", f32(3))
g.node("Conv", [xq, wq, "dw.b"], ["y"], "dw", pads=[1, 1, 1, 1], strides=[2, 2], group=3)
save("conv_uint8_float_weight_depthwise", g.model([vi("x", [1, 3, 9, 9])], [vi("y", [1, 3, 5, 5])]), [1, 3, 9, 9], expect(converted=1))

# 3. ConvTranspose, per-channel weights on axis 1 (output channels), INT32 bias.
g = G()
w = f32(4, 5, 2, 2, scale=0.4)
sw = (np.abs(w).transpose(1, 0, 2, 3).reshape(5, -1).max(1) / 127).astype(np.float32)
sx = np.float32(4.0 / 255)
xq = g.qdq("x", "x_in", sx, 0)
wq = g.wdq("up.w", q_int(w, sw, 0, np.int8, axis=1), sw, np.zeros(5, np.int8), axis=1)
bs = (sx * sw).astype(np.float32)
bq = g.wdq("up.b", np.rint(f32(5) / bs).astype(np.int32), bs, np.zeros(5, np.int32), axis=0)
g.node("ConvTranspose", [xq, wq, bq], ["y"], "up", strides=[2, 2])
save("conv_transpose_per_channel", g.model([vi("x", [1, 4, 5, 5])], [vi("y", [1, 5, 10, 10])]), [1, 4, 5, 5], expect(converted=1))

# 4. Gemm with transB = 1 (transposed offline), per-tensor weight, INT32 bias DQ.
g = G()
w = f32(8, 16, scale=0.2)
sw = np.float32(np.abs(w).max() / 127)
sx = np.float32(5.0 / 255)
xq = g.qdq("x", "x_in", sx, -20)
wq = g.wdq("fc.w", q_int(w, sw, 0, np.int8), sw, np.int8(0))
bq = g.wdq("fc.b", np.rint(f32(8) / (sx * sw)).astype(np.int32), np.float32(sx * sw), np.int32(0))
g.node("Gemm", [xq, wq, bq], ["y"], "fc", transB=1)
save("gemm_trans_b", g.model([vi("x", [2, 16])], [vi("y", [2, 8])]), [2, 16], expect(converted=1))

# 5. MatMul with a constant 2-D weight (uint8 activation), its float bias Add left float.
g = G()
w = f32(16, 8, scale=0.2)
sw = np.float32(np.abs(w).max() / 127)
xq = g.qdq("x", "x_in", np.float32(5.0 / 255), 100, np.uint8)
wq = g.wdq("mm.w", q_int(w, sw, 0, np.int8), sw)
g.node("MatMul", [xq, wq], ["mm_out"], "mm")
g.c("mm.bias", f32(8))
g.node("Add", ["mm_out", "mm.bias"], ["y"], "mm_bias")
save("matmul_constant_weight", g.model([vi("x", [1, 4, 16])], [vi("y", [1, 4, 8])]), [1, 4, 16], expect(converted=1))

# 6. Add with QDQ on both inputs (different scales, int8 and uint8) → AscendQuant → AscendAntiQuant.
g = G()
a = g.qdq("x", "add_a", np.float32(5.0 / 255), -26)
g.node("Relu", ["x"], ["r"], "relu")
b_ = g.qdq("r", "add_b", np.float32(3.0 / 255), 0, np.uint8)
g.node("Add", [a, b_], ["y"], "add")
save("add_inputs", g.model([vi("x", [1, 4, 6, 6])], [vi("y", [1, 4, 6, 6])]), [1, 4, 6, 6], expect(adds=2))

# 7. A trailing QuantizeLinear at the output of a single-output model → AscendQuant (INT8 output).
g = G()
w = f32(4, 3, 1, 1, scale=0.5)
sw = (np.abs(w).reshape(4, -1).max(1) / 127).astype(np.float32)
xq = g.qdq("x", "x_in", np.float32(5.0 / 255), -26)
wq = g.wdq("pw.w", q_int(w, sw, 0, np.int8, axis=0), sw, np.zeros(4, np.int8), axis=0)
g.node("Conv", [xq, wq], ["c"], "pw")
s = g.c("out.scale", np.float32(0.02))
z = g.c("out.zp", np.int8(-5))
g.node("QuantizeLinear", ["c", s, z], ["y"], "out.Q")
save("trailing_quantize", g.model([vi("x", [1, 3, 4, 4])], [vi("y", [1, 4, 4, 4], TensorProto.INT8)]), [1, 3, 4, 4],
     expect(converted=1, trailing=True))

# 8. What Ascend runs in float: ONNX Runtime's output QDQ before a Relu, a two-input MatMul with
#    QDQ on both inputs, and a dequantized constant read by a Mul. Removed / folded with warnings;
#    the reference is the QDQ model without the removed pairs (the folded constant dequantizes to
#    the same float values, so it stays).
g = G()
w1 = f32(4, 3, 3, 3, scale=0.3)
s1 = (np.abs(w1).reshape(4, -1).max(1) / 127).astype(np.float32)
xq = g.qdq("x", "x_in", np.float32(5.0 / 255), -26)
wq = g.wdq("c1.w", q_int(w1, s1, 0, np.int8, axis=0), s1, np.zeros(4, np.int8), axis=0)
g.node("Conv", [xq, wq], ["c1"], "c1", pads=[1, 1, 1, 1])
c1q = g.qdq("c1", "c1_out", np.float32(0.05), 3)
g.node("Relu", [c1q], ["r1"], "relu1")
mq = g.wdq("scale_c", np.array([[[[40]], [[-90]], [[127]], [[7]]]], np.int8), np.float32(0.01))
g.node("Mul", ["r1", mq], ["m"], "mul")
g.node("Reshape", ["m", g.c("shape", np.array([1, 4, 16], np.int64))], ["m3"], "reshape")
g.node("Transpose", ["m3"], ["m3t"], "transpose", perm=[0, 2, 1])
aq = g.qdq("m3", "mm_a", np.float32(0.03), 0)
bq_ = g.qdq("m3t", "mm_b", np.float32(0.03), 0)
g.node("MatMul", [aq, bq_], ["y"], "attn")
model = g.model([vi("x", [1, 3, 4, 4])], [vi("y", [1, 4, 4])])
ref = strip(model, [("c1_out.Q", "c1_out.DQ"), ("mm_a.Q", "mm_a.DQ"), ("mm_b.Q", "mm_b.DQ")])
save("float_ops_removed", model, [1, 3, 4, 4], expect(converted=1, removed=3, folded=1, warnings=["c1_out.Q", "mm_a.Q", "mm_b.Q", "scale_c.DQ"]),
     reference=ref)

# 9. A pair read by an int8 Conv and by a float Sigmoid: the Sigmoid keeps the dequantized
#    values through its own AscendQuant → AscendAntiQuant, so the reference is the QDQ model itself.
g = G()
w = f32(3, 3, 1, 1, scale=0.5)
sw = (np.abs(w).reshape(3, -1).max(1) / 127).astype(np.float32)
xq = g.qdq("x", "x_in", np.float32(5.0 / 255), -26)
wq = g.wdq("pw.w", q_int(w, sw, 0, np.int8, axis=0), sw, np.zeros(3, np.int8), axis=0)
g.node("Conv", [xq, wq], ["c"], "pw")
g.node("Sigmoid", [xq], ["sg"], "gate")
g.node("Mul", ["c", "sg"], ["y"], "gated")
save("shared_pair_float_branch", g.model([vi("x", [1, 3, 5, 5])], [vi("y", [1, 3, 5, 5])]), [1, 3, 5, 5], expect(converted=1, branches=1))

# ---- refusals: each error names the node and what is accepted.


def conv_case(x_scale=np.float32(0.02), x_zp=0, dq_scale=None, x_axis=None, w_zp=0, gemm_per_channel=False):
    g = G()
    s = g.c("x.scale", np.array(x_scale, np.float32))
    z = g.c("x.zp", np.array(x_zp, np.int8))
    kw = {} if x_axis is None else {"axis": x_axis}
    g.node("QuantizeLinear", ["x", s, z], ["xq"], "x.Q", **kw)
    s2 = s if dq_scale is None else g.c("x.dq_scale", np.array(dq_scale, np.float32))
    g.node("DequantizeLinear", ["xq", s2, z], ["xd"], "x.DQ", **kw)
    if gemm_per_channel:
        w = f32(4, 3)
        sw = (np.abs(w).max(0) / 127).astype(np.float32)
        wq = g.wdq("fc.w", q_int(w, sw, 0, np.int8, axis=1), sw, np.zeros(3, np.int8), axis=1)
        g.node("Gemm", ["xd", wq], ["y"], "fc")
        return g.model([vi("x", [2, 4])], [vi("y", [2, 3])])
    w = f32(2, 3, 1, 1)
    wq = g.wdq("conv.w", q_int(w, np.float32(0.01), w_zp, np.int8), np.float32(0.01), np.int8(w_zp))
    g.node("Conv", ["xd", wq], ["y"], "conv")
    return g.model([vi("x", [1, 3, 4, 4])], [vi("y", [1, 2, 4, 4])])


save("err_pair_mismatch", conv_case(dq_scale=np.float32(0.04)), error=["x.DQ", "x.Q", "differ", "same scale and zero point"])
save("err_per_channel_activation", conv_case(x_scale=np.full(3, 0.02, np.float32), x_zp=np.zeros(3, np.int8), x_axis=1),
     error=["x.DQ", "per channel", "one scale and offset per tensor"])
save("err_weight_zero_point", conv_case(w_zp=3), error=["conv.w.DQ", "zero point 3", "symmetric"])
save("err_gemm_per_channel_weight", conv_case(gemm_per_channel=True), error=["fc.w.DQ", "per tensor only", "Gemm"])

# float16 QDQ: float16 input and scale.
g = G()
s = g.c("x.scale", np.array(0.02, np.float16))
z = g.c("x.zp", np.array(0, np.int8))
g.node("QuantizeLinear", ["x", s, z], ["xq"], "x.Q")
g.node("DequantizeLinear", ["xq", s, z], ["y"], "x.DQ")
save("err_float16_qdq", g.model([vi("x", [1, 4], TensorProto.FLOAT16)], [vi("y", [1, 4], TensorProto.FLOAT16)], opset=19),
     error=["x.Q", "FLOAT16", "only FLOAT scales"])

# 4-bit weights (opset 21).
g = G()
xq = g.qdq("x", "x_in", np.float32(0.02), 0)
w4 = helper.make_tensor("conv.w_quantized", TensorProto.INT4, [2, 3, 1, 1], rng.integers(-8, 8, 6).tolist())
g.inits.append(w4)
g.c("conv.w_scale", np.float32(0.05))
g.node("DequantizeLinear", ["conv.w_quantized", "conv.w_scale"], ["w"], "conv.w.DQ")
g.node("Conv", [xq, "w"], ["y"], "conv")
save("err_int4_weight", g.model([vi("x", [1, 3, 4, 4])], [vi("y", [1, 2, 4, 4])], opset=21), error=["conv.w.DQ", "INT4", "8-bit"])

# 16-bit activations (opset 21).
g = G()
s = g.c("x.scale", np.float32(0.001))
z = g.c("x.zp", np.int16(0))
g.node("QuantizeLinear", ["x", s, z], ["xq"], "x.Q")
g.node("DequantizeLinear", ["xq", s, z], ["xd"], "x.DQ")
g.node("Relu", ["xd"], ["y"], "relu")
save("err_int16_activation", g.model([vi("x", [1, 4])], [vi("y", [1, 4])], opset=21), error=["INT16", "8-bit"])

# A trailing QuantizeLinear in a two-output model.
g = G()
s = g.c("out.scale", np.float32(0.02))
g.node("QuantizeLinear", ["x", s, g.c("out.zp", np.int8(0))], ["y"], "out.Q")
g.node("Relu", ["x"], ["z"], "relu")
save("err_trailing_quantize_two_outputs", g.model([vi("x", [1, 4])], [vi("y", [1, 4], TensorProto.INT8), vi("z", [1, 4])]),
     error=["out.Q", "only output"])

# The operator-oriented format (QLinearConv).
g = G()
g.node("QuantizeLinear", ["x", g.c("xs", np.float32(0.02)), g.c("xz", np.int8(0))], ["xq"], "x.Q")
g.c("w", np.ones((2, 3, 1, 1), np.int8))
g.c("ws", np.float32(0.01))
g.c("wz", np.int8(0))
g.c("ys", np.float32(0.05))
g.c("yz", np.int8(0))
g.node("QLinearConv", ["xq", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["yq"], "qconv")
g.node("DequantizeLinear", ["yq", "ys", "yz"], ["y"], "y.DQ")
save("err_qoperator_format", g.model([vi("x", [1, 3, 4, 4])], [vi("y", [1, 2, 4, 4])]), error=["qconv", "QOperator", "QDQ"])

# A model input that is already quantized (uint8 input read by a DequantizeLinear).
g = G()
g.node("DequantizeLinear", ["xq", g.c("s", np.float32(0.02)), g.c("z", np.uint8(128))], ["y"], "in.DQ")
save("err_quantized_model_input", g.model([vi("xq", [1, 4], TensorProto.UINT8)], [vi("y", [1, 4])]),
     error=["in.DQ", "already quantized", "float inputs"])

print(json.dumps(manifest))
