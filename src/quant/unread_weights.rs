//! The model's large initializers, let go while the calibration passes run and read back from
//! the model file afterwards. The statistics and clip-search passes only run the float
//! session, which holds its own packed copy of every weight; the initializers are read again
//! by what follows (weight rounding, bias correction, trials, the deploy rewrite). Kept
//! through the passes, they were a second copy of the weights next to the observers' memory
//! (YOLOX: 20 MB of an 81 MB peak).
//!
//! Only initializers equal to the file's are let go: BatchNormalization folding and
//! equalization rewrite some, and those stay. The file is read again only after checking
//! that its size and modification time did not change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::calibrate::{CalibrateError, Result};
use crate::onnx::load_model;
use crate::onnx::proto::{ModelProto, TensorProto};
use crate::onnx::shapes::MAX_KNOWN_ELEMENTS;

/// What [`release_unchanged`] let go, to be read back by [`Released::restore`].
pub(crate) struct Released {
    path: PathBuf,
    stamp: (u64, Option<SystemTime>),
    /// Initializer positions in the graph, with the stubs' dims and type to check against.
    stubs: Vec<usize>,
}

fn stamp(path: &Path) -> Result<(u64, Option<SystemTime>)> {
    let meta = std::fs::metadata(path).map_err(|e| model_error(path, &format!("cannot read its metadata again: {e}")))?;
    Ok((meta.len(), meta.modified().ok()))
}

fn model_error(path: &Path, detail: &str) -> CalibrateError {
    CalibrateError::Argument { flag: "--model", detail: format!("{}: {detail}", path.display()) }
}

fn is_large(t: &TensorProto) -> bool {
    crate::onnx::tensor::element_count(t.name(), &t.dims).unwrap_or(0) > MAX_KNOWN_ELEMENTS
}

/// The tensor's name, dims and type, without its values.
pub(crate) fn stub(t: &TensorProto) -> TensorProto {
    TensorProto { name: t.name.clone(), dims: t.dims.clone(), data_type: t.data_type, ..Default::default() }
}

/// The large initializers of the model file at `path`, by name.
fn large_initializers(path: &Path) -> Result<HashMap<String, TensorProto>> {
    let mut model = load_model(path)?;
    let all = model.graph.as_mut().map(|g| std::mem::take(&mut g.initializer)).unwrap_or_default();
    Ok(all.into_iter().filter(is_large).map(|t| (t.name().to_string(), t)).collect())
}

/// Replaces every large initializer of `model` that equals the one of the same name in the
/// file at `path` (the file `model` was loaded from) by a stub: name, dims and type only.
/// Returns the released initializers as read from the file, for a session to plan with
/// ([`crate::engine::Session::with_initializers`]) and drop as it goes.
pub(crate) fn release_unchanged(model: &mut ModelProto, path: &Path) -> Result<(Released, HashMap<String, TensorProto>)> {
    let stamp = stamp(path)?;
    let mut released = Released { path: path.to_path_buf(), stamp, stubs: Vec::new() };
    let mut taken = HashMap::new();
    let Some(graph) = model.graph.as_mut() else { return Ok((released, taken)) };
    if !graph.initializer.iter().any(is_large) {
        return Ok((released, taken));
    }
    let mut in_file = large_initializers(path)?;
    for (i, init) in graph.initializer.iter_mut().enumerate() {
        if is_large(init) && in_file.get(init.name()) == Some(&*init) {
            drop(std::mem::replace(init, stub(init)));
            taken.insert(init.name().to_string(), in_file.remove(init.name()).expect("compared above"));
            released.stubs.push(i);
        }
    }
    Ok((released, taken))
}

impl Released {
    /// Puts the released initializers back from the file, which must be unchanged.
    pub(crate) fn restore(self, model: &mut ModelProto) -> Result<()> {
        if self.stubs.is_empty() {
            return Ok(());
        }
        let changed = || model_error(&self.path, "the file changed during the calibration; run it again");
        if stamp(&self.path)? != self.stamp {
            return Err(changed());
        }
        let mut in_file = large_initializers(&self.path)?;
        let graph = model.graph.as_mut().ok_or_else(changed)?;
        for i in self.stubs {
            let stub = graph.initializer.get_mut(i).ok_or_else(changed)?;
            let full = in_file.remove(stub.name()).ok_or_else(changed)?;
            if full.dims != stub.dims || full.data_type != stub.data_type {
                return Err(changed());
            }
            *stub = full;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::proto::GraphProto;
    use crate::onnx::{SaveOptions, save_model};

    fn weight(name: &str, value: f32) -> TensorProto {
        let n = MAX_KNOWN_ELEMENTS + 1;
        TensorProto {
            name: Some(name.into()),
            dims: vec![n as i64],
            data_type: Some(1),
            raw_data: Some(std::iter::repeat_n(value.to_le_bytes(), n).flatten().collect()),
            ..Default::default()
        }
    }

    fn model(inits: Vec<TensorProto>) -> ModelProto {
        ModelProto {
            ir_version: Some(8),
            graph: Some(GraphProto { name: Some("g".into()), initializer: inits, ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn only_unchanged_large_initializers_are_released_and_they_come_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        let small =
            TensorProto { name: Some("small".into()), dims: vec![2], data_type: Some(1), float_data: vec![1.0, 2.0], ..Default::default() };
        save_model(&model(vec![weight("a", 1.0), weight("b", 2.0), small.clone()]), &path, &SaveOptions::default()).unwrap();
        // "b" was rewritten in memory (as folding does): it must stay.
        let mut m = model(vec![weight("a", 1.0), weight("b", 3.0), small]);
        let before = m.clone();
        let (released, taken) = release_unchanged(&mut m, &path).unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken["a"], before.graph.as_ref().unwrap().initializer[0]);
        let inits = &m.graph.as_ref().unwrap().initializer;
        assert!(inits[0].raw_data.is_none() && inits[0].dims == before.graph.as_ref().unwrap().initializer[0].dims);
        assert_eq!(inits[1], before.graph.as_ref().unwrap().initializer[1]);
        assert_eq!(inits[2], before.graph.as_ref().unwrap().initializer[2]);
        released.restore(&mut m).unwrap();
        assert_eq!(m, before);
    }

    #[test]
    fn a_file_changed_in_between_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        save_model(&model(vec![weight("a", 1.0)]), &path, &SaveOptions::default()).unwrap();
        let mut m = model(vec![weight("a", 1.0)]);
        let (released, _) = release_unchanged(&mut m, &path).unwrap();
        save_model(&model(vec![weight("a", 1.0), weight("c", 1.0)]), &path, &SaveOptions::default()).unwrap();
        let e = released.restore(&mut m).unwrap_err().to_string();
        assert!(e.contains("--model") && e.contains("m.onnx") && e.contains("changed"), "{e}");
    }
}
