//! Order-independent digests of a namespace's documents.
//!
//! A server may return a collection's documents in any order, so the digest of a
//! namespace is a multiset hash: the count, and the wrapping sum of a 128-bit hash of
//! each document's raw bytes (the first 16 bytes of its SHA-256). The same documents
//! give the same digest in any order; a changed, missing or extra document changes it
//! with overwhelming probability.
//!
//! The documents are also spread over [`BUCKETS`] buckets by a hash of their `_id`,
//! each with its own count and sum. When two digests differ, only the documents of the
//! buckets that differ need a second look to name the `_id`s that are missing, extra or
//! different, so that look needs memory for a small share of the documents only.

use sha2::{Digest as _, Sha256};

/// Buckets per namespace.
pub const BUCKETS: usize = 1024;

/// The multiset digest of a namespace.
#[derive(Clone, PartialEq, Eq)]
pub struct NsDigest {
    /// Documents.
    pub count: u64,
    /// Wrapping sum of the documents' hashes.
    pub sum: u128,
    /// Per bucket: documents and sum.
    buckets: Vec<(u64, u128)>,
}

impl std::fmt::Debug for NsDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NsDigest({} documents, {:032x})", self.count, self.sum)
    }
}

impl Default for NsDigest {
    fn default() -> Self {
        NsDigest {
            count: 0,
            sum: 0,
            buckets: vec![(0, 0); BUCKETS],
        }
    }
}

impl NsDigest {
    /// Adds one document (its raw bytes).
    pub fn add(&mut self, doc: &[u8]) {
        let h = doc_hash(doc);
        let b = &mut self.buckets[bucket_of(id_key(doc))];
        b.0 += 1;
        b.1 = b.1.wrapping_add(h);
        self.count += 1;
        self.sum = self.sum.wrapping_add(h);
    }

    /// Adds every document of a run of concatenated documents.
    pub fn add_run(&mut self, run: &[u8]) -> Result<(), crate::docs::FramingError> {
        for d in crate::docs::DocIter::new(run) {
            self.add(d?);
        }
        Ok(())
    }

    /// The buckets whose documents differ between `self` and `other`.
    pub fn differing_buckets(&self, other: &NsDigest) -> Vec<usize> {
        (0..BUCKETS)
            .filter(|&i| self.buckets[i] != other.buckets[i])
            .collect()
    }

    /// The digest as text: count and hex sum.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

/// The 128-bit hash of one document.
pub fn doc_hash(doc: &[u8]) -> u128 {
    let d = Sha256::digest(doc);
    u128::from_le_bytes(d[..16].try_into().expect("16 bytes"))
}

/// The bucket of an `_id` key ([`id_key`]).
pub fn bucket_of(key: &[u8]) -> usize {
    crc32fast::hash(key) as usize % BUCKETS
}

/// The bytes that identify a document: its whole `_id` element (type byte, the name
/// `_id`, the value), borrowed from the document without decoding anything; an empty
/// slice when it has none or is malformed.
pub fn id_key(doc: &[u8]) -> &[u8] {
    let Ok(raw) = bson::RawDocument::from_bytes(doc) else {
        return &[];
    };
    // Elements start after the 4-byte length: type byte, name and NUL, value.
    let mut offset = 4usize;
    for el in raw.iter_elements() {
        let Ok(el) = el else {
            return &[];
        };
        let name = el.key().as_str();
        let end = offset + 1 + name.len() + 1 + el.size();
        if name == "_id" {
            return doc.get(offset..end).unwrap_or(&[]);
        }
        offset = end;
    }
    &[]
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, rawdoc};

    fn bytes(d: bson::Document) -> Vec<u8> {
        bson::serialize_to_vec(&d).unwrap()
    }

    #[test]
    fn order_does_not_matter_content_does() {
        let docs = [
            bytes(doc! {"_id": 1, "a": "x"}),
            bytes(doc! {"_id": 2, "a": "y"}),
            bytes(doc! {"_id": "three"}),
        ];
        let mut a = NsDigest::default();
        let mut b = NsDigest::default();
        for d in &docs {
            a.add(d);
        }
        for d in docs.iter().rev() {
            b.add(d);
        }
        assert_eq!(a, b);
        assert_eq!(a.count, 3);
        let mut c = NsDigest::default();
        c.add(&docs[0]);
        c.add(&docs[1]);
        c.add(&bytes(doc! {"_id": "three", "changed": true}));
        assert_ne!(a, c);
        assert_eq!(a.differing_buckets(&c), vec![bucket_of(id_key(&docs[2]))]);
    }

    #[test]
    fn id_key_is_the_id_element_wherever_it_is() {
        let first = bytes(doc! {"_id": 7i32, "x": 1});
        let later = bytes(doc! {"x": 1, "y": {"_id": 1}, "_id": 7i32});
        assert_eq!(id_key(&first), id_key(&later));
        assert_eq!(id_key(&first), [0x10, b'_', b'i', b'd', 0, 7, 0, 0, 0]);
        assert_ne!(id_key(&first), id_key(&bytes(doc! {"_id": 7i64})));
        assert!(id_key(&bytes(doc! {"x": 1})).is_empty());
        assert!(id_key(&[1, 2, 3]).is_empty());
        let raw = rawdoc! {"_id": "s"};
        assert_eq!(id_key(raw.as_bytes()).len(), 1 + 4 + 4 + 2);
    }
}
