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
    let mut head = peek(&mut r, 8).map_err(io_err(path))?;
    let format = match detect(&head) {
        Some(InputFormat::MongodumpArchive { gzip: true }) => {
            // Gzip says nothing about what it holds: look at the first decompressed
            // bytes. Gzipped bytes that are not a mongodump archive are not a backup.
            head.extend(peek(&mut r, GZIP_PEEK - head.len()).map_err(io_err(path))?);
            if gzip_holds_other_than_archive(&head) {
                return Err(SourceError::Unrecognized(path.to_path_buf()));
            }
            InputFormat::MongodumpArchive { gzip: true }
        }
        Some(f) => f,
        None => return Err(SourceError::Unrecognized(path.to_path_buf())),
    };
    let stream: Box<dyn Read + Send> = Box::new(io::Cursor::new(head).chain(r));
    Ok(Opened {
        format,
        path: path.to_path_buf(),
        stream: Some(Box::new(BufReader::with_capacity(1 << 20, stream))),
        size,
    })
}

/// Compressed bytes looked at to tell what a gzip stream holds.
const GZIP_PEEK: usize = 64 * 1024;

/// The format the first bytes announce. An OXD magic with one or two bytes damaged,
/// or a file cut inside the magic, is an OXD archive (a damaged one: readers report
/// the damage) rather than something else: random data matches six of its eight
/// bytes with a chance of about 1 in 10^12.
fn detect(head: &[u8]) -> Option<InputFormat> {
    let magic = crate::oxd::header::MAGIC;
    if head.len() >= 8 {
        let same = head[..8]
            .iter()
            .zip(magic)
            .filter(|(a, b)| **a == *b)
            .count();
        if same == 8 || (same >= 6 && head[..4] != ARCHIVE_MAGIC && head[..2] != GZIP_MAGIC) {
            return Some(InputFormat::Oxd);
        }
    } else if !head.is_empty() && head[..] == magic[..head.len()] {
        return Some(InputFormat::Oxd);
    }
    if head.len() >= 4 && head[..4] == ARCHIVE_MAGIC {
        Some(InputFormat::MongodumpArchive { gzip: false })
    } else if head.len() >= 2 && head[..2] == GZIP_MAGIC {
        Some(InputFormat::MongodumpArchive { gzip: true })
    } else {
        None
    }
}

/// Whether the gzip stream starting `compressed` decompresses cleanly to something
/// that does not start with the mongodump archive magic. A stream that is damaged, or
/// too short to tell, counts as an archive: its readers report what is wrong.
fn gzip_holds_other_than_archive(compressed: &[u8]) -> bool {
    let mut d = flate2::read::MultiGzDecoder::new(compressed);
    let mut first = Vec::with_capacity(4);
    match (&mut d).take(4).read_to_end(&mut first) {
        Ok(_) if first.len() == 4 => first[..] != ARCHIVE_MAGIC,
        // Ended cleanly before 4 bytes: an empty or tiny gzip file is not an archive.
        Ok(_) => compressed.len() < GZIP_PEEK,
        Err(_) => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_damaged_or_cut_oxd_magic_is_still_oxd() {
        let magic = crate::oxd::header::MAGIC;
        assert_eq!(detect(&magic), Some(InputFormat::Oxd));
        for i in 0..8 {
            let mut m = magic;
            m[i] ^= 0x40;
            assert_eq!(detect(&m), Some(InputFormat::Oxd), "byte {i} flipped");
        }
        for n in 1..8 {
            assert_eq!(detect(&magic[..n]), Some(InputFormat::Oxd), "cut at {n}");
        }
        assert_eq!(detect(b"\x00\x01\x02\x03\x04\x05\x06\x07"), None);
        assert_eq!(detect(b"hello world"), None);
    }

    #[test]
    fn gzipped_bytes_are_an_archive_only_when_they_hold_one() {
        let mut archive = ARCHIVE_MAGIC.to_vec();
        archive.extend([0u8; 100]);
        assert!(!gzip_holds_other_than_archive(&gz(&archive)));
        assert!(gzip_holds_other_than_archive(&gz(
            b"random bytes, not an archive"
        )));
        assert!(gzip_holds_other_than_archive(&gz(b"")));
        // A damaged gzip stream of ours is damaged, not foreign.
        let mut bad = gz(&archive);
        bad[12] ^= 0xFF;
        bad.truncate(14);
        assert!(!gzip_holds_other_than_archive(&bad));
    }
}
