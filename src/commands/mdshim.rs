//! Temporary bridge to the mongodump formats while they are being wired in.
#![allow(missing_docs, dead_code)]

pub mod archive {
    use crate::output::OutFile;
    use crate::sink::{Sink, SinkError};
    use crate::source::{Source, SourceError};
    use crate::verify::{Report, VerifyOptions};
    use std::io::Read;
    use std::path::{Path, PathBuf};

    pub fn gunzip(r: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
        r
    }
    pub struct ArchiveSource;
    impl ArchiveSource {
        pub fn new(
            _r: Box<dyn Read + Send>,
            path: PathBuf,
        ) -> Result<Box<dyn Source>, SourceError> {
            Err(SourceError::Unrecognized(path))
        }
    }
    pub fn verify(
        _r: Box<dyn Read + Send>,
        _p: &Path,
        _o: &VerifyOptions,
        _rep: &mut Report,
        _t: &mut dyn FnMut(u64),
    ) {
    }
    pub struct ArchiveSink;
    impl ArchiveSink {
        pub fn new(_o: OutFile, _gzip: bool) -> Box<dyn Sink> {
            unimplemented!()
        }
    }
    pub fn _unused() -> Result<(), SinkError> {
        Ok(())
    }
}

pub mod dir {
    use crate::sink::{Sink, SinkError};
    use crate::source::{Source, SourceError};
    use crate::verify::{Report, VerifyOptions};
    use std::path::Path;

    pub struct DirSource;
    impl DirSource {
        pub fn open(p: &Path) -> Result<Box<dyn Source>, SourceError> {
            Err(SourceError::Unrecognized(p.to_path_buf()))
        }
    }
    pub fn verify(_p: &Path, _o: &VerifyOptions, _rep: &mut Report, _t: &mut dyn FnMut(u64)) {}
    pub struct DirSink;
    impl DirSink {
        pub fn create(_p: &Path, _gzip: bool) -> Result<Box<dyn Sink>, SinkError> {
            unimplemented!()
        }
    }
}
