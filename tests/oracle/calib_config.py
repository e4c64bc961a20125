"""Parses an amct `--calibration_config` file with Google's protobuf text-format parser,
against a proto2 schema built here from docs/ascend-formats.md §8 (field names, types, defaults, oneofs,
required fields), and prints the effective values as JSON in the shape of our
`CalibrationConfig` (absent optional-without-default fields as null).

usage: calib_config.py FILE.cfg
exit 0 + JSON on stdout; exit 1 + "LINE:COL: message" on stderr when protobuf rejects it.
"""

from __future__ import annotations

import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

F = descriptor_pb2.FieldDescriptorProto
OPT, REP, REQ = F.LABEL_OPTIONAL, F.LABEL_REPEATED, F.LABEL_REQUIRED


def schema():
    fd = descriptor_pb2.FileDescriptorProto(name="amct_oracle.proto", package="oracle", syntax="proto2")
    fd.enum_type.add(name="FakequantPrecisionMode").value.add(name="FORCE_FP16_QUANT", number=1)

    def message(name, fields, oneofs=()):
        m = fd.message_type.add(name=name)
        for group in oneofs:
            m.oneof_decl.add(name=group)
        for num, fname, label, ftype, extra in fields:
            f = m.field.add(name=fname, number=num, label=label)
            if isinstance(ftype, str):
                f.type = F.TYPE_ENUM if ftype in ("FakequantPrecisionMode", "DstType") else F.TYPE_MESSAGE
                f.type_name = ".oracle." + ftype
            else:
                f.type = ftype
            if "default" in extra:
                f.default_value = extra["default"]
            if "oneof" in extra:
                f.oneof_index = extra["oneof"]
        return m

    dst = fd.enum_type.add(name="DstType")
    dst.value.add(name="INT8", number=1)
    dst.value.add(name="INT16", number=2)
    message("AMCTConfig", [
        (1, "batch_num", OPT, F.TYPE_UINT32, {"default": "1"}),
        (2, "activation_offset", OPT, F.TYPE_BOOL, {"default": "true"}),
        (10, "skip_layers", REP, F.TYPE_STRING, {}),
        (11, "skip_layer_types", REP, F.TYPE_STRING, {}),
        (12, "joint_quant", OPT, F.TYPE_BOOL, {"default": "false"}),
        (21, "fakequant_precision_mode", OPT, "FakequantPrecisionMode", {}),
        (50, "common_config", OPT, "CalibrationConfig", {}),
        (51, "override_layer_types", REP, "OverrideLayerType", {}),
        (100, "override_layer_configs", REP, "OverrideLayer", {}),
        (200, "do_fusion", OPT, F.TYPE_BOOL, {"default": "true"}),
        (201, "skip_fusion_layers", REP, F.TYPE_STRING, {}),
    ])
    message("OverrideLayerType", [(1, "layer_type", REQ, F.TYPE_STRING, {}),
                                  (2, "calibration_config", REQ, "CalibrationConfig", {})])
    message("OverrideLayer", [(1, "layer_name", REQ, F.TYPE_STRING, {}),
                              (2, "calibration_config", REQ, "CalibrationConfig", {})])
    message("CalibrationConfig", [
        (13, "arq_quantize", OPT, "ARQuantize", {"oneof": 0}),
        (15, "ada_quantize", OPT, "ADAquantize", {"oneof": 0}),
        (100, "ifmr_quantize", OPT, "FMRQuantize", {"oneof": 1}),
        (101, "hfmg_quantize", OPT, "HFMGQuantize", {"oneof": 1}),
        (200, "dmq_balancer", OPT, "DMQBalancer", {"oneof": 2}),
    ], oneofs=("wts_quant_algo", "acts_quant_algo", "tensor_balancer"))
    message("ARQuantize", [(1, "channel_wise", OPT, F.TYPE_BOOL, {}), (10, "quant_bits", OPT, F.TYPE_UINT32, {})])
    message("ADAquantize", [
        (1, "num_iteration", OPT, F.TYPE_UINT32, {"default": "10000"}),
        (2, "reg_param", OPT, F.TYPE_FLOAT, {"default": "0.01"}),
        (3, "beta_range_start", OPT, F.TYPE_FLOAT, {"default": "20"}),
        (4, "beta_range_end", OPT, F.TYPE_FLOAT, {"default": "2"}),
        (5, "warm_start", OPT, F.TYPE_FLOAT, {"default": "0.2"}),
        (10, "channel_wise", OPT, F.TYPE_BOOL, {}),
    ])
    message("DMQBalancer", [(1, "migration_strength", OPT, F.TYPE_FLOAT, {"default": "0.5"})])
    message("FMRQuantize", [
        (1, "search_range_start", OPT, F.TYPE_FLOAT, {"default": "0.7"}),
        (2, "search_range_end", OPT, F.TYPE_FLOAT, {"default": "1.3"}),
        (3, "search_step", OPT, F.TYPE_FLOAT, {"default": "0.01"}),
        (4, "max_percentile", OPT, F.TYPE_FLOAT, {"default": "0.999999"}),
        (5, "min_percentile", OPT, F.TYPE_FLOAT, {"default": "0.999999"}),
        (6, "asymmetric", OPT, F.TYPE_BOOL, {}),
        (10, "dst_type", OPT, "DstType", {"default": "INT8"}),
    ])
    message("HFMGQuantize", [
        (1, "num_of_bins", OPT, F.TYPE_UINT32, {"default": "4096"}),
        (2, "asymmetric", OPT, F.TYPE_BOOL, {}),
        (10, "dst_type", OPT, "DstType", {"default": "INT8"}),
    ])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("oracle.AMCTConfig"))


def opt(msg, name):
    return getattr(msg, name) if msg.HasField(name) else None


def dst(msg):
    return "INT16" if msg.dst_type == 2 else "INT8"


def algo(c):
    out = {"weights": None, "activations": None, "dmq_balancer": None}
    w = c.WhichOneof("wts_quant_algo")
    if w == "arq_quantize":
        a = c.arq_quantize
        out["weights"] = {"arq": {"channel_wise": opt(a, "channel_wise"), "quant_bits": opt(a, "quant_bits")}}
    elif w == "ada_quantize":
        a = c.ada_quantize
        out["weights"] = {"ada": {k: getattr(a, k) for k in
                                  ["num_iteration", "reg_param", "beta_range_start", "beta_range_end", "warm_start"]}
                          | {"channel_wise": opt(a, "channel_wise")}}
    act = c.WhichOneof("acts_quant_algo")
    if act == "ifmr_quantize":
        i = c.ifmr_quantize
        out["activations"] = {"ifmr": {k: getattr(i, k) for k in
                                       ["search_range_start", "search_range_end", "search_step",
                                        "max_percentile", "min_percentile"]}
                              | {"asymmetric": opt(i, "asymmetric"), "dst_type": dst(i)}}
    elif act == "hfmg_quantize":
        h = c.hfmg_quantize
        out["activations"] = {"hfmg": {"num_of_bins": h.num_of_bins, "asymmetric": opt(h, "asymmetric"), "dst_type": dst(h)}}
    if c.HasField("dmq_balancer"):
        out["dmq_balancer"] = {"migration_strength": c.dmq_balancer.migration_strength}
    return out


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    cls = schema()
    msg = cls()
    try:
        text_format.Parse(open(sys.argv[1], encoding="utf-8").read(), msg)
    except text_format.ParseError as e:
        print(str(e), file=sys.stderr)
        sys.exit(1)
    if not msg.IsInitialized():
        print("0:0 : missing required fields: " + ", ".join(msg.FindInitializationErrors()), file=sys.stderr)
        sys.exit(1)
    print(json.dumps({
        "batch_num": msg.batch_num,
        "activation_offset": msg.activation_offset,
        "skip_layers": list(msg.skip_layers),
        "skip_layer_types": list(msg.skip_layer_types),
        "joint_quant": msg.joint_quant,
        "fakequant_precision_mode": "FORCE_FP16_QUANT" if msg.HasField("fakequant_precision_mode") else None,
        "common_config": algo(msg.common_config),
        "override_layer_types": [{"layer_type": o.layer_type, "config": algo(o.calibration_config)}
                                 for o in msg.override_layer_types],
        "override_layer_configs": [{"layer_name": o.layer_name, "config": algo(o.calibration_config)}
                                   for o in msg.override_layer_configs],
        "do_fusion": msg.do_fusion,
        "skip_fusion_layers": list(msg.skip_fusion_layers),
    }))


if __name__ == "__main__":
    main()
