//! The int8 ConvTranspose and AveragePool layers of deploy models (AscendQuant → layer) give
//! exactly the int32 results of the float ops run on the zero-point-corrected input
//! (q − offset_d) with the same integer weights and bias: window sums for AveragePool
//! (the float average times the kernel area).

mod common;

use std::collections::HashMap;

use ascend_ptq::engine::{Session, Tensor};
use ascend_ptq::onnx::proto::{AttributeProto, ModelProto, NodeProto, TensorProto, ValueInfoProto, type_proto};
use ascend_ptq::onnx::{DataType, TensorData};
use common::graph::*;

const OFFSET_D: i32 = -37;

/// Deterministic pseudo-random values in `lo..=hi` (splitmix64).
fn random(n: usize, seed: u64, lo: i32, hi: i32) -> Vec<i32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            lo + (z % (hi - lo + 1) as u64) as i32
        })
        .collect()
}

/// A graph output whose shape is left to inference.
fn output(name: &str, dtype: DataType) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(ascend_ptq::onnx::proto::TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: Some(dtype as i32), shape: None })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn dims(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// Deploy form: x → AscendQuant(scale 1, offset_d) → `layer` (reading "q") → int32 "acc".
/// With scale 1 and x = q − offset_d integral, the AscendQuant output is exactly q.
fn deploy_model(layer: NodeProto, initializers: Vec<TensorProto>, x_shape: &[usize]) -> ModelProto {
    let quant = node(
        "AscendQuant",
        "layer.quant",
        &["x"],
        &["q"],
        vec![attr_f("scale", 1.0), attr_f("offset", OFFSET_D as f32), attr_s("dst_type", "INT8")],
    );
    model(
        vec![quant, layer],
        initializers,
        vec![value_info("x", DataType::Float, &dims(x_shape))],
        vec![output("acc", DataType::Int32)],
        13,
    )
}

/// Float form: the same layer on x = q − offset_d, with float weights and bias.
fn float_model(layer: NodeProto, initializers: Vec<TensorProto>, x_shape: &[usize]) -> ModelProto {
    let mut layer = layer;
    layer.input[0] = "x".into();
    model(vec![layer], initializers, vec![value_info("x", DataType::Float, &dims(x_shape))], vec![output("acc", DataType::Float)], 13)
}

/// Random int8 activations q, as the float input x = q − offset_d.
fn input(shape: &[usize], seed: u64) -> Tensor {
    let x: Vec<f32> = random(shape.iter().product(), seed, -128, 127).into_iter().map(|q| (q - OFFSET_D) as f32).collect();
    Tensor::from_le_bytes(DataType::Float, shape, &x.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>(), "x").unwrap()
}

fn run(model: &ModelProto, x: &Tensor) -> Tensor {
    let session = Session::new(model, &HashMap::new()).unwrap_or_else(|e| panic!("plan: {e}"));
    let mut out = session.run(HashMap::from([("x".to_string(), x.clone())])).unwrap_or_else(|e| panic!("run: {e}"));
    out.remove(0).1
}

struct TransposeCase {
    name: &'static str,
    x: [usize; 4],
    /// C_in × C_out/group × kh × kw
    w: [usize; 4],
    bias: bool,
    attrs: Vec<AttributeProto>,
}

#[test]
fn int8_conv_transpose_matches_the_float_op_exactly() {
    let cases = vec![
        TransposeCase {
            // PP-OCRv4 det's p2o.ConvTranspose.*: 2×2 kernel, stride 2.
            name: "det 2x2 s2",
            x: [1, 8, 5, 6],
            w: [8, 4, 2, 2],
            bias: true,
            attrs: vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2]), attr_ints("pads", &[0, 0, 0, 0])],
        },
        TransposeCase {
            name: "stride 2, asymmetric pads, output_padding",
            x: [2, 4, 5, 4],
            w: [4, 6, 3, 3],
            bias: true,
            attrs: vec![attr_ints("strides", &[2, 2]), attr_ints("pads", &[1, 0, 2, 1]), attr_ints("output_padding", &[1, 1])],
        },
        TransposeCase {
            name: "group 2, stride 2x1",
            x: [1, 4, 6, 5],
            w: [4, 3, 3, 3],
            bias: true,
            attrs: vec![attr_i("group", 2), attr_ints("strides", &[2, 1]), attr_ints("pads", &[1, 1, 1, 1])],
        },
        TransposeCase {
            name: "depthwise group 4, no bias",
            x: [1, 4, 4, 4],
            w: [4, 1, 3, 3],
            bias: false,
            attrs: vec![attr_i("group", 4), attr_ints("strides", &[2, 2])],
        },
        TransposeCase {
            name: "dilation 2, 3x2 kernel, stride 1x2",
            x: [1, 3, 5, 5],
            w: [3, 2, 3, 2],
            bias: true,
            attrs: vec![attr_ints("dilations", &[2, 2]), attr_ints("strides", &[1, 2]), attr_ints("pads", &[2, 1, 1, 0])],
        },
        TransposeCase {
            // Full size 2·4 + 3 = 11 per axis: one extra row (negative pad), one column cropped.
            name: "output_shape",
            x: [1, 2, 5, 6],
            w: [2, 3, 3, 3],
            bias: true,
            attrs: vec![attr_ints("strides", &[2, 2]), attr_ints("output_shape", &[12, 12])],
        },
        TransposeCase {
            name: "auto_pad SAME_UPPER",
            x: [1, 2, 4, 5],
            w: [2, 2, 3, 3],
            bias: false,
            attrs: vec![attr_ints("strides", &[2, 2]), attr_s("auto_pad", "SAME_UPPER")],
        },
    ];
    for (i, case) in cases.into_iter().enumerate() {
        let seed = i as u64 * 10;
        let w = random(case.w.iter().product(), seed + 1, -128, 127);
        let group = case.attrs.iter().find(|a| a.name() == "group").map_or(1, |a| a.i()) as usize;
        let c_out = case.w[1] * group;
        let b = random(c_out, seed + 2, -200_000, 200_000);
        let inputs: &[&str] = if case.bias { &["q", "w", "b"] } else { &["q", "w"] };
        let layer = node("ConvTranspose", "layer", inputs, &["acc"], case.attrs);
        let wd = dims(&case.w);
        let int_init = vec![
            tensor("w", &wd, TensorData::I8(w.iter().map(|&v| v as i8).collect())),
            tensor("b", &[c_out as i64], TensorData::I32(b.clone())),
        ];
        let float_init = vec![
            tensor("w", &wd, TensorData::F32(w.iter().map(|&v| v as f32).collect())),
            tensor("b", &[c_out as i64], TensorData::F32(b.iter().map(|&v| v as f32).collect())),
        ];
        let x = input(&case.x, seed);
        let acc = run(&deploy_model(layer.clone(), int_init, &case.x), &x);
        let want = run(&float_model(layer, float_init, &case.x), &x);
        assert_eq!(acc.dtype(), DataType::Int32, "{}", case.name);
        assert_eq!(acc.shape(), want.shape(), "{}", case.name);
        // Every partial sum is an integer below 2^24, so the float op is exact too.
        let want: Vec<i64> = want.to_f64_vec().iter().map(|&v| v as i64).collect();
        assert_eq!(acc.to_i64_vec().unwrap(), want, "{}", case.name);
        eprintln!("{}: {:?} → {:?}, {} values equal", case.name, case.x, acc.shape(), want.len());
    }
}

fn avg_pool(attrs: Vec<AttributeProto>) -> NodeProto {
    node("AveragePool", "layer", &["q"], &["acc"], attrs)
}

#[test]
fn int8_average_pool_gives_the_window_sums_of_the_float_op() {
    // (name, input shape, kernel, attributes)
    type Case = (&'static str, [usize; 4], [usize; 2], Vec<AttributeProto>);
    let cases: Vec<Case> = vec![
        (
            // PP-OCRv4 rec's p2o.AveragePool.0.
            "rec 3x2 stride 3x2",
            [1, 5, 9, 8],
            [3, 2],
            vec![
                attr_ints("kernel_shape", &[3, 2]),
                attr_ints("strides", &[3, 2]),
                attr_ints("pads", &[0, 0, 0, 0]),
                attr_i("ceil_mode", 0),
                attr_i("count_include_pad", 0),
            ],
        ),
        (
            "3x3 stride 2, pads 1, count_include_pad 1",
            [2, 3, 7, 7],
            [3, 3],
            vec![
                attr_ints("kernel_shape", &[3, 3]),
                attr_ints("strides", &[2, 2]),
                attr_ints("pads", &[1, 1, 1, 1]),
                attr_i("count_include_pad", 1),
            ],
        ),
        (
            "ceil_mode 1 without a partial window",
            [1, 2, 6, 4],
            [2, 2],
            vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2]), attr_i("ceil_mode", 1)],
        ),
    ];
    for (i, (name, shape, kernel, attrs)) in cases.into_iter().enumerate() {
        let x = input(&shape, 100 + i as u64);
        let sums = run(&deploy_model(avg_pool(attrs.clone()), vec![], &shape), &x);
        let avg = run(&float_model(avg_pool(attrs), vec![], &shape), &x);
        assert_eq!(sums.dtype(), DataType::Int32, "{name}");
        assert_eq!(sums.shape(), avg.shape(), "{name}");
        let area = (kernel[0] * kernel[1]) as f64;
        let want: Vec<i64> = avg.to_f64_vec().iter().map(|&v| (v * area).round() as i64).collect();
        assert_eq!(sums.to_i64_vec().unwrap(), want, "{name}");
        // The values really are the sums of (q − offset_d), not averages.
        assert!(want.iter().any(|&v| v.abs() > 255), "{name}: {want:?}");
        eprintln!("{name}: {shape:?} → {:?}, {} window sums equal", sums.shape(), want.len());
    }
}

#[test]
fn int8_average_pool_without_one_divisor_is_refused() {
    let shape = [1, 2, 7, 7];
    let plan_error =
        |attrs: Vec<AttributeProto>, shape: &[usize]| match Session::new(&deploy_model(avg_pool(attrs), vec![], shape), &HashMap::new()) {
            Ok(_) => panic!("planned an int8 AveragePool whose windows have different divisors"),
            Err(e) => {
                eprintln!("refused: {e}");
                e.to_string()
            }
        };
    let e = plan_error(vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("pads", &[1, 1, 1, 1])], &shape);
    assert!(e.contains("'count_include_pad' = 0") && e.contains("'pads' = [1, 1, 1, 1]") && e.contains("layer"), "{e}");
    // 7 = 3·2 + 1: ceil_mode adds a last window holding one row only.
    let e = plan_error(vec![attr_ints("kernel_shape", &[2, 2]), attr_ints("strides", &[2, 2]), attr_i("ceil_mode", 1)], &shape);
    assert!(e.contains("'ceil_mode' = 1") && e.contains("averages 1 of the kernel's 2") && e.contains("'auto_pad' = NOTSET"), "{e}");
    let e = plan_error(vec![attr_ints("kernel_shape", &[3])], &[1, 2, 7]);
    assert!(e.contains("2-D") && e.contains("'kernel_shape'"), "{e}");
    // The same pools in float are fine: only the integer layer needs one divisor.
    let float = float_model(avg_pool(vec![attr_ints("kernel_shape", &[3, 3]), attr_ints("pads", &[1, 1, 1, 1])]), vec![], &shape);
    assert!(Session::new(&float, &HashMap::new()).is_ok());
}
