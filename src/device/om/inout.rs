//! The MODEL_INOUT_INFO partition (type 8) of CANN 6–8 OMs: the model's input and output
//! tensor descriptions as GE's ModelIntroduction writes them (docs/ascend-formats.md §12.6).
//!
//! The partition is a run of blocks {u32 type, u32 length, value[length]}. Blocks 0 (inputs)
//! and 1 (outputs) hold a u32 count and then, per tensor, a 32-byte record {u64 size, i32
//! format, i32 dtype, u32 name_len, u32 dims_len, u32 dims_v2_len, u32 shape_range_len}
//! followed by the name, the dims (i64), the dims after static AIPP (i64) and the shape range
//! (pairs of i64). Lengths are in bytes; dtype and format use the C++ / aclDataType and
//! aclFormat numberings (§11.2). The record layout is taken from the writer's C++ structs
//! (natural alignment, no packing); no public CANN 8 file confirms it, so the reader only
//! accepts a partition in which every length adds up exactly, and callers fall back to the
//! ModelDef otherwise.
//!
//! Every count and length is checked against the bytes that remain before anything is
//! allocated, so a short partition that declares huge sizes is an error, not an allocation.

use serde::Serialize;

use super::header::{u32_at, u64_at};

/// Block types of the partition (GE's `ModelDescType`).
pub const BLOCK_INPUT_DESC: u32 = 0;
pub const BLOCK_OUTPUT_DESC: u32 = 1;

/// Size of the fixed part of one tensor record.
const RECORD: usize = 32;

/// The tensors of one MODEL_INOUT_INFO partition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InOutInfo {
    pub inputs: Vec<InOutTensor>,
    pub outputs: Vec<InOutTensor>,
    /// Types of the other blocks present (2 dynamic batch, 3 dynamic HW, 4 dynamic dims,
    /// 5 dynamic output shape, 6 shape order): skipped, not interpreted.
    pub other_blocks: Vec<u32>,
}

/// One tensor description.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InOutTensor {
    pub name: String,
    /// Buffer size in bytes, as recorded.
    pub size: u64,
    /// aclFormat number.
    pub format: i32,
    /// aclDataType (C++ ge::DataType) number.
    pub dtype: i32,
    pub dims: Vec<i64>,
    /// Dims after static AIPP (the model's own input dims); equal to `dims` otherwise.
    pub dims_v2: Vec<i64>,
    pub shape_range: Vec<(i64, i64)>,
}

fn name_of_block(kind: u32) -> &'static str {
    match kind {
        BLOCK_INPUT_DESC => "input descriptions",
        BLOCK_OUTPUT_DESC => "output descriptions",
        2 => "dynamic batch",
        3 => "dynamic HW",
        4 => "dynamic dims",
        5 => "dynamic output shape",
        6 => "shape order",
        _ => "unknown block",
    }
}

/// A cursor over one value; every read is checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.left() {
            return Err(format!("{what}: {n} bytes needed at offset {}, only {} left", self.pos, self.left()));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let at = self.pos;
        self.take(4, what)?;
        Ok(u32_at(self.bytes, at).unwrap_or_default())
    }

    fn u64(&mut self, what: &str) -> Result<u64, String> {
        let at = self.pos;
        self.take(8, what)?;
        Ok(u64_at(self.bytes, at).unwrap_or_default())
    }

    /// `len` bytes of little-endian i64 values.
    fn i64s(&mut self, len: u32, what: &str) -> Result<Vec<i64>, String> {
        if !len.is_multiple_of(8) {
            return Err(format!("{what}: length {len} is not a multiple of 8"));
        }
        let raw = self.take(len as usize, what)?;
        Ok(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default())).collect())
    }
}

fn read_tensor(c: &mut Cursor, i: usize) -> Result<InOutTensor, String> {
    let what = |field: &str| format!("tensor {i}: {field}");
    let size = c.u64(&what("size"))?;
    let format = c.u32(&what("format"))? as i32;
    let dtype = c.u32(&what("dtype"))? as i32;
    let name_len = c.u32(&what("name length"))?;
    let dims_len = c.u32(&what("dims length"))?;
    let dims_v2_len = c.u32(&what("dims_v2 length"))?;
    let range_len = c.u32(&what("shape range length"))?;
    let name = String::from_utf8_lossy(c.take(name_len as usize, &what("name"))?).into_owned();
    let dims = c.i64s(dims_len, &what("dims"))?;
    let dims_v2 = c.i64s(dims_v2_len, &what("dims_v2"))?;
    if !range_len.is_multiple_of(16) {
        return Err(format!("tensor {i}: shape range length {range_len} is not a multiple of 16"));
    }
    let range = c.i64s(range_len, &what("shape range"))?;
    let shape_range = range.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    Ok(InOutTensor { name, size, format, dtype, dims, dims_v2, shape_range })
}

fn read_tensors(value: &[u8]) -> Result<Vec<InOutTensor>, String> {
    let mut c = Cursor { bytes: value, pos: 0 };
    let count = c.u32("tensor count")?;
    // Cap by what the value can hold before reserving anything.
    if count as usize > c.left() / RECORD {
        return Err(format!("declares {count} tensors, but {} bytes hold at most {}", c.left(), c.left() / RECORD));
    }
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count as usize {
        out.push(read_tensor(&mut c, i)?);
    }
    if c.left() != 0 {
        return Err(format!("{} bytes left after {count} tensors", c.left()));
    }
    Ok(out)
}

/// Parses a MODEL_INOUT_INFO payload. Err is a reason for a person ("block 0 (input
/// descriptions) at offset 8: tensor 1: name: …").
pub fn parse_inout(bytes: &[u8]) -> Result<InOutInfo, String> {
    let mut c = Cursor { bytes, pos: 0 };
    let mut info = InOutInfo { inputs: Vec::new(), outputs: Vec::new(), other_blocks: Vec::new() };
    let mut seen = Vec::new();
    if bytes.is_empty() {
        return Err("the partition is empty".into());
    }
    while c.left() > 0 {
        let at = c.pos;
        let kind = c.u32("block type")?;
        let len = c.u32("block length")?;
        let value = c.take(len as usize, &format!("block {kind} ({}) at offset {at}", name_of_block(kind)))?;
        if seen.contains(&kind) {
            return Err(format!("block {kind} ({}) appears twice", name_of_block(kind)));
        }
        seen.push(kind);
        let context = |e: String| format!("block {kind} ({}) at offset {at}: {e}", name_of_block(kind));
        match kind {
            BLOCK_INPUT_DESC => info.inputs = read_tensors(value).map_err(context)?,
            BLOCK_OUTPUT_DESC => info.outputs = read_tensors(value).map_err(context)?,
            2..=6 => info.other_blocks.push(kind),
            _ => return Err(format!("unknown block type {kind} at offset {at} (known: 0–6)")),
        }
    }
    Ok(info)
}

/// aclDataType / C++ ge::DataType names (§11.2).
pub fn ge_dtype_name(dtype: i64) -> String {
    let name = match dtype {
        0 => "FLOAT",
        1 => "FLOAT16",
        2 => "INT8",
        3 => "INT32",
        4 => "UINT8",
        6 => "INT16",
        7 => "UINT16",
        8 => "UINT32",
        9 => "INT64",
        10 => "UINT64",
        11 => "DOUBLE",
        12 => "BOOL",
        13 => "STRING",
        16 => "COMPLEX64",
        17 => "COMPLEX128",
        27 => "BF16",
        _ => return format!("ge::DataType({dtype})"),
    };
    name.into()
}

/// aclFormat names (§11.2).
pub fn ge_format_name(format: i32) -> String {
    let name = match format {
        0 => "NCHW",
        1 => "NHWC",
        2 => "ND",
        3 => "NC1HWC0",
        4 => "FRACTAL_Z",
        12 => "NC1HWC0_C04",
        16 => "HWCN",
        27 => "NDHWC",
        29 => "FRACTAL_NZ",
        30 => "NCDHW",
        32 => "NDC1HWC0",
        33 => "FRACTAL_Z_3D",
        35 => "NC",
        47 => "NCL",
        _ => return format!("Format({format})"),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, dims: &[i64]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend(64u64.to_le_bytes());
        r.extend(0i32.to_le_bytes());
        r.extend(1i32.to_le_bytes());
        r.extend((name.len() as u32).to_le_bytes());
        r.extend((dims.len() as u32 * 8).to_le_bytes());
        r.extend((dims.len() as u32 * 8).to_le_bytes());
        r.extend(0u32.to_le_bytes());
        r.extend(name.as_bytes());
        for _ in 0..2 {
            dims.iter().for_each(|d| r.extend(d.to_le_bytes()));
        }
        r
    }

    #[test]
    fn huge_declared_counts_are_errors_before_allocating() {
        let mut value = Vec::new();
        value.extend(u32::MAX.to_le_bytes());
        let mut part = Vec::new();
        part.extend(0u32.to_le_bytes());
        part.extend((value.len() as u32).to_le_bytes());
        part.extend(&value);
        let e = parse_inout(&part).unwrap_err();
        assert!(e.contains("declares 4294967295 tensors"), "{e}");
        let mut rec = record("x", &[1, 2]);
        rec[20..24].copy_from_slice(&u32::MAX.to_le_bytes()); // dims_len
        let mut value = 1u32.to_le_bytes().to_vec();
        value.extend(rec);
        let mut part = 0u32.to_le_bytes().to_vec();
        part.extend((value.len() as u32).to_le_bytes());
        part.extend(&value);
        let e = parse_inout(&part).unwrap_err();
        assert!(e.contains("tensor 0: dims"), "{e}");
    }

    #[test]
    fn one_input_block_reads_back() {
        let mut value = 1u32.to_le_bytes().to_vec();
        value.extend(record("images", &[1, 3, 8, 8]));
        let mut part = 0u32.to_le_bytes().to_vec();
        part.extend((value.len() as u32).to_le_bytes());
        part.extend(&value);
        let info = parse_inout(&part).unwrap();
        assert_eq!(info.inputs.len(), 1);
        assert_eq!(info.inputs[0].name, "images");
        assert_eq!(info.inputs[0].dims, [1, 3, 8, 8]);
        assert_eq!(info.inputs[0].dtype, 1);
        assert!(info.outputs.is_empty());
    }
}
