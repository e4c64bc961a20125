use super::*;
use crate::onnx::build::{attr_floats as floats, attr_int as int, attr_ints as ints, attr_string as string, float_value_info as vi};
use crate::onnx::proto::attribute_proto::AttributeType;
use crate::onnx::proto::{AttributeProto, GraphProto, OperatorSetIdProto};

// ---- builders --------------------------------------------------------------------

fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: Some(format!("{op}_{}", outputs.first().unwrap_or(&""))),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn i64_init(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    Tensor::new(dims.to_vec(), TensorData::I64(v.to_vec())).to_proto(name)
}

fn f32_init(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    Tensor::new(dims.to_vec(), TensorData::F32(v.to_vec())).to_proto(name)
}

/// A weight initializer of the given shape (values irrelevant: zeros).
fn weight(name: &str, dims: &[i64]) -> TensorProto {
    let n = dims.iter().product::<i64>() as usize;
    f32_init(name, dims, &vec![0.0; n])
}

fn model(opset: i64, inputs: Vec<ValueInfoProto>, inits: Vec<TensorProto>, nodes: Vec<NodeProto>) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opset) }],
        graph: Some(GraphProto { name: Some("g".into()), node: nodes, input: inputs, initializer: inits, ..Default::default() }),
        ..Default::default()
    }
}

fn infer(m: &ModelProto) -> InferredShapes {
    infer_shapes(m, &HashMap::new()).unwrap()
}

fn shape<'a>(r: &'a InferredShapes, name: &str) -> &'a [i64] {
    r.shape(name).unwrap_or_else(|| panic!("'{name}' unresolved; unresolved nodes: {:?}", r.unresolved))
}

// ---- tests -----------------------------------------------------------------------

#[test]
fn conv_with_pads_strides_dilations_groups() {
    // X [1,4,10,12], W [6,2,3,3], group 2 (4 input channels = 2 per group × 2 groups),
    // pads [h_begin 1, w_begin 2, h_end 1, w_end 0], strides [2,3], dilations [2,1].
    // H: effective kernel (3-1)·2+1 = 5; floor((10+1+1-5)/2)+1 = floor(7/2)+1 = 4.
    // W: effective kernel 3;           floor((12+2+0-3)/3)+1 = floor(11/3)+1 = 4.
    // Channels = W.shape[0] = 6.
    let conv = node(
        "Conv",
        &["x", "w"],
        &["y"],
        vec![int("group", 2), ints("pads", &[1, 2, 1, 0]), ints("strides", &[2, 3]), ints("dilations", &[2, 1])],
    );
    // SAME_UPPER: ceil(10/3) = 4, ceil(12/3) = 4. VALID: floor((10-3)/3)+1 = 3, floor((12-3)/3)+1 = 4.
    let same = node("Conv", &["x", "w2"], &["same"], vec![string("auto_pad", "SAME_UPPER"), ints("strides", &[3, 3])]);
    let valid = node("Conv", &["x", "w2"], &["valid"], vec![string("auto_pad", "VALID"), ints("strides", &[3, 3])]);
    let m =
        model(13, vec![vi("x", &[1, 4, 10, 12])], vec![weight("w", &[6, 2, 3, 3]), weight("w2", &[8, 4, 3, 3])], vec![conv, same, valid]);
    let r = infer(&m);
    assert_eq!(shape(&r, "y"), &[1, 6, 4, 4]);
    assert_eq!(shape(&r, "same"), &[1, 8, 4, 4]);
    assert_eq!(shape(&r, "valid"), &[1, 8, 3, 4]);
    assert_eq!(r.dtypes["y"], FLOAT);
    assert!(r.unresolved.is_empty());
}

#[test]
fn conv_transpose_with_output_padding() {
    // X [1,8,5,7], W [8,3,3,3], group 2 → output channels W.shape[1]·group = 6.
    // out = stride·(in-1) + output_padding + ((k-1)·dilation+1) - pad_begin - pad_end:
    // H: 2·4 + 1 + 3 - 1 - 1 = 10;  W: 2·6 + 0 + 3 - 1 - 1 = 13.
    let ct = node(
        "ConvTranspose",
        &["x", "w"],
        &["y"],
        vec![int("group", 2), ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1]), ints("output_padding", &[1, 0])],
    );
    // Explicit output_shape wins over pads: [10, 14]. SAME_UPPER: in × stride = [10, 14].
    let explicit = node("ConvTranspose", &["x", "w"], &["y2"], vec![int("group", 2), ints("output_shape", &[10, 14])]);
    let same =
        node("ConvTranspose", &["x", "w"], &["y3"], vec![int("group", 2), ints("strides", &[2, 2]), string("auto_pad", "SAME_UPPER")]);
    let m = model(13, vec![vi("x", &[1, 8, 5, 7])], vec![weight("w", &[8, 3, 3, 3])], vec![ct, explicit, same]);
    let r = infer(&m);
    assert_eq!(shape(&r, "y"), &[1, 6, 10, 13]);
    assert_eq!(shape(&r, "y2"), &[1, 6, 10, 14]);
    assert_eq!(shape(&r, "y3"), &[1, 6, 10, 14]);
}

#[test]
fn max_pool_ceil_mode() {
    // X [1,3,32,31], kernel 3, stride 2, no pads, ceil_mode 1:
    // H: ceil((32-3)/2)+1 = ceil(14.5)+1 = 16 (floor mode would give 15);
    // W: ceil((31-3)/2)+1 = 14+1 = 15. Last windows start at 30 < 32 and 28 < 31: kept.
    let pool = node("MaxPool", &["x"], &["y", "idx"], vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2]), int("ceil_mode", 1)]);
    let floor = node("MaxPool", &["x"], &["y_floor"], vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2])]);
    // 1-D X [1,1,4], kernel 2, stride 2, pads [0,1], ceil_mode: ceil((4+1-2)/2)+1 = 3, but the
    // 3rd window would start at 4, inside the end padding, and "sliding windows that would
    // start in the right padded region are ignored" → 2.
    let edge = node(
        "MaxPool",
        &["z"],
        &["z_out"],
        vec![ints("kernel_shape", &[2]), ints("strides", &[2]), ints("pads", &[0, 1]), int("ceil_mode", 1)],
    );
    let m = model(13, vec![vi("x", &[1, 3, 32, 31]), vi("z", &[1, 1, 4])], vec![], vec![pool, floor, edge]);
    let r = infer(&m);
    assert_eq!(shape(&r, "y"), &[1, 3, 16, 15]);
    assert_eq!(shape(&r, "idx"), &[1, 3, 16, 15]);
    assert_eq!(r.dtypes["idx"], INT64);
    assert_eq!(shape(&r, "y_floor"), &[1, 3, 15, 15]);
    assert_eq!(shape(&r, "z_out"), &[1, 1, 2]);
}

#[test]
fn shape_gather_unsqueeze_concat_reshape_chain() {
    // Shape(X [2,3,4,5]) = [2,3,4,5]; Gather(index 0) = 2 (scalar); Unsqueeze(axes [0]) = [2];
    // Concat([2], [0, -1]) = [2, 0, -1]; Reshape: 0 copies dim 1 (3), -1 = 120/(2·3) = 20.
    let nodes = vec![
        node("Shape", &["x"], &["s"], vec![]),
        node("Gather", &["s", "zero"], &["n"], vec![int("axis", 0)]),
        node("Unsqueeze", &["n", "axes0"], &["n1"], vec![]),
        node("Concat", &["n1", "rest"], &["target"], vec![int("axis", 0)]),
        node("Reshape", &["x", "target"], &["y"], vec![]),
    ];
    let inits = vec![i64_init("zero", &[], &[0]), i64_init("axes0", &[1], &[0]), i64_init("rest", &[2], &[0, -1])];
    let m = model(13, vec![vi("x", &[-1, 3, 4, 5])], inits, nodes);
    let given = HashMap::from([("x".to_string(), vec![2, 3, 4, 5])]);
    let r = infer_shapes(&m, &given).unwrap();
    assert_eq!(r.value("s"), Some(&KnownValue::Ints(vec![2, 3, 4, 5])));
    assert_eq!(shape(&r, "n"), &[] as &[i64]);
    assert_eq!(r.value("n"), Some(&KnownValue::Ints(vec![2])));
    assert_eq!(r.value("target"), Some(&KnownValue::Ints(vec![2, 0, -1])));
    assert_eq!(shape(&r, "y"), &[2, 3, 20]);
    assert!(r.unresolved.is_empty(), "{:?}", r.unresolved);
}

#[test]
fn resize_sizes_computed_from_shape_times_two() {
    // Shape(X [1,3,20,30]) → Slice [2:4] = [20,30] → Mul 2 = [40,60] → Concat([1,3], ·) =
    // [1,3,40,60] → Resize(X, "", "", sizes): output = sizes.
    // Second Resize with constant scales [1,1,1.5,0.5]: floor(20·1.5) = 30, floor(30·0.5) = 15.
    let nodes = vec![
        node("Shape", &["x"], &["s"], vec![]),
        node("Slice", &["s", "starts", "ends"], &["hw"], vec![]),
        node("Mul", &["hw", "two"], &["hw2"], vec![]),
        node("Concat", &["nc", "hw2"], &["sizes"], vec![int("axis", 0)]),
        node("Resize", &["x", "", "", "sizes"], &["up"], vec![string("mode", "nearest")]),
        node("Resize", &["x", "", "scales"], &["scaled"], vec![]),
    ];
    let inits = vec![
        i64_init("starts", &[1], &[2]),
        i64_init("ends", &[1], &[4]),
        i64_init("two", &[1], &[2]),
        i64_init("nc", &[2], &[1, 3]),
        f32_init("scales", &[4], &[1.0, 1.0, 1.5, 0.5]),
    ];
    let m = model(13, vec![vi("x", &[1, 3, 20, 30])], inits, nodes);
    let r = infer(&m);
    assert_eq!(r.value("hw2"), Some(&KnownValue::Ints(vec![40, 60])));
    assert_eq!(shape(&r, "up"), &[1, 3, 40, 60]);
    assert_eq!(shape(&r, "scaled"), &[1, 3, 30, 15]);
}

#[test]
fn resize_scales_computed_in_float() {
    // Opset 11 (roi, scales both inputs): scales = Cast(Shape)·0 + 1 then Div by [1,1,0.5,0.25]
    // gives [1,1,2,4] as FLOAT; output = floor([1,3,20,30] × [1,1,2,4]) = [1,3,40,120].
    let nodes = vec![
        node("Shape", &["x"], &["s"], vec![]),
        node("Cast", &["s"], &["sf"], vec![int("to", FLOAT as i64)]),
        node("Div", &["sf", "sf"], &["ones"], vec![]),
        node("Div", &["ones", "den"], &["scales"], vec![]),
        node("Resize", &["x", "roi", "scales"], &["y"], vec![]),
    ];
    let inits = vec![f32_init("den", &[4], &[1.0, 1.0, 0.5, 0.25]), f32_init("roi", &[0], &[])];
    let m = model(11, vec![vi("x", &[1, 3, 20, 30])], inits, nodes);
    let r = infer(&m);
    assert_eq!(r.value("scales"), Some(&KnownValue::Floats(vec![1.0, 1.0, 2.0, 4.0])));
    assert_eq!(shape(&r, "y"), &[1, 3, 40, 120]);
}

#[test]
fn gemm_trans_b() {
    // A [4,7], B [5,7] with transB → B' [7,5]: output [M, N] = [4, 5].
    // transA: A [7,4] → A' [4,7], B [7,5]: [4, 5].
    let nodes =
        vec![node("Gemm", &["a", "b", "c"], &["y"], vec![int("transB", 1)]), node("Gemm", &["at", "bt"], &["y2"], vec![int("transA", 1)])];
    let inits = vec![weight("b", &[5, 7]), weight("c", &[5]), weight("bt", &[7, 5])];
    let m = model(13, vec![vi("a", &[4, 7]), vi("at", &[7, 4])], inits, nodes);
    let r = infer(&m);
    assert_eq!(shape(&r, "y"), &[4, 5]);
    assert_eq!(shape(&r, "y2"), &[4, 5]);
}

#[test]
fn batched_matmul_broadcasting() {
    // [2,1,3,4] × [5,4,6]: batch dims [2,1] and [5] broadcast to [2,5]; matrices 3×4 · 4×6.
    // → [2,5,3,6]. 1-D left [4] × [3,4,6] → [3,1,6] with the prepended 1 removed: [3,6].
    // [2,3,4] × 1-D [4] → [2,3,1] with the appended 1 removed: [2,3].
    let nodes = vec![
        node("MatMul", &["a", "b"], &["y"], vec![]),
        node("MatMul", &["v", "b3"], &["y1"], vec![]),
        node("MatMul", &["a3", "v"], &["y2"], vec![]),
    ];
    let inputs = vec![vi("a", &[2, 1, 3, 4]), vi("b", &[5, 4, 6]), vi("v", &[4]), vi("b3", &[3, 4, 6]), vi("a3", &[2, 3, 4])];
    let r = infer(&model(13, inputs, vec![], nodes));
    assert_eq!(shape(&r, "y"), &[2, 5, 3, 6]);
    assert_eq!(shape(&r, "y1"), &[3, 6]);
    assert_eq!(shape(&r, "y2"), &[2, 3]);
    // Inner-dimension mismatch [2,3]×[4,5] is reported, not an error.
    let bad = model(13, vec![vi("p", &[2, 3]), vi("q", &[4, 5])], vec![], vec![node("MatMul", &["p", "q"], &["o"], vec![])]);
    let r = infer(&bad);
    assert_eq!(r.unresolved.len(), 1);
    assert!(r.unresolved[0].2.contains("inner"), "{:?}", r.unresolved);
}

#[test]
fn split_opset13_with_split_input() {
    // X [2,10,3], axis 1, split input [3,7] → [2,3,3] and [2,7,3].
    let m13 = model(
        13,
        vec![vi("x", &[2, 10, 3])],
        vec![i64_init("sp", &[2], &[3, 7])],
        vec![node("Split", &["x", "sp"], &["a", "b"], vec![int("axis", 1)])],
    );
    let r = infer(&m13);
    assert_eq!(shape(&r, "a"), &[2, 3, 3]);
    assert_eq!(shape(&r, "b"), &[2, 7, 3]);
    // Opset 11 takes `split` as an attribute: [4,6] → [2,4,3] and [2,6,3].
    let m11 = model(
        11,
        vec![vi("x", &[2, 10, 3])],
        vec![],
        vec![node("Split", &["x"], &["a", "b"], vec![int("axis", 1), ints("split", &[4, 6])])],
    );
    let r = infer(&m11);
    assert_eq!(shape(&r, "a"), &[2, 4, 3]);
    // Opset 18, num_outputs 3 on dim 10: parts of ceil(10/3) = 4, the last smaller: 4, 4, 2.
    let m18 = model(
        18,
        vec![vi("x", &[2, 10, 3])],
        vec![],
        vec![node("Split", &["x"], &["a", "b", "c"], vec![int("axis", 1), int("num_outputs", 3)])],
    );
    let r = infer(&m18);
    assert_eq!((shape(&r, "a"), shape(&r, "b"), shape(&r, "c")), (&[2, 4, 3][..], &[2, 4, 3][..], &[2, 2, 3][..]));
}

#[test]
fn unknown_op_is_reported_and_the_rest_resolves() {
    // Relu keeps [1,3,8,8]; FooBar has no rule; Sigmoid after it has an unknown input;
    // Conv on x (W [4,3,1,1]) is independent → [1,4,8,8].
    let nodes = vec![
        node("Relu", &["x"], &["r"], vec![]),
        node("FooBar", &["r"], &["f"], vec![]),
        node("Sigmoid", &["f"], &["g"], vec![]),
        node("Conv", &["x", "w"], &["c"], vec![]),
    ];
    let m = model(13, vec![vi("x", &[1, 3, 8, 8])], vec![weight("w", &[4, 3, 1, 1])], nodes);
    let r = infer(&m);
    assert_eq!(shape(&r, "r"), &[1, 3, 8, 8]);
    assert_eq!(shape(&r, "c"), &[1, 4, 8, 8]);
    assert!(r.shape("f").is_none() && r.shape("g").is_none());
    let ops: Vec<&str> = r.unresolved.iter().map(|(_, op, _)| op.as_str()).collect();
    assert_eq!(ops, ["FooBar", "Sigmoid"]);
    assert_eq!(r.unresolved[0].0, "FooBar_f");
    assert!(r.unresolved[0].2.contains("no shape rule"), "{:?}", r.unresolved);
    assert!(r.unresolved[1].2.contains("'f'"), "{:?}", r.unresolved);
}

#[test]
fn declared_static_shape_is_a_fallback() {
    // FooBar has no rule, but its output is declared [1,16] in value_info.
    let mut m =
        model(13, vec![vi("x", &[1, 3, 8, 8])], vec![], vec![node("FooBar", &["x"], &["f"], vec![]), node("Relu", &["f"], &["g"], vec![])]);
    m.graph.as_mut().unwrap().value_info.push(vi("f", &[1, 16]));
    let r = infer(&m);
    assert_eq!(shape(&r, "g"), &[1, 16]);
    assert!(r.unresolved.is_empty());
}

#[test]
fn input_shapes_rank_mismatch_names_the_input() {
    let m = model(13, vec![vi("images", &[-1, 3, -1, -1])], vec![], vec![node("Relu", &["images"], &["y"], vec![])]);
    let given = HashMap::from([("images".to_string(), vec![3, 224, 224])]);
    let e = infer_shapes(&m, &given).unwrap_err().to_string();
    assert!(matches!(infer_shapes(&m, &given), Err(OnnxError::Graph { .. })));
    assert!(e.contains("'images'") && e.contains("rank 3") && e.contains("rank 4"), "{e}");
    let given = HashMap::from([("imgs".to_string(), vec![1, 3, 224, 224])]);
    let e = infer_shapes(&m, &given).unwrap_err().to_string();
    assert!(e.contains("'imgs'") && e.contains("not an input"), "{e}");
    // Without input_shapes, a symbolic dim leaves everything unknown (reported, not failed).
    let r = infer(&m);
    assert!(r.shape("images").is_none());
    assert_eq!(r.unresolved.len(), 1);
}

#[test]
fn initializers_are_not_inputs_for_input_shapes() {
    let mut m = model(13, vec![vi("x", &[1, 2])], vec![weight("w", &[2, 2])], vec![node("MatMul", &["x", "w"], &["y"], vec![])]);
    m.graph.as_mut().unwrap().input.push(vi("w", &[2, 2]));
    let given = HashMap::from([("w".to_string(), vec![2, 2])]);
    assert!(infer_shapes(&m, &given).is_err());
    assert_eq!(shape(&infer(&m), "y"), &[1, 2]);
}

#[test]
fn slice_negative_indices_clamping_and_steps() {
    // X [10, 8]: axis 0 starts -3 ends INT64_MAX → 7..10 (3 rows); axis 1 start 6, end -9
    // (→ -1 → clamped to -1), step -2 → 6, 4, 2, 0 (4 columns).
    let nodes = vec![node("Slice", &["x", "st", "en", "ax", "sp"], &["y"], vec![])];
    let inits = vec![
        i64_init("st", &[2], &[-3, 6]),
        i64_init("en", &[2], &[i64::MAX, -9]),
        i64_init("ax", &[2], &[0, -1]),
        i64_init("sp", &[2], &[1, -2]),
    ];
    let r = infer(&model(13, vec![vi("x", &[10, 8])], inits, nodes));
    assert_eq!(shape(&r, "y"), &[3, 4]);
    // Opset 9 attributes: starts [1], ends [1000] on axis 0 of a known [5] value → [20,30,40,50].
    let nodes = vec![node("Slice", &["k"], &["y"], vec![ints("starts", &[1]), ints("ends", &[1000])])];
    let r = infer(&model(9, vec![], vec![i64_init("k", &[5], &[10, 20, 30, 40, 50])], nodes));
    assert_eq!(r.value("y"), Some(&KnownValue::Ints(vec![20, 30, 40, 50])));
}

#[test]
fn integer_div_truncates_and_mod_follows_fmod() {
    // ONNX Div on integers truncates: [7, -7] / 2 = [3, -3] (numpy's // would give -4).
    // Mod (fmod 0) = a - floor(a/b)·b, sign of the divisor: 7 mod 3 = 1, -7 - (-3)·3 = 2.
    // Mod with fmod 1 keeps the sign of the dividend: -7 fmod 3 = -1.
    let nodes = vec![
        node("Div", &["a", "b"], &["q"], vec![]),
        node("Mod", &["a", "c"], &["m"], vec![]),
        node("Mod", &["a", "c"], &["fm"], vec![int("fmod", 1)]),
    ];
    let inits = vec![i64_init("a", &[2], &[7, -7]), i64_init("b", &[], &[2]), i64_init("c", &[1], &[3])];
    let r = infer(&model(13, vec![], inits, nodes));
    assert_eq!(r.value("q"), Some(&KnownValue::Ints(vec![3, -3])));
    assert_eq!(r.value("m"), Some(&KnownValue::Ints(vec![1, 2])));
    assert_eq!(r.value("fm"), Some(&KnownValue::Ints(vec![1, -1])));
}

#[test]
fn squeeze_unsqueeze_follow_the_opset() {
    // Opset 11: axes attribute. [1,3,1,5] squeeze [0] → [3,1,5]; unsqueeze [0,-1] of [3,1,5] →
    // output rank 5, axes {0,4} → [1,3,1,5,1].
    let nodes = vec![
        node("Squeeze", &["x"], &["s"], vec![ints("axes", &[0])]),
        node("Unsqueeze", &["s"], &["u"], vec![ints("axes", &[0, -1])]),
        node("Squeeze", &["x"], &["all"], vec![]),
    ];
    let r = infer(&model(11, vec![vi("x", &[1, 3, 1, 5])], vec![], nodes));
    assert_eq!(shape(&r, "s"), &[3, 1, 5]);
    assert_eq!(shape(&r, "u"), &[1, 3, 1, 5, 1]);
    // No axes: every 1 is removed → [3, 5].
    assert_eq!(shape(&r, "all"), &[3, 5]);
    // Opset 13: axes are input 1; an attribute is not read, so squeeze-all applies.
    let nodes = vec![node("Squeeze", &["x", "ax"], &["s"], vec![]), node("Squeeze", &["x"], &["t"], vec![ints("axes", &[0])])];
    let r = infer(&model(13, vec![vi("x", &[1, 3, 1, 5])], vec![i64_init("ax", &[1], &[2])], nodes));
    assert_eq!(shape(&r, "s"), &[1, 3, 5]);
    assert_eq!(shape(&r, "t"), &[3, 5]);
}

#[test]
fn reduce_pad_flatten_transpose_depth_to_space() {
    let nodes = vec![
        // ReduceMean opset 13: axes attribute [2,3], keepdims 1 → [2,3,1,1]; keepdims 0 → [2,3].
        node("ReduceMean", &["x"], &["m"], vec![ints("axes", &[2, 3])]),
        node("ReduceMean", &["x"], &["m0"], vec![ints("axes", &[-1, -2]), int("keepdims", 0)]),
        // ReduceSum opset 13 takes axes from input 1: [1] → [2,1,4,6].
        node("ReduceSum", &["x", "ax1"], &["s"], vec![]),
        // Pad opset 13, pads input [0,0,1,2, 0,0,3,4] → [2, 3, 4+1+3, 6+2+4] = [2,3,8,12].
        node("Pad", &["x", "pads"], &["p"], vec![]),
        // Flatten axis 2: [2·3, 4·6] = [6, 24].
        node("Flatten", &["x"], &["f"], vec![int("axis", 2)]),
        // Transpose perm [0,2,3,1] → [2,4,6,3]; default perm reverses → [6,4,3,2].
        node("Transpose", &["x"], &["t"], vec![ints("perm", &[0, 2, 3, 1])]),
        node("Transpose", &["x"], &["tr"], vec![]),
        // DepthToSpace blocksize 2 on [2,12,4,6] → [2, 12/4, 8, 12] = [2,3,8,12].
        node("DepthToSpace", &["d"], &["ds"], vec![int("blocksize", 2)]),
    ];
    let inits = vec![i64_init("ax1", &[1], &[1]), i64_init("pads", &[8], &[0, 0, 1, 2, 0, 0, 3, 4])];
    let r = infer(&model(13, vec![vi("x", &[2, 3, 4, 6]), vi("d", &[2, 12, 4, 6])], inits, nodes));
    assert_eq!(shape(&r, "m"), &[2, 3, 1, 1]);
    assert_eq!(shape(&r, "m0"), &[2, 3]);
    assert_eq!(shape(&r, "s"), &[2, 1, 4, 6]);
    assert_eq!(shape(&r, "p"), &[2, 3, 8, 12]);
    assert_eq!(shape(&r, "f"), &[6, 24]);
    assert_eq!(shape(&r, "t"), &[2, 4, 6, 3]);
    assert_eq!(shape(&r, "tr"), &[6, 4, 3, 2]);
    assert_eq!(shape(&r, "ds"), &[2, 3, 8, 12]);
}

#[test]
fn constant_range_constant_of_shape_expand_where() {
    let value_ints = AttributeProto {
        name: Some("value_ints".into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: vec![2, 3],
        ..Default::default()
    };
    let nodes = vec![
        // Constant value_ints [2,3] → shape [2].
        node("Constant", &[], &["c"], vec![value_ints]),
        // ConstantOfShape([2,3]) → [2,3] of FLOAT 0.
        node("ConstantOfShape", &["c"], &["zeros"], vec![]),
        // Range(10, 4, -2): max(ceil((4-10)/-2), 0) = 3 elements: 10, 8, 6.
        node("Range", &["ten", "four", "mtwo"], &["r"], vec![]),
        // Expand [3,1] to [2,1,4]: broadcast → [2,3,4].
        node("Expand", &["col", "eshape"], &["e"], vec![]),
        // Equal(c, [2,2]) = [1,0]; Where(eq, c, [9,9]) = [2,9].
        node("Equal", &["c", "twos"], &["eq"], vec![]),
        node("Where", &["eq", "c", "nines"], &["w"], vec![]),
    ];
    let inits = vec![
        i64_init("ten", &[], &[10]),
        i64_init("four", &[], &[4]),
        i64_init("mtwo", &[], &[-2]),
        i64_init("eshape", &[3], &[2, 1, 4]),
        i64_init("twos", &[2], &[2, 2]),
        i64_init("nines", &[2], &[9, 9]),
    ];
    let r = infer(&model(13, vec![vi("col", &[3, 1])], inits, nodes));
    assert_eq!(r.value("c"), Some(&KnownValue::Ints(vec![2, 3])));
    assert_eq!(shape(&r, "zeros"), &[2, 3]);
    assert_eq!(r.dtypes["zeros"], FLOAT);
    assert_eq!(r.value("r"), Some(&KnownValue::Ints(vec![10, 8, 6])));
    assert_eq!(shape(&r, "e"), &[2, 3, 4]);
    assert_eq!(r.value("eq"), Some(&KnownValue::Ints(vec![1, 0])));
    assert_eq!(r.dtypes["eq"], BOOL);
    assert_eq!(r.value("w"), Some(&KnownValue::Ints(vec![2, 9])));
}

#[test]
fn upsample_forms_and_ascend_ops() {
    // Opset 8 scales attribute [1,1,2,3] on [1,2,5,5] → floor(5·2), floor(5·3) = [1,2,10,15].
    let nodes = vec![
        node("Upsample", &["x"], &["u"], vec![floats("scales", &[1.0, 1.0, 2.0, 3.0])]),
        node("AscendQuant", &["x"], &["q"], vec![string("dst_type", "INT8")]),
        node("AscendDequant", &["q", "deq"], &["dq"], vec![int("dtype", 1)]),
    ];
    let r = infer(&model(8, vec![vi("x", &[1, 2, 5, 5])], vec![weight("deq", &[2])], nodes));
    assert_eq!(shape(&r, "u"), &[1, 2, 10, 15]);
    assert_eq!(shape(&r, "dq"), &[1, 2, 5, 5]);
    assert_eq!((r.dtypes["q"], r.dtypes["dq"]), (INT8, FLOAT16));
    // Opset 9 scales input [1,1,1.5,1.5] → floor(5·1.5) = 7.
    let nodes = vec![node("Upsample", &["x", "sc"], &["u"], vec![])];
    let r = infer(&model(9, vec![vi("x", &[1, 2, 5, 5])], vec![f32_init("sc", &[4], &[1.0, 1.0, 1.5, 1.5])], nodes));
    assert_eq!(shape(&r, "u"), &[1, 2, 7, 7]);
}

#[test]
fn large_values_are_not_tracked() {
    // [100, 100] = 10000 elements > MAX_KNOWN_ELEMENTS: shape known, value dropped.
    let nodes = vec![node("ConstantOfShape", &["s"], &["big"], vec![])];
    let r = infer(&model(13, vec![], vec![i64_init("s", &[2], &[100, 100])], nodes));
    assert_eq!(shape(&r, "big"), &[100, 100]);
    assert!(r.value("big").is_none());
}

#[test]
fn cycle_is_an_error() {
    let nodes = vec![node("Relu", &["b"], &["a"], vec![]), node("Relu", &["a"], &["b"], vec![])];
    let e = infer_shapes(&model(13, vec![], vec![], nodes), &HashMap::new()).unwrap_err().to_string();
    assert!(e.contains("cycle"), "{e}");
}
