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
    let opened = input::open(path)?;
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
