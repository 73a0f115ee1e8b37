//! `#[durq_test_macros::test]`, the test attribute of durq's integration
//! tests on wasm32.
//!
//! The conformance suites are synchronous functions, but opening a database
//! in the browser's origin private file system needs the OPFS pool installed
//! first, which is asynchronous. This attribute turns
//!
//! ```ignore
//! #[test]
//! fn name() -> R { body }
//! ```
//!
//! into
//!
//! ```ignore
//! #[wasm_bindgen_test::wasm_bindgen_test]
//! async fn name() -> R {
//!     common::ready().await;
//!     fn body() -> R { body }
//!     body()
//! }
//! ```
//!
//! so every test first awaits `common::ready()` of the test file's `common`
//! module (a no-op in Node; installs the pool once in a browser worker),
//! then runs unchanged. Other attributes on the function (`#[should_panic]`,
//! doc comments) are kept. Written on `proc_macro` alone: the input is one
//! plain `fn` item, so no parser crate is needed.

use proc_macro::{Delimiter, TokenStream, TokenTree};

/// See the crate documentation. Panics (a compile error) if the item is not
/// a parameterless `fn` with a body.
#[proc_macro_attribute]
pub fn test(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let tokens: Vec<TokenTree> = item.into_iter().collect();
    let fn_at = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "fn"))
        .expect("#[test] goes on a fn");
    let name = match &tokens[fn_at + 1] {
        TokenTree::Ident(i) => i.to_string(),
        _ => panic!("#[test] goes on a named fn"),
    };
    match &tokens[fn_at + 2] {
        TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis && g.stream().is_empty() => {
        }
        _ => panic!("a test takes no parameters"),
    }
    let body = match tokens.last() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => g.to_string(),
        _ => panic!("#[test] needs a fn with a body"),
    };
    let ret: String = tokens[fn_at + 3..tokens.len() - 1]
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    // Attributes and visibility before `fn`, kept after the test attribute so
    // wasm_bindgen_test sees `#[should_panic]` and `#[ignore]`.
    let before: String = tokens[..fn_at]
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        "#[::wasm_bindgen_test::wasm_bindgen_test] {before} async fn {name}() {ret} {{ \
             common::ready().await; \
             fn body() {ret} {body} \
             body() \
         }}"
    )
    .parse()
    .expect("the rewritten test parses")
}
