//! The Ascend side: AIPP configuration (ATC `--insert_op_conf`).

pub mod aipp;
