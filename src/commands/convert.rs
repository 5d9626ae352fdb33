//! `oxidump convert`: any backup format to any other, every document byte for byte
//! and all metadata carried over.

use std::path::Path;

use crate::catalog::Summary;
use crate::output::OutFile;
use crate::oxd::writer::{OxdSink, WriterOptions};
use crate::progress::Progress;
use crate::sink::{Sink, SinkError};
use crate::source::{Chunk, SourceError};

/// The formats oxidump writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// An OXD archive.
    Oxd,
    /// A mongodump directory.
    MongodumpDir,
    /// A mongodump `--archive` stream.
    MongodumpArchive,
}

/// How to convert.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Output format.
    pub to: OutputFormat,
    /// Gzip the mongodump output (each file, or the whole archive stream).
    pub gzip: bool,
    /// OXD: how frames are stored.
    pub oxd: WriterOptions,
    /// Replace an existing output file; merge into an existing mongodump directory
    /// (the files written replace those of the same name, others are left alone).
    pub overwrite: bool,
}

/// Error of `convert`.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// Reading failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Writing failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The options do not fit together.
    #[error("{0}")]
    Usage(String),
}

impl ConvertError {
    /// Whether the input backup is damaged or incomplete (exit status 1).
    pub fn is_damage(&self) -> bool {
        matches!(self, ConvertError::Source(e) if e.is_damage())
    }
}

/// What was converted.
#[derive(Debug, Clone, Default)]
pub struct ConvertStats {
    /// Namespaces.
    pub namespaces: u64,
    /// Documents.
    pub documents: u64,
    /// Raw BSON bytes.
    pub bytes: u64,
}

/// Creates a sink writing `format` to `out`.
pub fn create_sink(out: &Path, opts: &ConvertOptions) -> Result<Box<dyn Sink>, ConvertError> {
    Ok(match opts.to {
        OutputFormat::Oxd => {
            if opts.gzip {
                return Err(ConvertError::Usage(
                    "--gzip applies to mongodump formats; OXD is compressed with zstd (see --zstd-level)".into(),
                ));
            }
            Box::new(OxdSink::new(
                OutFile::create(out, opts.overwrite).map_err(SinkError::from)?,
                opts.oxd,
            ))
        }
        OutputFormat::MongodumpArchive => Box::new(crate::mongodump::archive::ArchiveWriter::new(
            OutFile::create(out, opts.overwrite).map_err(SinkError::from)?,
            opts.gzip,
        )),
        OutputFormat::MongodumpDir => {
            if out.as_os_str() == "-" {
                return Err(ConvertError::Usage(
                    "a mongodump directory cannot be written to standard output".into(),
                ));
            }
            Box::new(crate::mongodump::dir::DirWriter::create(
                out,
                crate::mongodump::dir::DirWriterOptions {
                    gzip: opts.gzip,
                    prelude: crate::mongodump::dir::PreludeAt::Root,
                    merge: opts.overwrite,
                },
            )?)
        }
    })
}

/// Converts the backup at `input` to `output`.
pub fn run(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
    progress: &Progress,
) -> Result<ConvertStats, ConvertError> {
    if input != Path::new("-") && input == output {
        return Err(ConvertError::Usage(
            "input and output are the same path".into(),
        ));
    }
    // A partial output of an interrupted run converted would look complete.
    if crate::output::is_partial_output(input) {
        return Err(ConvertError::Source(SourceError::Corrupt {
            path: input.to_path_buf(),
            message: crate::output::PARTIAL_OUTPUT.into(),
        }));
    }
    let mut src = super::open_source(input)?;
    let mut sink = create_sink(output, opts)?;
    let catalog = src.catalog().clone();
    sink.begin(&catalog)?;
    let bar = progress.bytes(None, format!("convert {}", input.display()));
    let mut stats = ConvertStats {
        namespaces: catalog.namespaces.len() as u64,
        ..ConvertStats::default()
    };
    while let Some(c) = src.next_chunk()? {
        match c {
            Chunk::Docs { ns, data, count } => {
                stats.documents += count;
                stats.bytes += data.len() as u64;
                bar.inc(data.len() as u64);
                sink.write_docs(ns, data, count)?;
            }
            // A damaged end record: the output would hide that the input is damaged.
            Chunk::End {
                status: crate::catalog::NsStatus::Unchecked(message),
                ..
            } => {
                return Err(ConvertError::Source(SourceError::Corrupt {
                    path: input.to_path_buf(),
                    message,
                }));
            }
            Chunk::End { ns, status } => sink.end_namespace(ns, &status)?,
        }
    }
    let summary = src.summary().cloned().unwrap_or_else(|| Summary {
        completed_at: Some(bson::DateTime::now()),
        ..Summary::default()
    });
    sink.finish(&summary)?;
    bar.finish_and_clear();
    Ok(stats)
}
