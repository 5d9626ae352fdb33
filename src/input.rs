//! Opening any backup for reading: the format is detected from the bytes (magic
//! numbers, gzip header) or the directory layout, never from the file name.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::source::SourceError;

/// The formats oxidump reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// An OXD archive.
    Oxd,
    /// A mongodump `--archive` stream, whole-stream gzipped when `gzip`.
    MongodumpArchive {
        /// Whether the stream is gzipped.
        gzip: bool,
    },
    /// A mongodump directory (plain or with gzipped files).
    MongodumpDir,
}

impl InputFormat {
    /// Name used in reports: `oxd`, `mongodump-archive`, `mongodump-archive+gzip`, `mongodump-dir`.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Oxd => "oxd",
            InputFormat::MongodumpArchive { gzip: false } => "mongodump-archive",
            InputFormat::MongodumpArchive { gzip: true } => "mongodump-archive+gzip",
            InputFormat::MongodumpDir => "mongodump-dir",
        }
    }
}

/// mongodump archive magic (`0x8199E26D` little-endian).
pub const ARCHIVE_MAGIC: [u8; 4] = [0x6D, 0xE2, 0x99, 0x81];
const GZIP_MAGIC: [u8; 2] = [0x1F, 0x8B];

/// An input stream whose first bytes have been looked at.
pub struct Opened {
    /// The detected format.
    pub format: InputFormat,
    /// The path as given (`-` for standard input).
    pub path: PathBuf,
    /// The byte stream, positioned at the start (for stream formats; `None` for directories).
    pub stream: Option<Box<dyn Read + Send>>,
    /// The total size in bytes when known (files), for progress.
    pub size: Option<u64>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads up to `n` bytes, fewer only at end of stream.
fn peek(r: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Detects the format of `path` (`-` is standard input) and opens it.
pub fn open(path: &Path) -> Result<Opened, SourceError> {
    if path.as_os_str() != "-" {
        let meta = std::fs::metadata(path).map_err(io_err(path))?;
        if meta.is_dir() {
            return Ok(Opened {
                format: InputFormat::MongodumpDir,
                path: path.to_path_buf(),
                stream: None,
                size: None,
            });
        }
    }
    let (mut r, size): (Box<dyn Read + Send>, Option<u64>) = if path.as_os_str() == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let f = File::open(path).map_err(io_err(path))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let head = peek(&mut r, 8).map_err(io_err(path))?;
    let format = if head.len() >= 8 && head[..8] == crate::oxd::header::MAGIC {
        InputFormat::Oxd
    } else if head.len() >= 4 && head[..4] == ARCHIVE_MAGIC {
        InputFormat::MongodumpArchive { gzip: false }
    } else if head.len() >= 2 && head[..2] == GZIP_MAGIC {
        InputFormat::MongodumpArchive { gzip: true }
    } else {
        return Err(SourceError::Unrecognized(path.to_path_buf()));
    };
    let stream: Box<dyn Read + Send> = Box::new(io::Cursor::new(head).chain(r));
    Ok(Opened {
        format,
        path: path.to_path_buf(),
        stream: Some(Box::new(BufReader::with_capacity(1 << 20, stream))),
        size,
    })
}

/// A reader that reports the bytes it reads to a progress bar.
pub struct Counting<R> {
    inner: R,
    bar: indicatif::ProgressBar,
}

impl<R> Counting<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, bar: indicatif::ProgressBar) -> Self {
        Counting { inner, bar }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}
