//! The offline commands: `verify`, `ls`, `cat`, `convert`. Each takes a plain
//! options struct and returns a result the binary prints; none of them knows clap.

pub mod cat;
pub mod convert;
pub mod ls;
pub mod verify;

use std::path::Path;

use crate::input::{self, InputFormat};
use crate::oxd::reader::OxdSource;
use crate::source::{Source, SourceError};

/// Opens any backup as a [`Source`] read in order.
pub fn open_source(path: &Path) -> Result<Box<dyn Source>, SourceError> {
    source_from(input::open(path)?)
}

/// A [`Source`] over an input already opened (and its format detected): standard
/// input can be opened only once.
pub fn source_from(opened: input::Opened) -> Result<Box<dyn Source>, SourceError> {
    match opened.format {
        InputFormat::Oxd => Ok(Box::new(OxdSource::new(
            opened.stream.expect("stream formats have a stream"),
            opened.path,
        )?)),
        InputFormat::MongodumpArchive { gzip } => {
            let stream = opened.stream.expect("stream formats have a stream");
            let stream: Box<dyn std::io::Read + Send> = if gzip {
                Box::new(crate::mongodump::gunzip(stream))
            } else {
                stream
            };
            Ok(Box::new(crate::mongodump::archive::ArchiveReader::new(
                stream,
                opened.path,
            )?))
        }
        InputFormat::MongodumpDir => Ok(Box::new(crate::mongodump::dir::DirReader::open(
            &opened.path,
        )?)),
    }
}
