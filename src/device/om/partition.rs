//! The partition table that follows the header (docs/ascend-formats.md §12.2), in its two on-disk layouts. The
//! layout is not flagged anywhere, so both are tried and the one whose sizes add up to the
//! file size is kept. With model_num > 1 the block [table][payloads] repeats per model.

use serde::Serialize;

use super::header::{u32_at, u64_at};

/// More entries than this in one table means we are reading garbage, not a table.
const MAX_PARTITIONS: u32 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableLayout {
    /// graphengine r1.2 … r1.11: `u32 num`, then {u32 type, u32 offset, u32 size}.
    Old,
    /// Newer GE: `u32 num` + 4 padding bytes, then {u32 type, 4 padding, u64 offset, u64 size}.
    New,
}

impl TableLayout {
    fn table_size(self, num: u32) -> u64 {
        match self {
            TableLayout::Old => 4 + 12 * u64::from(num),
            TableLayout::New => 8 + 24 * u64::from(num),
        }
    }

    /// (type, mem_offset, mem_size) of entry `i` of the table starting at `table`.
    fn entry(self, bytes: &[u8], table: usize, i: usize) -> Option<(u32, u64, u64)> {
        match self {
            TableLayout::Old => {
                let at = table.checked_add(4 + 12 * i)?;
                Some((u32_at(bytes, at)?, u64::from(u32_at(bytes, at + 4)?), u64::from(u32_at(bytes, at + 8)?)))
            }
            TableLayout::New => {
                let at = table.checked_add(8 + 24 * i)?;
                Some((u32_at(bytes, at)?, u64_at(bytes, at + 8)?, u64_at(bytes, at + 16)?))
            }
        }
    }
}

/// Partition types (ModelPartitionType in GE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionKind(pub u32);

impl PartitionKind {
    pub const MODEL_DEF: PartitionKind = PartitionKind(0);

    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "MODEL_DEF",
            1 => "WEIGHTS_DATA",
            2 => "TASK_INFO",
            3 => "TBE_KERNELS",
            4 => "CUST_AICPU_KERNELS",
            5 => "SO_BINS",
            6 => "FLOW_MODEL",
            7 => "FLOW_SUBMODEL",
            8 => "MODEL_INOUT_INFO",
            9 => "STATIC_TASK_DESC",
            10 => "DYNAMIC_TASK_DESC",
            11 => "TASK_PARAM",
            12 => "TILING_DATA",
            20 => "PRE_MODEL_DESC",
            21 => "PRE_MODEL_SQE",
            22 => "PRE_KERNEL_ARGS",
            23 => "PRE_MODEL_DESC_EXTEND",
            24 => "BUNDLE_MODEL_INFO",
            _ => "UNKNOWN",
        }
    }
}

/// One partition: where its payload really is in the file (payloads follow the table
/// back-to-back; the stored mem_offset is kept for reference only, as the GE loader does).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Partition {
    /// Index of the model block (0 unless model_num > 1).
    pub model: usize,
    #[serde(rename = "type")]
    pub kind: u32,
    pub type_name: &'static str,
    pub size: u64,
    pub file_offset: u64,
    pub mem_offset: u64,
}

/// Reads `model_num` blocks of [table][payloads] from `bytes` starting at `start` with one
/// layout; the blocks must end exactly at the end of `bytes`. Err is a reason for a person.
fn read_blocks(bytes: &[u8], start: usize, model_num: u32, layout: TableLayout) -> Result<Vec<Partition>, String> {
    let end = bytes.len() as u64;
    let mut pos = start as u64;
    let mut parts = Vec::new();
    for model in 0..model_num as usize {
        let at = usize::try_from(pos).map_err(|_| format!("model {model}: table offset {pos} out of range"))?;
        let num = u32_at(bytes, at)
            .ok_or_else(|| format!("model {model}: truncated: the table count at offset {pos} is past the end ({end} bytes)"))?;
        if num == 0 || num > MAX_PARTITIONS {
            return Err(format!("model {model}: table at offset {pos} declares {num} partitions, expected 1..={MAX_PARTITIONS}"));
        }
        let table_size = layout.table_size(num);
        if pos + table_size > end {
            return Err(format!(
                "model {model}: truncated: the {num}-entry table at offset {pos} needs {table_size} bytes, the file ends at {end}"
            ));
        }
        let mut payload = pos + table_size;
        for i in 0..num as usize {
            let (kind, mem_offset, size) = layout.entry(bytes, at, i).ok_or("table entry out of range")?;
            let next = payload.checked_add(size).filter(|&n| n <= end).ok_or_else(|| {
                format!(
                    "model {model}: partition {i} ({}) of {size} bytes at offset {payload} runs past the end of the file ({end} bytes)",
                    PartitionKind(kind).name()
                )
            })?;
            parts.push(Partition { model, kind, type_name: PartitionKind(kind).name(), size, file_offset: payload, mem_offset });
            payload = next;
        }
        pos = payload;
    }
    if pos != end {
        return Err(format!("{model_num} model block(s) end at offset {pos}, but the file has {end} bytes"));
    }
    Ok(parts)
}

/// Finds the layout under which the tables after the header account for every byte of the
/// file. If both would fit, the one whose partition types are all known wins (then the new one).
pub fn read_partitions(bytes: &[u8], start: usize, model_num: u32) -> Result<(TableLayout, Vec<Partition>), (String, String)> {
    let old = read_blocks(bytes, start, model_num, TableLayout::Old);
    let new = read_blocks(bytes, start, model_num, TableLayout::New);
    let all_known = |p: &Vec<Partition>| p.iter().all(|p| p.type_name != "UNKNOWN");
    match (old, new) {
        (Ok(o), Ok(n)) if all_known(&o) && !all_known(&n) => Ok((TableLayout::Old, o)),
        (_, Ok(n)) => Ok((TableLayout::New, n)),
        (Ok(o), Err(_)) => Ok((TableLayout::Old, o)),
        (Err(o), Err(n)) => Err((o, n)),
    }
}
