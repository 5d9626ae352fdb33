//! Update deltas: mongod's `$v: 2` document diff (parsed into a tree and applied as
//! mongod's own applier does), SecantusDB's change-stream form, and `$v: 1` modifiers
//! applied in memory (for read-modify-write replay).
//!
//! mongod's apply rules differ from `$set`/`$unset`: a field of the `i` section is
//! removed from where it was and appended at the end; `u` fields keep their position,
//! and those the document lacks are appended before the `i` fields; a sub-diff meeting
//! a value of the wrong type turns it into `null` (a later entry overwrites it); an
//! array diff pads a short array with `null` and truncates to its `l`.

use std::collections::{HashMap, HashSet};

use bson::{Binary, Bson, Document};

/// Error in a delta.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DiffError {
    /// A section key that the grammar does not have.
    #[error("unknown diff section `{0}`")]
    UnknownSection(String),
    /// Sections out of the order `d`, `u`, `i`, `b`, `s…`.
    #[error("diff section `{0}` is out of order")]
    OutOfOrder(String),
    /// A section is not a document, or an entry of it has the wrong shape.
    #[error("diff section `{section}`: {what}")]
    Shape {
        /// The section key.
        section: String,
        /// What is wrong.
        what: String,
    },
    /// One field in two sections.
    #[error("field `{0}` appears in more than one diff section")]
    Duplicate(String),
    /// An array diff's index is not a number, or indexes are not ascending.
    #[error("array diff: {0}")]
    Array(String),
    /// Nested deeper than any stored document can be.
    #[error("diff nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// Deepest nesting of a diff (stored documents nest at most 100 levels, plus arrays).
pub const MAX_DEPTH: usize = 200;
/// Largest array index or length a diff or a path may name: the server refuses to pad
/// an array beyond 1 500 000 elements.
pub const MAX_ARRAY: usize = 1_500_000;

fn shape(section: &str, what: impl Into<String>) -> DiffError {
    DiffError::Shape {
        section: section.to_string(),
        what: what.into(),
    }
}

/// A `b` entry: keep the first `offset` bytes of the BinData, then append `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct BinPatch {
    /// Bytes kept.
    pub offset: usize,
    /// Bytes written from there.
    pub data: Vec<u8>,
}

/// mongod's document diff.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DocDiff {
    /// `d`: fields removed.
    pub delete: Vec<String>,
    /// `u`: fields set in place (appended when missing).
    pub update: Vec<(String, Bson)>,
    /// `i`: fields moved (or added) to the end.
    pub insert: Vec<(String, Bson)>,
    /// `b`: binary patches.
    pub binary: Vec<(String, BinPatch)>,
    /// `s<field>`: nested diffs.
    pub sub: Vec<(String, SubDiff)>,
}

/// A nested diff.
#[derive(Debug, Clone, PartialEq)]
pub enum SubDiff {
    /// Into an embedded document.
    Doc(DocDiff),
    /// Into an array.
    Array(ArrayDiff),
}

/// mongod's array diff: `{a: true, l?, u<k>|s<k>…}`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArrayDiff {
    /// `l`: the new length.
    pub len: Option<usize>,
    /// Per index, ascending.
    pub entries: Vec<(usize, ArrayEntry)>,
}

/// One element's change.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayEntry {
    /// `u<k>`: the new value.
    Update(Bson),
    /// `s<k>`: a nested diff.
    Sub(SubDiff),
}

/// SecantusDB's update description.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlatDiff {
    /// Dotted path to its new value.
    pub updated: Document,
    /// Dotted paths removed.
    pub removed: Vec<String>,
    /// Arrays cut to a new size.
    pub truncated: Vec<(String, usize)>,
}

impl DocDiff {
    /// Whether the diff touches top-level fields only, with plain names: then one
    /// pipeline update reproduces it exactly.
    pub fn is_top_level(&self) -> bool {
        self.sub.is_empty()
            && self.binary.is_empty()
            && self
                .delete
                .iter()
                .chain(self.update.iter().map(|(k, _)| k))
                .chain(self.insert.iter().map(|(k, _)| k))
                .all(|k| plain_name(k))
    }

    /// Whether the diff changes nothing.
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty()
            && self.update.is_empty()
            && self.insert.is_empty()
            && self.binary.is_empty()
            && self.sub.is_empty()
    }
}

/// A field name an update path can name without ambiguity.
pub fn plain_name(k: &str) -> bool {
    !k.is_empty() && !k.contains('.') && !k.starts_with('$')
}

fn as_index(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

fn int_of(v: &Bson) -> Option<i64> {
    match v {
        Bson::Int32(n) => Some(i64::from(*n)),
        Bson::Int64(n) => Some(*n),
        Bson::Double(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    }
}

/// Parses a `$v: 2` document diff, checking the grammar.
pub fn parse_doc_diff(d: &Document) -> Result<DocDiff, DiffError> {
    parse_doc_at(d, 0)
}

fn parse_doc_at(d: &Document, depth: usize) -> Result<DocDiff, DiffError> {
    if depth > MAX_DEPTH {
        return Err(DiffError::TooDeep);
    }
    let mut out = DocDiff::default();
    // Rank of the last section seen: d=0, u=1, i=2, b=3, s=4.
    let mut last = 0u8;
    let mut seen_fixed = [false; 4];
    let mut names: HashMap<String, ()> = HashMap::new();
    let mut name = |n: &str| -> Result<(), DiffError> {
        if names.insert(n.to_string(), ()).is_some() {
            return Err(DiffError::Duplicate(n.to_string()));
        }
        Ok(())
    };
    for (k, v) in d {
        let rank = match k.as_str() {
            "d" => 0,
            "u" => 1,
            "i" => 2,
            "b" => 3,
            s if s.starts_with('s') && s.len() > 1 => 4,
            _ => return Err(DiffError::UnknownSection(k.clone())),
        };
        if rank < last || (rank < 4 && seen_fixed[rank as usize]) {
            return Err(DiffError::OutOfOrder(k.clone()));
        }
        last = rank;
        if rank < 4 {
            seen_fixed[rank as usize] = true;
        }
        if rank == 4 {
            let field = &k[1..];
            name(field)?;
            out.sub
                .push((field.to_string(), parse_sub(k, v, depth + 1)?));
            continue;
        }
        let Bson::Document(sec) = v else {
            return Err(shape(k, "not a document"));
        };
        for (f, val) in sec {
            name(f)?;
            match rank {
                0 => out.delete.push(f.clone()),
                1 => out.update.push((f.clone(), val.clone())),
                2 => out.insert.push((f.clone(), val.clone())),
                _ => {
                    let Bson::Document(p) = val else {
                        return Err(shape(k, format!("`{f}` is not {{o, d}}")));
                    };
                    let offset = p
                        .get("o")
                        .and_then(int_of)
                        .and_then(|o| usize::try_from(o).ok())
                        .ok_or_else(|| shape(k, format!("`{f}.o` is not an offset")))?;
                    let data = match p.get("d") {
                        Some(Bson::Binary(b)) => b.bytes.clone(),
                        _ => return Err(shape(k, format!("`{f}.d` is not BinData"))),
                    };
                    out.binary.push((f.clone(), BinPatch { offset, data }));
                }
            }
        }
    }
    Ok(out)
}

fn parse_sub(key: &str, v: &Bson, depth: usize) -> Result<SubDiff, DiffError> {
    let Bson::Document(d) = v else {
        return Err(shape(key, "a nested diff is not a document"));
    };
    if depth > MAX_DEPTH {
        return Err(DiffError::TooDeep);
    }
    if matches!(d.get("a"), Some(Bson::Boolean(true))) {
        Ok(SubDiff::Array(parse_array_diff(d, depth)?))
    } else {
        Ok(SubDiff::Doc(parse_doc_at(d, depth)?))
    }
}

fn parse_array_diff(d: &Document, depth: usize) -> Result<ArrayDiff, DiffError> {
    let mut out = ArrayDiff::default();
    let mut prev: Option<usize> = None;
    for (i, (k, v)) in d.iter().enumerate() {
        match (i, k.as_str()) {
            (0, "a") => continue,
            (_, "a") => return Err(DiffError::Array("`a` is not first".into())),
            (1, "l") => {
                let n = int_of(v)
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n <= MAX_ARRAY)
                    .ok_or_else(|| DiffError::Array("`l` is not a length".into()))?;
                out.len = Some(n);
                continue;
            }
            (_, "l") => return Err(DiffError::Array("`l` is not right after `a`".into())),
            _ => {}
        }
        let (kind, idx) = k.split_at(k.char_indices().nth(1).map_or(k.len(), |(p, _)| p));
        let idx = as_index(idx)
            .filter(|&i| i < MAX_ARRAY)
            .ok_or_else(|| DiffError::Array(format!("`{k}` does not name an index")))?;
        if prev.is_some_and(|p| p >= idx) {
            return Err(DiffError::Array(format!("index {idx} is not ascending")));
        }
        prev = Some(idx);
        let e = match kind {
            "u" => ArrayEntry::Update(v.clone()),
            "s" => ArrayEntry::Sub(parse_sub(k, v, depth + 1)?),
            _ => return Err(DiffError::Array(format!("unknown entry `{k}`"))),
        };
        out.entries.push((idx, e));
    }
    Ok(out)
}

/// Applies a document diff to `pre`, exactly as mongod's applier does.
pub fn apply_doc_diff(pre: &Document, diff: &DocDiff) -> Document {
    let deleted: HashSet<&str> = diff.delete.iter().map(String::as_str).collect();
    let updated: HashMap<&str, &Bson> = diff.update.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let inserted: HashSet<&str> = diff.insert.iter().map(|(k, _)| k.as_str()).collect();
    let binary: HashMap<&str, &BinPatch> =
        diff.binary.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let subs: HashMap<&str, &SubDiff> = diff.sub.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = Document::new();
    let mut placed = HashSet::new();
    for (k, v) in pre {
        let k = k.as_str();
        if deleted.contains(k) || inserted.contains(k) {
            continue;
        }
        if let Some(nv) = updated.get(k) {
            out.insert(k, (*nv).clone());
            placed.insert(k);
        } else if let Some(s) = subs.get(k) {
            out.insert(k, apply_sub(v, s));
        } else if let Some(p) = binary.get(k) {
            out.insert(k, apply_binary(v, p));
        } else {
            out.insert(k, v.clone());
        }
    }
    for (k, v) in &diff.update {
        if !placed.contains(k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in &diff.insert {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// A sub-diff applied to a value; a value of the wrong type becomes `null`.
fn apply_sub(v: &Bson, s: &SubDiff) -> Bson {
    match (v, s) {
        (Bson::Document(d), SubDiff::Doc(dd)) => Bson::Document(apply_doc_diff(d, dd)),
        (Bson::Array(a), SubDiff::Array(ad)) => Bson::Array(apply_array_diff(a, ad)),
        _ => Bson::Null,
    }
}

fn apply_binary(v: &Bson, p: &BinPatch) -> Bson {
    match v {
        Bson::Binary(b) => {
            let keep = p.offset.min(b.bytes.len());
            let mut bytes = b.bytes[..keep].to_vec();
            bytes.extend_from_slice(&p.data);
            Bson::Binary(Binary {
                subtype: b.subtype,
                bytes,
            })
        }
        _ => Bson::Null,
    }
}

/// Applies an array diff, as mongod does: within the old array and the new length,
/// each element is kept, replaced or recursed into; the tail beyond `l` is dropped;
/// then, while below `l` or entries remain, elements are the entries' values, and
/// `null` for a sub-diff without an element or an index not mentioned.
pub fn apply_array_diff(pre: &[Bson], diff: &ArrayDiff) -> Vec<Bson> {
    let mut out = Vec::with_capacity(diff.len.unwrap_or(pre.len()));
    let mut mods = diff.entries.iter().peekable();
    let mut idx = 0usize;
    while idx < pre.len() && diff.len.is_none_or(|l| idx < l) {
        match mods.peek() {
            Some((k, e)) if *k == idx => {
                out.push(match e {
                    ArrayEntry::Update(v) => v.clone(),
                    ArrayEntry::Sub(s) => apply_sub(&pre[idx], s),
                });
                mods.next();
            }
            _ => out.push(pre[idx].clone()),
        }
        idx += 1;
    }
    while diff.len.is_some_and(|l| idx < l) || mods.peek().is_some() {
        match mods.peek() {
            Some((k, e)) if *k == idx => {
                out.push(match e {
                    ArrayEntry::Update(v) => v.clone(),
                    ArrayEntry::Sub(_) => Bson::Null,
                });
                mods.next();
            }
            _ => out.push(Bson::Null),
        }
        idx += 1;
    }
    out
}

/// Parses SecantusDB's `{updatedFields, removedFields, truncatedArrays}`.
pub fn parse_flat(d: &Document) -> Result<FlatDiff, DiffError> {
    let mut out = FlatDiff::default();
    for (k, v) in d {
        match (k.as_str(), v) {
            ("updatedFields", Bson::Document(u)) => out.updated = u.clone(),
            ("removedFields", Bson::Array(a)) => {
                for p in a {
                    match p {
                        Bson::String(s) => out.removed.push(s.clone()),
                        _ => return Err(shape(k, "a path is not a string")),
                    }
                }
            }
            ("truncatedArrays", Bson::Array(a)) => {
                for t in a {
                    let Bson::Document(t) = t else {
                        return Err(shape(k, "an entry is not a document"));
                    };
                    let field = t
                        .get_str("field")
                        .map_err(|_| shape(k, "an entry has no `field`"))?;
                    let size = t
                        .get("newSize")
                        .and_then(int_of)
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| shape(k, "an entry has no `newSize`"))?;
                    out.truncated.push((field.to_string(), size));
                }
            }
            ("disambiguatedPaths", _) => {}
            _ => return Err(shape(k, "unexpected type")),
        }
    }
    Ok(out)
}

/// Applies a SecantusDB update description in memory, in the order the server's own
/// applier does: set the updated paths, remove the removed ones, cut the arrays.
/// New fields are added in path order, as one `$set` adds them.
pub fn apply_flat(pre: &Document, diff: &FlatDiff) -> Document {
    let mut d = pre.clone();
    let mut set: Vec<(&String, &Bson)> = diff.updated.iter().collect();
    set.sort_by(|a, b| a.0.cmp(b.0));
    for (p, v) in set {
        set_path(&mut d, p, v.clone());
    }
    for p in &diff.removed {
        unset_path(&mut d, p);
    }
    for (p, n) in &diff.truncated {
        if let Some(Bson::Array(a)) = get_path_mut(&mut d, p) {
            a.truncate(*n);
        }
    }
    d
}

/// Applies `$v: 1` modifiers in memory, as the server's `$set`/`$unset` do (new fields
/// in path order).
pub fn apply_modifiers(pre: &Document, set: &Document, unset: &[String]) -> Document {
    let mut d = pre.clone();
    let mut s: Vec<(&String, &Bson)> = set.iter().collect();
    s.sort_by(|a, b| a.0.cmp(b.0));
    for (p, v) in s {
        set_path(&mut d, p, v.clone());
    }
    for p in unset {
        unset_path(&mut d, p);
    }
    d
}

fn get_path_mut<'a>(d: &'a mut Document, path: &str) -> Option<&'a mut Bson> {
    let mut parts = path.split('.');
    let first = parts.next()?;
    let mut cur = d.get_mut(first)?;
    for p in parts {
        cur = match cur {
            Bson::Document(x) => x.get_mut(p)?,
            Bson::Array(a) => a.get_mut(as_index(p)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// `$set` of a dotted path: creates missing objects, pads arrays with `null`; a path
/// through a scalar is left alone (the server refuses it).
fn set_path(d: &mut Document, path: &str, v: Bson) {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.len() > MAX_DEPTH {
        return;
    }
    set_in_doc(d, &parts, v);
}

fn set_in_doc(d: &mut Document, parts: &[&str], v: Bson) {
    let (head, rest) = (parts[0], &parts[1..]);
    if rest.is_empty() {
        d.insert(head, v);
        return;
    }
    if !d.contains_key(head) {
        d.insert(head, Document::new());
    }
    if let Some(child) = d.get_mut(head) {
        set_in_value(child, rest, v);
    }
}

fn set_in_value(cur: &mut Bson, parts: &[&str], v: Bson) {
    match cur {
        Bson::Document(x) => set_in_doc(x, parts, v),
        Bson::Array(a) => {
            let Some(i) = as_index(parts[0]).filter(|&i| i < MAX_ARRAY) else {
                return;
            };
            while a.len() <= i {
                a.push(Bson::Null);
            }
            if parts.len() == 1 {
                a[i] = v;
            } else {
                if a[i] == Bson::Null {
                    a[i] = Bson::Document(Document::new());
                }
                set_in_value(&mut a[i], &parts[1..], v);
            }
        }
        _ => {}
    }
}

/// `$unset` of a dotted path: removes a field; an array element becomes `null`.
fn unset_path(d: &mut Document, path: &str) {
    match path.rsplit_once('.') {
        None => {
            d.remove(path);
        }
        Some((parent, last)) => match get_path_mut(d, parent) {
            Some(Bson::Document(x)) => {
                x.remove(last);
            }
            Some(Bson::Array(a)) => {
                if let Some(e) = as_index(last).and_then(|i| a.get_mut(i)) {
                    *e = Bson::Null;
                }
            }
            _ => {}
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{RawDocumentBuf, doc};

    fn bytes(d: &Document) -> Vec<u8> {
        RawDocumentBuf::try_from(d).unwrap().into_bytes()
    }

    fn check(pre: Document, diff: Document, want: Document) {
        let parsed = parse_doc_diff(&diff).unwrap();
        let got = apply_doc_diff(&pre, &parsed);
        assert_eq!(bytes(&got), bytes(&want), "got {got}, want {want}");
    }

    #[test]
    fn nested_and_array_diff() {
        // $set {a:5,"b.c":9,"arr.1":7,x:true} + $unset "b.d"
        check(
            doc! {"_id": 1, "a": 1, "b": {"c": 1, "d": 2}, "arr": [1, 2, 3]},
            doc! {"u": {"a": 5}, "i": {"x": true}, "sarr": {"a": true, "u1": 7}, "sb": {"d": {"d": false}, "u": {"c": 9}}},
            doc! {"_id": 1, "a": 5, "b": {"c": 9}, "arr": [1, 7, 3], "x": true},
        );
    }

    #[test]
    fn insert_section_reorders() {
        check(
            doc! {"_id": 1, "a": 1, "b": 2, "c": 3},
            doc! {"i": {"b": 2, "a": 1, "c": 4}},
            doc! {"_id": 1, "b": 2, "a": 1, "c": 4},
        );
    }

    #[test]
    fn array_resize_and_padding() {
        check(
            doc! {"_id": 1, "arr": [1, 2, 3, 4, 5]},
            doc! {"sarr": {"a": true, "l": 2}},
            doc! {"_id": 1, "arr": [1, 2]},
        );
        check(
            doc! {"_id": 1, "arr": [{"x": 1}]},
            doc! {"sarr": {"a": true, "s0": {"u": {"x": 2}}, "u3": "z"}},
            doc! {"_id": 1, "arr": [{"x": 2}, Bson::Null, Bson::Null, "z"]},
        );
        check(
            doc! {"_id": 1, "arr": [1, 2]},
            doc! {"sarr": {"a": true, "l": 4}},
            doc! {"_id": 1, "arr": [1, 2, Bson::Null, Bson::Null]},
        );
    }

    #[test]
    fn fuzzy_reapplication() {
        // The same diff on a later state: the element of the wrong type becomes null.
        check(
            doc! {"_id": 1, "arr": [5]},
            doc! {"sarr": {"a": true, "s0": {"u": {"x": 2}}, "u3": "z"}},
            doc! {"_id": 1, "arr": [Bson::Null, Bson::Null, Bson::Null, "z"]},
        );
        // An insert of a field that exists moves it to the end, never duplicates it.
        check(
            doc! {"_id": 1, "a": 1, "x": 7, "b": 2},
            doc! {"i": {"x": 3}},
            doc! {"_id": 1, "a": 1, "b": 2, "x": 3},
        );
    }

    #[test]
    fn missing_update_fields_come_before_inserts() {
        check(
            doc! {"_id": 1, "a": 1},
            doc! {"u": {"z": 1, "a": 2}, "i": {"q": 0}},
            doc! {"_id": 1, "a": 2, "z": 1, "q": 0},
        );
    }

    #[test]
    fn sub_diff_on_wrong_type_or_missing_field() {
        check(
            doc! {"_id": 1, "n": 5},
            doc! {"sn": {"u": {"k": 1}}},
            doc! {"_id": 1, "n": Bson::Null},
        );
        check(
            doc! {"_id": 1},
            doc! {"sn": {"u": {"k": 1}}},
            doc! {"_id": 1},
        );
        check(
            doc! {"_id": 1, "arr": {"x": 1}},
            doc! {"sarr": {"a": true, "u0": 1}},
            doc! {"_id": 1, "arr": Bson::Null},
        );
    }

    #[test]
    fn binary_patch_keeps_offset_then_appends() {
        let bin = |b: &[u8]| Binary {
            subtype: bson::spec::BinarySubtype::Column,
            bytes: b.to_vec(),
        };
        check(
            doc! {"_id": 1, "data": {"t": bin(&[1, 2, 3, 0])}},
            doc! {"sdata": {"b": {"t": {"o": 3, "d": bin(&[4, 5, 0])}}}},
            doc! {"_id": 1, "data": {"t": bin(&[1, 2, 3, 4, 5, 0])}},
        );
    }

    #[test]
    fn delete_section_and_nested_arrays() {
        check(
            doc! {"_id": 1, "a": 1, "m": [[1, 2], [3]], "z": 0},
            doc! {"d": {"a": false}, "sm": {"a": true, "s1": {"a": true, "u1": 4}}},
            doc! {"_id": 1, "m": [[1, 2], [3, 4]], "z": 0},
        );
    }

    #[test]
    fn grammar_errors() {
        let e = |d: Document| parse_doc_diff(&d).unwrap_err();
        assert_eq!(e(doc! {"q": {}}), DiffError::UnknownSection("q".into()));
        assert_eq!(
            e(doc! {"u": {"a": 1}, "d": {"b": false}}),
            DiffError::OutOfOrder("d".into())
        );
        assert_eq!(
            e(doc! {"u": {"a": 1}, "i": {"a": 2}}),
            DiffError::Duplicate("a".into())
        );
        assert!(matches!(
            e(doc! {"sa": {"a": true, "u2": 1, "u1": 1}}),
            DiffError::Array(_)
        ));
        assert!(matches!(
            e(doc! {"sa": {"a": true, "x1": 1}}),
            DiffError::Array(_)
        ));
        assert!(matches!(e(doc! {"u": 3}), DiffError::Shape { .. }));
        // Single letters only: `updatedFields` is not mongod's `u`.
        assert_eq!(
            e(doc! {"updatedFields": {}}),
            DiffError::UnknownSection("updatedFields".into())
        );
    }

    #[test]
    fn top_level_detection() {
        let p = |d: Document| parse_doc_diff(&d).unwrap().is_top_level();
        assert!(p(doc! {"d": {}, "u": {"z": 1}, "i": {"q": 0}}));
        assert!(!p(doc! {"sa": {"u": {"b": 1}}}));
        assert!(!p(doc! {"u": {"a.b": 1}}));
        assert!(!p(doc! {"i": {"$x": 1}}));
    }

    #[test]
    fn flat_form() {
        let d = parse_flat(&doc! {
            "updatedFields": {"a.b": 2, "arr.1": "x", "n": 1},
            "removedFields": ["c"],
            "truncatedArrays": [{"field": "t", "newSize": 1}],
        })
        .unwrap();
        let got = apply_flat(
            &doc! {"_id": 1, "a": {"b": 1}, "arr": [0], "c": 1, "t": [1, 2, 3]},
            &d,
        );
        assert_eq!(
            bytes(&got),
            bytes(&doc! {"_id": 1, "a": {"b": 2}, "arr": [0, "x"], "t": [1], "n": 1})
        );
        assert!(parse_flat(&doc! {"updatedFields": 1}).is_err());
    }

    #[test]
    fn modifiers() {
        let got = apply_modifiers(
            &doc! {"_id": 1, "c": 1, "z": 0},
            &doc! {"zz": 1, "a.b": 1, "mm": 2},
            &["c".to_string()],
        );
        assert_eq!(
            bytes(&got),
            bytes(&doc! {"_id": 1, "z": 0, "a": {"b": 1}, "mm": 2, "zz": 1})
        );
    }
}
