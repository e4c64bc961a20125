//! The exact ATC command lines `build` runs, one per OM:
//!
//! ```text
//! atc --model=<abs model> --framework=5 --output=<abs out_dir>/<name>_<int8|fp16>
//!     --input_shape=<name:d,d,..;..> --soc_version=<soc>
//!     [--insert_op_conf=<abs aipp>] [--output_type=<T>] [--precision_mode=<m>] [extra args...]
//! ```
//! The int8 OM is built from the deploy model, the fp16 OM from the float model, with the same
//! options. Paths are absolute so the recorded command reruns from anywhere; ATC runs with the
//! output directory as its working directory, so the files it drops there (`fusion_result.json`,
//! `kernel_meta/`) stay next to the OMs. No `--log`: ATC's default, as users type it; pass
//! `-- --log=info` to change it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::error::AtcError;
use crate::onnx::input_shape::InputShape;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// From the deploy model (AscendQuant/AscendDequant → int8 kernels).
    Int8,
    /// From the float model (ATC's default precision, force_fp16).
    Fp16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Int8 => "int8",
            Precision::Fp16 => "fp16",
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = AtcError;
    fn from_str(s: &str) -> Result<Self, AtcError> {
        match s.to_ascii_lowercase().as_str() {
            "int8" => Ok(Precision::Int8),
            "fp16" => Ok(Precision::Fp16),
            _ => Err(AtcError::arg("--only", format!("'{s}': expected int8 or fp16"))),
        }
    }
}

/// Everything the user asked `build` for.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The float (fp32) ONNX model: source of the fp16 OM.
    pub model: Option<PathBuf>,
    /// The deploy model from `calibration`: source of the int8 OM.
    pub deploy: Option<PathBuf>,
    pub input_shapes: Vec<InputShape>,
    pub soc_version: String,
    pub aipp: Option<PathBuf>,
    pub output_type: Option<String>,
    pub precision_mode: Option<String>,
    pub out_dir: PathBuf,
    pub only: Option<Precision>,
    /// Passed to ATC after our options, unchanged.
    pub extra_args: Vec<String>,
    /// How the OM files are named.
    pub om_names: OmNames,
}

/// The file names of the two OMs, from the base name (the float model's stem).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OmNames {
    /// `<base>_int8.om`, `<base>_fp16.om` (`ascend-ptq build`).
    #[default]
    Short,
    /// `<base>_int8_deploy_model_inc_pre.om`, `<base>_fp16_deploy_model_inc_pre.om`, as the
    /// guide's repository scripts name them (`amct_onnx_act.sh`, `act.sh`).
    ReferenceScripts,
}

/// One planned ATC run.
#[derive(Debug, Clone, PartialEq)]
pub struct AtcInvocation {
    pub precision: Precision,
    /// `<model>_int8` / `<model>_fp16`: the OM file stem, also names the log.
    pub name: String,
    /// The flag that named the source model ("--deploy" or "--model").
    pub source_flag: &'static str,
    pub source_model: PathBuf,
    /// `--output` (ATC appends `.om`).
    pub output: PathBuf,
    pub om_path: PathBuf,
    pub log_path: PathBuf,
    /// ATC's arguments (without the program).
    pub args: Vec<String>,
}

/// `--output_type` values ATC documents (docs/ascend-formats.md §9); a per-node form `node:idx:TYPE;...` passes as is.
const OUTPUT_TYPES: &[&str] = &["FP32", "FP16", "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "UINT64", "INT64", "DOUBLE"];

/// Options `build` sets itself: giving them again after `--` would make ATC see them twice.
const MANAGED: &[&str] =
    &["--model", "--framework", "--output", "--input_shape", "--soc_version", "--insert_op_conf", "--output_type", "--precision_mode"];

/// The OM base name: the float model's file stem, else the deploy model's without `_deploy_model`.
pub fn base_name(req: &BuildRequest) -> String {
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    match (&req.model, &req.deploy) {
        (Some(m), _) => stem(m),
        (None, Some(d)) => {
            let s = stem(d);
            s.strip_suffix("_deploy_model").filter(|p| !p.is_empty()).map(str::to_string).unwrap_or(s)
        }
        (None, None) => "model".into(),
    }
}

/// `name:d,d;name2:d` as ATC reads it.
pub fn input_shape_arg(shapes: &[InputShape]) -> String {
    shapes
        .iter()
        .map(|s| format!("{}:{}", s.name, s.dims.iter().map(i64::to_string).collect::<Vec<_>>().join(",")))
        .collect::<Vec<_>>()
        .join(";")
}

fn utf8_abs(flag: &str, p: &Path) -> Result<(PathBuf, String), AtcError> {
    let abs = std::path::absolute(p).map_err(|e| AtcError::arg(flag, format!("{}: {e}", p.display())))?;
    let s = abs.to_str().ok_or_else(|| AtcError::arg(flag, format!("{}: the path is not valid UTF-8", p.display())))?.to_string();
    Ok((abs, s))
}

/// The ATC runs for `req`: int8 first, then fp16 (or the one `--only` names).
pub fn plan_builds(req: &BuildRequest) -> Result<Vec<AtcInvocation>, AtcError> {
    let wanted: &[Precision] = match req.only {
        Some(Precision::Int8) => &[Precision::Int8],
        Some(Precision::Fp16) => &[Precision::Fp16],
        None => &[Precision::Int8, Precision::Fp16],
    };
    if let Some(t) = &req.output_type
        && !t.contains(':')
        && !OUTPUT_TYPES.contains(&t.as_str())
    {
        return Err(AtcError::arg("--output_type", format!("'{t}': expected one of {}", OUTPUT_TYPES.join(", "))));
    }
    if req.soc_version.trim().is_empty() {
        return Err(AtcError::arg(
            "--soc_version",
            "empty; give the chip, e.g. Ascend310P3 (\"Ascend\" + the Chip Name of `npu-smi info`)",
        ));
    }
    for a in &req.extra_args {
        let key = a.split('=').next().unwrap_or(a);
        if MANAGED.contains(&key) {
            return Err(AtcError::arg(
                "-- (extra ATC arguments)",
                format!("'{a}' is set by build itself; use build's own {key} option instead"),
            ));
        }
    }
    let (out_dir, _) = utf8_abs("--out_dir", &req.out_dir)?;
    let aipp = req.aipp.as_deref().map(|p| utf8_abs("--aipp", p)).transpose()?;
    let base = base_name(req);
    let mut plans = Vec::new();
    for &precision in wanted {
        let (flag, source, why) = match precision {
            Precision::Int8 => {
                ("--deploy", &req.deploy, "the int8 OM is built from the deploy model of `calibration` (or use --only fp16)")
            }
            Precision::Fp16 => ("--model", &req.model, "the fp16 OM is built from the float model (or use --only int8)"),
        };
        let source = source.as_deref().ok_or_else(|| AtcError::arg(flag, format!("missing: {why}")))?;
        let (source_model, source_str) = utf8_abs(flag, source)?;
        let name = match req.om_names {
            OmNames::Short => format!("{base}_{}", precision.name()),
            OmNames::ReferenceScripts => format!("{base}_{}_deploy_model_inc_pre", precision.name()),
        };
        let output = out_dir.join(&name);
        let mut args = vec![
            format!("--model={source_str}"),
            "--framework=5".to_string(),
            format!("--output={}", output.to_str().unwrap_or_default()),
            format!("--input_shape={}", input_shape_arg(&req.input_shapes)),
            format!("--soc_version={}", req.soc_version),
        ];
        if let Some((_, a)) = &aipp {
            args.push(format!("--insert_op_conf={a}"));
        }
        if let Some(t) = &req.output_type {
            args.push(format!("--output_type={t}"));
        }
        if let Some(m) = &req.precision_mode {
            args.push(format!("--precision_mode={m}"));
        }
        args.extend(req.extra_args.iter().cloned());
        plans.push(AtcInvocation {
            precision,
            om_path: out_dir.join(format!("{name}.om")),
            log_path: out_dir.join(format!("{name}.atc.log")),
            name,
            source_flag: flag,
            source_model,
            output,
            args,
        });
    }
    Ok(plans)
}

/// A POSIX-shell word: unchanged when it has only safe characters, else single-quoted.
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !s.is_empty() && s.chars().all(safe) { s.to_string() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

/// The line to paste into a shell to rerun one ATC build: `cd DIR && atc ARGS`.
pub fn shell_command(program: &Path, args: &[String], cwd: &Path) -> String {
    let mut words = vec![shell_quote(&program.to_string_lossy())];
    words.extend(args.iter().map(|a| shell_quote(a)));
    format!("cd {} && {}", shell_quote(&cwd.to_string_lossy()), words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::input_shape::parse_input_shapes;

    fn request() -> BuildRequest {
        BuildRequest {
            model: Some("/m/yolov5s.onnx".into()),
            deploy: Some("/m/results/yolov5s_deploy_model.onnx".into()),
            input_shapes: parse_input_shapes("images:1,3,640,640").unwrap(),
            soc_version: "Ascend310P3".into(),
            aipp: Some("/m/aipp.cfg".into()),
            output_type: Some("FP32".into()),
            precision_mode: None,
            out_dir: "/out".into(),
            only: None,
            extra_args: vec!["--log=info".into()],
            om_names: OmNames::Short,
        }
    }

    #[test]
    fn plans_int8_from_deploy_then_fp16_from_model() {
        let plans = plan_builds(&request()).unwrap();
        assert_eq!(plans.len(), 2);
        assert_eq!(
            plans[0].args,
            [
                "--model=/m/results/yolov5s_deploy_model.onnx",
                "--framework=5",
                "--output=/out/yolov5s_int8",
                "--input_shape=images:1,3,640,640",
                "--soc_version=Ascend310P3",
                "--insert_op_conf=/m/aipp.cfg",
                "--output_type=FP32",
                "--log=info"
            ]
        );
        assert_eq!(plans[1].args[0], "--model=/m/yolov5s.onnx");
        assert_eq!(plans[1].om_path, Path::new("/out/yolov5s_fp16.om"));
        assert_eq!(plans[1].log_path, Path::new("/out/yolov5s_fp16.atc.log"));
    }

    #[test]
    fn only_one_build_needs_only_its_model() {
        let mut r = request();
        r.model = None;
        r.only = Some(Precision::Int8);
        let plans = plan_builds(&r).unwrap();
        assert_eq!((plans.len(), plans[0].name.as_str()), (1, "yolov5s_int8"));
        r.only = None;
        let e = plan_builds(&r).unwrap_err().to_string();
        assert!(e.starts_with("--model: missing") && e.contains("--only int8"), "{e}");
        r.extra_args = vec!["--soc_version=Ascend310".into()];
        r.model = Some("a.onnx".into());
        let e = plan_builds(&r).unwrap_err().to_string();
        assert!(e.contains("'--soc_version=Ascend310' is set by build itself"), "{e}");
        r.extra_args.clear();
        r.output_type = Some("fp33".into());
        assert!(plan_builds(&r).unwrap_err().to_string().starts_with("--output_type: 'fp33'"));
    }

    #[test]
    fn shell_command_quotes_only_what_needs_it() {
        let cmd = shell_command(Path::new("/opt/atc"), &["--output=/a b/x".into(), "--log=error".into(), "it's".into()], Path::new("/o"));
        assert_eq!(cmd, r"cd /o && /opt/atc '--output=/a b/x' --log=error 'it'\''s'");
    }
}
