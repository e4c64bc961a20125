use crate::engine::registry::Registry;

pub fn register(_r: &mut Registry) {}
