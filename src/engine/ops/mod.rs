//! Op families. Each file registers its ops with [`register`](super::Registry::register).

pub mod activation;
pub mod binary;
pub(crate) mod common;
pub mod conv;
pub mod int8;
pub mod matmul;
pub mod norm;
pub mod pool;
pub mod quant;
pub mod reduce;
pub mod resize;
pub mod shape;

use super::registry::Registry;

pub fn register_all(r: &mut Registry) {
    activation::register(r);
    binary::register(r);
    conv::register(r);
    matmul::register(r);
    norm::register(r);
    pool::register(r);
    quant::register(r);
    reduce::register(r);
    resize::register(r);
    shape::register(r);
}
