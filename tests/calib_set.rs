//! The calibration-set reader (docs/ascend-formats.md §1.2): file order and pairing, every dtype against numpy,
//! `-1` resolution, constant memory over hundreds of files, and each error message.

mod common;

use std::path::Path;

use ascend_ptq::data::calib_set::{CalibError, CalibrationSet};
use ascend_ptq::engine::Tensor;

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn values(t: &Tensor) -> &[f32] {
    match t {
        Tensor::F32(a) => a.as_slice().expect("contiguous"),
        other => panic!("expected an f32 tensor, got {other:?}"),
    }
}

fn open_err(shape: &str, dirs: &str, types: &str, batch_num: usize) -> String {
    CalibrationSet::open(shape, dirs, types, batch_num).expect_err("opening must fail").to_string()
}

fn assert_contains(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "message lacks {n:?}:\n{msg}");
    }
}

#[test]
fn every_dtype_converts_like_numpy_in_sorted_file_order() {
    let Some(py) = common::oracle_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let (code, _, err) = common::run_oracle(&py, "calib_dtypes.py", &[out]);
    assert_eq!(code, 0, "{err}");
    let dtypes = ["float64", "float32", "float16", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool"];
    // float32 leaves its batch dim to the file size.
    let shape = dtypes.map(|d| if d == "float32" { format!("{d}:-1,3,5") } else { format!("{d}:2,3,5") }).join(";");
    let dirs = dtypes.map(|d| format!("{out}/{d}")).join(";");
    let set = CalibrationSet::open(&shape, &dirs, &dtypes.join(";"), 2).unwrap();
    assert_eq!(set.input_names().collect::<Vec<_>>(), dtypes);
    assert_eq!(set.shapes()["float32"], vec![2, 3, 5]);
    // Byte-wise order: "10.bin" before "9.bin".
    assert!(set.inputs()[0].files()[0].ends_with("10.bin"));
    for batch in set.batches() {
        let batch = batch.unwrap();
        assert_eq!(batch.inputs.len(), dtypes.len());
        for (name, tensor) in &batch.inputs {
            assert_eq!(tensor.shape(), [2, 3, 5], "{name}");
            let want: Vec<f32> = std::fs::read(tmp.path().join(format!("expected/{name}.{}.f32", batch.index)))
                .unwrap()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            for (k, (g, w)) in values(tensor).iter().zip(&want).enumerate() {
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "{name} batch {} [{k}]: {g:e} vs numpy {w:e}",
                    batch.index
                );
            }
        }
    }
}

#[test]
fn batch_i_pairs_the_ith_files_and_ignores_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for i in 0..5u8 {
        write(&a.join(format!("img_{i:03}.bin")), &[i, i + 10, i + 20, i + 30]);
        write(&b.join(format!("s{i}.raw")), &f32_bytes(&[f32::from(i) * 0.5]));
    }
    // Past batch_num: not read, not even size-checked. Sub-directories and our manifest are no batches.
    write(&a.join("zzz_extra.bin"), b"x");
    write(&b.join("zzz_extra.bin"), b"x");
    write(&a.join("manifest.json"), b"{}");
    std::fs::create_dir(a.join("0_subdir")).unwrap();
    let dirs = format!("{};{}", a.display(), b.display());
    let set = CalibrationSet::open("in:put:0:1,1,2,2;scale:1", &dirs, "uint8; float32;", 3).unwrap();
    assert_eq!(set.batch_num(), 3);
    assert_eq!(set.input_names().collect::<Vec<_>>(), ["in:put:0", "scale"]);
    for i in 0..3u8 {
        let batch = set.batch(i.into()).unwrap();
        let f = f32::from(i);
        assert_eq!(values(batch.get("in:put:0").unwrap()), [f, f + 10.0, f + 20.0, f + 30.0]);
        assert_eq!(batch.get("in:put:0").unwrap().shape(), [1, 1, 2, 2]);
        assert_eq!(values(batch.get("scale").unwrap()), [f * 0.5]);
        let feed = batch.into_map();
        assert_eq!(feed.len(), 2);
    }
    let err = set.batch(3).unwrap_err();
    assert!(matches!(err, CalibError::BatchIndex { index: 3, batch_num: 3 }), "{err}");
}

#[test]
fn file_holding_one_sample_for_a_batch_of_12() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("batch0001.bin"), &vec![0u8; 3 * 640 * 640 * 4]);
    let msg = open_err("images:12,3,640,640", tmp.path().to_str().unwrap(), "float32", 1);
    println!("{msg}");
    assert_contains(
        &msg,
        &[
            "input 'images'",
            "batch0001.bin",
            "the file is 4915200 bytes",
            "58982400 bytes (12×3×640×640 × 4 bytes)",
            "--input_shape gives a batch of 12 but the file holds 1 sample of 3×640×640 float32",
        ],
    );
}

#[test]
fn file_written_with_another_dtype_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("0.bin"), &[0u8; 2 * 3 * 4]);
    let msg = open_err("x:2,3,4", tmp.path().to_str().unwrap(), "float32", 1);
    println!("{msg}");
    assert_contains(
        &msg,
        &["the file is 24 bytes", "96 bytes (2×3×4 × 4 bytes)", "1/2 of one sample", "would fit --data_types int8 or uint8 or bool"],
    );
}

#[test]
fn later_file_of_wrong_size_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("0.bin"), &[0u8; 6]);
    write(&tmp.path().join("1.bin"), &[0u8; 12]);
    let msg = open_err("x:1,6", tmp.path().to_str().unwrap(), "uint8", 2);
    println!("{msg}");
    assert_contains(&msg, &["1.bin", "12 bytes", "6 bytes (1×6 × 1 bytes)", "holds 2 samples of 6 uint8, i.e. a batch of 2"]);
}

#[test]
fn fewer_files_than_batch_num() {
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..3 {
        write(&tmp.path().join(format!("{i}.bin")), &[0u8; 4]);
    }
    let dir = tmp.path().to_str().unwrap();
    let msg = open_err("x:4", dir, "uint8", 5);
    println!("{msg}");
    assert_contains(&msg, &["--data_dir: directory", dir, "of input 'x' holds 3 files but --batch_num is 5"]);
}

#[test]
fn different_file_counts_across_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..4 {
        write(&tmp.path().join(format!("a/{i}.bin")), &[0u8; 4]);
        if i < 3 {
            write(&tmp.path().join(format!("b/{i}.bin")), &[0u8; 4]);
        }
    }
    let dirs = format!("{0}/a;{0}/b", tmp.path().display());
    let msg = open_err("a:4;b:4", &dirs, "uint8;int8", 2);
    println!("{msg}");
    assert_contains(&msg, &["--data_dir: the input directories hold different numbers of files", "'a': 4 in", "'b': 3 in", "i-th file"]);
}

#[test]
fn unknown_dtype_lists_the_accepted_ones() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("0.bin"), &[0u8; 4]);
    let msg = open_err("x:1", tmp.path().to_str().unwrap(), "fp32", 1);
    println!("{msg}");
    assert_contains(
        &msg,
        &[
            "--data_types: unknown data type \"fp32\" for input 'x'",
            "accepted: float64, float32, float16, int8, int16, int32, int64, uint8, uint16, uint32, uint64, bool",
        ],
    );
}

#[test]
fn minus_one_dim_resolved_or_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    // 5 samples of 3×2 float16.
    write(&tmp.path().join("0.bin"), &[0u8; 5 * 3 * 2 * 2]);
    let set = CalibrationSet::open("x:-1,3,2", dir, "float16", 1).unwrap();
    assert_eq!(set.inputs()[0].shape(), [5, 3, 2]);
    assert_eq!(set.batch(0).unwrap().get("x").unwrap().shape(), [5, 3, 2]);

    let msg = open_err("x:-1,7", dir, "float16", 1);
    println!("{msg}");
    assert_contains(
        &msg,
        &[
            "input 'x'",
            "0.bin",
            "cannot resolve the -1 dim of --input_shape -1×7",
            "60 bytes",
            "14 bytes that the other dims give (7 × 2 bytes of float16)",
        ],
    );

    let msg = open_err("x:4294967296,4294967296,2", dir, "float16", 1);
    // Refused when the argument is parsed (src/onnx/input_shape.rs), before any file is read.
    assert_contains(
        &msg,
        &["--input_shape", "the dims [4294967296, 4294967296, 2] of 'x' multiply to more than", "more than any tensor can hold"],
    );

    let msg = open_err("x:-1,3,-1", dir, "float16", 1);
    assert_contains(&msg, &["has 2 dims of -1; a file's size can resolve only one"]);

    // Resolved from the first file, the second must match it.
    write(&tmp.path().join("1.bin"), &[0u8; 4 * 3 * 2 * 2]);
    let msg = open_err("x:-1,3,2", dir, "float16", 2);
    assert_contains(
        &msg,
        &[
            "1.bin",
            "one batch of --input_shape 5×3×2 float16 is 60 bytes",
            "holds 4 samples",
            "the -1 dim of --input_shape was resolved from the size of",
            "0.bin",
        ],
    );
}

#[test]
fn argument_counts_must_match_the_inputs() {
    let msg = open_err("a:1;b:1", "/tmp", "uint8;uint8", 1);
    println!("{msg}");
    assert_contains(&msg, &["--data_dir: gives 1 directory but --input_shape gives 2 inputs (a, b); give one directory per input"]);
    let msg = open_err("a:1;b:1", "/tmp;/tmp", "uint8;uint8;uint8", 1);
    println!("{msg}");
    assert_contains(&msg, &["--data_types: gives 3 data types but --input_shape gives 2 inputs (a, b)"]);
    assert_contains(&open_err("a", "/tmp", "uint8", 1), &["--input_shape: ", "no ':'"]);
    assert_contains(&open_err("a:1", "/tmp", "uint8", 0), &["--batch_num: must be at least 1"]);
    assert_contains(
        &open_err("a:1", "/nonexistent/calib", "uint8", 1),
        &["--data_dir: directory /nonexistent/calib of input 'a': No such file"],
    );
}

#[test]
fn non_finite_values_are_named_by_batch_input_file_and_index() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("0.bin"), &f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    write(&tmp.path().join("1.bin"), &f32_bytes(&[1.0, 2.0, 3.0, 4.0, f32::NEG_INFINITY, f32::NAN]));
    let set = CalibrationSet::open("x:1,2,3", tmp.path().to_str().unwrap(), "float32", 2).unwrap();
    set.check_finite(&set.batch(0).unwrap()).unwrap();
    let msg = set.check_finite(&set.batch(1).unwrap()).unwrap_err().to_string();
    println!("{msg}");
    assert_contains(&msg, &["input 'x'", "1.bin", "batch 1: element 4 (index [0, 1, 1]) is -inf; calibration data must be finite"]);
}

/// Reads from /proc/self/status the value in kB of `key` (VmHWM: peak RSS, VmRSS: current).
fn status_kb(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

const RSS_FILES: usize = 300;
const RSS_SIDE: usize = 512; // uint8 1×1×512×512: 256 KiB per file, 1 MiB as f32

#[test]
fn reading_all_batches_does_not_grow_memory() {
    if !Path::new("/proc/self/status").exists() {
        eprintln!("*** SKIPPED: no /proc/self/status ***");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut img = vec![0u8; RSS_SIDE * RSS_SIDE];
    for i in 0..RSS_FILES {
        img.fill((i % 251) as u8);
        write(&tmp.path().join(format!("a/{i:04}.bin")), &img);
        write(&tmp.path().join(format!("b/{i:04}.bin")), &f32_bytes(&[i as f32; 16]));
    }
    // The measurement runs alone in a fresh process: other tests of this binary run in
    // parallel threads and would move this process's RSS.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["rss_child", "--exact", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env("CALIB_RSS_DIR", tmp.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report = stdout.lines().find_map(|l| l.split_once("RSS_KB ").map(|(_, r)| r)).unwrap_or_else(|| panic!("no report in:\n{stdout}"));
    let [rss_before, hwm_after, rss_after]: [u64; 3] =
        report.split_whitespace().map(|v| v.parse().unwrap()).collect::<Vec<_>>().try_into().unwrap();
    let batch_kb = (RSS_SIDE * RSS_SIDE * (1 + 4) / 1024) as u64; // mapped file + its f32 copy
    let peak_growth = hwm_after.saturating_sub(rss_before);
    println!(
        "{RSS_FILES} batches of {batch_kb} KiB (file + f32): VmRSS {rss_before} -> {rss_after} kB, VmHWM after {hwm_after} kB, peak growth {peak_growth} kB"
    );
    // All files mapped or all batches kept would be 300 × that.
    assert!(peak_growth < 3 * batch_kb, "peak RSS grew by {peak_growth} kB over {RSS_FILES} batches of {batch_kb} kB");
    assert!(rss_after.saturating_sub(rss_before) < 2 * batch_kb, "RSS grew by {} kB", rss_after - rss_before);
}

#[test]
#[ignore = "run in its own process by reading_all_batches_does_not_grow_memory"]
fn rss_child() {
    let Some(dir) = std::env::var_os("CALIB_RSS_DIR") else {
        eprintln!("rss_child: CALIB_RSS_DIR not set; only meaningful as a child of reading_all_batches_does_not_grow_memory");
        return;
    };
    let dir = Path::new(&dir);
    // Start the peak from here (Linux ≥ 4.0; if refused, VmHWM only overstates the growth).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_kb("VmRSS:");
    let dirs = format!("{};{}", dir.join("a").display(), dir.join("b").display());
    let set = CalibrationSet::open(&format!("a:1,1,{RSS_SIDE},{RSS_SIDE};b:16"), &dirs, "uint8;float32", RSS_FILES).unwrap();
    let mut sum = 0.0f64;
    for batch in set.batches() {
        let batch = batch.unwrap();
        let a = values(batch.get("a").unwrap());
        assert!(a.iter().all(|&v| v == (batch.index % 251) as f32), "batch {}", batch.index);
        assert_eq!(values(batch.get("b").unwrap())[15], batch.index as f32);
        sum += a.iter().map(|&v| f64::from(v)).sum::<f64>();
    }
    assert!(sum > 0.0);
    println!("RSS_KB {rss_before} {} {}", status_kb("VmHWM:"), status_kb("VmRSS:"));
}
