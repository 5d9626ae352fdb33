//! Canonical Extended JSON v2 for raw documents, one line per document (`cat --format json`).
//!
//! Scalars are rendered by the `bson` crate's own canonical encoder; documents and
//! arrays are walked here, on the raw bytes, because decoding into a
//! `bson::Document` would silently drop a repeated key and reorder nothing else —
//! what is printed must be exactly what is stored.

use std::fmt::Write as _;

use bson::{Bson, RawBsonRef, RawDocument};

/// Error rendering a document.
#[derive(Debug, thiserror::Error)]
#[error("document does not parse: {0}")]
pub struct RenderError(String);

/// Appends the canonical Extended JSON of `doc` to `out`.
pub fn render(doc: &[u8], out: &mut String) -> Result<(), RenderError> {
    let raw = RawDocument::from_bytes(doc).map_err(|e| RenderError(e.to_string()))?;
    render_doc(raw, out, false, 0)
}

fn render_doc(
    doc: &RawDocument,
    out: &mut String,
    array: bool,
    depth: usize,
) -> Result<(), RenderError> {
    if depth > crate::docs::MAX_DEPTH {
        return Err(RenderError("nesting too deep".into()));
    }
    out.push(if array { '[' } else { '{' });
    for (i, el) in doc.iter_elements().enumerate() {
        let el = el.map_err(|e| RenderError(e.to_string()))?;
        if i > 0 {
            out.push(',');
        }
        if !array {
            out.push_str(&serde_json::to_string(el.key().as_str()).expect("a string serializes"));
            out.push(':');
        }
        match el.value().map_err(|e| RenderError(e.to_string()))? {
            RawBsonRef::Document(d) => render_doc(d, out, false, depth + 1)?,
            RawBsonRef::Array(a) => {
                let d = RawDocument::from_bytes(a.as_bytes())
                    .map_err(|e| RenderError(e.to_string()))?;
                render_doc(d, out, true, depth + 1)?
            }
            // The scope is a document: walked here too, under the same depth limit
            // (the bson crate's own conversion recurses without one).
            RawBsonRef::JavaScriptCodeWithScope(c) => {
                out.push_str("{\"$code\":");
                out.push_str(&serde_json::to_string(c.code).expect("a string serializes"));
                out.push_str(",\"$scope\":");
                render_doc(c.scope, out, false, depth + 1)?;
                out.push('}');
            }
            v => {
                let b = Bson::try_from(v).map_err(|e| RenderError(e.to_string()))?;
                let _ = write!(out, "{}", b.into_canonical_extjson());
            }
        }
    }
    out.push(if array { ']' } else { '}' });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_keeps_duplicate_keys() {
        let d =
            bson::serialize_to_vec(&bson::doc! {"_id": 1, "a": [1i64, {"b": 1.5}], "s": "x\"y"})
                .unwrap();
        let mut s = String::new();
        render(&d, &mut s).unwrap();
        assert_eq!(
            s,
            r#"{"_id":{"$numberInt":"1"},"a":[{"$numberLong":"1"},{"b":{"$numberDouble":"1.5"}}],"s":"x\"y"}"#
        );
        // {"k": 1, "k": 2} built by hand
        let mut raw = vec![0u8; 4];
        for v in [1i32, 2] {
            raw.push(0x10);
            raw.extend(b"k\0");
            raw.extend(v.to_le_bytes());
        }
        raw.push(0);
        let n = raw.len() as i32;
        raw[..4].copy_from_slice(&n.to_le_bytes());
        let mut s = String::new();
        render(&raw, &mut s).unwrap();
        assert_eq!(s, r#"{"k":{"$numberInt":"1"},"k":{"$numberInt":"2"}}"#);
    }

    #[test]
    fn code_with_scope_is_canonical_and_depth_limited() {
        let d = bson::serialize_to_vec(&bson::doc! {"c": bson::Bson::JavaScriptCodeWithScope(
            bson::JavaScriptCodeWithScope { code: "f(\"x\")".into(), scope: bson::doc! {"x": 1} },
        )})
        .unwrap();
        let mut s = String::new();
        render(&d, &mut s).unwrap();
        assert_eq!(
            s,
            r#"{"c":{"$code":"f(\"x\")","$scope":{"x":{"$numberInt":"1"}}}}"#
        );
        // a scope nested far deeper than any stack allows: an error, not a stack overflow
        let depth = 100_000;
        let mut scope = Vec::with_capacity(5 + 9 * depth);
        for k in (1..=depth).rev() {
            scope.extend(((5 + 8 * k) as i32).to_le_bytes());
            scope.extend(b"\x03a\0");
        }
        scope.extend([5, 0, 0, 0, 0]);
        scope.extend(std::iter::repeat_n(0u8, depth));
        let mut cws = ((4 + 4 + 2 + scope.len()) as i32).to_le_bytes().to_vec();
        cws.extend(2i32.to_le_bytes());
        cws.extend(b"x\0");
        cws.extend(&scope);
        let mut doc = ((4 + 3 + cws.len() + 1) as i32).to_le_bytes().to_vec();
        doc.extend(b"\x0fc\0");
        doc.extend(&cws);
        doc.push(0);
        assert!(render(&doc, &mut String::new()).is_err());
    }
}
