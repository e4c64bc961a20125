//! The Ascend side: AIPP configuration (ATC `--insert_op_conf`), driving ATC, reading OM models.

pub mod aipp;
pub mod atc;
pub mod om;
