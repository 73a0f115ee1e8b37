//! Errors as they cross into JavaScript: `Error` objects with
//! `name = "DurqError"` and a stable `code`, never strings.

use crate::Error;
use wasm_bindgen::JsValue;

/// Converts a core error into a JS `Error` with `name` and `code` set,
/// and `extendedCode` (SQLite's extended result code) for an SQLite error.
pub fn to_js(e: &Error) -> JsValue {
    let err = js_error(e.code(), &e.to_string());
    if let Some(x) = e.extended_code() {
        let _ = js_sys::Reflect::set(
            &err,
            &JsValue::from_str("extendedCode"),
            &JsValue::from_f64(x.into()),
        );
    }
    err
}

/// A JS `Error` with `name = "DurqError"`, the given `code` and `message`.
pub fn js_error(code: &str, message: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    err.set_name("DurqError");
    // Reflect.set on a fresh Error object cannot fail.
    let _ = js_sys::Reflect::set(&err, &JsValue::from_str("code"), &JsValue::from_str(code));
    err.into()
}
