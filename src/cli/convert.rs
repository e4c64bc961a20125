//! `ascend-ptq convert`: the options are [`ConvertArgs`] (shared with `aptq_convert`); this
//! module only prints the summary.

use anyhow::Result;
pub use ascend_ptq::quant::convert::args::ConvertArgs;
use ascend_ptq::quant::convert::convert;

pub fn run(args: ConvertArgs) -> Result<()> {
    let summary = convert(&args.into_options())?;
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "converted {} layer(s) to int8, {} Add input(s) and {} float-op input(s) to AscendQuant → AscendAntiQuant{}; removed {} Q/DQ pair(s), folded {} dequantized constant(s)",
        summary.converted,
        summary.add_inputs,
        summary.anti_quant_branches,
        if summary.trailing_quant { ", the trailing QuantizeLinear to AscendQuant" } else { "" },
        summary.removed_pairs,
        summary.folded_constants
    );
    for l in &summary.layers {
        let w = if l.scale_w.len() == 1 { "per tensor".to_string() } else { format!("{} channels", l.scale_w.len()) };
        println!("  {} ({}): scale_d {:e}, offset_d {}, weights {w}; bias {}", l.name, l.op_type, l.scale_d, l.offset_d, l.bias);
    }
    let o = &summary.outputs;
    for p in [&o.deploy_model, &o.fake_quant_model, &o.record, &o.quant_json, &o.convert_report] {
        println!("  wrote {}", p.display());
    }
    println!("done in {:.2} s", summary.wall_seconds);
    Ok(())
}
