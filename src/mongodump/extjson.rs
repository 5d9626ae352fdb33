//! MongoDB Extended JSON v2, written and read the way mongodump's Go driver does.
//!
//! The writer produces **canonical** Extended JSON, compact, without HTML escaping,
//! byte for byte like `bson.MarshalExtJSON(v, canonical=true, escapeHTML=false)` of the
//! Go driver that mongodump 100.x uses:
//!
//! - keys keep their order; strings are escaped like Go (`\"`, `\\`, `\n`, `\r`, `\t`,
//!   `\b`, `\f`, other control bytes as `\u00XX`, U+2028/U+2029 as `\u2028`/`\u2029`);
//! - doubles print like Go's `strconv.FormatFloat(f, 'G', -1, 64)` with `.0` added to
//!   integral values (`1.0`, `1E+06`, `1.5E-07`, `Infinity`, `NaN`);
//! - regular expression options are sorted on output (they are kept as read on input).
//!
//! The reader accepts canonical and relaxed Extended JSON and the legacy forms the Go
//! driver accepts: bare numbers (int32 when the value fits, else int64, double when the
//! literal has a fraction or an exponent or does not fit an int64), `$date` as a number
//! or an ISO-8601 string, legacy `$binary`/`$type`, `$uuid`. As in the Go driver, only
//! the **first** key of an object decides whether it is a type wrapper: `{"$match": …}`
//! or `{"$regex": …}` are ordinary documents (query operators), never regular
//! expressions.

use std::str::FromStr;

use base64::Engine;
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Decimal128, Document, JavaScriptCodeWithScope, Timestamp};
use serde_json::{Map, Value};

/// A value that is not valid Extended JSON, with the dotted path of the element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if path.is_empty() { String::new() } else { format!("at {path}: ") })]
pub struct ExtJsonError {
    /// Dotted path of the offending element (`options.validator.$jsonSchema`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

fn err<T>(path: &str, message: impl Into<String>) -> Result<T, ExtJsonError> {
    Err(ExtJsonError {
        path: path.to_string(),
        message: message.into(),
    })
}

// ---------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------

/// Canonical Extended JSON of a document, as mongodump writes it.
pub fn document_to_canonical(doc: &Document) -> String {
    let mut out = String::new();
    write_document(&mut out, doc);
    out
}

/// Appends the canonical Extended JSON of `doc` to `out`.
pub fn write_document(out: &mut String, doc: &Document) {
    out.push('{');
    for (i, (k, v)) in doc.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, k, false);
        out.push(':');
        write_value(out, v);
    }
    out.push('}');
}

/// Appends the canonical Extended JSON of one value to `out`.
pub fn write_value(out: &mut String, v: &Bson) {
    match v {
        Bson::Double(f) => {
            out.push_str(r#"{"$numberDouble":""#);
            out.push_str(&format_double(*f));
            out.push_str(r#""}"#);
        }
        Bson::String(s) => write_string(out, s, false),
        Bson::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, e);
            }
            out.push(']');
        }
        Bson::Document(d) => write_document(out, d),
        Bson::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Bson::Null => out.push_str("null"),
        Bson::RegularExpression(r) => {
            let mut opts: Vec<char> = r.options.as_str().chars().collect();
            opts.sort_unstable();
            let opts: String = opts.into_iter().collect();
            out.push_str(r#"{"$regularExpression":{"pattern":"#);
            write_string(out, r.pattern.as_str(), false);
            out.push_str(r#","options":"#);
            write_string(out, &opts, false);
            out.push_str("}}");
        }
        Bson::JavaScriptCode(code) => {
            out.push_str(r#"{"$code":"#);
            write_string(out, code, false);
            out.push('}');
        }
        Bson::JavaScriptCodeWithScope(c) => {
            out.push_str(r#"{"$code":"#);
            write_string(out, &c.code, false);
            out.push_str(r#","$scope":"#);
            write_document(out, &c.scope);
            out.push('}');
        }
        Bson::Int32(i) => {
            out.push_str(r#"{"$numberInt":""#);
            out.push_str(&i.to_string());
            out.push_str(r#""}"#);
        }
        Bson::Int64(i) => {
            out.push_str(r#"{"$numberLong":""#);
            out.push_str(&i.to_string());
            out.push_str(r#""}"#);
        }
        Bson::Timestamp(t) => {
            out.push_str(&format!(
                r#"{{"$timestamp":{{"t":{},"i":{}}}}}"#,
                t.time, t.increment
            ));
        }
        Bson::Binary(b) => {
            out.push_str(r#"{"$binary":{"base64":""#);
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(&b.bytes));
            out.push_str(&format!(r#"","subType":"{:02x}"}}}}"#, u8::from(b.subtype)));
        }
        Bson::ObjectId(oid) => {
            out.push_str(r#"{"$oid":""#);
            out.push_str(&oid.to_hex());
            out.push_str(r#""}"#);
        }
        Bson::DateTime(dt) => {
            out.push_str(r#"{"$date":{"$numberLong":""#);
            out.push_str(&dt.timestamp_millis().to_string());
            out.push_str(r#""}}"#);
        }
        Bson::Symbol(s) => {
            out.push_str(r#"{"$symbol":"#);
            write_string(out, s, false);
            out.push('}');
        }
        Bson::Decimal128(d) => {
            out.push_str(r#"{"$numberDecimal":""#);
            out.push_str(&d.to_string());
            out.push_str(r#""}"#);
        }
        Bson::Undefined => out.push_str(r#"{"$undefined":true}"#),
        Bson::MaxKey => out.push_str(r#"{"$maxKey":1}"#),
        Bson::MinKey => out.push_str(r#"{"$minKey":1}"#),
        Bson::DbPointer(_) => {
            // The pointer's fields are private in the bson crate; its own canonical form
            // carries them.
            let json = v.clone().into_canonical_extjson();
            let ptr = &json["$dbPointer"];
            let ns = ptr["$ref"].as_str().unwrap_or_default();
            let id = ptr["$id"]["$oid"].as_str().unwrap_or_default();
            out.push_str(r#"{"$dbPointer":{"$ref":"#);
            write_string(out, ns, false);
            out.push_str(r#","$id":{"$oid":""#);
            out.push_str(id);
            out.push_str(r#""}}}"#);
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string escaped like the Go driver's Extended JSON writer
/// (`escape_html` also escapes `<`, `>` and `&`, like Go's `encoding/json`).
pub fn write_string(out: &mut String, s: &str, escape_html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' if escape_html => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xF) as usize] as char);
            }
            c if (c as u32) < 0x20 => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xF) as usize] as char);
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Formats a double like the Go driver: `strconv.FormatFloat(f, 'G', -1, 64)`, with
/// `.0` appended when the result has neither a `.` nor an exponent.
pub fn format_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Shortest round-trip digits and the decimal exponent, from Rust's `{:e}`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(|b| b.is_ascii_digit()).collect();
    let nd = digits.len() as i32;
    let mut s = String::new();
    if f.is_sign_negative() {
        s.push('-');
    }
    if !(-4..6).contains(&exp) {
        // %E with the shortest digits.
        s.push(digits[0] as char);
        if nd > 1 {
            s.push('.');
            for &d in &digits[1..] {
                s.push(d as char);
            }
        }
        s.push('E');
        s.push(if exp < 0 { '-' } else { '+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            s.push('0');
        }
        s.push_str(&e.to_string());
    } else {
        // %f with max(nd - dp, 0) decimals, dp = exp + 1.
        let dp = exp + 1;
        if dp > 0 {
            for i in 0..dp {
                s.push(if i < nd {
                    digits[i as usize] as char
                } else {
                    '0'
                });
            }
        } else {
            s.push('0');
        }
        let decimals = (nd - dp).max(0);
        if decimals > 0 {
            s.push('.');
            for i in 0..decimals {
                let idx = dp + i;
                s.push(if idx >= 0 && idx < nd {
                    digits[idx as usize] as char
                } else {
                    '0'
                });
            }
        } else {
            s.push_str(".0");
        }
    }
    s
}

// ---------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------

/// Converts a parsed JSON object to a BSON document, interpreting Extended JSON.
/// `path` is the dotted location of `map`, used in error messages.
pub fn parse_document(map: &Map<String, Value>, path: &str) -> Result<Document, ExtJsonError> {
    let mut p = path.to_string();
    document_from_map(map, &mut p)
}

/// Converts one parsed JSON value to BSON, interpreting Extended JSON.
pub fn parse_value(v: &Value, path: &str) -> Result<Bson, ExtJsonError> {
    let mut p = path.to_string();
    value(v, &mut p)
}

fn push_key(path: &mut String, key: &str) -> usize {
    let base = path.len();
    if base > 0 {
        path.push('.');
    }
    path.push_str(key);
    base
}

fn document_from_map(
    map: &Map<String, Value>,
    path: &mut String,
) -> Result<Document, ExtJsonError> {
    let mut doc = Document::new();
    for (k, v) in map {
        let base = push_key(path, k);
        if k.contains('\0') {
            return err(path, "field name contains a NUL byte");
        }
        let b = value(v, path)?;
        path.truncate(base);
        doc.insert(k.clone(), b);
    }
    Ok(doc)
}

fn value(v: &Value, path: &mut String) -> Result<Bson, ExtJsonError> {
    Ok(match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => number(n, path)?,
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, e) in a.iter().enumerate() {
                let base = push_key(path, &i.to_string());
                out.push(value(e, path)?);
                path.truncate(base);
            }
            Bson::Array(out)
        }
        Value::Object(m) => object(m, path)?,
    })
}

fn number(n: &serde_json::Number, path: &str) -> Result<Bson, ExtJsonError> {
    if let Some(i) = n.as_i64() {
        return Ok(match i32::try_from(i) {
            Ok(i) => Bson::Int32(i),
            Err(_) => Bson::Int64(i),
        });
    }
    match n.as_f64() {
        Some(f) => Ok(Bson::Double(f)),
        None => err(path, format!("number {n} is out of range")),
    }
}

fn str_of<'a>(v: &'a Value, path: &str, what: &str) -> Result<&'a str, ExtJsonError> {
    v.as_str().ok_or_else(|| ExtJsonError {
        path: path.to_string(),
        message: format!("{what} must be a string, found {}", kind(v)),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn single<'a>(m: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a Value, ExtJsonError> {
    if m.len() != 1 {
        return err(
            path,
            format!(
                "{key} must be the only field of its object, found {} fields",
                m.len()
            ),
        );
    }
    Ok(&m[key])
}

fn object(m: &Map<String, Value>, path: &mut String) -> Result<Bson, ExtJsonError> {
    let Some(first) = m.keys().next() else {
        return Ok(Bson::Document(Document::new()));
    };
    let p = path.as_str();
    Ok(match first.as_str() {
        "$numberInt" => {
            let s = str_of(single(m, first, p)?, p, "$numberInt")?;
            let i: i64 = s.parse().map_err(|_| ExtJsonError {
                path: p.to_string(),
                message: format!("$numberInt {s:?} is not an integer"),
            })?;
            match i32::try_from(i) {
                Ok(i) => Bson::Int32(i),
                Err(_) => return err(p, format!("$numberInt {s:?} does not fit in 32 bits")),
            }
        }
        "$numberLong" => {
            let s = str_of(single(m, first, p)?, p, "$numberLong")?;
            Bson::Int64(s.parse().map_err(|_| ExtJsonError {
                path: p.to_string(),
                message: format!("$numberLong {s:?} is not a 64-bit integer"),
            })?)
        }
        "$numberDouble" => {
            let s = str_of(single(m, first, p)?, p, "$numberDouble")?;
            Bson::Double(parse_double(s).ok_or_else(|| ExtJsonError {
                path: p.to_string(),
                message: format!("$numberDouble {s:?} is not a number"),
            })?)
        }
        "$numberDecimal" => {
            let s = str_of(single(m, first, p)?, p, "$numberDecimal")?;
            Bson::Decimal128(Decimal128::from_str(s).map_err(|e| ExtJsonError {
                path: p.to_string(),
                message: format!("$numberDecimal {s:?}: {e}"),
            })?)
        }
        "$oid" => {
            let s = str_of(single(m, first, p)?, p, "$oid")?;
            Bson::ObjectId(bson::oid::ObjectId::parse_str(s).map_err(|_| ExtJsonError {
                path: p.to_string(),
                message: format!("$oid {s:?} is not 24 hexadecimal digits"),
            })?)
        }
        "$symbol" => Bson::Symbol(str_of(single(m, first, p)?, p, "$symbol")?.to_string()),
        "$minKey" | "$maxKey" => {
            let v = single(m, first, p)?;
            if v.as_i64() != Some(1) {
                return err(p, format!("{first} must be 1"));
            }
            if first == "$minKey" {
                Bson::MinKey
            } else {
                Bson::MaxKey
            }
        }
        "$undefined" => {
            if single(m, first, p)?.as_bool() != Some(true) {
                return err(p, "$undefined must be true");
            }
            Bson::Undefined
        }
        "$uuid" => {
            let s = str_of(single(m, first, p)?, p, "$uuid")?;
            let bytes = parse_uuid_dashed(s).ok_or_else(|| ExtJsonError {
                path: p.to_string(),
                message: format!("$uuid {s:?} is not a UUID in the 8-4-4-4-12 format"),
            })?;
            Bson::Binary(Binary {
                subtype: BinarySubtype::Uuid,
                bytes: bytes.to_vec(),
            })
        }
        "$binary" => binary(m, p)?,
        "$code" => {
            let code = str_of(&m["$code"], p, "$code")?.to_string();
            match m.len() {
                1 => Bson::JavaScriptCode(code),
                2 => {
                    let Some(Value::Object(scope)) = m.get("$scope") else {
                        return err(p, "$code may only be followed by a $scope object");
                    };
                    let base = push_key(path, "$scope");
                    let scope = document_from_map(scope, path)?;
                    path.truncate(base);
                    Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope { code, scope })
                }
                _ => return err(p, "$code may only be followed by $scope"),
            }
        }
        "$scope" => return err(p, "$scope must follow $code"),
        "$timestamp" => {
            let Value::Object(ts) = single(m, first, p)? else {
                return err(p, "$timestamp must be an object {t, i}");
            };
            let field = |k: &str| -> Result<u32, ExtJsonError> {
                ts.get(k)
                    .and_then(Value::as_u64)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| ExtJsonError {
                        path: p.to_string(),
                        message: format!("$timestamp.{k} must be an unsigned 32-bit integer"),
                    })
            };
            if ts.len() != 2 {
                return err(p, "$timestamp must have exactly the fields t and i");
            }
            Bson::Timestamp(Timestamp {
                time: field("t")?,
                increment: field("i")?,
            })
        }
        "$regularExpression" => {
            let Value::Object(re) = single(m, first, p)? else {
                return err(p, "$regularExpression must be an object {pattern, options}");
            };
            if re.len() != 2 {
                return err(
                    p,
                    "$regularExpression must have exactly the fields pattern and options",
                );
            }
            let pattern = str_of(re.get("pattern").unwrap_or(&Value::Null), p, "pattern")?;
            let options = str_of(re.get("options").unwrap_or(&Value::Null), p, "options")?;
            let cstr = |s: String| {
                bson::raw::CString::try_from(s).map_err(|_| ExtJsonError {
                    path: p.to_string(),
                    message: "regular expression contains a NUL byte".into(),
                })
            };
            Bson::RegularExpression(bson::Regex {
                pattern: cstr(pattern.to_string())?,
                options: cstr(options.to_string())?,
            })
        }
        "$dbPointer" => {
            let Value::Object(ptr) = single(m, first, p)? else {
                return err(p, "$dbPointer must be an object {$ref, $id}");
            };
            let ns = str_of(
                ptr.get("$ref").unwrap_or(&Value::Null),
                p,
                "$dbPointer.$ref",
            )?;
            let oid = ptr
                .get("$id")
                .and_then(|v| v.get("$oid"))
                .and_then(Value::as_str)
                .filter(|s| bson::oid::ObjectId::parse_str(s).is_ok())
                .ok_or_else(|| ExtJsonError {
                    path: p.to_string(),
                    message: "$dbPointer.$id must be {\"$oid\": <24 hex digits>}".into(),
                })?;
            if ptr.len() != 2 {
                return err(p, "$dbPointer must have exactly the fields $ref and $id");
            }
            let json = serde_json::json!({"$dbPointer": {"$ref": ns, "$id": {"$oid": oid}}});
            Bson::try_from(json).map_err(|e| ExtJsonError {
                path: p.to_string(),
                message: format!("$dbPointer: {e}"),
            })?
        }
        "$date" => Bson::DateTime(date(single(m, first, p)?, p)?),
        _ => Bson::Document(document_from_map(m, path)?),
    })
}

fn parse_double(s: &str) -> Option<f64> {
    match s {
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn hex_byte(s: &[u8]) -> Option<u8> {
    let h = (s[0] as char).to_digit(16)?;
    let l = (s[1] as char).to_digit(16)?;
    Some((h << 4 | l) as u8)
}

/// Parses 32 hexadecimal digits (either case) into 16 bytes.
pub fn parse_hex16(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = hex_byte(&b[2 * i..2 * i + 2])?;
    }
    Some(out)
}

/// Parses a UUID in the 8-4-4-4-12 form.
pub fn parse_uuid_dashed(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let hex: String = s.chars().filter(|&c| c != '-').collect();
    parse_hex16(&hex)
}

fn binary(m: &Map<String, Value>, p: &str) -> Result<Bson, ExtJsonError> {
    let (b64, subtype) = match &m["$binary"] {
        Value::Object(bin) => {
            if m.len() != 1 {
                return err(p, "$binary must be the only field of its object");
            }
            if bin.len() != 2 {
                return err(p, "$binary must have exactly the fields base64 and subType");
            }
            let b64 = str_of(
                bin.get("base64").unwrap_or(&Value::Null),
                p,
                "$binary.base64",
            )?;
            let st = str_of(
                bin.get("subType").unwrap_or(&Value::Null),
                p,
                "$binary.subType",
            )?;
            (b64, st)
        }
        Value::String(b64) => {
            // Legacy {"$binary": "<base64>", "$type": "<hex>"}.
            if m.len() != 2 {
                return err(
                    p,
                    "legacy $binary must have exactly the fields $binary and $type",
                );
            }
            let st = str_of(m.get("$type").unwrap_or(&Value::Null), p, "$type")?;
            (b64.as_str(), st)
        }
        other => {
            return err(
                p,
                format!("$binary must be an object, found {}", kind(other)),
            );
        }
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| ExtJsonError {
            path: p.to_string(),
            message: format!("$binary.base64 is not base64: {e}"),
        })?;
    if subtype.is_empty() || subtype.len() > 2 {
        return err(
            p,
            format!("$binary subType {subtype:?} is not one or two hex digits"),
        );
    }
    let st = u8::from_str_radix(subtype, 16).map_err(|_| ExtJsonError {
        path: p.to_string(),
        message: format!("$binary subType {subtype:?} is not hexadecimal"),
    })?;
    Ok(Bson::Binary(Binary {
        subtype: BinarySubtype::from(st),
        bytes,
    }))
}

fn date(v: &Value, p: &str) -> Result<DateTime, ExtJsonError> {
    match v {
        Value::Object(o) => {
            if o.len() != 1 {
                return err(p, "$date object must be {\"$numberLong\": \"<millis>\"}");
            }
            let s = str_of(
                o.get("$numberLong").ok_or_else(|| ExtJsonError {
                    path: p.to_string(),
                    message: "$date object must be {\"$numberLong\": \"<millis>\"}".into(),
                })?,
                p,
                "$date.$numberLong",
            )?;
            let ms: i64 = s.parse().map_err(|_| ExtJsonError {
                path: p.to_string(),
                message: format!("$date.$numberLong {s:?} is not a 64-bit integer"),
            })?;
            Ok(DateTime::from_millis(ms))
        }
        Value::Number(n) => match n.as_i64() {
            Some(ms) => Ok(DateTime::from_millis(ms)),
            None => err(
                p,
                format!("$date {n} is not an integer number of milliseconds"),
            ),
        },
        Value::String(s) => {
            parse_iso_date(s)
                .map(DateTime::from_millis)
                .ok_or_else(|| ExtJsonError {
                    path: p.to_string(),
                    message: format!("$date {s:?} is not an ISO-8601 date-time"),
                })
        }
        other => err(
            p,
            format!(
                "$date must be an object, a number or a string, found {}",
                kind(other)
            ),
        ),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)` into milliseconds since the epoch.
pub fn parse_iso_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i];
        let ms: String = frac.chars().chain("000".chars()).take(3).collect();
        millis = ms.parse().ok()?;
    }
    let offset_min = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') => {
            let rest = &s[i + 1..];
            if !rest.is_ascii() {
                return None;
            }
            let (oh, om) = match rest.len() {
                5 if rest.as_bytes()[2] == b':' => (&rest[0..2], &rest[3..5]),
                4 => (&rest[0..2], &rest[2..4]),
                _ => return None,
            };
            if !oh.bytes().chain(om.bytes()).all(|c| c.is_ascii_digit()) {
                return None;
            }
            let v = oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().ok()?;
            if *c == b'-' { -v } else { v }
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn doubles_print_like_go() {
        let cases = [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (100.0, "100.0"),
            (123456.0, "123456.0"),
            (1234567.0, "1.234567E+06"),
            (1e6, "1E+06"),
            (1e21, "1E+21"),
            (1e100, "1E+100"),
            (0.0001, "0.0001"),
            (0.00001, "1E-05"),
            (1.5e-7, "1.5E-07"),
            (5e-324, "5E-324"),
            (3.25, "3.25"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
            (f64::MAX, "1.7976931348623157E+308"),
        ];
        for (f, want) in cases {
            assert_eq!(format_double(f), want, "{f:e}");
            if !f.is_nan() {
                assert_eq!(parse_double(want), Some(f));
            }
        }
    }

    #[test]
    fn every_type_writes_canonically_and_reads_back() {
        let d = doc! {
            "d": 1.5, "s": "a\"b\\c\n\u{1}<&>\u{2028}", "arr": [1, "x"], "doc": {"b": 1, "a": 2},
            "t": true, "n": null,
            "re": bson::Regex { pattern: "^a".try_into().unwrap(), options: "im".try_into().unwrap() },
            "code": Bson::JavaScriptCode("f()".into()),
            "cws": Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope { code: "g".into(), scope: doc!{"x": 1} }),
            "i32": 7i32, "i64": 7i64,
            "ts": Timestamp { time: 1, increment: 2 },
            "bin": Binary { subtype: BinarySubtype::Uuid, bytes: vec![0xff; 16] },
            "oid": bson::oid::ObjectId::from_bytes([1; 12]),
            "date": DateTime::from_millis(-1),
            "sym": Bson::Symbol("s".into()),
            "dec": Bson::Decimal128(Decimal128::from_str("1.5E+10").unwrap()),
            "u": Bson::Undefined, "max": Bson::MaxKey, "min": Bson::MinKey,
            "empty": {}, "emptyarr": [],
        };
        let json = document_to_canonical(&d);
        assert_eq!(
            json,
            concat!(
                r#"{"d":{"$numberDouble":"1.5"},"s":"a\"b\\c\n\u0001<&>\u2028","arr":[{"$numberInt":"1"},"x"],"#,
                r#""doc":{"b":{"$numberInt":"1"},"a":{"$numberInt":"2"}},"t":true,"n":null,"#,
                r#""re":{"$regularExpression":{"pattern":"^a","options":"im"}},"code":{"$code":"f()"},"#,
                r#""cws":{"$code":"g","$scope":{"x":{"$numberInt":"1"}}},"i32":{"$numberInt":"7"},"#,
                r#""i64":{"$numberLong":"7"},"ts":{"$timestamp":{"t":1,"i":2}},"#,
                r#""bin":{"$binary":{"base64":"/////////////////////w==","subType":"04"}},"#,
                r#""oid":{"$oid":"010101010101010101010101"},"date":{"$date":{"$numberLong":"-1"}},"#,
                r#""sym":{"$symbol":"s"},"dec":{"$numberDecimal":"1.5E+10"},"u":{"$undefined":true},"#,
                r#""max":{"$maxKey":1},"min":{"$minKey":1},"empty":{},"emptyarr":[]}"#
            )
        );
        let v: Value = serde_json::from_str(&json).unwrap();
        let back = parse_document(v.as_object().unwrap(), "").unwrap();
        assert_eq!(back, d);
        assert_eq!(document_to_canonical(&back), json);
        // Regular expression options are sorted on output, like Go.
        let re = Bson::RegularExpression(bson::Regex {
            pattern: "x".try_into().unwrap(),
            options: "xsmi".try_into().unwrap(),
        });
        let mut out = String::new();
        write_value(&mut out, &re);
        assert_eq!(
            out,
            r#"{"$regularExpression":{"pattern":"x","options":"imsx"}}"#
        );
    }

    #[test]
    fn db_pointer_round_trips() {
        let json =
            r#"{"p":{"$dbPointer":{"$ref":"db.c","$id":{"$oid":"0102030405060708090a0b0c"}}}}"#;
        let v: Value = serde_json::from_str(json).unwrap();
        let d = parse_document(v.as_object().unwrap(), "").unwrap();
        assert!(matches!(d.get("p"), Some(Bson::DbPointer(_))));
        assert_eq!(document_to_canonical(&d), json);
    }

    #[test]
    fn relaxed_and_legacy_forms() {
        let json = r#"{"a":1,"b":3000000000,"c":1.0,"d":1e3,"e":{"$date":"1970-01-01T00:00:01.5+01:00"},
            "f":{"$date":5},"g":{"$binary":"AQI=","$type":"80"},"h":{"$uuid":"00112233-4455-6677-8899-aabbccddeeff"},
            "i":{"$regex":"^x","$options":"i"},"j":{"$match":{"k":{"$exists":true}}},"k":18446744073709551615}"#;
        let v: Value = serde_json::from_str(json).unwrap();
        let d = parse_document(v.as_object().unwrap(), "").unwrap();
        assert_eq!(d.get("a"), Some(&Bson::Int32(1)));
        assert_eq!(d.get("b"), Some(&Bson::Int64(3_000_000_000)));
        assert_eq!(d.get("c"), Some(&Bson::Double(1.0)));
        assert_eq!(d.get("d"), Some(&Bson::Double(1000.0)));
        assert_eq!(
            d.get("e"),
            Some(&Bson::DateTime(DateTime::from_millis(1500 - 3_600_000)))
        );
        assert_eq!(d.get("f"), Some(&Bson::DateTime(DateTime::from_millis(5))));
        assert_eq!(
            d.get("g"),
            Some(&Bson::Binary(Binary {
                subtype: BinarySubtype::UserDefined(0x80),
                bytes: vec![1, 2]
            }))
        );
        assert!(
            matches!(d.get("h"), Some(Bson::Binary(b)) if b.subtype == BinarySubtype::Uuid && b.bytes[0] == 0x00 && b.bytes[15] == 0xff)
        );
        // `$regex` and `$match` are query operators here, kept as documents.
        assert_eq!(
            d.get("i"),
            Some(&Bson::Document(doc! {"$regex": "^x", "$options": "i"}))
        );
        assert_eq!(
            d.get("j"),
            Some(&Bson::Document(doc! {"$match": {"k": {"$exists": true}}}))
        );
        assert_eq!(d.get("k"), Some(&Bson::Double(18446744073709551615.0)));
    }

    #[test]
    fn errors_name_the_path() {
        let cases = [
            (r#"{"a":{"b":{"$numberInt":"x"}}}"#, "a.b"),
            (r#"{"a":[1,{"$numberInt":"3000000000"}]}"#, "a.1"),
            (r#"{"a":{"$oid":"zz"}}"#, "a"),
            (r#"{"a":{"$numberLong":"1","x":2}}"#, "a"),
            (r#"{"a":{"$scope":{}}}"#, "a"),
            (r#"{"a":{"$date":"yesterday"}}"#, "a"),
            (r#"{"a":{"$binary":{"base64":"!!","subType":"00"}}}"#, "a"),
            (r#"{"a\u0000":1}"#, "a\u{0}"),
        ];
        for (json, path) in cases {
            let v: Value = serde_json::from_str(json).unwrap();
            let e = parse_document(v.as_object().unwrap(), "").unwrap_err();
            assert_eq!(e.path, path, "{json}: {e}");
        }
    }

    #[test]
    fn iso_dates() {
        assert_eq!(parse_iso_date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_iso_date("2000-03-01T00:00:00.123Z"),
            Some(951_868_800_123)
        );
        assert_eq!(parse_iso_date("1969-12-31T23:59:59.9Z"), Some(-100));
        assert_eq!(parse_iso_date("1970-01-01T01:00:00+0100"), Some(0));
        assert_eq!(parse_iso_date("1970-01-01T00:00:00"), None);
        assert_eq!(parse_iso_date("1970-13-01T00:00:00Z"), None);
        // Never panics, whatever the bytes.
        let base = "2000-01-01T00:00:00.5+01:00";
        for i in 0..base.len() {
            for c in ['é', '1', ':', '+', 'Z', '.', '€'] {
                let mut t = base.to_string();
                t.replace_range(i..i + 1, &c.to_string());
                let _ = parse_iso_date(&t);
                let _ = parse_iso_date(&t[..i]);
            }
        }
        assert_eq!(parse_iso_date("2000-01-01T00:00:00+1é0"), None);
    }
}
