//! A capture file read record by record: the buffer holds the record being parsed plus
//! one read of look-ahead, never the file (issue 21, finding 9: a 1 GB capture used to
//! take 3.8 GB). The container layer frames each record from its length field and hands
//! the whole record to pcap-parser, so parsing stays the same slice-based code.

use std::io::Read;

use anyhow::{anyhow, bail, Context};

/// Bytes asked of the reader at a time.
const CHUNK: usize = 1 << 20;
/// The largest record accepted. tcpdump's largest snap length is 256 KiB; pcapng blocks
/// without packets (name resolution, secrets) stay far below this too. A larger length
/// field is a corrupt file, and must not make the reader allocate it.
pub const MAX_RECORD: usize = 16 << 20;

pub struct Stream<R> {
    reader: R,
    /// The unconsumed bytes are `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// File offset of `buf[start]`, for error messages.
    offset: u64,
    eof: bool,
}

impl<R: Read> Stream<R> {
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::new(),
            start: 0,
            offset: 0,
            eof: false,
        }
    }

    /// File offset of the next unconsumed byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads until `n` bytes are available (fewer only at the end of the file), and
    /// returns the available bytes, at most `n`.
    pub fn peek(&mut self, n: usize) -> anyhow::Result<&[u8]> {
        if n > MAX_RECORD {
            bail!(
                "record at byte {} claims {n} bytes, more than the {MAX_RECORD} any capture \
                 record has",
                self.offset
            );
        }
        while self.buf.len() - self.start < n && !self.eof {
            // Consumed bytes go first; what moves is less than one record.
            self.buf.drain(..self.start);
            self.start = 0;
            let want = (n - self.buf.len()).max(CHUNK) as u64;
            let got = (&mut self.reader)
                .take(want)
                .read_to_end(&mut self.buf)
                .context("reading the capture")?;
            self.eof = got == 0;
        }
        let until = self.buf.len().min(self.start + n);
        Ok(self.buf.get(self.start..until).unwrap_or_default())
    }

    /// Exactly `n` bytes, or the error that the file ends inside a record.
    pub fn record(&mut self, n: usize) -> anyhow::Result<&[u8]> {
        let at = self.offset;
        let got = self.peek(n)?;
        if got.len() < n {
            return Err(anyhow!(
                "truncated at byte {at} (the file ends inside a record)"
            ));
        }
        Ok(got)
    }

    /// Whether the file has no bytes left.
    pub fn at_end(&mut self) -> anyhow::Result<bool> {
        Ok(self.peek(1)?.is_empty())
    }

    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len() - self.start);
        self.start += n;
        self.offset += n as u64;
    }

    /// The memory the buffer holds (tests: it must not follow the file's size).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}
