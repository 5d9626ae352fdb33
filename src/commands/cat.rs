//! `oxidump cat`: one namespace's documents, raw or as Extended JSON.
//!
//! A complete, seekable OXD file is read through its footer: only the namespace's
//! own frames are read, in parallel. Other inputs are read in order and the command
//! stops as soon as the namespace has ended.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use crate::catalog::Catalog;
use crate::input::{self, InputFormat};
use crate::oxd::reader::{Index, NsSource};
use crate::source::{Chunk, Source, SourceError};

/// How `cat` writes documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatFormat {
    /// The stored bytes, documents concatenated (a `.bson` file).
    Bson,
    /// One canonical Extended JSON v2 document per line.
    Json,
}

/// Error of `cat`.
#[derive(Debug, thiserror::Error)]
pub enum CatError {
    /// The namespace is not in the backup.
    #[error("{path}: no namespace {ns} in this backup (it holds: {available})")]
    NotFound {
        /// The input.
        path: String,
        /// What was asked for.
        ns: String,
        /// What there is.
        available: String,
    },
    /// The namespace is a view: it has no documents.
    #[error("{0} is a view: a backup stores only its definition, no documents")]
    View(String),
    /// Reading the backup failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A document could not be rendered as JSON.
    #[error("{ns}: document {index}: {source}")]
    Render {
        /// Namespace.
        ns: String,
        /// 0-based document number.
        index: u64,
        /// What failed.
        source: crate::extjson::RenderError,
    },
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Write(#[from] io::Error),
}

impl CatError {
    /// Whether the backup is damaged or incomplete (exit status 1).
    pub fn is_damage(&self) -> bool {
        matches!(self, CatError::Source(e) if e.is_damage())
    }
}

/// Finds `ns` (`db.collection`, or `db.system.buckets.X` for time-series `X`).
pub fn find_ns(catalog: &Catalog, path: &Path, ns: &str) -> Result<usize, CatError> {
    if let Some(i) = catalog.find_full(ns) {
        return Ok(i);
    }
    if let Some((db, rest)) = ns.split_once('.')
        && let Some(x) = rest.strip_prefix(crate::catalog::BUCKETS_PREFIX)
        && let Some(i) = catalog.find(db, x)
    {
        return Ok(i);
    }
    let mut names: Vec<String> = catalog.namespaces.iter().map(|n| n.full_name()).collect();
    if names.len() > 20 {
        let more = names.len() - 20;
        names.truncate(20);
        names.push(format!("… and {more} more"));
    }
    Err(CatError::NotFound {
        path: path.display().to_string(),
        ns: ns.to_string(),
        available: names.join(", "),
    })
}

/// Writes namespace `ns` of the backup at `path` to `out`; returns the document count.
pub fn run(path: &Path, ns: &str, format: CatFormat, out: &mut dyn Write) -> Result<u64, CatError> {
    let opened = input::open(path)?;
    let mut src: Box<dyn Source> = match opened.format {
        InputFormat::Oxd if path.as_os_str() != "-" => {
            let mut f = File::open(path).map_err(|source| SourceError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            match Index::open(&mut f) {
                Ok(idx) => {
                    let i = find_ns(&idx.catalog, path, ns)?;
                    Box::new(NsSource::new(path, &idx, i))
                }
                // No valid trailer: read it in order, as far as it is intact.
                Err(_) => super::source_from(opened)?,
            }
        }
        _ => super::source_from(opened)?,
    };
    let target = find_ns(src.catalog(), path, ns)?;
    let name = src.catalog().namespaces[target].full_name();
    if !src.catalog().namespaces[target].has_data() {
        return Err(CatError::View(name));
    }
    let mut n = 0u64;
    let mut line = String::new();
    while let Some(c) = src.next_chunk()? {
        match c {
            Chunk::Docs { ns, data, count } if ns == target => match format {
                CatFormat::Bson => {
                    out.write_all(&data)?;
                    n += count;
                }
                CatFormat::Json => {
                    for d in crate::docs::DocIter::new(&data) {
                        let d = d.map_err(|e| SourceError::Corrupt {
                            path: path.to_path_buf(),
                            message: format!("{name}: {e}"),
                        })?;
                        line.clear();
                        crate::extjson::render(d, &mut line).map_err(|source| {
                            CatError::Render {
                                ns: name.clone(),
                                index: n,
                                source,
                            }
                        })?;
                        line.push('\n');
                        out.write_all(line.as_bytes())?;
                        n += 1;
                    }
                }
            },
            // Everything is written; the damage is still news (exit status 1).
            Chunk::End {
                ns,
                status: crate::catalog::NsStatus::Unchecked(message),
            } if ns == target => {
                out.flush()?;
                return Err(CatError::Source(SourceError::Corrupt {
                    path: path.to_path_buf(),
                    message,
                }));
            }
            Chunk::End { ns, .. } if ns == target => break,
            _ => {}
        }
    }
    out.flush()?;
    Ok(n)
}
