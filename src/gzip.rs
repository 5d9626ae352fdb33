//! Gzip on every core: the stream is cut into blocks, each compressed as its own
//! gzip member on the rayon pool, and the members are written in order.
//!
//! A sequence of gzip members is a valid gzip file (RFC 1952 §2.2): `gzip -d`, Go's
//! `compress/gzip` reader that mongorestore uses, and every other multi-member reader
//! decompress it to the concatenation of the blocks. Cutting at 1 MiB costs a few
//! hundred bytes per block in ratio (the 32 KiB window restarts), and lets a dump
//! compress as fast as the cores allow instead of one core's speed.

use std::io::{self, Write};

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::pool::{self, Ordered};

/// Bytes per gzip member.
pub const BLOCK: usize = 1 << 20;

/// A writer that gzips into `W` with one member per block, compressed in parallel.
pub struct ParallelGzip<W: Write> {
    inner: W,
    buf: Vec<u8>,
    level: Compression,
    pending: Ordered<io::Result<Vec<u8>>>,
    members: u64,
}

impl<W: Write> ParallelGzip<W> {
    /// Compresses into `inner` at gzip's default level (6), as mongodump does.
    pub fn new(inner: W) -> ParallelGzip<W> {
        ParallelGzip {
            inner,
            buf: Vec::with_capacity(BLOCK),
            level: Compression::default(),
            pending: Ordered::new(pool::default_capacity()),
            members: 0,
        }
    }

    fn submit(&mut self) -> io::Result<()> {
        let block = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
        let level = self.level;
        while self.pending.is_full() {
            self.write_one()?;
        }
        self.pending.push(move || {
            let mut e = GzEncoder::new(Vec::with_capacity(block.len() / 3 + 64), level);
            e.write_all(&block)?;
            e.finish()
        });
        self.members += 1;
        Ok(())
    }

    fn write_one(&mut self) -> io::Result<()> {
        if let Some(m) = self.pending.pop() {
            self.inner.write_all(&m?)?;
        }
        Ok(())
    }

    /// Compresses what is buffered, writes every member and returns the inner writer.
    /// An empty stream still gets one (empty) member, so the output is valid gzip.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || self.members == 0 {
            self.submit()?;
        }
        while !self.pending.is_empty() {
            self.write_one()?;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for ParallelGzip<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = BLOCK - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == BLOCK {
            self.submit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Members are written as they complete; a partial block stays buffered until
        // it fills or the stream is finished, so flushing does not cut members short.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn members_decompress_to_the_input() {
        let data: Vec<u8> = (0..(3 * BLOCK + 12345))
            .map(|i| (i % 251) as u8 ^ (i / 7000) as u8)
            .collect();
        let mut g = ParallelGzip::new(Vec::new());
        for chunk in data.chunks(77_777) {
            g.write_all(chunk).unwrap();
        }
        let out = g.finish().unwrap();
        assert_eq!(gunzip(&out), data);
        // Four members: three full blocks and the rest.
        let members = out.windows(3).filter(|w| w == &[0x1f, 0x8b, 0x08]).count();
        assert!(members >= 4);
    }

    #[test]
    fn empty_stream_is_valid_gzip() {
        let out = ParallelGzip::new(Vec::new()).finish().unwrap();
        assert!(out.starts_with(&[0x1f, 0x8b]));
        assert!(gunzip(&out).is_empty());
    }
}
