"""Writes a few small valid OM files (docs/ascend-formats.md §12: header, partition table in both layouts,
a ge.proto.ModelDef) as the seed corpus of the `om_reader` fuzz target.
Usage: python fuzz/make_seeds.py fuzz/corpus/om_reader"""
import struct
import sys
from pathlib import Path


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


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    q = quantized_def()
    seeds = {
        "quantized_new.om": om_file("new", [block("new", [(0, q), (1, b"\7" * 40), (2, b"\t" * 12)])], "yolo_int8"),
        "quantized_old.om": om_file("old", [block("old", [(0, q), (1, b"\7" * 40), (3, b"\1\2\3")])], "yolo_int8"),
        "two_models_new.om": om_file("new", [block("new", [(0, plain_def("a"))]), block("new", [(0, plain_def("b")), (1, b"\0" * 8)])], "pair"),
        "plain_old.om": om_file("old", [block("old", [(0, plain_def("plain"))])], "plain"),
    }
    for name, data in seeds.items():
        (out / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz/corpus/om_reader")
