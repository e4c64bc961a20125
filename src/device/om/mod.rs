//! Reading Ascend offline models (`.om`, written by ATC) without CANN: the 256-byte header,
//! the partition table (both on-disk layouts) and the `ge.proto.ModelDef` of partition 0,
//! summarized as an [`OmInfo`]. Format: docs/ascend-formats.md §12.

pub mod error;
pub mod header;
pub mod info;
pub mod inout;
pub mod partition;
pub mod simulated;

/// Types generated from `proto/ge_ir.proto` (package `ge.proto`).
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/ge.proto.rs"));
}

pub use error::OmError;
pub use header::{HEADER_SIZE, OM_MAGIC, OmHeader};
pub use info::{IoSource, OmInfo, SimulatedInfo, om_info_file, om_info_from_bytes};
pub use partition::{Partition, PartitionKind, TableLayout};
pub use simulated::{
    SimInput, SimPrecision, SimTensorDesc, SimulatedBuild, SimulatedModel, read_simulated_om, read_simulated_om_file, write_simulated_om,
};
