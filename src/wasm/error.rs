//! Errors as they cross into JavaScript: `Error` objects with
//! `name = "DurqError"` and a stable `code`, never strings.

use crate::Error;
use wasm_bindgen::JsValue;

/// Converts a core error into a JS `Error` with `name` and `code` set.
pub fn to_js(e: &Error) -> JsValue {
    js_error(e.code(), &e.to_string())
}

/// A JS `Error` with `name = "DurqError"`, the given `code` and `message`.
pub fn js_error(code: &str, message: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    err.set_name("DurqError");
    // Reflect.set on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&err, &JsValue::from_str("code"), &JsValue::from_str(code));
    err.into()
}
