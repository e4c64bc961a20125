//! Task metrics of saved outputs: two folders of model outputs (candidate, reference) as
//! `ascend-ptq run --output_dir` writes them (`outputs.json` listing each output's name, dtype,
//! shape and `.bin` file of raw little-endian values), decoded by [`crate::tasks`] and
//! compared in the task's terms, the reference taken as pseudo ground truth. For outputs
//! made by other tools (ONNX Runtime on a QDQ model, say) that have no OM to `compare`:
//! `scripts/calib_accuracy.py` writes that layout and calls `ascend-ptq task-metrics`.
//!
//! A folder is one input set when it holds `outputs.json`; otherwise each of its
//! subfolders holding one is an input set, matched by name between the two sides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::CompareError;
use crate::tasks::{Task, TaskMetrics, agreement, decode};

/// The listing file `ascend-ptq run` writes beside the output bins.
pub const LISTING: &str = "outputs.json";

#[derive(Debug, Deserialize)]
struct Listing {
    outputs: Vec<ListedOutput>,
}

#[derive(Debug, Deserialize)]
struct ListedOutput {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    file: String,
}

/// One input set's agreement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedRow {
    /// The subfolder name ("." when the folders are one input set each).
    pub name: String,
    pub metrics: TaskMetrics,
}

/// Every input set's agreement and, per metric that applies, the mean and the worst.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SavedReport {
    pub task: String,
    /// The decoded output.
    pub output: String,
    pub input_hw: (usize, usize),
    pub rows: Vec<SavedRow>,
    /// metric → (mean, worst) over the rows.
    pub summary: BTreeMap<String, (f64, f64)>,
}

fn io(path: &Path, detail: impl ToString) -> CompareError {
    CompareError::Io { path: path.to_path_buf(), detail: detail.to_string() }
}

/// The input-set folders under `dir`, by name.
fn input_sets(dir: &Path) -> Result<BTreeMap<String, PathBuf>, CompareError> {
    if dir.join(LISTING).is_file() {
        return Ok(BTreeMap::from([(".".to_string(), dir.to_path_buf())]));
    }
    let mut sets = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = entry.map_err(|e| io(dir, e))?.path();
        if path.join(LISTING).is_file() {
            sets.insert(path.file_name().unwrap_or_default().to_string_lossy().into_owned(), path);
        }
    }
    if sets.is_empty() {
        return Err(io(dir, format!("no {LISTING} in the folder or its subfolders (write outputs with `ascend-ptq run --output_dir`)")));
    }
    Ok(sets)
}

/// The named output (the first listed when `None`) of one input set: its values and dims.
fn read_output(dir: &Path, output: Option<&str>) -> Result<(String, Vec<f32>, Vec<usize>), CompareError> {
    let listing_path = dir.join(LISTING);
    let text = std::fs::read_to_string(&listing_path).map_err(|e| io(&listing_path, e))?;
    let listing: Listing = serde_json::from_str(&text).map_err(|e| io(&listing_path, e))?;
    let found = match output {
        Some(name) => listing.outputs.iter().find(|o| o.name == name),
        None => listing.outputs.first(),
    };
    let Some(o) = found else {
        let names: Vec<&str> = listing.outputs.iter().map(|o| o.name.as_str()).collect();
        return Err(io(&listing_path, format!("no output {:?} (listed: {names:?})", output.unwrap_or("<first>"))));
    };
    if o.dtype != "float" && o.dtype != "float32" {
        return Err(io(&listing_path, format!("output '{}' is {}, the task decoders read float32", o.name, o.dtype)));
    }
    let bin = dir.join(&o.file);
    let bytes = std::fs::read(&bin).map_err(|e| io(&bin, e))?;
    let expected = o.shape.iter().product::<usize>() * 4;
    if bytes.len() != expected {
        return Err(io(&bin, format!("{} bytes, shape {:?} of float32 needs {expected}", bytes.len(), o.shape)));
    }
    let values = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok((o.name.clone(), values, o.shape.clone()))
}

/// Decodes the chosen output (the first listed by default) of every input set on both sides
/// with `task` and compares them; `input_hw` is the model input's (height, width), the frame
/// the boxes are measured in. Both sides must hold the same input sets.
pub fn task_metrics_of_saved(
    task: &Task,
    candidate: &Path,
    reference: &Path,
    input_hw: (usize, usize),
    output: Option<&str>,
) -> Result<SavedReport, CompareError> {
    let (cand_sets, ref_sets) = (input_sets(candidate)?, input_sets(reference)?);
    if cand_sets.keys().ne(ref_sets.keys()) {
        let names = |s: &BTreeMap<String, PathBuf>| s.keys().cloned().collect::<Vec<_>>().join(", ");
        return Err(io(candidate, format!("input sets [{}] differ from the reference's [{}]", names(&cand_sets), names(&ref_sets))));
    }
    let task_err = |path: &Path, e: crate::tasks::TaskError| io(path, format!("task {task}: {e}"));
    let mut rows = Vec::new();
    let mut output_name = String::new();
    for (name, cand_dir) in &cand_sets {
        let ref_dir = &ref_sets[name];
        let (out_c, c, dims_c) = read_output(cand_dir, output)?;
        let (out_r, r, dims_r) = read_output(ref_dir, output)?;
        if out_c != out_r || dims_c != dims_r {
            return Err(io(cand_dir, format!("output '{out_c}' {dims_c:?} does not match the reference's '{out_r}' {dims_r:?}")));
        }
        let dc = decode(task, &c, &dims_c, input_hw).map_err(|e| task_err(cand_dir, e))?;
        let dr = decode(task, &r, &dims_r, input_hw).map_err(|e| task_err(ref_dir, e))?;
        let metrics = agreement(&dc, &dr).map_err(|e| task_err(cand_dir, e))?;
        output_name = out_c;
        rows.push(SavedRow { name: name.clone(), metrics });
    }
    let summary = crate::tasks::mean_and_worst(rows.iter().map(|r| &r.metrics));
    Ok(SavedReport { task: task.name().to_string(), output: output_name, input_hw, rows, summary })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_set(dir: &Path, values: &[f32], shape: &[usize]) {
        std::fs::create_dir_all(dir).unwrap();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.join("out.bin"), bytes).unwrap();
        let listing = serde_json::json!({"outputs": [{"name": "out", "dtype": "float32", "shape": shape, "file": "out.bin"}]});
        std::fs::write(dir.join(LISTING), listing.to_string()).unwrap();
    }

    #[test]
    fn cls_top1_over_matched_input_sets() {
        let t = tempfile::tempdir().unwrap();
        let (c, r) = (t.path().join("c"), t.path().join("r"));
        write_set(&r.join("a"), &[0.9, 0.1], &[1, 2]);
        write_set(&c.join("a"), &[0.8, 0.2], &[1, 2]);
        write_set(&r.join("b"), &[0.9, 0.1], &[1, 2]);
        write_set(&c.join("b"), &[0.3, 0.7], &[1, 2]);
        let rep = task_metrics_of_saved(&Task::Cls, &c, &r, (48, 192), None).unwrap();
        assert_eq!(rep.rows.len(), 2);
        assert_eq!(rep.summary["top1"], (0.5, 0.0));
        assert_eq!(rep.output, "out");
        // different input sets, a missing output and a wrong size are errors naming the file
        write_set(&c.join("z"), &[0.3, 0.7], &[1, 2]);
        assert!(task_metrics_of_saved(&Task::Cls, &c, &r, (1, 1), None).unwrap_err().to_string().contains("differ"));
        std::fs::remove_dir_all(c.join("z")).unwrap();
        let e = task_metrics_of_saved(&Task::Cls, &c, &r, (1, 1), Some("nope")).unwrap_err().to_string();
        assert!(e.contains("no output \"nope\""), "{e}");
        std::fs::write(c.join("a/out.bin"), [0u8; 4]).unwrap();
        let e = task_metrics_of_saved(&Task::Cls, &c, &r, (1, 1), None).unwrap_err().to_string();
        assert!(e.contains("4 bytes"), "{e}");
    }
}
