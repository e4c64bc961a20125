//! AscendCL constants (docs/ascend-formats.md §11.2) used by the simulator.

pub const ACL_SUCCESS: i32 = 0;
pub const ACL_ERROR_INVALID_PARAM: i32 = 100000;
pub const ACL_ERROR_UNINITIALIZE: i32 = 100001;
pub const ACL_ERROR_REPEAT_INITIALIZE: i32 = 100002;
pub const ACL_ERROR_INVALID_MODEL_ID: i32 = 100011;
pub const ACL_ERROR_PARSE_MODEL: i32 = 100013;
pub const ACL_ERROR_MODEL_INPUT_NOT_MATCH: i32 = 100017;
pub const ACL_ERROR_MODEL_OUTPUT_NOT_MATCH: i32 = 100018;
pub const ACL_ERROR_REPEAT_FINALIZE: i32 = 100037;
pub const ACL_ERROR_BAD_ALLOC: i32 = 200000;
pub const ACL_ERROR_INTERNAL_ERROR: i32 = 500000;
pub const ACL_ERROR_FAILURE: i32 = 500001;
/// Runtime: invalid device id.
pub const ACL_ERROR_RT_INVALID_DEVICEID: i32 = 107001;
/// Runtime: no current context.
pub const ACL_ERROR_RT_CONTEXT_NULL: i32 = 107002;
/// GE: the model path does not exist or cannot be read.
pub const ACL_ERROR_GE_EXEC_MODEL_PATH_INVALID: i32 = 145002;

pub const ACL_DEVICE: i32 = 0;
pub const ACL_HOST: i32 = 1;

pub const ACL_MEMCPY_HOST_TO_HOST: i32 = 0;
pub const ACL_MEMCPY_HOST_TO_DEVICE: i32 = 1;
pub const ACL_MEMCPY_DEVICE_TO_HOST: i32 = 2;
pub const ACL_MEMCPY_DEVICE_TO_DEVICE: i32 = 3;
pub const ACL_MEMCPY_DEFAULT: i32 = 4;

pub const ACL_DT_UNDEFINED: i32 = -1;
pub const ACL_FORMAT_UNDEFINED: i32 = -1;

pub const ACL_DATA_WITHOUT_AIPP: i32 = 0;
pub const ACL_DATA_WITH_STATIC_AIPP: i32 = 1;
/// `ACL_INVALID_NODE_INDEX`: no dynamic-AIPP data input is attached.
pub const ACL_INVALID_NODE_INDEX: usize = 0xFFFF_FFFF;

/// aclDataType (C++ ge::DataType numbering) of an ONNX element type.
pub fn acl_dtype(dt: ascend_ptq::onnx::DataType) -> i32 {
    use ascend_ptq::onnx::DataType::*;
    match dt {
        Float => 0,
        Float16 => 1,
        Int8 => 2,
        Int32 => 3,
        Uint8 => 4,
        Int16 => 6,
        Uint16 => 7,
        Uint32 => 8,
        Int64 => 9,
        Uint64 => 10,
        Double => 11,
        Bool => 12,
        _ => ACL_DT_UNDEFINED,
    }
}

/// `aclDataTypeSize`: bytes per element, 0 for unknown types.
pub fn acl_dtype_size(dt: i32) -> usize {
    match dt {
        2 | 4 | 12 => 1,
        1 | 6 | 7 => 2,
        0 | 3 | 8 => 4,
        9..=11 => 8,
        _ => 0,
    }
}

/// aclFormat of a layout string.
pub fn acl_format(layout: &str) -> i32 {
    match layout {
        "NCHW" => 0,
        "NHWC" => 1,
        "ND" => 2,
        _ => ACL_FORMAT_UNDEFINED,
    }
}

pub fn memcpy_kind_name(kind: i32) -> &'static str {
    match kind {
        ACL_MEMCPY_HOST_TO_HOST => "ACL_MEMCPY_HOST_TO_HOST",
        ACL_MEMCPY_HOST_TO_DEVICE => "ACL_MEMCPY_HOST_TO_DEVICE",
        ACL_MEMCPY_DEVICE_TO_HOST => "ACL_MEMCPY_DEVICE_TO_HOST",
        ACL_MEMCPY_DEVICE_TO_DEVICE => "ACL_MEMCPY_DEVICE_TO_DEVICE",
        ACL_MEMCPY_DEFAULT => "ACL_MEMCPY_DEFAULT",
        _ => "an unsupported kind",
    }
}
