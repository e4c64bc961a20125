//! The Ascend side: AIPP configuration (ATC `--insert_op_conf`), driving ATC, reading OM models,
//! and running them through AscendCL (`acl`).

pub mod acl;
pub mod aipp;
pub mod atc;
pub mod om;
