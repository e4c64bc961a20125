//! The fixed 256-byte OM header (docs/ascend-formats.md §12.1), little-endian, in both versions
//! real files use (§12.5): 0x10000000 headers (CANN 20.x) have no model_num field and their
//! platform string starts at 156; 0x20000000 headers carry model_num at 156, and CANN 6–8 write
//! the body length as a u64 at 184 with 0 in the u32 at 76.

use serde::Serialize;

/// Header size, and the value of its `headsize` field.
pub const HEADER_SIZE: usize = 256;
/// `magic` read as a little-endian u32; the file starts with the bytes "IMOD".
pub const OM_MAGIC: u32 = 0x444F_4D49;

/// First header version with the om_ir_version / model_num pair (§12.5).
pub const HEADER_V2: u32 = 0x2000_0000;

/// The header fields a reader can use. `model_length` and `need_check_os_cpu_info` only exist
/// in the newer tail layout; they are `None` when those bytes are zero (the old `reserved[75]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OmHeader {
    pub version: u32,
    /// Bytes after the header, as declared.
    pub length: u32,
    pub is_encrypt: u8,
    pub is_checksum: u8,
    /// 0 IR, 1 standard, 2 OM tiny, 3 flow, 4 lite, 5 bundle.
    pub model_type: u8,
    /// 0 offline, 1 online.
    pub gen_mode: u8,
    pub name: String,
    pub ops: u32,
    pub user_define_info: String,
    pub om_ir_version: u32,
    /// The model_num field as stored (0 means one model); `None` for 0x10000000 headers,
    /// which do not have it. [`OmHeader::model_count`] is the number of model blocks.
    pub model_num: Option<u32>,
    pub platform_version: String,
    pub platform_type: u8,
    pub model_length: Option<u64>,
    pub need_check_os_cpu_info: Option<u8>,
}

/// What went wrong in the header, before the file name is attached.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderProblem {
    Empty,
    BadMagic([u8; 4]),
    Truncated(usize),
    HeaderSize(u32),
}

pub(crate) fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let b = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

pub(crate) fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    let b = bytes.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

/// A NUL-terminated fixed-size string field (lossy UTF-8).
fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

impl OmHeader {
    /// Parses the header at the start of `bytes` (the whole file or at least its first 256
    /// bytes). The magic is checked first so a non-OM file is named as such even when short.
    pub fn parse(bytes: &[u8]) -> Result<Self, HeaderProblem> {
        if bytes.is_empty() {
            return Err(HeaderProblem::Empty);
        }
        let n = bytes.len().min(4);
        // A file shorter than the magic that agrees with it so far is a truncated OM.
        if bytes[..n] != OM_MAGIC.to_le_bytes()[..n] {
            let mut found = [0u8; 4];
            found[..n].copy_from_slice(&bytes[..n]);
            return Err(HeaderProblem::BadMagic(found));
        }
        let Some(h) = bytes.get(..HEADER_SIZE) else {
            return Err(HeaderProblem::Truncated(bytes.len()));
        };
        let headsize = u32_at(h, 4).unwrap_or_default();
        if headsize as usize != HEADER_SIZE {
            return Err(HeaderProblem::HeaderSize(headsize));
        }
        let u32_field = |offset| u32_at(h, offset).unwrap_or_default();
        let model_length = u64_at(h, 184).filter(|&v| v != 0);
        let need_check = Some(h[192]).filter(|_| model_length.is_some());
        // §12.5: a 0x10000000 header has no model_num; its platform string (and the platform
        // type byte after it) sit 4 bytes earlier than in later headers.
        let v2 = u32_field(8) >= HEADER_V2;
        let (model_num, platform_at) = if v2 { (Some(u32_field(156)), 160) } else { (None, 156) };
        Ok(OmHeader {
            version: u32_field(8),
            length: u32_field(76),
            is_encrypt: h[80],
            is_checksum: h[81],
            model_type: h[82],
            gen_mode: h[83],
            name: c_string(&h[84..116]),
            ops: u32_field(116),
            user_define_info: c_string(&h[120..152]),
            om_ir_version: u32_field(152),
            model_num,
            platform_version: c_string(&h[platform_at..platform_at + 20]),
            platform_type: h[platform_at + 20],
            model_length,
            need_check_os_cpu_info: need_check,
        })
    }

    /// Bytes after the header as declared (§12.5): the u32 at 76 when it is non-zero, else the
    /// u64 at 184 (CANN 6–8). 0 when neither is set. The second item names the field used.
    pub fn body_length(&self) -> (u64, &'static str) {
        match (self.length, self.model_length) {
            (0, Some(len)) => (len, "u64 model_length at offset 184"),
            (len, _) => (u64::from(len), "u32 length at offset 76"),
        }
    }

    /// Number of [table][payloads] blocks: model_num, where 0 (and a header without the
    /// field) means one.
    pub fn model_count(&self) -> u32 {
        self.model_num.unwrap_or(1).max(1)
    }
}
