//! The calibration set as `amct_onnx calibration` receives it (docs/ascend-formats.md §1): `--input_shape`,
//! `--data_dir "d1;d2"` (one directory per input, same order), `--data_types "float32;uint8"`
//! and `--batch_num N`.
//!
//! Each directory is listed and sorted by byte-wise file name (Python's string sort, so
//! `10.bin` comes before `2.bin`); batch `i` is the `i`-th file of every directory; a file is
//! the raw little-endian array of exactly one full batch of its input's shape (no header);
//! files past `batch_num` are ignored. Files are memory-mapped and converted to f32 one batch
//! at a time, so memory does not grow with the number of files.
//!
//! Deliberate differences from amct_onnx (docs/ascend-formats.md §1.2), which fails
//! later or silently: directories inside a data directory and a `manifest.json` (written by
//! our `preprocess` beside its batch files) are not batches; directories holding different
//! numbers of files are an error, since the i-th files would then probably not belong
//! together; every file's size is checked when the set is opened, before any calibration work.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use half::f16;
use memmap2::Mmap;
use ndarray::{ArrayD, IxDyn};

use crate::engine::Tensor;
use crate::onnx::input_shape::parse_input_shapes;

/// The companion file our `preprocess` writes next to the batch files; never a batch.
const MANIFEST_NAME: &str = "manifest.json";

#[derive(Debug, thiserror::Error)]
pub enum CalibError {
    #[error("{flag}: {detail}")]
    Argument { flag: &'static str, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--data_dir: directory {dir} of input '{input}': {source}")]
    Dir {
        input: String,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("input '{input}': {path}: {detail}")]
    File { input: String, path: PathBuf, detail: String },
    #[error("batch {index} requested but the calibration set has {batch_num} batches (0..{batch_num})")]
    BatchIndex { index: usize, batch_num: usize },
}

pub type Result<T, E = CalibError> = std::result::Result<T, E>;

fn io_err(path: &Path, source: std::io::Error) -> CalibError {
    CalibError::Io { path: path.to_path_buf(), source }
}

/// An element type accepted by `--data_types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalibDType {
    F64,
    F32,
    F16,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl CalibDType {
    /// In the order amct_onnx documents them.
    pub const ALL: [CalibDType; 12] =
        [Self::F64, Self::F32, Self::F16, Self::I8, Self::I16, Self::I32, Self::I64, Self::U8, Self::U16, Self::U32, Self::U64, Self::Bool];

    /// The numpy name used by `--data_types`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F64 => "float64",
            Self::F32 => "float32",
            Self::F16 => "float16",
            Self::I8 => "int8",
            Self::I16 => "int16",
            Self::I32 => "int32",
            Self::I64 => "int64",
            Self::U8 => "uint8",
            Self::U16 => "uint16",
            Self::U32 => "uint32",
            Self::U64 => "uint64",
            Self::Bool => "bool",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::I8 | Self::U8 | Self::Bool => 1,
            Self::F16 | Self::I16 | Self::U16 => 2,
            Self::F32 | Self::I32 | Self::U32 => 4,
            Self::F64 | Self::I64 | Self::U64 => 8,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Appends the little-endian elements of `bytes` to `out` as f32, the way numpy's
    /// `astype(np.float32)` does (round to nearest; bool: nonzero → 1).
    fn extend_f32(self, bytes: &[u8], out: &mut Vec<f32>) {
        macro_rules! conv {
            ($t:ty, $n:expr, |$v:ident| $e:expr) => {
                out.extend(bytes.chunks_exact($n).map(|c| {
                    let $v = <$t>::from_le_bytes(c.try_into().expect("chunk size"));
                    $e
                }))
            };
        }
        match self {
            Self::F32 => conv!(f32, 4, |v| v),
            Self::F64 => conv!(f64, 8, |v| v as f32),
            Self::F16 => conv!(u16, 2, |v| f16::from_bits(v).to_f32()),
            Self::I8 => out.extend(bytes.iter().map(|&b| b as i8 as f32)),
            Self::U8 => out.extend(bytes.iter().map(|&b| b as f32)),
            Self::Bool => out.extend(bytes.iter().map(|&b| if b != 0 { 1.0 } else { 0.0 })),
            Self::I16 => conv!(i16, 2, |v| v as f32),
            Self::U16 => conv!(u16, 2, |v| v as f32),
            Self::I32 => conv!(i32, 4, |v| v as f32),
            Self::U32 => conv!(u32, 4, |v| v as f32),
            Self::I64 => conv!(i64, 8, |v| v as f32),
            Self::U64 => conv!(u64, 8, |v| v as f32),
        }
    }
}

fn accepted_dtypes() -> String {
    CalibDType::ALL.map(CalibDType::name).join(", ")
}

fn dims_text(dims: &[usize]) -> String {
    if dims.is_empty() { "scalar".into() } else { dims.iter().map(usize::to_string).collect::<Vec<_>>().join("×") }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// One model input of the calibration set.
#[derive(Debug, Clone)]
pub struct CalibInput {
    name: String,
    dtype: CalibDType,
    /// Fully resolved (a `-1` of `--input_shape` replaced by what the file size gives).
    shape: Vec<usize>,
    /// Whether `--input_shape` had a `-1`, resolved from the first file.
    resolved: bool,
    dir: PathBuf,
    /// The first `batch_num` files in byte-wise name order.
    files: Vec<PathBuf>,
}

impl CalibInput {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn dtype(&self) -> CalibDType {
        self.dtype
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The file of each batch, in batch order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
    fn elements(&self) -> usize {
        self.shape.iter().product()
    }
    fn file_err(&self, path: &Path, detail: String) -> CalibError {
        CalibError::File { input: self.name.clone(), path: path.to_path_buf(), detail }
    }
    /// The error for a file (after the first) that is not one batch.
    fn size_err(&self, path: &Path, len: u64) -> CalibError {
        let mut detail = size_mismatch(&self.shape, self.dtype, len);
        if self.resolved {
            detail += &format!("; the -1 dim of --input_shape was resolved from the size of {}", self.files[0].display());
        }
        self.file_err(path, detail)
    }
}

/// One calibration batch: an f32 tensor per input, in `--input_shape` order.
#[derive(Debug, Clone)]
pub struct Batch {
    pub index: usize,
    pub inputs: Vec<(String, Tensor)>,
}

impl Batch {
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.inputs.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
    /// The feed of [`crate::engine::Session::run`].
    pub fn into_map(self) -> HashMap<String, Tensor> {
        self.inputs.into_iter().collect()
    }
}

/// A validated calibration set; batches are read on demand.
#[derive(Debug, Clone)]
pub struct CalibrationSet {
    inputs: Vec<CalibInput>,
    batch_num: usize,
}

/// Splits a `;`-separated list argument, ignoring blanks around items and a trailing `;`.
fn split_list(arg: &str) -> Vec<&str> {
    arg.split(';').map(str::trim).filter(|s| !s.is_empty()).collect()
}

/// The data files of `dir` in byte-wise name order (directories and our manifest skipped).
fn list_files(input: &str, dir: &Path) -> Result<Vec<PathBuf>> {
    let dir_err = |source| CalibError::Dir { input: input.to_string(), dir: dir.to_path_buf(), source };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(dir_err)? {
        let entry = entry.map_err(dir_err)?;
        let path = entry.path();
        // Follows symlinks, as opening the file would.
        let meta = std::fs::metadata(&path).map_err(|e| io_err(&path, e))?;
        if meta.is_dir() || entry.file_name() == MANIFEST_NAME {
            continue;
        }
        entries.push((entry.file_name(), path));
    }
    entries.sort_by(|a, b| a.0.as_encoded_bytes().cmp(b.0.as_encoded_bytes()));
    Ok(entries.into_iter().map(|(_, p)| p).collect())
}

fn file_len(path: &Path) -> Result<u64> {
    Ok(std::fs::metadata(path).map_err(|e| io_err(path, e))?.len())
}

impl CalibrationSet {
    /// Opens and validates the set: argument counts, data types, file counts and the size of
    /// every file that will be read. No file content is read here.
    pub fn open(input_shape: &str, data_dirs: &str, data_types: &str, batch_num: usize) -> Result<Self> {
        let shapes = parse_input_shapes(input_shape).map_err(|e| CalibError::Argument { flag: "--input_shape", detail: e.0 })?;
        if batch_num == 0 {
            return Err(CalibError::Argument { flag: "--batch_num", detail: "must be at least 1".into() });
        }
        let names = shapes.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
        let dirs = split_list(data_dirs);
        let types = split_list(data_types);
        for (flag, given, what) in [("--data_dir", dirs.len(), "directory"), ("--data_types", types.len(), "data type")] {
            if given != shapes.len() {
                return Err(CalibError::Argument {
                    flag,
                    detail: format!(
                        "gives {} but --input_shape gives {} ({names}); give one {what} per input, in the same order, separated by ';'",
                        plural(given, what),
                        plural(shapes.len(), "input"),
                    ),
                });
            }
        }

        let mut inputs = Vec::with_capacity(shapes.len());
        let mut counts = Vec::with_capacity(shapes.len());
        for ((shape, dir), ty) in shapes.iter().zip(&dirs).zip(&types) {
            let dtype = CalibDType::parse(ty).ok_or_else(|| CalibError::Argument {
                flag: "--data_types",
                detail: format!("unknown data type {ty:?} for input '{}'; accepted: {}", shape.name, accepted_dtypes()),
            })?;
            let dir = PathBuf::from(dir);
            let all = list_files(&shape.name, &dir)?;
            if all.len() < batch_num {
                return Err(CalibError::Argument {
                    flag: "--data_dir",
                    detail: format!(
                        "directory {} of input '{}' holds {} but --batch_num is {batch_num} (each batch reads one file per input)",
                        dir.display(),
                        shape.name,
                        plural(all.len(), "file"),
                    ),
                });
            }
            counts.push(all.len());
            let files = all.into_iter().take(batch_num).collect::<Vec<_>>();
            let resolved = shape.dims.contains(&-1);
            let mut input = CalibInput { name: shape.name.clone(), dtype, shape: Vec::new(), resolved, dir, files };
            input.shape = resolve_shape(&input, &shape.dims)?;
            inputs.push(input);
        }
        if counts.iter().any(|&c| c != counts[0]) {
            let list = inputs.iter().zip(&counts).map(|(i, c)| format!("'{}': {c} in {}", i.name, i.dir.display()));
            return Err(CalibError::Argument {
                flag: "--data_dir",
                detail: format!(
                    "the input directories hold different numbers of files ({}); batch i pairs the i-th file (by name) of every \
                     directory, so each directory must hold the same number of files",
                    list.collect::<Vec<_>>().join(", ")
                ),
            });
        }
        for input in &inputs {
            let expected = (input.elements() * input.dtype.size()) as u64;
            for path in &input.files[1..] {
                let len = file_len(path)?;
                if len != expected {
                    return Err(input.size_err(path, len));
                }
            }
        }
        Ok(CalibrationSet { inputs, batch_num })
    }

    /// As [`Self::open`] with as many batches as the directories hold, at most `limit`: a
    /// held-out evaluation set (`--eval_data_dir`) is read whole unless capped.
    pub fn open_up_to(input_shape: &str, data_dirs: &str, data_types: &str, limit: Option<usize>) -> Result<Self> {
        let shapes = parse_input_shapes(input_shape).map_err(|e| CalibError::Argument { flag: "--input_shape", detail: e.0 })?;
        let (first, dir) = match (shapes.first(), split_list(data_dirs).first()) {
            (Some(s), Some(d)) => (s.name.clone(), PathBuf::from(d)),
            _ => return Self::open(input_shape, data_dirs, data_types, 1),
        };
        let available = list_files(&first, &dir)?.len();
        if available == 0 {
            return Err(CalibError::Argument {
                flag: "--data_dir",
                detail: format!("directory {} of input '{first}' holds no file", dir.display()),
            });
        }
        Self::open(input_shape, data_dirs, data_types, limit.map_or(available, |l| l.min(available)).max(1))
    }

    pub fn inputs(&self) -> &[CalibInput] {
        &self.inputs
    }

    /// Input names in `--input_shape` order.
    pub fn input_names(&self) -> impl Iterator<Item = &str> {
        self.inputs.iter().map(|i| i.name.as_str())
    }

    /// Resolved input shapes, keyed by name, as [`crate::engine::Session::new`] takes them.
    pub fn shapes(&self) -> HashMap<String, Vec<i64>> {
        self.inputs.iter().map(|i| (i.name.clone(), i.shape.iter().map(|&d| d as i64).collect())).collect()
    }

    pub fn batch_num(&self) -> usize {
        self.batch_num
    }

    /// Reads batch `index`: maps each input's file, converts it to f32, unmaps it.
    pub fn batch(&self, index: usize) -> Result<Batch> {
        if index >= self.batch_num {
            return Err(CalibError::BatchIndex { index, batch_num: self.batch_num });
        }
        let inputs =
            self.inputs.iter().map(|input| Ok((input.name.clone(), Tensor::F32(read_f32(input, index)?)))).collect::<Result<_>>()?;
        Ok(Batch { index, inputs })
    }

    /// Errors on the first NaN or infinity of `batch`, naming the batch, input, file and
    /// element: such data would poison every min/max and histogram of the calibration.
    pub fn check_finite(&self, batch: &Batch) -> Result<()> {
        for (input, (_, tensor)) in self.inputs.iter().zip(&batch.inputs) {
            let Tensor::F32(a) = tensor else { continue };
            if let Some((k, v)) = a.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                let mut index = Vec::with_capacity(input.shape.len());
                let mut rest = k;
                for &d in input.shape.iter().rev() {
                    index.push(rest % d);
                    rest /= d;
                }
                index.reverse();
                return Err(input.file_err(
                    &input.files[batch.index],
                    format!("batch {}: element {k} (index {index:?}) is {v}; calibration data must be finite", batch.index),
                ));
            }
        }
        Ok(())
    }

    /// All batches in order, each read when the iterator reaches it.
    pub fn batches(&self) -> impl Iterator<Item = Result<Batch>> + '_ {
        (0..self.batch_num).map(|i| self.batch(i))
    }
}

/// The shape of `input` with its `-1` dim (if any) resolved from the size of its first file,
/// checking that this file holds exactly one batch.
fn resolve_shape(input: &CalibInput, dims: &[i64]) -> Result<Vec<usize>> {
    let path = &input.files[0];
    let len = file_len(path)?;
    let elem = input.dtype.size() as u64;
    let dyn_count = dims.iter().filter(|&&d| d == -1).count();
    let shape_text = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×");
    // Checked: absurd dims must give an error, not an overflow.
    let known = dims.iter().filter(|&&d| d != -1).try_fold(elem, |acc, &d| acc.checked_mul(d as u64));
    let Some(known_bytes) = known else {
        return Err(input.file_err(path, format!("--input_shape {shape_text} of {} is larger than any file can be", input.dtype.name())));
    };
    let known = known_bytes / elem;
    if dyn_count == 0 {
        let shape = dims.iter().map(|&d| d as usize).collect::<Vec<_>>();
        if len != known * elem {
            return Err(input.file_err(path, size_mismatch(&shape, input.dtype, len)));
        }
        return Ok(shape);
    }
    if dyn_count > 1 {
        return Err(input.file_err(
            path,
            format!(
                "--input_shape {shape_text} has {dyn_count} dims of -1; a file's size can resolve only one (the file is {len} bytes \
                 of {})",
                input.dtype.name()
            ),
        ));
    }
    let per_unit = known * elem;
    if len == 0 || !len.is_multiple_of(per_unit) {
        return Err(input.file_err(
            path,
            format!(
                "cannot resolve the -1 dim of --input_shape {shape_text}: the file is {len} bytes, which is not a positive multiple of \
                 the {per_unit} bytes that the other dims give ({} × {elem} bytes of {})",
                dims.iter().filter(|&&d| d != -1).map(|d| d.to_string()).collect::<Vec<_>>().join("×"),
                input.dtype.name()
            ),
        ));
    }
    let resolved = (len / per_unit) as usize;
    Ok(dims.iter().map(|&d| if d == -1 { resolved } else { d as usize }).collect())
}

/// Explains a file whose size is not one batch of `shape` × `dtype`: the expected and actual
/// sizes, how many samples (batch items) the file holds when that is a whole number or a
/// whole fraction, and the data types whose size would fit.
fn size_mismatch(shape: &[usize], dtype: CalibDType, len: u64) -> String {
    let elements: u64 = shape.iter().map(|&d| d as u64).product();
    let expected = elements * dtype.size() as u64;
    let mut msg = format!(
        "the file is {len} bytes but one batch of --input_shape {} {} is {expected} bytes ({} × {} bytes)",
        dims_text(shape),
        dtype.name(),
        dims_text(shape),
        dtype.size()
    );
    let sample_shape = shape.get(1..).unwrap_or(&[]);
    let sample = sample_shape.iter().map(|&d| d as u64).product::<u64>() * dtype.size() as u64;
    let batch = shape.first().copied().unwrap_or(1);
    if len > 0 && sample > 0 {
        let sample_desc = format!("{} {}", dims_text(sample_shape), dtype.name());
        if len.is_multiple_of(sample) {
            let n = (len / sample) as usize;
            msg += &format!(
                "; --input_shape gives a batch of {batch} but the file holds {} of {sample_desc}, i.e. a batch of {n} \
                 (each file must hold exactly one batch; use --batch_num for more files)",
                plural(n, "sample")
            );
        } else if sample.is_multiple_of(len) {
            msg += &format!("; the file holds 1/{} of one sample of {sample_desc}", sample / len);
        }
    }
    let fitting: Vec<_> = CalibDType::ALL
        .into_iter()
        .filter(|d| *d != dtype && elements.checked_mul(d.size() as u64) == Some(len))
        .map(|d| d.name())
        .collect();
    if !fitting.is_empty() {
        msg += &format!("; the size would fit --data_types {}", fitting.join(" or "));
    }
    msg
}

/// Maps the file of batch `index` and converts it to an f32 array of the input's shape.
fn read_f32(input: &CalibInput, index: usize) -> Result<ArrayD<f32>> {
    let path = &input.files[index];
    let file = File::open(path).map_err(|e| io_err(path, e))?;
    let expected = input.elements() * input.dtype.size();
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    if len != expected as u64 {
        // Changed since the set was opened.
        return Err(input.size_err(path, len));
    }
    // SAFETY: the mapping is read-only and dropped before this function returns; a file
    // truncated by another process meanwhile is the one hazard, as with any mmap reader.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| io_err(path, e))?;
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Sequential); // only a read-ahead hint
    let mut data = Vec::with_capacity(input.elements());
    input.dtype.extend_f32(&map[..expected], &mut data);
    Ok(ArrayD::from_shape_vec(IxDyn(&input.shape), data).expect("element count checked against the file size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_names_sizes_and_conversions() {
        assert_eq!(accepted_dtypes(), "float64, float32, float16, int8, int16, int32, int64, uint8, uint16, uint32, uint64, bool");
        for d in CalibDType::ALL {
            assert_eq!(CalibDType::parse(d.name()), Some(d));
        }
        assert_eq!(CalibDType::parse("fp32"), None);
        let cases: [(CalibDType, Vec<u8>, Vec<f32>); 4] = [
            (CalibDType::I8, vec![0x80, 0x7f, 0xff], vec![-128.0, 127.0, -1.0]),
            (CalibDType::Bool, vec![0, 1, 2], vec![0.0, 1.0, 1.0]),
            (CalibDType::F16, f16::from_f32(-2.5).to_le_bytes().to_vec(), vec![-2.5]),
            (CalibDType::I16, (-300i16).to_le_bytes().to_vec(), vec![-300.0]),
        ];
        for (d, bytes, want) in cases {
            let mut out = Vec::new();
            d.extend_f32(&bytes, &mut out);
            assert_eq!(out, want, "{}", d.name());
        }
    }

    #[test]
    fn size_mismatch_explains_samples_and_dtypes() {
        let m = size_mismatch(&[12, 3, 640, 640], CalibDType::F32, 3 * 640 * 640 * 4);
        assert!(m.contains("the file is 4915200 bytes"), "{m}");
        assert!(m.contains("58982400 bytes (12×3×640×640 × 4 bytes)"), "{m}");
        assert!(m.contains("batch of 12 but the file holds 1 sample of 3×640×640 float32"), "{m}");
        let m = size_mismatch(&[1, 3, 4, 4], CalibDType::F32, 48);
        assert!(m.contains("the size would fit --data_types int8 or uint8 or bool"), "{m}");
        assert!(m.contains("1/4 of one sample"), "{m}");
    }
}
