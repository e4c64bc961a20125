//! Loading and saving models, including ONNX external data (`data_location = EXTERNAL`
//! with `location` / `offset` / `length` keys, relative to the model's folder).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use memmap2::Mmap;
use prost::Message;

use super::error::{OnnxError, Result};
use super::proto::tensor_proto::DataLocation;
use super::proto::{GraphProto, ModelProto, NodeProto, StringStringEntryProto, TensorProto};
use super::tensor::{DataType, Tensor, element_count, raw_len};

/// Protobuf messages cannot exceed 2 GiB; models larger than this are saved with
/// external data when the policy is [`ExternalDataPolicy::Auto`].
pub const PROTOBUF_LIMIT: usize = (1 << 31) - 1;

/// Where tensor data goes when a model is saved.
#[derive(Debug, Clone, PartialEq)]
pub enum ExternalDataPolicy {
    /// Inline everything unless the model would exceed the 2 GiB protobuf limit; then
    /// tensors of at least 1 KiB go to the external file.
    Auto,
    /// Always inline (fails for models over 2 GiB).
    Never,
    /// Tensors whose data has at least `threshold` bytes go to the external file.
    Always { threshold: usize },
}

#[derive(Debug, Clone)]
pub struct SaveOptions {
    pub external: ExternalDataPolicy,
    /// File name (relative to the model's folder) of the external data; defaults to
    /// `<model file name>.data`.
    pub location: Option<String>,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions { external: ExternalDataPolicy::Auto, location: None }
    }
}

/// Loads a model and resolves its external data (if any) into `raw_data`.
pub fn load_model(path: impl AsRef<Path>) -> Result<ModelProto> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| OnnxError::io(path, e))?;
    let meta = file.metadata().map_err(|e| OnnxError::io(path, e))?;
    if meta.is_dir() {
        let e = std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory, expected an ONNX model file");
        return Err(OnnxError::io(path, e));
    }
    let len = meta.len();
    if len == 0 {
        return Err(OnnxError::EmptyFile { path: path.to_path_buf() });
    }
    // SAFETY: the map is read-only and only lives during decoding; a concurrent writer
    // truncating the file is the usual mmap caveat, accepted for model files.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| OnnxError::io(path, e))?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    load_model_from_bytes(&map, path, Some(base_dir))
}

/// Decodes a serialized model; `label` names it in errors, `base_dir` resolves external
/// data (None: external data is an error).
pub fn load_model_from_bytes(bytes: &[u8], label: &Path, base_dir: Option<&Path>) -> Result<ModelProto> {
    if bytes.is_empty() {
        return Err(OnnxError::EmptyFile { path: label.to_path_buf() });
    }
    let mut model = ModelProto::decode(bytes).map_err(|e| OnnxError::Decode { path: label.to_path_buf(), reason: e.to_string() })?;
    check_is_model(&model, label)?;
    let mut resolver = ExternalResolver { label, base_dir, files: HashMap::new() };
    visit_tensors_mut(&mut model, &mut |t| resolver.resolve(t))?;
    Ok(model)
}

/// A protobuf decoder accepts many byte strings that are not models; require the parts
/// every ONNX model has.
fn check_is_model(model: &ModelProto, label: &Path) -> Result<()> {
    let not_a_model = |reason: &str| OnnxError::NotAModel { path: label.to_path_buf(), reason: reason.into() };
    if model.ir_version.is_none() {
        return Err(not_a_model("ir_version is missing"));
    }
    let Some(graph) = &model.graph else {
        return Err(not_a_model("the model has no graph"));
    };
    if let Some(i) = graph.node.iter().position(|n| n.op_type().is_empty()) {
        return Err(not_a_model(&format!("node #{i} has no op_type")));
    }
    Ok(())
}

struct ExternalResolver<'a> {
    label: &'a Path,
    base_dir: Option<&'a Path>,
    files: HashMap<PathBuf, Mmap>,
}

impl ExternalResolver<'_> {
    fn resolve(&mut self, t: &mut TensorProto) -> Result<()> {
        if DataType::try_from(t.data_type()).is_err() {
            return Err(OnnxError::InModel {
                path: self.label.to_path_buf(),
                source: Box::new(OnnxError::UnknownDataType { tensor: t.name().to_string(), data_type: t.data_type() }),
            });
        }
        if t.data_location() != DataLocation::External {
            return Ok(());
        }
        let name = t.name().to_string();
        let err = |detail: String| OnnxError::ExternalData { path: self.label.to_path_buf(), tensor: name.clone(), detail };
        let key = |k: &str| t.external_data.iter().find(|e| e.key() == k).map(|e| e.value().to_string());
        let location = key("location").ok_or_else(|| err("has no 'location' key".into()))?;
        let number = |k: &str| -> Result<Option<u64>> {
            key(k).map(|v| v.parse::<u64>().map_err(|_| err(format!("'{k}' is not a number: {v:?}")))).transpose()
        };
        let offset = number("offset")?.unwrap_or(0);
        let length = number("length")?;
        let rel = Path::new(&location);
        if rel.is_absolute() || rel.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(err(format!("location {location:?} must be a relative path inside the model's folder")));
        }
        let base = self.base_dir.ok_or_else(|| err("cannot be resolved without the model's folder".into()))?;
        let file_path = base.join(rel);
        if !self.files.contains_key(&file_path) {
            let file = File::open(&file_path).map_err(|e| err(format!("file {}: {e}", file_path.display())))?;
            // SAFETY: read-only map of a data file, dropped when loading ends.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| err(format!("file {}: {e}", file_path.display())))?;
            self.files.insert(file_path.clone(), map);
        }
        let data = &self.files[&file_path];
        let dt = DataType::try_from(t.data_type()).expect("checked above");
        let expected = raw_len(dt, element_count(&name, &t.dims)?) as u64;
        let length = length.unwrap_or(expected);
        if length != expected {
            return Err(err(format!("declares length {length}, but dims {:?} of {} need {expected} bytes", t.dims, dt.as_str_name())));
        }
        let end = offset.checked_add(length).filter(|&end| end <= data.len() as u64).ok_or_else(|| {
            err(format!(
                "file {} holds {} bytes, shorter than declared (offset {offset} + length {length})",
                file_path.display(),
                data.len()
            ))
        })?;
        t.raw_data = Some(data[offset as usize..end as usize].to_vec());
        t.external_data.clear();
        t.data_location = None;
        Ok(())
    }
}

/// Saves a model atomically (temp file + rename); external data per `options`.
pub fn save_model(model: &ModelProto, path: impl AsRef<Path>, options: &SaveOptions) -> Result<()> {
    let path = path.as_ref();
    let Some(threshold) = external_threshold(&options.external, model.encoded_len(), PROTOBUF_LIMIT) else {
        if model.encoded_len() > PROTOBUF_LIMIT {
            return Err(OnnxError::tensor("<model>", format!("{}: the model exceeds 2 GiB; save it with external data", path.display())));
        }
        return write_atomically(path, &model.encode_to_vec());
    };
    let file_name =
        path.file_name().ok_or_else(|| OnnxError::io(path, std::io::Error::other("not a file path")))?.to_string_lossy().into_owned();
    let location = options.location.clone().unwrap_or_else(|| format!("{file_name}.data"));
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut model = model.clone();
    let mut data = Vec::new();
    visit_tensors_mut(&mut model, &mut |t| move_to_external(t, threshold, &location, &mut data))?;
    write_atomically(&dir.join(&location), &data)?;
    write_atomically(path, &model.encode_to_vec())
}

/// The size from which tensors go to the external file, or None to inline everything.
fn external_threshold(policy: &ExternalDataPolicy, encoded_len: usize, limit: usize) -> Option<usize> {
    match policy {
        ExternalDataPolicy::Never => None,
        ExternalDataPolicy::Always { threshold } => Some(*threshold),
        ExternalDataPolicy::Auto => (encoded_len > limit).then_some(1024),
    }
}

/// Tensors of at least 1 MiB start on a 4 KiB boundary so the data file can be mmapped
/// tensor by tensor (the same rule as the onnx Python package).
const ALIGN_THRESHOLD: usize = 1 << 20;
const ALIGNMENT: usize = 4096;

fn move_to_external(t: &mut TensorProto, threshold: usize, location: &str, data: &mut Vec<u8>) -> Result<()> {
    if t.data_location() == DataLocation::External || t.data_type() == DataType::String as i32 {
        return Ok(());
    }
    let raw = match t.raw_data.take() {
        Some(raw) => raw,
        None => {
            // Typed fields: measure by their raw size and convert only when moving.
            let decoded = Tensor::from_proto(t)?;
            let raw = decoded.data.to_raw().unwrap_or_default();
            if raw.len() < threshold {
                return Ok(());
            }
            clear_typed_fields(t);
            raw
        }
    };
    if raw.len() < threshold {
        t.raw_data = Some(raw);
        return Ok(());
    }
    if raw.len() >= ALIGN_THRESHOLD {
        data.resize(data.len().next_multiple_of(ALIGNMENT), 0);
    }
    let offset = data.len();
    data.extend_from_slice(&raw);
    let entry = |k: &str, v: String| StringStringEntryProto { key: Some(k.into()), value: Some(v) };
    t.external_data =
        vec![entry("location", location.to_string()), entry("offset", offset.to_string()), entry("length", raw.len().to_string())];
    t.data_location = Some(DataLocation::External as i32);
    Ok(())
}

fn clear_typed_fields(t: &mut TensorProto) {
    t.float_data.clear();
    t.int32_data.clear();
    t.int64_data.clear();
    t.double_data.clear();
    t.uint64_data.clear();
}

/// Whether `output` is the existing file `input` (same device and inode, so links and other
/// spellings of the path count): writing it would destroy an input. False when either does
/// not exist.
pub fn same_file(input: &Path, output: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(input), std::fs::metadata(output)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Writes `bytes` to a temp file in the target folder, then renames it over `path`: readers
/// never see a half-written file.
/// The temp file is registered with [`super::inflight`], so the CLI's Ctrl-C removes it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new().prefix(".ascend-ptq-").make_in(dir, |p| {
        let registration = super::inflight::register(p);
        std::fs::OpenOptions::new().write(true).create_new(true).open(p).map(|file| (file, registration))
    });
    let mut tmp = tmp.map_err(|e| OnnxError::io(dir, e))?;
    let (file, _registration) = tmp.as_file_mut();
    if let Some(ms) = test_write_delay() {
        // Fault injection for tests/bad_input.rs: half the bytes written, then a pause.
        file.write_all(&bytes[..bytes.len() / 2]).map_err(|e| OnnxError::io(path, e))?;
        std::thread::sleep(std::time::Duration::from_millis(ms));
        file.write_all(&bytes[bytes.len() / 2..]).map_err(|e| OnnxError::io(path, e))?;
    } else {
        file.write_all(bytes).map_err(|e| OnnxError::io(path, e))?;
    }
    file.sync_all().map_err(|e| OnnxError::io(path, e))?;
    tmp.persist(path).map_err(|e| OnnxError::io(path, e.error))?;
    Ok(())
}

/// `ASCEND_PTQ_TEST_WRITE_DELAY_MS`: tests interrupt a command in the middle of writing an
/// output file with it; unset (always, outside tests) it changes nothing.
fn test_write_delay() -> Option<u64> {
    std::env::var("ASCEND_PTQ_TEST_WRITE_DELAY_MS").ok()?.parse().ok()
}

/// Calls `f` on every TensorProto of the model: initializers, sparse initializers,
/// node attributes, subgraphs, functions and training graphs.
pub fn visit_tensors_mut(model: &mut ModelProto, f: &mut dyn FnMut(&mut TensorProto) -> Result<()>) -> Result<()> {
    if let Some(g) = model.graph.as_mut() {
        visit_graph(g, f)?;
    }
    for func in &mut model.functions {
        visit_nodes(&mut func.node, f)?;
        for a in &mut func.attribute_proto {
            visit_attribute(a, f)?;
        }
    }
    for ti in &mut model.training_info {
        for g in [ti.initialization.as_mut(), ti.algorithm.as_mut()].into_iter().flatten() {
            visit_graph(g, f)?;
        }
    }
    Ok(())
}

fn visit_graph(g: &mut GraphProto, f: &mut dyn FnMut(&mut TensorProto) -> Result<()>) -> Result<()> {
    for t in &mut g.initializer {
        f(t)?;
    }
    for s in &mut g.sparse_initializer {
        visit_sparse(s, f)?;
    }
    visit_nodes(&mut g.node, f)
}

fn visit_sparse(s: &mut super::proto::SparseTensorProto, f: &mut dyn FnMut(&mut TensorProto) -> Result<()>) -> Result<()> {
    for t in [s.values.as_mut(), s.indices.as_mut()].into_iter().flatten() {
        f(t)?;
    }
    Ok(())
}

fn visit_nodes(nodes: &mut [NodeProto], f: &mut dyn FnMut(&mut TensorProto) -> Result<()>) -> Result<()> {
    for n in nodes {
        for a in &mut n.attribute {
            visit_attribute(a, f)?;
        }
    }
    Ok(())
}

fn visit_attribute(a: &mut super::proto::AttributeProto, f: &mut dyn FnMut(&mut TensorProto) -> Result<()>) -> Result<()> {
    for t in a.t.as_mut().into_iter().chain(a.tensors.iter_mut()) {
        f(t)?;
    }
    for s in a.sparse_tensor.as_mut().into_iter().chain(a.sparse_tensors.iter_mut()) {
        visit_sparse(s, f)?;
    }
    for g in a.g.as_mut().into_iter().chain(a.graphs.iter_mut()) {
        visit_graph(g, f)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_policy_goes_external_only_past_the_protobuf_limit() {
        assert_eq!(external_threshold(&ExternalDataPolicy::Auto, PROTOBUF_LIMIT, PROTOBUF_LIMIT), None);
        assert_eq!(external_threshold(&ExternalDataPolicy::Auto, PROTOBUF_LIMIT + 1, PROTOBUF_LIMIT), Some(1024));
        assert_eq!(external_threshold(&ExternalDataPolicy::Never, usize::MAX, PROTOBUF_LIMIT), None);
        assert_eq!(external_threshold(&ExternalDataPolicy::Always { threshold: 7 }, 0, PROTOBUF_LIMIT), Some(7));
    }

    #[test]
    fn large_tensors_are_page_aligned_in_the_data_file() {
        let dir = tempfile::tempdir().unwrap();
        let tensor = |name: &str, bytes: usize| TensorProto {
            name: Some(name.into()),
            dims: vec![(bytes / 4) as i64],
            data_type: Some(DataType::Float as i32),
            raw_data: Some(vec![1u8; bytes]),
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: Some(8),
            graph: Some(GraphProto {
                initializer: vec![tensor("small", 2048), tensor("big", ALIGN_THRESHOLD), tensor("tiny", 8)],
                ..Default::default()
            }),
            ..Default::default()
        };
        let path = dir.path().join("m.onnx");
        save_model(&model, &path, &SaveOptions { external: ExternalDataPolicy::Always { threshold: 1024 }, location: None }).unwrap();
        let raw = ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap();
        let inits = &raw.graph.as_ref().unwrap().initializer;
        let offset = |t: &TensorProto| t.external_data.iter().find(|e| e.key() == "offset").map(|e| e.value().to_string());
        assert_eq!(offset(&inits[0]).as_deref(), Some("0"));
        assert_eq!(offset(&inits[1]).as_deref(), Some("4096"), "the 1 MiB tensor starts on a page");
        assert_eq!(inits[2].raw_data.as_deref(), Some(&[1u8; 8][..]), "below the threshold stays inline");
        assert_eq!(load_model(&path).unwrap(), model);
    }
}
