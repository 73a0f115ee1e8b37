//! The wasm-bindgen boundary: the only place in the crate that uses
//! `wasm_bindgen` and `js_sys`. One file per exported type.

pub mod core;
pub mod error;
pub mod host_fs;
pub mod opfs;
