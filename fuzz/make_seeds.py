"""Writes the seed corpora of the fuzz targets (generated, never committed):

  python3 fuzz/make_seeds.py TARGET DIR     one target's seeds into DIR
  python3 fuzz/make_seeds.py all ROOT       every target's seeds into ROOT/<target>

om_reader: small valid OM files built from docs/ascend-formats.md §12 (both header versions, both
partition-table layouts, the CANN 8 layout with MODEL_INOUT_INFO first, root and flow models) and
the real ATC files of ../shared/fixtures/real-om with their weight / kernel / task partitions cut
to a few bytes (header, table and ModelDef kept), those under 64 KiB (the A3C Pong pair: one
0x10000000 file with and one without ATC version attributes). onnx_load: small hand-encoded
ONNX models (inline and external data, the external file being the target's `weights.bin`). calib_config, aipp_cfg, params_json: the AMCT configs, AIPP
config and parameter files of ../shared and scripts/, plus a few written here. calib_bins:
"<input_shape>\n<data_types>\n<bin>" inputs of every accepted data type.
Only the Python standard library is used."""
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Larger seeds slow libFuzzer down (every mutation copies and re-reads them).
MAX_SEED = 64 * 1024
SHARED = ROOT.parent / "shared"


def varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def int_field(field, v):
    return varint(field << 3) + varint(v)


def bytes_field(field, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(field << 3 | 2) + varint(len(b)) + b


def attr(field, key, value):
    """map<string, AttrDef> entry; AttrDef s = 2, i = 3, b = 5, list = 1 (ListValue.s = 2)."""
    if isinstance(value, bool):
        a = int_field(5, int(value))
    elif isinstance(value, int):
        a = int_field(3, value)
    elif isinstance(value, list):
        a = bytes_field(1, b"".join(bytes_field(2, s) for s in value) + int_field(20, 1))
    else:
        a = bytes_field(2, value)
    return bytes_field(field, bytes_field(1, key) + bytes_field(2, a))


def tensor_desc(name, dtype, dims, layout):
    shape = bytes_field(1, b"".join(varint(d) for d in dims))
    return bytes_field(1, name) + int_field(2, dtype) + bytes_field(3, shape) + bytes_field(4, layout)


def op(name, ty, attrs=(), inputs=(), outputs=()):
    o = bytes_field(1, name) + bytes_field(2, ty)
    o += b"".join(attr(10, k, v) for k, v in attrs)
    o += b"".join(bytes_field(33, d) for d in inputs)
    o += b"".join(bytes_field(34, d) for d in outputs)
    return o


def model_def(name, ops, attrs):
    graph = bytes_field(1, name + "_graph") + b"".join(bytes_field(6, o) for o in ops)
    m = bytes_field(1, name) + int_field(2, 2) + bytes_field(3, "1.11.z.0") + bytes_field(7, graph)
    return m + b"".join(attr(11, k, v) for k, v in attrs)


def block(layout, parts):
    b = struct.pack("<I", len(parts)) + (b"\0" * 4 if layout == "new" else b"")
    offset = 0
    for ty, payload in parts:
        if layout == "old":
            b += struct.pack("<III", ty, offset, len(payload))
        else:
            b += struct.pack("<I4xQQ", ty, offset, len(payload))
        offset += len(payload)
    return b + b"".join(p for _, p in parts)


def om_file(layout, blocks, name):
    body = b"".join(blocks)
    h = bytearray(256)
    h[0:4] = b"IMOD"
    struct.pack_into("<II", h, 4, 256, 0x20000000)
    struct.pack_into("<I", h, 76, len(body))
    h[82] = 1
    h[84:84 + len(name)] = name.encode()
    struct.pack_into("<II", h, 152, 2, len(blocks))
    h[160:168] = b"1.11.z.0"
    h[180] = 1
    if layout == "new":
        struct.pack_into("<Q", h, 184, len(body))
        h[192] = 1
    return bytes(h) + body


def quantized_def():
    return model_def("yolo_int8", [
        op("images", "Data", [("index", 0)], outputs=[tensor_desc("images", 4, [1, 640, 640, 3], "NHWC")]),
        op("scale", "Data", [("index", 1), ("data_type", 1)]),
        op("aipp_0", "Aipp", inputs=[tensor_desc("", 4, [1, 3, 640, 640], "NCHW")]),
        op("q", "AscendQuant", [("_datadump_original_op_names", ["Conv_0"])]),
        op("Conv_0", "Conv2D", [("_datadump_original_op_names", ["Conv_0", "Relu_1"])],
           inputs=[tensor_desc("", 3, [1, 3, 640, 640], "NC1HWC0")]),
        op("dq", "AscendDequant", [("dtype", 0)]),
        op("out", "NetOutput", inputs=[tensor_desc("output0", 1, [1, 84, 8400], "ND")]),
    ], [("soc_version", "Ascend310P3"), ("framework_type", "Onnx"), ("atc_cmdline", "atc --framework=5"),
        ("attr_model_out_nodes_name", ["Conv_99:0:output0"]), ("ascend_ptq_simulated", True)])


def plain_def(name):
    return model_def(name, [
        op("x", "Data", [("index", 0)], outputs=[tensor_desc("x", 2, [1, 8], "ND")]),
        op("Relu_0", "Relu"),
        op("out", "NetOutput", inputs=[tensor_desc("y", 2, [1, 8], "ND")]),
    ], [("soc_version", "Ascend310")])


def om_cann8(blocks, name, model_num=1, model_type=1):
    """§12.5: 0 in the u32 length, the u64 length at 184, model_num at 156."""
    body = b"".join(blocks)
    h = bytearray(256)
    h[0:4] = b"IMOD"
    struct.pack_into("<II", h, 4, 256, 0x20000000)
    h[82] = model_type
    h[84:84 + len(name)] = name.encode()
    struct.pack_into("<I", h, 156, model_num)
    h[160:168] = b"1.11.z.0"
    struct.pack_into("<Q", h, 184, len(body))
    return bytes(h) + body


def inout_tensor(name, size, fmt, dtype, dims):
    """§12.6 record: u64 size, i32 format, i32 dtype, u32 name/dims/dims_v2/range lengths."""
    d = b"".join(struct.pack("<q", x) for x in dims)
    return struct.pack("<QiiIIII", size, fmt, dtype, len(name), len(d), len(d), 0) + name.encode() + d + d


def inout_block(kind, tensors):
    value = struct.pack("<I", len(tensors)) + b"".join(tensors)
    return struct.pack("<II", kind, len(value)) + value


def shrunk_real_om(path):
    """A real ATC file with every partition but MODEL_DEF cut to 16 bytes (old table layout,
    as all the public files use), the header kept except the length."""
    data = path.read_bytes()
    h = bytearray(data[:256])
    (num,) = struct.unpack_from("<I", data, 256)
    entries = [struct.unpack_from("<III", data, 260 + 12 * i) for i in range(num)]
    at = 256 + 4 + 12 * num
    parts = []
    for ty, _, size in entries:
        payload = data[at:at + size]
        parts.append((ty, payload if ty == 0 else payload[:16]))
        at += size
    body = block("old", parts)
    struct.pack_into("<I", h, 76, len(body))
    return bytes(h) + body


def om_seeds():
    q = quantized_def()
    inout = inout_block(0, [inout_tensor("images", 1228800, 1, 4, [1, 640, 640, 3])]) + \
        inout_block(1, [inout_tensor("Conv_99:0:output0", 2688000, 2, 0, [1, 84, 8400])])
    seeds = {
        "quantized_new.om": om_file("new", [block("new", [(0, q), (1, b"\7" * 40), (2, b"\t" * 12)])], "yolo_int8"),
        "quantized_old.om": om_file("old", [block("old", [(0, q), (1, b"\7" * 40), (3, b"\1\2\3")])], "yolo_int8"),
        "two_models_new.om": om_file("new", [block("new", [(0, plain_def("a"))]), block("new", [(0, plain_def("b")), (1, b"\0" * 8)])], "pair"),
        "plain_old.om": om_file("old", [block("old", [(0, plain_def("plain"))])], "plain"),
        "cann8.om": om_cann8([block("new", [(8, inout), (0, q), (1, b"\7" * 40), (3, b"\1\2\3"), (2, b"\t" * 12)])], "lanenet"),
        "cann8_root.om": om_cann8([block("new", [(8, inout), (0, q)]), block("new", [(0, plain_def("s1"))]),
                                   block("new", [(0, plain_def("s2")), (2, b"\t" * 4)])], "root", model_num=3),
        "cann8_flow.om": om_cann8([block("new", [(0, bytes_field(1, "flow") + int_field(2, 2)), (6, b"\1" * 20), (7, b"\2" * 30)])],
                                  "flow", model_type=3),
    }
    real = SHARED / "fixtures" / "real-om"
    for path in sorted(real.glob("*.om")):
        seed = shrunk_real_om(path)
        # Inputs of hundreds of KB cut libFuzzer's speed tenfold: only the small ModelDefs.
        if len(seed) <= MAX_SEED:
            seeds["real_" + path.name] = seed
    return seeds


# ---- ONNX (onnx.proto field numbers: ModelProto ir_version 1, graph 7, opset_import 8;
# GraphProto node 1, name 2, initializer 5, input 11, output 12; NodeProto input 1, output 2,
# name 3, op_type 4, attribute 5; TensorProto dims 1, data_type 2, name 8, raw_data 9,
# external_data 13, data_location 14; ValueInfoProto name 1, type 2) --------------------------

def value_info(name, elem_type, dims):
    shape = b"".join(bytes_field(1, int_field(1, d)) for d in dims)
    tensor_type = int_field(1, elem_type) + bytes_field(2, shape)
    return bytes_field(1, name) + bytes_field(2, bytes_field(1, tensor_type))


def node(op_type, inputs, outputs, name, attrs=b""):
    n = b"".join(bytes_field(1, i) for i in inputs) + b"".join(bytes_field(2, o) for o in outputs)
    return n + bytes_field(3, name) + bytes_field(4, op_type) + attrs


def ints_attr(name, values):
    """AttributeProto: name 1, ints 8, type 20 (INTS = 7)."""
    return bytes_field(5, bytes_field(1, name) + b"".join(int_field(8, v) for v in values) + int_field(20, 7))


def tensor(name, dims, raw=None, external=None):
    t = b"".join(int_field(1, d) for d in dims) + int_field(2, 1) + bytes_field(8, name)
    if external is not None:
        for k, v in external:
            t += bytes_field(13, bytes_field(1, k) + bytes_field(2, v))
        t += int_field(14, 1)
    else:
        t += bytes_field(9, raw)
    return t


def onnx_model(nodes, inits, inputs, outputs, opset=13):
    g = b"".join(bytes_field(1, n) for n in nodes) + bytes_field(2, "g")
    g += b"".join(bytes_field(5, t) for t in inits)
    g += b"".join(bytes_field(11, v) for v in inputs) + b"".join(bytes_field(12, v) for v in outputs)
    return int_field(1, 8) + bytes_field(7, g) + bytes_field(8, bytes_field(1, "") + int_field(2, opset))


def onnx_seeds():
    w = struct.pack("<8f", *[0.5, -1.0, 0.25, 2.0, 1.5, -0.5, 0.75, 1.0])
    conv = node("Conv", ["x", "w"], ["y"], "conv0", ints_attr("kernel_shape", [1, 1]))
    seeds = {
        "conv_inline.onnx": onnx_model([conv, node("Relu", ["y"], ["z"], "relu0")], [tensor("w", [2, 4, 1, 1], raw=w)],
                                       [value_info("x", 1, [1, 4, 8, 8])], [value_info("z", 1, [1, 2, 8, 8])]),
        "conv_external.onnx": onnx_model([conv], [tensor("w", [2, 4, 1, 1], external=[("location", "weights.bin"), ("offset", "64"), ("length", "32")])],
                                         [value_info("x", 1, [1, 4, 8, 8])], [value_info("y", 1, [1, 2, 8, 8])]),
        "add_two_inputs.onnx": onnx_model([node("Add", ["a", "b"], ["c"], "add0"), node("Sigmoid", ["c"], ["d"], "sig0")], [],
                                          [value_info("a", 1, [1, 3]), value_info("b", 1, [1, 3])], [value_info("d", 1, [1, 3])]),
        "matmul_dynamic.onnx": onnx_model([node("MatMul", ["x", "m"], ["y"], "mm0")], [tensor("m", [4, 2], raw=w)],
                                          [value_info("x", 1, [0, 4])], [value_info("y", 1, [0, 2])]),
    }
    return seeds


def text_seeds(files, extra):
    seeds = {p.name: p.read_bytes() for p in files if p.is_file()}
    seeds.update({k: v.encode() for k, v in extra.items()})
    return seeds


def calib_config_seeds():
    return text_seeds(sorted((SHARED / "fixtures" / "amct").glob("*.cfg")), {
        "minimal.cfg": "batch_num: 2\nactivation_offset: true\n",
        "skip.cfg": 'batch_num: 1\nskip_layers: "Conv_0"\nskip_layer_types: "Gemm"\n'
                    "common_config { arq_quantize { channel_wise: true } ifmr_quantize { search_range_start: 0.7 "
                    "search_range_end: 1.3 search_step: 0.01 max_percentile: 0.999999 min_percentile: 0.999999 } }\n",
        "override.cfg": 'override_layer_configs { layer_name: "Conv_3" calibration_config { '
                        "hfmg_quantize { num_of_bins: 4096 } } }\n",
    })


def aipp_seeds():
    return text_seeds([SHARED / "seed" / "models" / "model_aipp.cfg"], {
        "yuv420.cfg": "aipp_op {\n  aipp_mode: static\n  input_format: YUV420SP_U8\n  src_image_size_w: 640\n"
                      "  src_image_size_h: 480\n  csc_switch: true\n  rbuv_swap_switch: false\n"
                      "  matrix_r0c0: 256\n  matrix_r0c1: 0\n  matrix_r0c2: 359\n  input_bias_0: 0\n"
                      "  mean_chn_0: 104\n  var_reci_chn_0: 0.0171\n}\n",
        "crop.cfg": "aipp_op {\n  aipp_mode: static\n  input_format: RGB888_U8\n  src_image_size_w: 700\n"
                    "  src_image_size_h: 700\n  crop: true\n  load_start_pos_w: 30\n  load_start_pos_h: 30\n"
                    "  crop_size_w: 640\n  crop_size_h: 640\n  min_chn_0: 0.5\n}\n",
        "gray.cfg": "aipp_op {\n  aipp_mode: static\n  input_format: YUV400_U8\n  src_image_size_w: 32\n"
                    "  src_image_size_h: 32\n  var_reci_chn_0: 0.00392\n}\n",
    })


def params_seeds():
    files = [SHARED / "seed" / "models" / "yolov6_params.json", SHARED / "seed" / "scripts" / "model_pre_params_template.json",
             ROOT / "scripts" / "demo-params.json", ROOT / "scripts" / "calib-params.json", ROOT / "scripts" / "demo-flow.json"]
    return text_seeds(files, {})


def calib_bin_seeds():
    def seed(shape, types, data):
        return shape.encode() + b"\n" + types.encode() + b"\n" + data
    f32 = struct.pack("<12f", *[i * 0.5 - 2 for i in range(12)])
    return {
        "f32.bin": seed("x:1,3,2,2", "float32", f32),
        "f16.bin": seed("x:1,2,3", "float16", b"\x00\x3c" * 6),
        "u8.bin": seed("images:1,4,4,3", "uint8", bytes(range(48))),
        "i32.bin": seed("ids:2,2", "int32", struct.pack("<4i", 1, -2, 3, 4)),
        "i64.bin": seed("ids:-1,2", "int64", struct.pack("<4q", 1, 2, 3, 4)),
        "two_inputs.bin": seed("a:1,3;b:1,3", "float32;float32", f32[:12]),
        "nan.bin": seed("x:1,3", "float32", struct.pack("<3f", 1.0, float("nan"), 2.0)),
    }


TARGETS = {
    "om_reader": om_seeds,
    "onnx_load": onnx_seeds,
    "calib_config": calib_config_seeds,
    "aipp_cfg": aipp_seeds,
    "params_json": params_seeds,
    "calib_bins": calib_bin_seeds,
}


def write(target, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = TARGETS[target]()
    for name, data in seeds.items():
        (out / name).write_bytes(data)
    print(f"{target}: {len(seeds)} seeds in {out}")


def main(argv):
    if len(argv) != 2 or (argv[0] != "all" and argv[0] not in TARGETS):
        sys.exit(f"usage: make_seeds.py (all ROOT | TARGET DIR); targets: {', '.join(TARGETS)}")
    if argv[0] == "all":
        for target in TARGETS:
            write(target, Path(argv[1]) / target)
    else:
        write(argv[0], argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
