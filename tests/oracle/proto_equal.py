#!/usr/bin/env python3
"""Compare two ONNX ModelProto messages field by field.

Usage:
  proto_equal.py A.onnx B.onnx [--load-external]

Both files are read with onnx.load(path, load_external_data=True), so external
data is resolved relative to each model's own folder.

Default (strict): the messages must be equal field for field, including proto2
presence (a field explicitly set to its default value is not the same as an
absent field) and tensor encodings (raw_data vs float_data/int64_data/...).

--load-external: normalise tensor storage first. For every TensorProto in the
model (initializers, sparse initializers, Constant and other node attributes,
subgraphs, functions, training info) the external-data bookkeeping is
dropped (data_location, external_data) and the payload is compared as a
decoded array (dtype, shape, bytes) via onnx.numpy_helper.to_array, so inline
vs external and raw_data vs typed-field encodings compare equal on content.

Output: `equal` (exit 0), or the path of the first difference (exit 1), e.g.
  graph.node[12].attribute[0].i: 3 != 4
  graph.initializer['conv1.weight']: raw bytes differ (1 of 24 elements differ; ...)
  graph.node[3].attribute[0].t.data_location: present in B (DEFAULT(0)), absent in A
optionally followed by a context line naming the innermost node, e.g.
    where: graph.node[12] is Conv node 'p2o.Conv.0' -> 'conv2d_450.tmp_0' in both
Exit 2 on usage or load errors (message on stderr naming the file).
"""

from __future__ import annotations

import argparse
import struct
import sys

import numpy as np
import onnx
from google.protobuf.descriptor import FieldDescriptor as FD
from onnx import numpy_helper

from common import EXIT_DIFFERENT, EXIT_OK, EXIT_USAGE, load_onnx, short_repr

TENSOR = onnx.TensorProto.DESCRIPTOR
# TensorProto fields holding (or locating) the payload; replaced by an array
# comparison in --load-external mode.
TENSOR_DATA_FIELDS = frozenset(
    {
        "float_data",
        "int32_data",
        "string_data",
        "int64_data",
        "double_data",
        "uint64_data",
        "raw_data",
        "data_location",
        "external_data",
    }
)
# Repeated message fields whose elements are labelled by name (['x']) instead
# of by index when both sides agree on a non-empty, unique name.
NAMED_ELEMENTS = frozenset({"onnx.TensorProto", "onnx.ValueInfoProto"})


class Diff(Exception):
    """Raised with the message describing the first difference.

    `context` optionally names the innermost node that contains it.
    """

    def __init__(self, msg: str):
        super().__init__(msg)
        self.context: str | None = None


def fmt_value(v) -> str:
    """Readable value: numpy scalars via str() (shortest round-trip form)."""
    if isinstance(v, np.generic) and not isinstance(v, (np.bytes_, np.str_)):
        return str(v)
    return short_repr(v)


def fmt_pair(x: str, y: str, kx, ky) -> tuple[str, str]:
    """If two different values print the same (NaN payloads...), add bits."""
    if x == y and isinstance(kx, bytes) and isinstance(ky, bytes):
        return f"{x} (0x{kx[::-1].hex()})", f"{y} (0x{ky[::-1].hex()})"
    return x, y


def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def fmt_scalar(field, v) -> str:
    if field.type == FD.TYPE_ENUM:
        ev = field.enum_type.values_by_number.get(v)
        return f"{ev.name}({v})" if ev else str(v)
    if field.type in (FD.TYPE_STRING, FD.TYPE_BYTES):
        return short_repr(v)
    if field.type == FD.TYPE_FLOAT:
        return str(np.float32(v))
    return repr(v)


def scalar_key(field, v):
    """Value used for equality: floats compare bitwise (-0.0 != 0.0, NaN == NaN)."""
    if field.type == FD.TYPE_FLOAT:
        return struct.pack("<f", v)
    if field.type == FD.TYPE_DOUBLE:
        return struct.pack("<d", v)
    return v


def summary(field, v) -> str:
    if field.type != FD.TYPE_MESSAGE:
        return fmt_scalar(field, v)
    name = v.DESCRIPTOR.full_name
    if name == "onnx.NodeProto":
        out = f" -> {v.output[0]!r}" if len(v.output) else ""
        dom = f"{v.domain}::" if v.domain else ""
        return f"{dom}{v.op_type} node {v.name!r}{out}"
    if name == "onnx.TensorProto":
        dt = onnx.TensorProto.DataType.Name(v.data_type) if v.data_type else "UNDEFINED"
        return f"tensor {v.name!r} {dt}{list(v.dims)}"
    if any(f.name == "name" for f in v.DESCRIPTOR.fields):
        return f"{v.DESCRIPTOR.name} {v.name!r}"
    return v.DESCRIPTOR.name


def is_repeated(field) -> bool:
    # protobuf >= 7 dropped FieldDescriptor.label in favour of is_repeated.
    r = getattr(field, "is_repeated", None)
    return bool(r) if r is not None else field.label == FD.LABEL_REPEATED


def is_map(field) -> bool:
    return field.type == FD.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def first_element(field, v) -> str:
    """Summary of the first element of a non-empty repeated (or map) field."""
    if is_map(field):
        return f"key {next(iter(v))!r}"
    return summary(field, v[0])


def first_byte_diff(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    if n and a[:n] != b[:n]:
        x = np.frombuffer(a, np.uint8, n)
        y = np.frombuffer(b, np.uint8, n)
        return int(np.argmax(x != y))
    return n


def tensor_array(t):
    """Decode a TensorProto (already holding its data) into a numpy array."""
    # to_array refuses tensors still flagged external; they were loaded into
    # raw_data by onnx.load, so drop the flag on a copy.
    if t.data_location == onnx.TensorProto.EXTERNAL and t.HasField("raw_data"):
        c = onnx.TensorProto()
        c.CopyFrom(t)
        c.ClearField("data_location")
        del c.external_data[:]
        t = c
    return numpy_helper.to_array(t)


def array_diff_detail(x: np.ndarray, y: np.ndarray) -> str:
    if x.dtype != y.dtype or x.shape != y.shape or x.dtype == object:
        return ""
    xb = x.reshape(-1).view(np.uint8).reshape(x.size, -1) if x.size else x
    yb = y.reshape(-1).view(np.uint8).reshape(y.size, -1) if y.size else y
    neq = np.any(xb != yb, axis=1) if x.size else np.zeros(0, bool)
    if not neq.any():
        return ""
    flat = int(np.argmax(neq))
    idx = np.unravel_index(flat, x.shape) if x.ndim else ()
    at = ", ".join(map(str, idx))
    vx, vy = fmt_value(x.reshape(-1)[flat]), fmt_value(y.reshape(-1)[flat])
    return f"{int(neq.sum())} of {x.size} elements differ; first at [{at}]: {vx} != {vy}"


def compare_tensor_content(a, b, path: str) -> None:
    """--load-external mode: compare decoded payloads (dtype, shape, bytes)."""
    try:
        x = tensor_array(a)
    except Exception as e:  # noqa: BLE001
        raise Diff(f"{path}: cannot decode tensor in A: {e}") from None
    try:
        y = tensor_array(b)
    except Exception as e:  # noqa: BLE001
        raise Diff(f"{path}: cannot decode tensor in B: {e}") from None
    if x.dtype != y.dtype:
        raise Diff(f"{path}: dtype {x.dtype} != {y.dtype}")
    if x.shape != y.shape:
        raise Diff(f"{path}: shape {x.shape} != {y.shape}")
    if x.dtype == object:  # strings
        xs, ys = x.reshape(-1).tolist(), y.reshape(-1).tolist()
        if xs != ys:
            i = next(k for k, (p, q) in enumerate(zip(xs, ys)) if p != q)
            raise Diff(f"{path}: string data differ at flat index {i}: {xs[i]!r} != {ys[i]!r}")
        return
    if x.tobytes() != y.tobytes():
        detail = array_diff_detail(x, y)
        raise Diff(f"{path}: raw bytes differ" + (f" ({detail})" if detail else ""))


def present_fields(msg, skip=frozenset()):
    return {f.name: (f, v) for f, v in msg.ListFields() if f.name not in skip}


def compare_repeated(field, xs, ys, path: str, normalize: bool) -> None:
    if field.type == FD.TYPE_MESSAGE:
        if is_map(field):
            compare_map(field, xs, ys, path, normalize)
            return
        label_by_name = field.message_type.full_name in NAMED_ELEMENTS
        names_x = [getattr(m, "name", "") for m in xs] if label_by_name else []
        for i, (x, y) in enumerate(zip(xs, ys)):
            label = f"[{i}]"
            if label_by_name and x.name and x.name == y.name and names_x.count(x.name) == 1:
                label = f"[{x.name!r}]"
            try:
                compare_message(x, y, f"{path}{label}", normalize)
            except Diff as d:
                if d.context is None and field.message_type.full_name == "onnx.NodeProto":
                    sx, sy = summary(field, x), summary(field, y)
                    d.context = f"{path}{label} is " + (
                        f"{sx} in both" if sx == sy else f"{sx} in A, {sy} in B"
                    )
                raise
    else:
        if field.type == FD.TYPE_FLOAT:
            kx = np.asarray(list(xs), np.float32).tobytes()
            ky = np.asarray(list(ys), np.float32).tobytes()
            same_prefix = kx[: min(len(kx), len(ky))] == ky[: min(len(kx), len(ky))]
        elif field.type == FD.TYPE_DOUBLE:
            kx = np.asarray(list(xs), np.float64).tobytes()
            ky = np.asarray(list(ys), np.float64).tobytes()
            same_prefix = kx[: min(len(kx), len(ky))] == ky[: min(len(kx), len(ky))]
        else:
            n = min(len(xs), len(ys))
            same_prefix = list(xs[:n]) == list(ys[:n])
        if not same_prefix:
            for i, (x, y) in enumerate(zip(xs, ys)):
                kx, ky = scalar_key(field, x), scalar_key(field, y)
                if kx != ky:
                    extra = (
                        f" (length {len(xs)} vs {len(ys)})" if len(xs) > 1 or len(ys) > 1 else ""
                    )
                    sx, sy = fmt_pair(fmt_scalar(field, x), fmt_scalar(field, y), kx, ky)
                    raise Diff(f"{path}[{i}]: {sx} != {sy}{extra}")
    if len(xs) != len(ys):
        longer, side = (xs, "A") if len(xs) > len(ys) else (ys, "B")
        k = min(len(xs), len(ys))
        raise Diff(
            f"{path}: length {len(xs)} != {len(ys)} "
            f"(first extra element, in {side}: [{k}] {summary(field, longer[k])})"
        )


def compare_map(field, xs, ys, path: str, normalize: bool) -> None:
    vfield = field.message_type.fields_by_name["value"]
    kx, ky = set(xs.keys()), set(ys.keys())
    for k in sorted(kx ^ ky, key=repr):
        side = "A" if k in kx else "B"
        raise Diff(f"{path}[{k!r}]: present in {side} only")
    for k in sorted(kx, key=repr):
        if vfield.type == FD.TYPE_MESSAGE:
            compare_message(xs[k], ys[k], f"{path}[{k!r}]", normalize)
        elif scalar_key(vfield, xs[k]) != scalar_key(vfield, ys[k]):
            raise Diff(f"{path}[{k!r}]: {fmt_scalar(vfield, xs[k])} != {fmt_scalar(vfield, ys[k])}")


def compare_message(a, b, path: str, normalize: bool) -> None:
    desc = a.DESCRIPTOR
    if desc.full_name != b.DESCRIPTOR.full_name:
        raise Diff(f"{path}: message type {desc.full_name} != {b.DESCRIPTOR.full_name}")
    is_tensor = desc is TENSOR or desc.full_name == TENSOR.full_name
    skip = TENSOR_DATA_FIELDS if (normalize and is_tensor) else frozenset()
    fa, fb = present_fields(a, skip), present_fields(b, skip)
    number = {n: f.number for n, (f, _) in (fa | fb).items()}
    for name in sorted(number, key=number.get):
        p = join(path, name)
        if name not in fa or name not in fb:
            field, v = fa[name] if name in fa else fb[name]
            here, there = ("A", "B") if name in fa else ("B", "A")
            if is_repeated(field):
                # ListFields() omits empty repeated fields: "absent" == empty.
                raise Diff(
                    f"{p}: {len(v)} element(s) in {here}, absent in {there} "
                    f"(first: {first_element(field, v)})"
                )
            raise Diff(f"{p}: present in {here} ({summary(field, v)}), absent in {there}")
        field, x = fa[name]
        y = fb[name][1]
        if is_repeated(field):
            compare_repeated(field, x, y, p, normalize)
        elif field.type == FD.TYPE_MESSAGE:
            compare_message(x, y, p, normalize)
        elif field.type == FD.TYPE_BYTES and x != y:
            if is_tensor and name == "raw_data":
                detail = ""
                try:
                    detail = array_diff_detail(tensor_array(a), tensor_array(b))
                except Exception:  # noqa: BLE001 - best-effort detail only
                    pass
                if not detail:
                    detail = (
                        f"{len(x)} vs {len(y)} bytes, "
                        f"first difference at byte {first_byte_diff(x, y)}"
                    )
                raise Diff(f"{p}: raw bytes differ ({detail})")
            raise Diff(
                f"{p}: bytes differ ({len(x)} vs {len(y)} bytes, "
                f"first difference at byte {first_byte_diff(x, y)})"
            )
        elif scalar_key(field, x) != scalar_key(field, y):
            sx, sy = fmt_pair(
                fmt_scalar(field, x),
                fmt_scalar(field, y),
                scalar_key(field, x),
                scalar_key(field, y),
            )
            raise Diff(f"{p}: {sx} != {sy}")
    if normalize and is_tensor:
        compare_tensor_content(a, b, path)


def first_difference(a, b, normalize: bool) -> str | None:
    """Message for the first difference (plus a context line), None if equal."""
    try:
        compare_message(a, b, "", normalize)
    except Diff as d:
        return str(d) + (f"\n  where: {d.context}" if d.context else "")
    if not normalize:
        # Anything ListFields() cannot see (unknown fields) still shows up here.
        sa = a.SerializeToString(deterministic=True)
        sb = b.SerializeToString(deterministic=True)
        if sa != sb:
            return (
                f"<model>: serialized forms differ although all known fields are equal "
                f"(unknown fields?): {len(sa)} vs {len(sb)} bytes, "
                f"first difference at byte {first_byte_diff(sa, sb)}"
            )
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    ap.add_argument("a", metavar="A.onnx")
    ap.add_argument("b", metavar="B.onnx")
    ap.add_argument(
        "--load-external",
        action="store_true",
        help="normalise tensor storage (external/inline, raw/typed) before comparing",
    )
    args = ap.parse_args(argv)
    ma = load_onnx(args.a)
    mb = load_onnx(args.b)
    diff = first_difference(ma, mb, args.load_external)
    if diff is None:
        print("equal")
        return EXIT_OK
    print(diff)
    return EXIT_DIFFERENT


if __name__ == "__main__":
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(EXIT_USAGE)
    except Exception:  # noqa: BLE001 - an oracle crash must not read as "different"
        import traceback

        traceback.print_exc()
        sys.exit(EXIT_USAGE)
