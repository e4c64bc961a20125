//! The Ascend side: AIPP configuration (ATC `--insert_op_conf`) and reading OM models.

pub mod aipp;
pub mod om;
