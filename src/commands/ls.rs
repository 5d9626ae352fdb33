//! `oxidump ls`: what a backup holds, per namespace.
//!
//! A complete OXD file is listed from its manifest and footer alone (a few reads,
//! whatever its size); an incomplete one or a stream is scanned record header by
//! record header without decompressing. mongodump inputs carry no index, so they
//! are read through.

use std::fs::File;
use std::path::{Path, PathBuf};

use bson::Bson;
use serde::Serialize;

use crate::catalog::{Catalog, Summary};
use crate::input::{self, InputFormat};
use crate::oxd::reader::{self, Index, Next, RecordReader};
use crate::oxd::record::RecordKind;
use crate::progress::human_bytes as human;
use crate::source::{Chunk, SourceError};

/// One namespace in a listing.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NsListing {
    /// `db.collection`.
    pub namespace: String,
    /// `collection`, `view`, `timeseries` or `oplog`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Documents stored.
    pub documents: u64,
    /// Raw BSON bytes stored.
    pub raw_bytes: u64,
    /// Bytes the namespace takes in the backup, when the format tells.
    pub stored_bytes: Option<u64>,
    /// `raw_bytes / stored_bytes`.
    pub ratio: Option<f64>,
    /// Index names, as `listIndexes` returned them.
    pub indexes: Vec<String>,
    /// Whether the data is marked partial (the source changed during the dump).
    pub partial: bool,
}

/// What `ls` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// The input.
    pub path: PathBuf,
    /// Detected format.
    pub format: &'static str,
    /// Size of the input file in bytes, when it is a file.
    pub size: Option<u64>,
    /// Whether the backup is complete (OXD: valid trailer and footer).
    pub complete: bool,
    /// Whether it is the partial output of an interrupted run (a temporary name, or a
    /// directory still marked as being written): never complete.
    pub partial_output: bool,
    /// Tool that wrote the data.
    pub tool: Option<String>,
    /// Source server version.
    pub server_version: Option<String>,
    /// Source feature compatibility version.
    pub fcv: Option<String>,
    /// Source URI, credentials removed.
    pub uri: Option<String>,
    /// When the backup was started (RFC 3339).
    pub created_at: Option<String>,
    /// When it was completed (RFC 3339).
    pub completed_at: Option<String>,
    /// Captured oplog window, `start` and `end` as `seconds:increment`.
    pub oplog: Option<(String, String)>,
    /// Warnings recorded by the writer.
    pub warnings: Vec<String>,
    /// Namespaces in catalog order.
    pub namespaces: Vec<NsListing>,
}

fn index_names(catalog: &Catalog, i: usize) -> Vec<String> {
    catalog.namespaces[i]
        .indexes
        .iter()
        .filter_map(|ix| match ix.get("name") {
            Some(Bson::String(s)) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn base(path: &Path, format: InputFormat, size: Option<u64>, catalog: &Catalog) -> Listing {
    let s = &catalog.source;
    Listing {
        path: path.to_path_buf(),
        format: format.name(),
        size,
        complete: false,
        partial_output: false,
        tool: s.tool.clone(),
        server_version: s.server_version.clone(),
        fcv: s.fcv.clone(),
        uri: s.uri.clone(),
        created_at: s
            .created_at
            .map(|t| t.try_to_rfc3339_string().unwrap_or_default()),
        completed_at: None,
        oplog: None,
        warnings: Vec::new(),
        namespaces: catalog
            .namespaces
            .iter()
            .enumerate()
            .map(|(i, n)| NsListing {
                namespace: n.full_name(),
                kind: n.kind.as_str(),
                documents: 0,
                raw_bytes: 0,
                stored_bytes: None,
                ratio: None,
                indexes: index_names(catalog, i),
                partial: false,
            })
            .collect(),
    }
}

fn apply_summary(l: &mut Listing, s: &Summary) {
    l.completed_at = s
        .completed_at
        .map(|t| t.try_to_rfc3339_string().unwrap_or_default());
    l.oplog = s.oplog.map(|o| {
        (
            format!("{}:{}", o.start.time, o.start.increment),
            format!("{}:{}", o.end.time, o.end.increment),
        )
    });
    l.warnings = s.warnings.clone();
}

fn finish_ratios(l: &mut Listing) {
    for n in &mut l.namespaces {
        n.ratio = match n.stored_bytes {
            Some(s) if s > 0 => Some(n.raw_bytes as f64 / s as f64),
            _ => None,
        };
    }
}

/// Lists the backup at `path`.
pub fn run(path: &Path) -> Result<Listing, SourceError> {
    list(path).map_err(|e| match e {
        // What stopped the listing is the cut-off end of a run that never finished.
        SourceError::Corrupt { path: at, message } if crate::output::is_partial_output(path) => {
            SourceError::Corrupt {
                message: format!("{}; {message}", crate::output::PARTIAL_OUTPUT),
                path: at,
            }
        }
        e => e,
    })
}

fn list(path: &Path) -> Result<Listing, SourceError> {
    let opened = input::open(path)?;
    let mut listing = match opened.format {
        InputFormat::Oxd if path.as_os_str() != "-" => {
            let mut f = File::open(path).map_err(|source| SourceError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            match Index::open(&mut f) {
                Ok(idx) => from_index(path, opened.size, &idx),
                Err(_) => scan_oxd(path, opened.stream.expect("stream"), opened.size)?,
            }
        }
        InputFormat::Oxd => scan_oxd(path, opened.stream.expect("stream"), opened.size)?,
        _ => read_through(path, opened)?,
    };
    finish_ratios(&mut listing);
    if crate::output::is_partial_output(path) {
        listing.complete = false;
        listing.partial_output = true;
        listing
            .warnings
            .insert(0, crate::output::PARTIAL_OUTPUT.to_string());
    }
    Ok(listing)
}

fn from_index(path: &Path, size: Option<u64>, idx: &Index) -> Listing {
    let mut l = base(path, InputFormat::Oxd, size, &idx.catalog);
    l.complete = true;
    apply_summary(&mut l, &idx.footer.summary);
    // A frame's stored size runs to the next record's offset.
    let mut offsets: Vec<u64> = idx.footer.frames.iter().map(|f| f.offset).collect();
    offsets.extend(idx.footer.namespaces.iter().map(|n| n.end_offset));
    offsets.push(idx.trailer.footer_offset);
    offsets.sort_unstable();
    for (i, e) in idx.footer.namespaces.iter().enumerate() {
        let n = &mut l.namespaces[i];
        n.documents = e.end.doc_count;
        n.raw_bytes = e.end.raw_bytes;
        n.partial = crate::oxd::nsend::is_partial(e.flags);
        let stored: u64 = idx
            .footer
            .frames_of(i as u32)
            .iter()
            .map(|f| {
                let k = offsets.partition_point(|&o| o <= f.offset);
                offsets.get(k).map_or(0, |next| next - f.offset)
            })
            .sum();
        n.stored_bytes = Some(stored);
    }
    l
}

fn scan_oxd(
    path: &Path,
    stream: Box<dyn std::io::Read + Send>,
    size: Option<u64>,
) -> Result<Listing, SourceError> {
    let corrupt = |e: crate::oxd::Error| SourceError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut rr = RecordReader::new(stream);
    let catalog = reader::read_start(&mut rr).map_err(corrupt)?;
    let mut l = base(path, InputFormat::Oxd, size, &catalog);
    for n in &mut l.namespaces {
        n.stored_bytes = Some(0);
    }
    // An incomplete archive ends early: list what is intact up to there.
    while let Ok(Next::Record(rec)) = rr.next_record() {
        let h = rec.header;
        if h.kind == RecordKind::Footer {
            if let Ok(raw) = rec.into_raw()
                && let Ok(f) = crate::oxd::footer::Footer::decode(&raw)
            {
                apply_summary(&mut l, &f.summary);
                l.complete = rr.read_trailer().is_ok();
            }
            break;
        }
        let Some(n) = l.namespaces.get_mut(h.ns_id as usize) else {
            continue;
        };
        match h.kind {
            RecordKind::Frame => {
                n.documents += h.doc_count as u64;
                n.raw_bytes += h.raw_len as u64;
                *n.stored_bytes.get_or_insert(0) +=
                    (crate::oxd::record::LEN + rec.payload.len()) as u64;
            }
            RecordKind::NsEnd => n.partial = crate::oxd::nsend::is_partial(h.flags),
            _ => {}
        }
    }
    Ok(l)
}

fn read_through(path: &Path, opened: input::Opened) -> Result<Listing, SourceError> {
    let (format, size) = (opened.format, opened.size);
    let mut src = super::source_from(opened)?;
    let catalog = src.catalog().clone();
    let mut l = base(path, format, size, &catalog);
    while let Some(c) = src.next_chunk()? {
        match c {
            Chunk::Docs { ns, data, count } => {
                let n = &mut l.namespaces[ns];
                n.documents += count;
                n.raw_bytes += data.len() as u64;
            }
            Chunk::End { ns, status } => {
                l.namespaces[ns].partial = status != crate::catalog::NsStatus::Complete;
            }
        }
    }
    if let Some(s) = src.summary() {
        apply_summary(&mut l, s);
    }
    if format == (InputFormat::MongodumpArchive { gzip: false }) {
        for n in &mut l.namespaces {
            n.stored_bytes = Some(n.raw_bytes);
        }
    }
    l.complete = true;
    Ok(l)
}

/// Renders a listing for people.
pub fn render_text(l: &Listing) -> String {
    let mut s = String::new();
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    s.push_str(&format!("path:            {}\n", l.path.display()));
    s.push_str(&format!(
        "format:          {}{}\n",
        l.format,
        if l.complete {
            ""
        } else if l.partial_output {
            " (INCOMPLETE: partial output of an interrupted run; listing what is intact)"
        } else {
            " (INCOMPLETE: no valid footer; listing what is intact)"
        }
    ));
    if let Some(size) = l.size {
        s.push_str(&format!(
            "size:            {} ({size} bytes)\n",
            human(size)
        ));
    }
    s.push_str(&format!("tool:            {}\n", opt(&l.tool)));
    s.push_str(&format!("server version:  {}\n", opt(&l.server_version)));
    s.push_str(&format!("fcv:             {}\n", opt(&l.fcv)));
    s.push_str(&format!("source:          {}\n", opt(&l.uri)));
    s.push_str(&format!("created:         {}\n", opt(&l.created_at)));
    s.push_str(&format!("completed:       {}\n", opt(&l.completed_at)));
    if let Some((a, b)) = &l.oplog {
        s.push_str(&format!("oplog:           {a} .. {b}\n"));
    }
    for w in &l.warnings {
        s.push_str(&format!("warning:         {w}\n"));
    }
    s.push('\n');
    let width = l
        .namespaces
        .iter()
        .map(|n| n.namespace.len())
        .max()
        .unwrap_or(9)
        .max(9);
    s.push_str(&format!(
        "{:width$}  {:10}  {:>12}  {:>11}  {:>11}  {:>6}  indexes\n",
        "namespace", "type", "documents", "raw", "stored", "ratio"
    ));
    for n in &l.namespaces {
        let kind = if n.partial {
            format!("{}*", n.kind)
        } else {
            n.kind.to_string()
        };
        s.push_str(&format!(
            "{:width$}  {:10}  {:>12}  {:>11}  {:>11}  {:>6}  {}\n",
            n.namespace,
            kind,
            n.documents,
            human(n.raw_bytes),
            n.stored_bytes.map(human).unwrap_or_else(|| "-".into()),
            n.ratio
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "-".into()),
            n.indexes.join(", ")
        ));
    }
    let docs: u64 = l.namespaces.iter().map(|n| n.documents).sum();
    let raw: u64 = l.namespaces.iter().map(|n| n.raw_bytes).sum();
    s.push_str(&format!(
        "\n{} namespaces, {} documents, {} raw{}\n",
        l.namespaces.len(),
        docs,
        human(raw),
        if l.namespaces.iter().any(|n| n.partial) {
            "  (* partial: the source changed during the dump)"
        } else {
            ""
        }
    ));
    s
}
