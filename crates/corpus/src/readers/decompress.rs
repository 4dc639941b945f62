//! Compression and format sniffing from the first bytes of a file.
//!
//! Compression is recognised by its magic bytes, never by the file name:
//! gzip (`1f 8b`, decoded with a multi-member decoder, so both per-record
//! `.warc.gz` and single-member files work) and zstd (`28 b5 2f fd`, all
//! frames). Anything else is read as is.
//!
//! With [`Format::Auto`] the format is then sniffed from the first
//! non-whitespace bytes of the *decompressed* stream: `WARC/` → WARC,
//! `filedesc://` → ARC, `{` → JSONL, `<` → HTML, anything else (including an
//! empty file) → text. A file read as text or HTML (sniffed or forced) whose
//! head is binary ([`binary_head`]: 1/16 or more control bytes) fails as
//! `read:binary` instead of becoming one huge garbage document.
//!
//! Decoder errors are made *sticky* (once a decoder fails, every later read
//! fails the same way, instead of the decoder reporting a clean EOF) and
//! carry a stats reason, `decompress:gzip` or `decompress:zstd`, that
//! readers get back with [`failure_reason`]. Plain read errors map to
//! `io:read`.

use std::io::{self, BufRead, BufReader, Cursor, Read};

use flate2::read::MultiGzDecoder;

use super::{Failure, Format};

/// Buffer size of the stream handed to readers.
pub const BUF_SIZE: usize = 256 << 10;

/// How many decompressed bytes are looked at to guess the format.
const HEAD_SIZE: usize = 512;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Error payload carried by the `io::Error`s of the stream returned by
/// [`sniff`]: the stats reason and the underlying message.
#[derive(Debug)]
struct StreamError {
    reason: &'static str,
    message: String,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StreamError {}

/// The stats reason of an error returned by a stream from [`sniff`]:
/// `decompress:gzip`, `decompress:zstd` or `io:read`.
pub fn failure_reason(e: &io::Error) -> &'static str {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<StreamError>())
        .map_or("io:read", |se| se.reason)
}

/// Wraps a (decoding) reader: tags its errors with a reason and makes the
/// first error permanent.
struct Sticky<R> {
    inner: R,
    reason: &'static str,
    failed: Option<(io::ErrorKind, String)>,
}

impl<R> Sticky<R> {
    fn new(inner: R, reason: &'static str) -> Self {
        Sticky {
            inner,
            reason,
            failed: None,
        }
    }

    fn error(&self, kind: io::ErrorKind, message: String) -> io::Error {
        io::Error::new(
            kind,
            StreamError {
                reason: self.reason,
                message,
            },
        )
    }
}

impl<R: Read> Read for Sticky<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, msg)) = &self.failed {
            return Err(self.error(*kind, msg.clone()));
        }
        loop {
            match self.inner.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let kind = e.kind();
                    let msg = e.to_string();
                    self.failed = Some((kind, msg.clone()));
                    return Err(self.error(kind, msg));
                }
            }
        }
    }
}

/// Reads until `buf` is full or EOF; returns the number of bytes read.
fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Detects compression and (if `forced` is [`Format::Auto`]) the format, and
/// returns a buffered stream of decompressed bytes positioned at byte 0.
///
/// Fails only when nothing at all can be read (I/O error on the first
/// bytes, or a corrupt compressed header); later errors surface from the
/// stream's reads (see [`failure_reason`]).
pub fn sniff<R: Read + Send + 'static>(
    r: R,
    forced: Format,
) -> Result<(Format, Box<dyn BufRead + Send>), Failure> {
    let mut raw = r;
    let mut magic = [0u8; 4];
    let n =
        read_full(&mut raw, &mut magic).map_err(|e| Failure::new("io:read", 0, e.to_string()))?;
    let chained = Cursor::new(magic[..n].to_vec()).chain(raw);
    let mut inner: Box<dyn Read + Send> = if n >= 2 && magic[..2] == GZIP_MAGIC {
        Box::new(Sticky::new(MultiGzDecoder::new(chained), "decompress:gzip"))
    } else if n == 4 && magic == ZSTD_MAGIC {
        match zstd::stream::read::Decoder::new(chained) {
            Ok(d) => Box::new(Sticky::new(d, "decompress:zstd")),
            Err(e) => return Err(Failure::new("decompress:zstd", 0, e.to_string())),
        }
    } else {
        Box::new(Sticky::new(chained, "io:read"))
    };

    // Peek at the decompressed head (a few reads may be needed: decoders
    // return short reads at member boundaries). An error after some bytes
    // is left for the reader to meet (the sticky wrapper repeats it).
    let mut head = vec![0u8; HEAD_SIZE];
    let mut got = 0;
    while got < HEAD_SIZE {
        match inner.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) if got > 0 => break,
            Err(e) => return Err(Failure::new(failure_reason(&e), 0, e.to_string())),
        }
    }
    head.truncate(got);
    let format = if forced == Format::Auto {
        detect_format(&head)
    } else {
        forced
    };
    if matches!(format, Format::Text | Format::Html) {
        if let Some(detail) = binary_head(&head) {
            return Err(Failure::new("read:binary", 0, detail));
        }
    }
    let stream = BufReader::with_capacity(BUF_SIZE, Cursor::new(head).chain(inner));
    Ok((format, Box::new(stream)))
}

/// A head with at least this share of control bytes is binary, not text.
const BINARY_CONTROL_SHARE: f64 = 1.0 / 16.0;

/// Why a decompressed head is binary data rather than text, if it is: at
/// least 1/16 of its bytes are control characters other than whitespace
/// (`\t \n \v \f \r`) and ESC. Random bytes have about 11%, text has
/// none. UTF-16 with a BOM is text; UTF-16 without one counts as binary.
pub fn binary_head(head: &[u8]) -> Option<String> {
    if head.is_empty() || head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return None;
    }
    let controls = head
        .iter()
        .filter(|&&b| {
            (b < 0x20 && !matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1b)) || b == 0x7f
        })
        .count();
    (controls as f64 >= BINARY_CONTROL_SHARE * head.len() as f64).then(|| {
        format!(
            "{controls} of the first {} bytes are control characters: binary data, not text \
             (an unsupported or corrupt compressed format, an image, …)",
            head.len()
        )
    })
}

/// Guesses the format of a decompressed head (see the module docs).
pub fn detect_format(head: &[u8]) -> Format {
    let mut h = head;
    if let Some(rest) = h.strip_prefix(b"\xEF\xBB\xBF") {
        h = rest;
    }
    let start = h
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(h.len());
    let h = &h[start..];
    if h.starts_with(b"WARC/") {
        Format::Warc
    } else if h.starts_with(b"filedesc://") {
        Format::Arc
    } else if h.starts_with(b"{") {
        Format::Jsonl
    } else if h.starts_with(b"<") {
        Format::Html
    } else {
        Format::Text
    }
}

/// The decompressed stream as readers use it: tracks the byte offset and
/// reads bounded lines and byte ranges without per-byte work (memchr over
/// the buffer, whole-buffer copies).
pub struct Input {
    r: Box<dyn BufRead + Send>,
    pos: u64,
    /// Bytes put back with [`Input::unread`], read before `r`.
    back: Vec<u8>,
    back_pos: usize,
}

/// What [`Input::read_line`] met.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    /// Bytes consumed from the stream (0 at EOF).
    pub consumed: u64,
    /// The line ended with `\n` (false at EOF).
    pub complete: bool,
    /// The line was longer than the limit: only its first bytes were kept,
    /// the rest was consumed and discarded.
    pub overflow: bool,
}

impl Input {
    pub fn new(r: Box<dyn BufRead + Send>) -> Self {
        Input {
            r,
            pos: 0,
            back: Vec::new(),
            back_pos: 0,
        }
    }

    /// Puts `bytes` (the last ones read) back in front of the stream: they
    /// are read again next, and the offset moves back by their length.
    pub fn unread(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut back = Vec::with_capacity(bytes.len() + self.back.len() - self.back_pos);
        back.extend_from_slice(bytes);
        back.extend_from_slice(&self.back[self.back_pos..]);
        self.back = back;
        self.back_pos = 0;
        self.pos = self.pos.saturating_sub(bytes.len() as u64);
    }

    /// Offset of the next byte in the decompressed stream.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    fn fill(&mut self) -> io::Result<&[u8]> {
        if self.back_pos < self.back.len() {
            return Ok(&self.back[self.back_pos..]);
        }
        loop {
            match self.r.fill_buf() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        self.r.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if self.back_pos < self.back.len() {
            self.back_pos += n;
            if self.back_pos >= self.back.len() {
                self.back.clear();
                self.back_pos = 0;
            }
        } else {
            self.r.consume(n);
        }
        self.pos += n as u64;
    }

    /// Reads one line, `\n` included, appending at most `limit` of its bytes
    /// to `buf`; the rest of a longer line is consumed and dropped.
    pub fn read_line(&mut self, buf: &mut Vec<u8>, limit: usize) -> io::Result<Line> {
        let mut line = Line {
            consumed: 0,
            complete: false,
            overflow: false,
        };
        let mut kept = 0usize;
        loop {
            let avail = self.fill()?;
            if avail.is_empty() {
                return Ok(line);
            }
            let (take, done) = match memchr::memchr(b'\n', avail) {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            let keep = take.min(limit - kept);
            buf.extend_from_slice(&avail[..keep]);
            kept += keep;
            line.overflow |= keep < take;
            self.consume(take);
            line.consumed += take as u64;
            if done {
                line.complete = true;
                return Ok(line);
            }
        }
    }

    /// Skips up to `n` bytes; returns how many were skipped (fewer at EOF).
    pub fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut left = n;
        while left > 0 {
            let avail = self.fill()?.len();
            if avail == 0 {
                break;
            }
            let k = avail.min(usize::try_from(left).unwrap_or(usize::MAX));
            self.consume(k);
            left -= k as u64;
        }
        Ok(n - left)
    }

    /// Appends up to `n` bytes to `buf`; returns how many (fewer at EOF).
    pub fn read_into(&mut self, buf: &mut Vec<u8>, n: u64) -> io::Result<u64> {
        let mut left = n;
        while left > 0 {
            let avail = self.fill()?;
            if avail.is_empty() {
                break;
            }
            let k = avail.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            buf.extend_from_slice(&avail[..k]);
            self.consume(k);
            left -= k as u64;
        }
        Ok(n - left)
    }
}

/// A failure for a read error of the stream (`decompress:*` or `io:read`).
pub fn read_failure(e: &io::Error, offset: u64) -> Failure {
    Failure::new(failure_reason(e), offset, truncate_detail(&e.to_string()))
}

/// Truncates a detail string to about 200 characters.
pub fn truncate_detail(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A printable, truncated rendering of raw bytes for failure details.
pub fn show_bytes(b: &[u8]) -> String {
    let b = &b[..b.len().min(200)];
    let s = String::from_utf8_lossy(b);
    let s: String = s
        .trim_end_matches(['\r', '\n'])
        .chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    truncate_detail(&s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(mut r: Box<dyn BufRead + Send>) -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        r.read_to_end(&mut v)?;
        Ok(v)
    }

    #[test]
    fn detects_formats_from_content() {
        assert_eq!(detect_format(b"WARC/1.0\r\n"), Format::Warc);
        assert_eq!(
            detect_format(b"filedesc://x.arc 0.0.0.0 2014 text/plain 1\n"),
            Format::Arc
        );
        assert_eq!(detect_format(b"\n  {\"text\": 1}"), Format::Jsonl);
        assert_eq!(detect_format(b"\xEF\xBB\xBF<!DOCTYPE html>"), Format::Html);
        assert_eq!(detect_format(b"<html>"), Format::Html);
        assert_eq!(detect_format(b"hello"), Format::Text);
        assert_eq!(detect_format(b""), Format::Text);
    }

    #[test]
    fn multi_member_gzip_is_read_to_the_end() {
        let mut data = gzip(b"WARC/1.0\r\nfirst member\r\n");
        data.extend(gzip(b"second member\r\n"));
        data.extend(gzip(b"third"));
        let (fmt, s) = sniff(Cursor::new(data), Format::Auto).unwrap();
        assert_eq!(fmt, Format::Warc);
        assert_eq!(
            read_all(s).unwrap(),
            b"WARC/1.0\r\nfirst member\r\nsecond member\r\nthird"
        );
    }

    #[test]
    fn zstd_is_detected_by_magic_not_name() {
        // The caller may name it `.gz` or `.txt`: only the bytes matter.
        let data = zstd::encode_all(&b"{\"text\": \"hi\"}\n"[..], 3).unwrap();
        let (fmt, s) = sniff(Cursor::new(data), Format::Auto).unwrap();
        assert_eq!(fmt, Format::Jsonl);
        assert_eq!(read_all(s).unwrap(), b"{\"text\": \"hi\"}\n");
        // Two concatenated frames are one stream.
        let mut two = zstd::encode_all(&b"a\n"[..], 1).unwrap();
        two.extend(zstd::encode_all(&b"b\n"[..], 1).unwrap());
        let (fmt, s) = sniff(Cursor::new(two), Format::Auto).unwrap();
        assert_eq!(fmt, Format::Text);
        assert_eq!(read_all(s).unwrap(), b"a\nb\n");
    }

    #[test]
    fn forced_format_wins_and_plain_files_pass_through() {
        let (fmt, s) = sniff(Cursor::new(b"<p>hi</p>".to_vec()), Format::Text).unwrap();
        assert_eq!(fmt, Format::Text);
        assert_eq!(read_all(s).unwrap(), b"<p>hi</p>");
        let (fmt, s) = sniff(Cursor::new(Vec::new()), Format::Auto).unwrap();
        assert_eq!(fmt, Format::Text);
        assert!(read_all(s).unwrap().is_empty());
        // A one-byte file that happens to start like gzip magic is plain
        // (and, being a control byte, not text).
        let (_, s) = sniff(Cursor::new(vec![0x1f]), Format::Warc).unwrap();
        assert_eq!(read_all(s).unwrap(), vec![0x1f]);
        match sniff(Cursor::new(vec![0x1f]), Format::Auto) {
            Err(f) => assert_eq!(f.reason, "read:binary"),
            Ok(_) => panic!("expected read:binary"),
        }
    }

    #[test]
    fn gzip_errors_are_tagged_and_sticky() {
        let mut data = gzip(&vec![b'x'; 100_000]);
        data.extend(gzip(b"tail"));
        // Truncate inside the second member.
        let cut = data.len() - 6;
        data.truncate(cut);
        let (_, mut s) = sniff(Cursor::new(data), Format::Auto).unwrap();
        let mut v = Vec::new();
        let e = s.read_to_end(&mut v).unwrap_err();
        assert_eq!(failure_reason(&e), "decompress:gzip");
        assert!(v.len() >= 100_000);
        // Still failing, not a clean EOF.
        let mut more = [0u8; 16];
        assert!(s.read(&mut more).is_err());
    }

    #[test]
    fn corrupt_gzip_header_fails_the_file() {
        let data = vec![0x1f, 0x8b, 0x99, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        match sniff(Cursor::new(data), Format::Auto) {
            Err(f) => assert_eq!(f.reason, "decompress:gzip"),
            Ok(_) => panic!("expected a failure"),
        }
    }

    #[test]
    fn binary_heads_are_refused_and_text_is_not() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        match sniff(Cursor::new(random.clone()), Format::Auto) {
            Err(f) => assert_eq!((f.reason.as_ref(), f.offset), ("read:binary", 0)),
            Ok((fmt, _)) => panic!("random bytes read as {fmt:?}"),
        }
        // Forcing text does not make it text.
        assert!(sniff(Cursor::new(random), Format::Text).is_err());
        for text in [
            &b"plain text\twith tabs\r\nand \x1b[1mANSI\x1b[0m and a form feed\x0c"[..],
            "caf\u{e9} na\u{ef}ve \u{4e2d}\u{6587}".as_bytes(),
            b"\xFF\xFEh\x00i\x00",
            b"",
        ] {
            assert_eq!(binary_head(text), None, "{text:?}");
        }
    }

    #[test]
    fn corrupt_zstd_fails() {
        let mut data = ZSTD_MAGIC.to_vec();
        data.extend([0xff; 32]);
        match sniff(Cursor::new(data), Format::Auto) {
            Err(f) => assert_eq!(f.reason, "decompress:zstd"),
            Ok(_) => panic!("expected a failure"),
        }
    }
}
