//! The relaxed JSON mongo-tools accepts in `--writeConcern` and `--readPreference`
//! (`{w: 3, wtimeout: 500, j: true}`): unquoted keys and single-quoted strings, turned
//! into strict JSON.

/// A syntax error, with the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid JSON document at byte {offset}: {what}")]
pub struct RelaxedError {
    /// Where.
    pub offset: usize,
    /// What was expected.
    pub what: String,
}

/// Rewrites relaxed JSON into strict JSON: bare keys get double quotes, single-quoted
/// strings become double-quoted. Everything else is passed through for `serde_json`.
pub fn to_strict(s: &str) -> Result<String, RelaxedError> {
    let b: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    // Whether the next token may be an object key.
    let mut expect_key = false;
    // Open objects (`true`) and arrays (`false`): a comma expects a key only in an object.
    let mut stack: Vec<bool> = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            '"' | '\'' => {
                let q = c;
                out.push('"');
                i += 1;
                let mut closed = false;
                while i < b.len() {
                    let d = b[i];
                    if d == '\\' && i + 1 < b.len() {
                        if b[i + 1] == '\'' {
                            out.push('\'');
                        } else {
                            out.push('\\');
                            out.push(b[i + 1]);
                        }
                        i += 2;
                        continue;
                    }
                    if d == q {
                        closed = true;
                        i += 1;
                        break;
                    }
                    if d == '"' {
                        out.push_str("\\\"");
                    } else {
                        out.push(d);
                    }
                    i += 1;
                }
                if !closed {
                    return Err(RelaxedError {
                        offset: i,
                        what: "unterminated string".into(),
                    });
                }
                out.push('"');
                expect_key = false;
            }
            '{' | '[' => {
                stack.push(c == '{');
                out.push(c);
                expect_key = c == '{';
                i += 1;
            }
            '}' | ']' => {
                stack.pop();
                out.push(c);
                expect_key = false;
                i += 1;
            }
            ',' => {
                out.push(c);
                expect_key = stack.last().copied().unwrap_or(false);
                i += 1;
            }
            c if expect_key && (c.is_alphabetic() || c == '_' || c == '$') => {
                let start = i;
                while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_' || b[i] == '$') {
                    i += 1;
                }
                let key: String = b[start..i].iter().collect();
                out.push('"');
                out.push_str(&key);
                out.push('"');
                expect_key = false;
            }
            c if c.is_whitespace() => {
                out.push(c);
                i += 1;
            }
            c => {
                out.push(c);
                expect_key = false;
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Parses relaxed JSON into a JSON value.
pub fn parse(s: &str) -> Result<serde_json::Value, RelaxedError> {
    let strict = to_strict(s)?;
    serde_json::from_str(&strict).map_err(|e| RelaxedError {
        offset: e.column().saturating_sub(1),
        what: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bare_keys_and_single_quotes() {
        assert_eq!(
            parse("{w: 3, wtimeout: 500, fsync: true, j: true}").unwrap(),
            json!({"w": 3, "wtimeout": 500, "fsync": true, "j": true})
        );
        assert_eq!(
            parse("{mode: 'nearest', tagSets: [{a: 'b'}], maxStalenessSeconds: 123}").unwrap(),
            json!({"mode": "nearest", "tagSets": [{"a": "b"}], "maxStalenessSeconds": 123})
        );
        assert_eq!(
            parse(r#"{"w": "majority"}"#).unwrap(),
            json!({"w": "majority"})
        );
        assert_eq!(
            parse("{a: [1, true], b: null}").unwrap(),
            json!({"a": [1, true], "b": null})
        );
        assert_eq!(
            parse("{s: 'it\\'s \"x\"'}").unwrap(),
            json!({"s": "it's \"x\""})
        );
    }

    #[test]
    fn errors() {
        assert!(parse("{w: }").is_err());
        assert!(parse("{w: 'open}").is_err());
        assert!(parse("{w: majority}").is_err());
    }
}
