//! Offline verification of OXD archives (`oxidump verify`).
//!
//! The checker walks the archive in order, like a streaming reader, but records
//! every violation as a [`Finding`] and keeps going: after a damaged record header it
//! searches for the next valid one ([`RecordReader::resync`]); after a damaged frame
//! it goes on with the next. Frames are checked and decompressed on the rayon pool;
//! their results are consumed in archive order, so namespace digests are computed
//! exactly as a reader would.
//!
//! Consequences are not reported twice: once a namespace has a damaged, missing or
//! misplaced frame, its NS_END totals are not compared (they cannot match).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use super::footer::Footer;
use super::frame;
use super::nsend::{NsDigest, NsEnd};
use super::ranges::{self, RangeRecord};
use super::reader::{Next, Record, RecordReader, ns_mismatch};
use super::record::{RecordHeader, RecordKind};
use super::{Error, ErrorKind, manifest};
use crate::catalog::Catalog;
use crate::docs::{DocIter, deep_check};
use crate::pool::{self, Ordered};
use crate::verify::{Finding, NsTotals, Report, VerifyOptions};

/// Most deep-check findings reported per frame (the rest are counted).
const DEEP_PER_FRAME: usize = 5;

enum Step {
    Frame {
        offset: u64,
        header: RecordHeader,
        result: Result<(Vec<u8>, u64, Vec<String>), Error>,
    },
    End {
        offset: u64,
        header: RecordHeader,
        end: Result<NsEnd, Error>,
    },
}

#[derive(Default)]
struct NsCheck {
    /// `seq` values in archive order, with the record offset.
    seqs: Vec<(u32, u64)>,
    digest: NsDigest,
    damaged: bool,
    end: Option<(u64, NsEnd, u16)>,
    /// An NS_END record was there but its payload is damaged.
    end_damaged: bool,
    docs: u64,
    bytes: u64,
}

struct Checker<'a> {
    path: &'a Path,
    report: &'a mut Report,
    catalog: Option<Catalog>,
    /// By namespace id: those of the manifest, and any other id seen when the manifest
    /// is unreadable (a map, so that an id of 4 billion costs one entry).
    ns: BTreeMap<u32, NsCheck>,
    /// Frames whose records were read and checked, by offset: (ns, seq, doc_count,
    /// raw_len), all of which the footer's frame index repeats.
    frames_at: HashMap<u64, (u32, u32, u32, u32)>,
    /// Byte ranges skipped over after damage.
    skipped: Vec<(u64, u64)>,
    /// Range records (spec §4.5), by offset.
    ranges: Vec<(u64, RangeRecord)>,
    opts: &'a VerifyOptions,
}

impl Checker<'_> {
    fn name(&self, ns: u32) -> String {
        match &self.catalog {
            Some(c) => c
                .namespaces
                .get(ns as usize)
                .map(|n| n.full_name())
                .unwrap_or_else(|| format!("namespace id {ns}")),
            None => format!("namespace id {ns}"),
        }
    }

    fn finding(&self, code: &'static str, offset: u64, message: impl Into<String>) -> Finding {
        Finding::error(code, message).file(self.path).offset(offset)
    }

    fn push(&mut self, f: Finding) {
        self.report.push(f);
    }

    fn finding_of(&self, e: &Error) -> Finding {
        let mut message = e.kind.to_string();
        let mut f = self.finding(e.kind.code(), e.offset, String::new());
        if let Some(rest) = message.strip_prefix("frame ")
            && let Some((seq, tail)) = rest.split_once(" of namespace ")
        {
            let (ns, after) = tail.split_once(':').unwrap_or((tail, ""));
            if let (Ok(seq), Ok(ns)) = (seq.parse::<u64>(), ns.parse::<u32>()) {
                f = f.ns(self.name(ns)).frame(seq);
                message = format!("frame {seq}:{after}");
            }
        }
        f.message = message;
        f
    }

    fn ns_state(&mut self, ns: u32) -> &mut NsCheck {
        self.ns.entry(ns).or_default()
    }

    fn known_ns(&self, ns: u32) -> bool {
        match &self.catalog {
            Some(c) => (ns as usize) < c.namespaces.len(),
            None => true,
        }
    }

    fn on_step(&mut self, step: Step) {
        match step {
            Step::Frame {
                offset,
                header,
                result,
            } => {
                let name = self.name(header.ns_id);
                self.frames_at.insert(
                    offset,
                    (header.ns_id, header.seq, header.doc_count, header.raw_len),
                );
                match result {
                    Ok((raw, crc, deep)) => {
                        for m in deep {
                            let f = Finding::error("doc-deep", m)
                                .file(self.path)
                                .ns(name.clone())
                                .frame(header.seq as u64)
                                .offset(offset);
                            self.push(f);
                        }
                        let st = self.ns_state(header.ns_id);
                        st.digest
                            .add_digested(crc, raw.len() as u64, header.doc_count as u64);
                        st.docs += header.doc_count as u64;
                        st.bytes += raw.len() as u64;
                        frame::recycle(raw);
                    }
                    Err(e) => {
                        let f = self.finding_of(&e).ns(name).frame(header.seq as u64);
                        self.push(f);
                        self.ns_state(header.ns_id).damaged = true;
                    }
                }
            }
            Step::End {
                offset,
                header,
                end,
            } => match end {
                Err(e) => {
                    let f = self.finding_of(&e).ns(self.name(header.ns_id));
                    self.push(f);
                    let st = self.ns_state(header.ns_id);
                    st.damaged = true;
                    st.end_damaged = true;
                }
                Ok(end) => {
                    let name = self.name(header.ns_id);
                    let st = self.ns_state(header.ns_id);
                    if let Some((prev, _, _)) = st.end {
                        let f = self
                            .finding(
                                "ns-end-duplicate",
                                offset,
                                format!("a second NS_END (the first is at offset {prev})"),
                            )
                            .ns(name);
                        self.push(f);
                        return;
                    }
                    st.end = Some((offset, end, header.flags));
                    let order_ok = self.check_order(header.ns_id, Some(end.frames));
                    let st = &self.ns[&header.ns_id];
                    if order_ok && !st.damaged {
                        let seen = st.digest.totals();
                        if seen != end {
                            let code = if seen.digest != end.digest
                                && (seen.doc_count, seen.raw_bytes, seen.frames)
                                    == (end.doc_count, end.raw_bytes, end.frames)
                            {
                                "ns-digest"
                            } else {
                                "ns-totals"
                            };
                            let f = self
                                .finding(code, offset, ns_mismatch(&name, &seen, &end))
                                .ns(name);
                            self.push(f);
                            self.ns_state(header.ns_id).damaged = true;
                        }
                    }
                }
            },
        }
    }

    /// Reports missing, duplicated and misplaced frames of a namespace. `frames` is
    /// the count its NS_END declares, when known. Returns whether all was in order.
    fn check_order(&mut self, ns: u32, frames: Option<u64>) -> bool {
        let name = self.name(ns);
        let st = &self.ns[&ns];
        let mut ok = true;
        let mut findings = Vec::new();
        let mut seen = BTreeSet::new();
        for &(seq, off) in &st.seqs {
            if !seen.insert(seq) {
                findings.push(
                    self.finding(
                        "frame-duplicate",
                        off,
                        format!("frame {seq} appears more than once"),
                    )
                    .ns(name.clone())
                    .frame(seq as u64),
                );
            }
        }
        let mut expected = 0u32;
        let mut met = BTreeSet::new();
        for &(seq, off) in &st.seqs {
            // A repeated frame is reported as a duplicate, not again as misplaced.
            if !met.insert(seq) {
                continue;
            }
            if seq != expected && seen.contains(&expected) {
                findings.push(
                    self.finding(
                        "frame-order",
                        off,
                        format!("frame {seq} found where frame {expected} was expected (frames are out of order)"),
                    )
                    .ns(name.clone())
                    .frame(seq as u64),
                );
                break;
            }
            expected = expected.max(seq.saturating_add(1));
        }
        let declared =
            frames.unwrap_or_else(|| seen.iter().next_back().map_or(0, |m| *m as u64 + 1));
        // Runs of missing numbers, from the gaps between those seen: `declared` comes
        // from the archive and may be anything up to 2^64.
        let mut missing: Vec<(u64, u64)> = Vec::new();
        let mut next = 0u64;
        for s in seen.iter().map(|&s| s as u64).take_while(|&s| s < declared) {
            if s > next {
                missing.push((next, s - 1));
            }
            next = s + 1;
        }
        if next < declared {
            missing.push((next, declared - 1));
        }
        if !missing.is_empty() && !st.damaged {
            let list = compact(&missing);
            let explained = !self.skipped.is_empty();
            let why = if explained {
                " (unreadable: inside a damaged region)"
            } else {
                " (not in the archive)"
            };
            let at = st.end.map(|e| e.0).unwrap_or(0);
            findings.push(
                self.finding(
                    "frame-missing",
                    at,
                    format!("frame(s) {list} of {declared} missing{why}"),
                )
                .ns(name.clone())
                .frame(missing[0].0),
            );
        }
        if frames.is_some_and(|f| seen.iter().next_back().is_some_and(|m| *m as u64 >= f)) {
            findings.push(
                self.finding(
                    "frame-extra",
                    st.end.map(|e| e.0).unwrap_or(0),
                    format!(
                        "frames beyond the {} its NS_END declares",
                        frames.unwrap_or(0)
                    ),
                )
                .ns(name.clone()),
            );
        }
        if !findings.is_empty() {
            ok = false;
            for f in findings {
                self.push(f);
            }
            self.ns_state(ns).damaged = true;
        }
        ok
    }
}

/// Renders the runs `[(1, 3), (7, 7)]` as `1-3, 7`.
fn compact(runs: &[(u64, u64)]) -> String {
    runs.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks one frame on a worker thread: checksum, decompression, document chain
/// (and every element with `deep`), and the frame's digest while its bytes are in cache.
fn check_frame(rec: Record, deep: bool) -> Result<(Vec<u8>, u64, Vec<String>), Error> {
    let h = rec.header;
    let offset = rec.offset;
    let raw = rec.into_raw()?;
    let crc = frame::digest_docs(&h, &raw).map_err(|k| Error::at(offset, k))?;
    let mut notes = Vec::new();
    if deep {
        let mut it = DocIter::new(&raw);
        let mut extra = 0;
        loop {
            let at = it.offset();
            let Some(Ok(d)) = it.next() else { break };
            if let Err(e) = deep_check(d) {
                if notes.len() < DEEP_PER_FRAME {
                    notes.push(format!(
                        "document at byte {at} of the frame's raw payload: {e}"
                    ));
                } else {
                    extra += 1;
                }
            }
        }
        if extra > 0 {
            notes.push(format!("{extra} more invalid document(s) in this frame"));
        }
    }
    Ok((raw, crc, notes))
}

/// Verifies an OXD archive read from `r`, filling `report`. `progress` receives the
/// number of bytes consumed since its previous call.
pub fn verify<R: Read>(
    r: R,
    path: &Path,
    opts: &VerifyOptions,
    report: &mut Report,
    progress: &mut dyn FnMut(u64),
) {
    let mut rr = RecordReader::new(r);
    let mut c = Checker {
        path,
        report,
        catalog: None,
        ns: BTreeMap::new(),
        frames_at: HashMap::new(),
        skipped: Vec::new(),
        ranges: Vec::new(),
        opts,
    };
    if let Err(e) = rr.read_file_header() {
        let f = c.finding_of(&e);
        c.push(f);
        return;
    }
    let mut pending: Ordered<Step> = Ordered::new(pool::default_capacity());
    let mut footer: Option<(u64, Footer)> = None;
    let mut first = true;
    let mut last_offset = 0u64;
    let mut complete = false;
    loop {
        let now = rr.offset();
        progress(now - last_offset);
        last_offset = now;
        while pending.is_full() {
            let s = pending.pop().expect("full");
            c.on_step(s);
        }
        let rec = match rr.next_record() {
            Ok(Next::Eof) => {
                let f = c.finding(
                    "incomplete",
                    rr.offset(),
                    "the archive ends without its footer and trailer: it is incomplete (interrupted or truncated); everything before this offset was checked",
                );
                c.push(f);
                break;
            }
            Ok(Next::Record(r)) => r,
            Err(e) => {
                let truncated = matches!(
                    e.kind,
                    ErrorKind::Truncated { .. }
                        | ErrorKind::TruncatedRecord { .. }
                        | ErrorKind::Io(_)
                );
                let f = c.finding_of(&e);
                c.push(f);
                if truncated {
                    let f = c.finding(
                        "incomplete",
                        e.offset,
                        "the archive is cut short here: it is incomplete; everything before this offset was checked",
                    );
                    c.push(f);
                    break;
                }
                let from = rr.offset();
                match rr.resync() {
                    Ok(Some(to)) => {
                        c.skipped.push((from, to));
                        if first {
                            // The manifest itself was unreadable.
                            first = false;
                        }
                        continue;
                    }
                    Ok(None) => {
                        c.skipped.push((from, rr.offset()));
                        let f = c.finding(
                            "incomplete",
                            from,
                            "no valid record follows the damage: the rest of the archive, footer and trailer included, is unreadable",
                        );
                        c.push(f);
                        break;
                    }
                    Err(e) => {
                        let f = c.finding_of(&e);
                        c.push(f);
                        break;
                    }
                }
            }
        };
        let h = rec.header;
        if first {
            first = false;
            if h.kind != RecordKind::Manifest {
                let f = c.finding(
                    "manifest",
                    rec.offset,
                    format!(
                        "the first record is a {}, expected the MANIFEST",
                        h.kind.name()
                    ),
                );
                c.push(f);
            } else {
                let off = rec.offset;
                match rec.into_raw() {
                    Err(e) => {
                        let f = c.finding_of(&e);
                        c.push(f);
                    }
                    Ok(raw) => match manifest::decode(&raw) {
                        Ok(cat) => {
                            for i in 0..cat.namespaces.len() as u32 {
                                c.ns.entry(i).or_default();
                            }
                            c.catalog = Some(cat);
                        }
                        Err(m) => {
                            let f = c.finding("manifest", off, m);
                            c.push(f);
                        }
                    },
                }
                continue;
            }
        }
        match h.kind {
            RecordKind::Manifest => {
                let f = c.finding("manifest", rec.offset, "a second MANIFEST record");
                c.push(f);
            }
            RecordKind::Frame | RecordKind::NsEnd if !c.known_ns(h.ns_id) => {
                let f = c.finding(
                    "unknown-ns",
                    rec.offset,
                    format!(
                        "{} names namespace id {}, which the manifest does not list",
                        h.kind.name(),
                        h.ns_id
                    ),
                );
                c.push(f);
            }
            RecordKind::Frame => {
                let offset = rec.offset;
                if c.catalog
                    .as_ref()
                    .is_some_and(|cat| !cat.namespaces[h.ns_id as usize].has_data())
                {
                    let f = c
                        .finding(
                            "frame-view",
                            offset,
                            format!("frame {} belongs to a view, which has no documents", h.seq),
                        )
                        .ns(c.name(h.ns_id))
                        .frame(h.seq as u64);
                    c.push(f);
                }
                let st = c.ns_state(h.ns_id);
                st.seqs.push((h.seq, offset));
                if let Some((end_at, _, _)) = st.end {
                    let f = c
                        .finding(
                            "frame-after-end",
                            offset,
                            format!(
                                "frame {} comes after the namespace's NS_END at offset {end_at}",
                                h.seq
                            ),
                        )
                        .ns(c.name(h.ns_id))
                        .frame(h.seq as u64);
                    c.push(f);
                }
                let deep = c.opts.deep;
                pending.push(move || Step::Frame {
                    offset,
                    header: h,
                    result: check_frame(rec, deep),
                });
            }
            RecordKind::NsEnd => {
                let end = rec
                    .check_crc()
                    .map(|_| NsEnd::decode(rec.payload[..].try_into().expect("32 bytes")));
                pending.push_ready(Step::End {
                    offset: rec.offset,
                    header: h,
                    end,
                });
            }
            RecordKind::Ancillary(k) => {
                if let Err(e) = rec.check_crc() {
                    let f = c.finding_of(&e);
                    c.push(f);
                } else if matches!(k, ranges::KIND_RANGES | ranges::KIND_RANGE_END) {
                    let off = rec.offset;
                    let r = rec
                        .into_raw()
                        .ok()
                        .and_then(|raw| RangeRecord::decode(k, h.ns_id, h.seq, &raw));
                    match r {
                        Some(r) => c.ranges.push((off, r)),
                        None => {
                            let f = c.finding(
                                "inconsistent",
                                off,
                                format!("range record {k:#04x}: its payload does not parse"),
                            );
                            c.push(f);
                        }
                    }
                }
            }
            RecordKind::Footer => {
                let off = rec.offset;
                match rec.into_raw() {
                    Err(e) => {
                        let f = c.finding_of(&e);
                        c.push(f);
                    }
                    Ok(raw) => match Footer::decode(&raw) {
                        Ok(f) => footer = Some((off, f)),
                        Err(m) => {
                            let f = c.finding("footer", off, m);
                            c.push(f);
                        }
                    },
                }
                match rr.read_trailer() {
                    Ok(t) => {
                        if t.footer_offset != off {
                            let f = c.finding(
                                "trailer-offset",
                                t.archive_len - 32,
                                format!(
                                    "trailer: footer_offset is {}, the footer is at {off}",
                                    t.footer_offset
                                ),
                            );
                            c.push(f);
                        } else {
                            complete = true;
                        }
                    }
                    Err(e) => {
                        let f = c.finding_of(&e);
                        c.push(f);
                        if matches!(e.kind, ErrorKind::Truncated { .. }) {
                            let f = c.finding(
                                "incomplete",
                                e.offset,
                                "the archive is cut short before the end of its trailer: it is incomplete; everything before this offset was checked",
                            );
                            c.push(f);
                        }
                    }
                }
                break;
            }
        }
    }
    while let Some(s) = pending.pop() {
        c.on_step(s);
    }
    progress(rr.offset() - last_offset);
    finish(&mut c, footer, complete);
}

fn finish(c: &mut Checker<'_>, footer: Option<(u64, Footer)>, complete: bool) {
    let n = c.catalog.as_ref().map_or(0, |cat| cat.namespaces.len());
    for i in 0..n as u32 {
        c.ns.entry(i).or_default();
    }
    let ids: Vec<u32> = c.ns.keys().copied().collect();
    for &i in &ids {
        if c.ns[&i].end.is_none() && !c.ns[&i].end_damaged {
            c.check_order(i, None);
            let message = if complete || footer.is_some() {
                "the namespace has no NS_END record"
            } else {
                "the archive stops before this namespace's NS_END: its documents may be incomplete"
            };
            let name = c.name(i);
            let f = Finding::error("ns-missing-end", message)
                .file(c.path)
                .ns(name);
            c.push(f);
        }
    }
    if let Some((off, f)) = &footer {
        check_footer(c, *off, f);
    }
    // Frames lost to damage explain range records that do not add up.
    if c.skipped.is_empty() && !c.ns.values().any(|s| s.damaged) {
        check_ranges(c);
    }
    // Spec §12: complete means a valid trailer pointing at a valid footer, and
    // everything else agreeing. Findings are in archive order.
    c.report
        .findings
        .sort_by_key(|f| f.offset.unwrap_or(u64::MAX));
    let clean_end = complete && footer.is_some();
    c.report.complete = clean_end && c.catalog.is_some() && !c.report.has_errors();
    for i in ids {
        let name = c.name(i);
        c.report.namespaces.push(NsTotals {
            namespace: name,
            documents: c.ns[&i].docs,
            bytes: c.ns[&i].bytes,
        });
    }
}

/// Spec §4.5: a RANGE_END lists frames of its namespace that add up to its totals,
/// of a range its namespace's RANGES record has, once per range and per frame.
fn check_ranges(c: &mut Checker<'_>) {
    let frames: HashMap<(u32, u32), (u64, u64)> = c
        .frames_at
        .values()
        .map(|&(ns, seq, docs, len)| ((ns, seq), (docs as u64, len as u64)))
        .collect();
    let mut plans: HashMap<usize, usize> = HashMap::new();
    let mut ended = BTreeSet::new();
    let mut claimed = BTreeSet::new();
    let mut wrong = Vec::new();
    for (off, r) in &c.ranges {
        match r {
            RangeRecord::Plan { ns, plan } => {
                if plans.insert(*ns, plan.len()).is_some() {
                    wrong.push((*off, *ns, "a second RANGES record".to_string()));
                }
            }
            RangeRecord::End { ns, range, end } => {
                let why = match plans.get(ns) {
                    None => Some("RANGE_END without a RANGES record before it".to_string()),
                    Some(&n) if *range as usize >= n => {
                        Some(format!("RANGE_END of range {range}, the split has {n}"))
                    }
                    _ if !ended.insert((*ns, *range)) => {
                        Some(format!("a second RANGE_END of range {range}"))
                    }
                    _ => {
                        let mut sum = Some((0, 0));
                        for q in &end.frames {
                            sum = match (sum, frames.get(&(*ns as u32, *q))) {
                                (Some((d, b)), Some((fd, fb))) if claimed.insert((*ns, *q)) => {
                                    Some((d + fd, b + fb))
                                }
                                _ => None,
                            };
                        }
                        (sum != Some((end.docs, end.bytes))).then(|| {
                            format!(
                                "RANGE_END of range {range} lists frames that are missing, listed twice or do not add up to its {} documents and {} bytes",
                                end.docs, end.bytes
                            )
                        })
                    }
                };
                if let Some(w) = why {
                    wrong.push((*off, *ns, w));
                }
            }
        }
    }
    for (off, ns, why) in wrong {
        let f = c.finding("inconsistent", off, why).ns(c.name(ns as u32));
        c.push(f);
    }
}

fn check_footer(c: &mut Checker<'_>, off: u64, footer: &Footer) {
    if footer.namespaces.len() != c.ns.len() {
        let f = c.finding(
            "footer",
            off,
            format!(
                "lists {} namespaces, the manifest has {}",
                footer.namespaces.len(),
                c.ns.len()
            ),
        );
        c.push(f);
        return;
    }
    for e in &footer.namespaces {
        let Some(st) = c.ns.get(&e.ns_id) else {
            continue;
        };
        if let Some((_, end, flags)) = st.end
            && (end != e.end || flags != e.flags)
        {
            let f = c
                .finding(
                    "footer",
                    off,
                    "its entry for the namespace differs from the NS_END record",
                )
                .ns(c.name(e.ns_id));
            c.push(f);
        }
    }
    let damaged = !c.skipped.is_empty() || c.ns.values().any(|s| s.damaged);
    let mut wrong = Vec::new();
    let moved_ends = footer
        .namespaces
        .iter()
        .filter(|e| {
            c.ns.get(&e.ns_id)
                .and_then(|s| s.end)
                .is_some_and(|(o, _, _)| o != e.end_offset)
        })
        .count();
    for fe in &footer.frames {
        match c.frames_at.get(&fe.offset) {
            Some(&f) if f == (fe.ns_id, fe.seq, fe.doc_count, fe.raw_len) => {}
            _ => wrong.push(fe),
        }
    }
    let indexed: std::collections::HashSet<u64> = footer.frames.iter().map(|f| f.offset).collect();
    let unindexed = c.frames_at.keys().filter(|o| !indexed.contains(o)).count();
    // Index entries that point into damaged regions are explained by that damage.
    if (!wrong.is_empty() || unindexed > 0 || moved_ends > 0) && !damaged {
        let first = wrong.first().map(|f| f.offset).unwrap_or(off);
        let f = c.finding(
            "footer-index",
            off,
            format!(
                "the index disagrees with the archive: {} frame entr(y/ies) do not point at the frame they name (first: offset {first}), {unindexed} frame(s) are not indexed, {moved_ends} NS_END offset(s) differ",
                wrong.len()
            ),
        );
        c.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oxd::reader::tests::archive;

    fn run(bytes: &[u8], deep: bool) -> Report {
        let mut rep = Report::new("t.oxd", "oxd");
        verify(
            bytes,
            Path::new("t.oxd"),
            &VerifyOptions { deep },
            &mut rep,
            &mut |_| {},
        );
        rep
    }

    fn codes(r: &Report) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.code).collect()
    }

    /// One namespace of two frames split in two ranges; `listed` are the frames the
    /// first range's RANGE_END lists, `docs` its document count.
    fn ranged(listed: Vec<u32>, docs: u64) -> Vec<u8> {
        use crate::catalog::{Namespace, NsStatus, Summary};
        use crate::oxd::ranges::{KIND_RANGE_END, KIND_RANGES, RangeEnd, RangePlan};
        use crate::oxd::writer::{OxdWriter, WriterOptions};
        let catalog = Catalog {
            source: Default::default(),
            namespaces: vec![Namespace::collection("db", "c")],
        };
        let one = |i: i32| bson::serialize_to_vec(&bson::doc! {"_id": i}).expect("doc");
        let mut w = OxdWriter::new(Vec::new(), &catalog, WriterOptions::default()).unwrap();
        let plan = RangePlan {
            filter: true,
            points: vec![bson::Bson::Int32(1)],
        };
        w.write_ancillary(KIND_RANGES, 0, 0, plan.encode()).unwrap();
        w.write_frame(0, one(0), 1).unwrap();
        w.write_frame(0, one(1), 1).unwrap();
        let end = RangeEnd {
            frames: listed,
            docs,
            bytes: one(0).len() as u64 * docs,
        };
        w.write_ancillary(KIND_RANGE_END, 0, 0, end.encode())
            .unwrap();
        w.end_namespace(0, &NsStatus::Complete).unwrap();
        w.finish(&Summary::default()).unwrap().0
    }

    #[test]
    fn range_records_are_checked_against_the_frames() {
        let good = run(&ranged(vec![0], 1), false);
        assert!(good.complete, "{:?}", good.findings);
        assert!(codes(&good).is_empty(), "{:?}", good.findings);
        for (listed, docs) in [(vec![5], 1), (vec![0], 2), (vec![0, 0], 2)] {
            let r = run(&ranged(listed.clone(), docs), false);
            assert_eq!(
                codes(&r),
                vec!["inconsistent"],
                "{listed:?}: {:?}",
                r.findings
            );
            assert!(!r.complete);
        }
    }

    #[test]
    fn clean_archive_verifies() {
        for level in [None, Some(3)] {
            let r = run(&archive(level), true);
            assert!(r.is_ok(), "{:?}", r.findings);
            assert_eq!(r.namespaces[0].documents, 23);
            assert_eq!(r.namespaces[1].documents, 5);
        }
    }

    #[test]
    fn every_byte_flip_gives_a_finding() {
        let a = archive(Some(3));
        for i in 0..a.len() {
            let mut b = a.clone();
            b[i] ^= 0x40;
            let r = run(&b, false);
            assert!(!r.is_ok(), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn every_truncation_is_incomplete() {
        let a = archive(Some(3));
        for cut in 0..a.len() {
            let r = run(&a[..cut], false);
            assert!(!r.is_ok() && !r.complete, "cut at {cut}");
            assert!(!r.findings.is_empty(), "cut at {cut}: {:?}", codes(&r));
        }
    }

    #[test]
    fn hostile_ids_and_counts_cost_nothing() {
        use crate::oxd::header::FileHeader;
        use crate::oxd::nsend::NsEnd;
        use crate::oxd::record::{RecordHeader, RecordKind};
        let rec = |mut h: RecordHeader, payload: &[u8]| {
            let mut b = h.seal(payload).to_vec();
            b.extend_from_slice(payload);
            b
        };
        let mut a = FileHeader::default().encode().to_vec();
        // an unreadable manifest, then the last frame of namespace id 4294967040
        let manifest = RecordHeader {
            raw_len: 8,
            ..RecordHeader::new(RecordKind::Manifest)
        };
        a.extend(rec(manifest, b"garbage!"));
        let frame = RecordHeader {
            ns_id: u32::MAX - 255,
            seq: u32::MAX,
            raw_len: 5,
            doc_count: 1,
            ..RecordHeader::new(RecordKind::Frame)
        };
        a.extend(rec(frame, &[5, 0, 0, 0, 0]));
        // an NS_END declaring 2^63 frames
        let end = NsEnd {
            frames: 1 << 63,
            ..NsEnd::default()
        };
        let ns_end = RecordHeader {
            ns_id: 7,
            raw_len: 32,
            ..RecordHeader::new(RecordKind::NsEnd)
        };
        a.extend(rec(ns_end, &end.encode()));
        let r = run(&a, false);
        let c = codes(&r);
        assert!(
            c.contains(&"manifest") && c.contains(&"frame-missing"),
            "{c:?}"
        );
        assert_eq!(r.namespaces.len(), 2);
        assert!(
            r.findings
                .iter()
                .any(|f| f.message.contains("frame(s) 0-9223372036854775807 of")),
            "{:?}",
            r.findings
        );
    }
}
