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
use crate::tasks::{Task, TaskMetrics, agreement, decode_outputs};

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
    /// The decoded output(s), comma-separated.
    pub output: String,
    /// `--task auto`: what it picked and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picked: Option<String>,
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

/// One saved output: name, values, dims.
type Saved = (String, Vec<f32>, Vec<usize>);

/// The named outputs, in the order given (every listed output, in the listing's order, when
/// `names` is empty), of one input set.
fn read_outputs(dir: &Path, names: &[String]) -> Result<Vec<Saved>, CompareError> {
    let listing_path = dir.join(LISTING);
    let text = std::fs::read_to_string(&listing_path).map_err(|e| io(&listing_path, e))?;
    let listing: Listing = serde_json::from_str(&text).map_err(|e| io(&listing_path, e))?;
    let chosen: Vec<&ListedOutput> = if names.is_empty() {
        listing.outputs.iter().collect()
    } else {
        let listed: Vec<&str> = listing.outputs.iter().map(|o| o.name.as_str()).collect();
        let find = |n: &String| {
            listing.outputs.iter().find(|o| &o.name == n).ok_or_else(|| io(&listing_path, format!("no output {n:?} (listed: {listed:?})")))
        };
        names.iter().map(find).collect::<Result<_, _>>()?
    };
    if chosen.is_empty() {
        return Err(io(&listing_path, "lists no output"));
    }
    chosen.into_iter().map(|o| read_one(dir, &listing_path, o)).collect()
}

fn read_one(dir: &Path, listing_path: &Path, o: &ListedOutput) -> Result<Saved, CompareError> {
    if o.dtype != "float" && o.dtype != "float32" {
        return Err(io(listing_path, format!("output '{}' is {}, the task decoders read float32", o.name, o.dtype)));
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

fn as_refs(outs: &[Saved]) -> Vec<(&[f32], &[usize])> {
    outs.iter().map(|(_, v, d)| (v.as_slice(), d.as_slice())).collect()
}

/// Decodes the chosen outputs of every input set on both sides with `task` and compares
/// them; `input_hw` is the model input's (height, width), the frame the boxes are measured
/// in. `outputs` names the outputs in the order the task reads them (empty: every listed
/// output in the listing's order; single-output tasks decode the first). `auto` picks the
/// task from the first reference set's dims. Both sides must hold the same input sets.
pub fn task_metrics_of_saved(
    task: &Task,
    candidate: &Path,
    reference: &Path,
    input_hw: (usize, usize),
    outputs: &[String],
) -> Result<SavedReport, CompareError> {
    let (cand_sets, ref_sets) = (input_sets(candidate)?, input_sets(reference)?);
    if cand_sets.keys().ne(ref_sets.keys()) {
        let names = |s: &BTreeMap<String, PathBuf>| s.keys().cloned().collect::<Vec<_>>().join(", ");
        return Err(io(candidate, format!("input sets [{}] differ from the reference's [{}]", names(&cand_sets), names(&ref_sets))));
    }
    let mut resolved: Option<(Task, Option<String>)> = None;
    let mut rows = Vec::new();
    let mut output_names = String::new();
    for (name, cand_dir) in &cand_sets {
        let ref_dir = &ref_sets[name];
        let (c, r) = (read_outputs(cand_dir, outputs)?, read_outputs(ref_dir, outputs)?);
        let shapes = |o: &[Saved]| o.iter().map(|(n, _, d)| format!("'{n}' {d:?}")).collect::<Vec<_>>().join(", ");
        if c.iter().map(|o| (&o.0, &o.2)).ne(r.iter().map(|o| (&o.0, &o.2))) {
            return Err(io(cand_dir, format!("outputs {} do not match the reference's {}", shapes(&c), shapes(&r))));
        }
        if resolved.is_none() {
            let dims: Vec<&[usize]> = r.iter().map(|o| o.2.as_slice()).collect();
            resolved = Some(task.resolve(&dims, input_hw).map_err(|e| io(ref_dir, e))?);
        }
        let task = &resolved.as_ref().expect("resolved above").0;
        let used = if task.uses_all_outputs() { r.len() } else { 1 };
        let task_err = |path: &Path, e: crate::tasks::TaskError| io(path, format!("task {task}: {e}"));
        let dc = decode_outputs(task, &as_refs(&c[..used]), input_hw).map_err(|e| task_err(cand_dir, e))?;
        let dr = decode_outputs(task, &as_refs(&r[..used]), input_hw).map_err(|e| task_err(ref_dir, e))?;
        let metrics = agreement(&dc, &dr).map_err(|e| task_err(cand_dir, e))?;
        output_names = c[..used].iter().map(|o| o.0.as_str()).collect::<Vec<_>>().join(", ");
        rows.push(SavedRow { name: name.clone(), metrics });
    }
    let summary = crate::tasks::mean_and_worst(rows.iter().map(|r| &r.metrics));
    let (task, picked) = resolved.unwrap_or((task.clone(), None));
    Ok(SavedReport { task: task.name().to_string(), output: output_names, picked, input_hw, rows, summary })
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
        let rep = task_metrics_of_saved(&Task::Cls, &c, &r, (48, 192), &[]).unwrap();
        assert_eq!(rep.rows.len(), 2);
        assert_eq!(rep.summary["top1"], (0.5, 0.0));
        assert_eq!(rep.output, "out");
        let auto = task_metrics_of_saved(&Task::Auto, &c, &r, (48, 192), &[]).unwrap();
        assert_eq!((auto.task.as_str(), auto.rows.len(), auto.summary["top1"]), ("cls", 2, (0.5, 0.0)));
        assert!(auto.picked.as_deref().unwrap_or_default().starts_with("--task auto picked cls: [1, 2]"), "{:?}", auto.picked);
        assert!(rep.picked.is_none());
        // different input sets, a missing output and a wrong size are errors naming the file
        write_set(&c.join("z"), &[0.3, 0.7], &[1, 2]);
        assert!(task_metrics_of_saved(&Task::Cls, &c, &r, (1, 1), &[]).unwrap_err().to_string().contains("differ"));
        std::fs::remove_dir_all(c.join("z")).unwrap();
        let e = task_metrics_of_saved(&Task::Cls, &c, &r, (1, 1), &["nope".to_string()]).unwrap_err().to_string();
        assert!(e.contains("no output \"nope\""), "{e}");
        std::fs::write(c.join("a/out.bin"), [0u8; 4]).unwrap();
        let e = task_metrics_of_saved(&Task::Cls, &c, &r, (1, 1), &[]).unwrap_err().to_string();
        assert!(e.contains("4 bytes"), "{e}");
    }
}
