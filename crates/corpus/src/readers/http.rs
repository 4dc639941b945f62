//! HTTP response heads, chunked transfer coding and content encodings, as
//! found in WARC `response` records and ARC records.
//!
//! Parsing is lenient, like warcio's: bare `\n` line ends, folded
//! (continuation) header lines, junk lines without a colon (skipped) and a
//! head that runs to the end of the block (empty body) are all accepted. Only
//! a block that does not start with an `HTTP/` status line is an error
//! (`http:bad_header`, decided by the caller).
//!
//! * `Transfer-Encoding: chunked` is decoded by [`dechunk`]; if the framing is
//!   invalid from the first chunk, the raw body is used, and if it breaks
//!   later, the rest is appended raw (warcio's behaviour).
//! * `Content-Encoding` `gzip`/`x-gzip`, `deflate` (zlib or raw) and `zstd` are
//!   decoded by [`decode_content`], bounded by the record size limit. A body
//!   that plainly is not encoded (no gzip/zstd magic; text where deflate was
//!   announced) is passed through: some crawlers (ClueWeb09) stored decoded
//!   bodies with the original header. Anything else (`br`, `compress`, …) is
//!   [`BodyError::Unsupported`] → `http:content_encoding`.

use std::borrow::Cow;
use std::io::Read;

use flate2::read::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
use memchr::memchr;

/// A parsed HTTP response head; header values borrow from the block unless
/// they were folded over several lines.
#[derive(Debug)]
pub struct ResponseHead<'a> {
    /// The status code, if the status line has one.
    pub status: Option<u16>,
    /// `(name, value)` pairs, trimmed, in order.
    pub headers: Vec<(&'a [u8], Cow<'a, [u8]>)>,
    /// Offset of the body in the block.
    pub body_start: usize,
}

impl<'a> ResponseHead<'a> {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_ref())
    }

    /// True if `Transfer-Encoding` lists `chunked`.
    pub fn is_chunked(&self) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"transfer-encoding"))
            .any(|(_, v)| {
                v.split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"))
            })
    }
}

/// True if the block starts (after optional blank lines) with `HTTP/`.
pub fn is_http_response(block: &[u8]) -> bool {
    let start = skip_leading_newlines(block);
    block.len() >= start + 5 && block[start..start + 5].eq_ignore_ascii_case(b"HTTP/")
}

fn skip_leading_newlines(block: &[u8]) -> usize {
    block
        .iter()
        .take(64)
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(0)
}

/// Parses the status line and headers of an HTTP response. `Err` holds the
/// offending first line (for the failure detail).
pub fn parse_response(block: &[u8]) -> Result<ResponseHead<'_>, String> {
    let start = skip_leading_newlines(block);
    if !is_http_response(block) {
        let end = memchr(b'\n', &block[start..]).map_or(block.len(), |p| start + p);
        return Err(String::from_utf8_lossy(&block[start..end.min(start + 200)])
            .trim_end()
            .to_string());
    }
    let (status_line, mut pos) = next_line(block, start);
    let status = parse_status(status_line);
    let mut headers: Vec<(&[u8], Cow<[u8]>)> = Vec::with_capacity(16);
    let mut body_start = block.len();
    while pos < block.len() {
        let (line, next) = next_line(block, pos);
        pos = next;
        if line.trim_ascii().is_empty() {
            body_start = pos;
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // Folded continuation of the previous value.
            if let Some((_, value)) = headers.last_mut() {
                let cont = line.trim_ascii();
                let mut v = std::mem::take(value).into_owned();
                if !v.is_empty() {
                    v.push(b' ');
                }
                v.extend_from_slice(cont);
                *value = Cow::Owned(v);
            }
            continue;
        }
        // Lines without a colon are junk and ignored.
        if let Some(colon) = memchr(b':', line) {
            let name = line[..colon].trim_ascii();
            if !name.is_empty() {
                headers.push((name, Cow::Borrowed(line[colon + 1..].trim_ascii())));
            }
        }
    }
    Ok(ResponseHead {
        status,
        headers,
        body_start,
    })
}

/// The line at `pos` without its `\r\n`/`\n`, and the position after it.
fn next_line(block: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = &block[pos..];
    match memchr(b'\n', rest) {
        Some(i) => {
            let line = &rest[..i];
            (line.strip_suffix(b"\r").unwrap_or(line), pos + i + 1)
        }
        None => (rest.strip_suffix(b"\r").unwrap_or(rest), block.len()),
    }
}

fn parse_status(line: &[u8]) -> Option<u16> {
    let sp = memchr(b' ', line)?;
    let rest = line[sp..].trim_ascii_start();
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits != 3 {
        return None;
    }
    std::str::from_utf8(&rest[..3]).ok()?.parse().ok()
}

/// True if `block` holds a complete HTTP response by its own framing: a
/// head, a `Content-Length`, no chunked coding, and at least that many body
/// bytes. Used to accept a last record whose declared WARC/ARC length is
/// stale (longer than the data) although nothing is missing.
pub fn is_complete_message(block: &[u8]) -> bool {
    let Ok(head) = parse_response(block) else {
        return false;
    };
    if head.body_start >= block.len() && !block.ends_with(b"\n\n") && !block.ends_with(b"\r\n\r\n")
    {
        return false;
    }
    let Some(len) = head.get("Content-Length") else {
        return false;
    };
    let Ok(len) = std::str::from_utf8(len.trim_ascii())
        .unwrap_or("x")
        .parse::<usize>()
    else {
        return false;
    };
    !head.is_chunked() && block.len() - head.body_start >= len
}

/// Lowercase media type of a `Content-Type` value, without parameters
/// (`Text/HTML; charset=x` → `text/html`). `None` if empty.
pub fn media_type(content_type: &[u8]) -> Option<String> {
    let end = content_type
        .iter()
        .position(|&b| b == b';' || b == b',')
        .unwrap_or(content_type.len());
    let mt = content_type[..end].trim_ascii();
    if mt.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(mt).to_ascii_lowercase())
    }
}

/// True for the media types read as HTML.
pub fn is_html_media(media: &str) -> bool {
    media == "text/html" || media == "application/xhtml+xml"
}

/// True if the first KiB of a body looks like an HTML document
/// (`<html` or `<!doctype html`, any case).
pub fn sniff_html(body: &[u8]) -> bool {
    let head = &body[..body.len().min(1024)];
    memchr::memchr_iter(b'<', head).any(|i| {
        let rest = &head[i + 1..];
        (rest.len() >= 4 && rest[..4].eq_ignore_ascii_case(b"html"))
            || (rest.len() >= 13 && rest[..13].eq_ignore_ascii_case(b"!doctype html"))
    })
}

/// Decodes a chunked body. `None` if it does not start with a valid chunk
/// size line (the caller then keeps the raw body). A framing error after the
/// first chunk appends the remaining bytes raw; a truncated chunk keeps what
/// is there; trailers are ignored.
pub fn dechunk(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0usize;
    let mut chunks = 0usize;
    while i < body.len() {
        let Some(nl) = memchr(b'\n', &body[i..]) else {
            if chunks == 0 {
                return None;
            }
            out.extend_from_slice(&body[i..]);
            break;
        };
        let line = &body[i..i + nl];
        let size_field = line
            .split(|&b| b == b';')
            .next()
            .unwrap_or(line)
            .trim_ascii();
        let size = match parse_hex(size_field) {
            Some(s) => s,
            None => {
                if chunks == 0 {
                    return None;
                }
                out.extend_from_slice(&body[i..]);
                break;
            }
        };
        i += nl + 1;
        if size == 0 {
            break;
        }
        let end = i.saturating_add(size).min(body.len());
        out.extend_from_slice(&body[i..end]);
        chunks += 1;
        i = end;
        if body[i..].starts_with(b"\r\n") {
            i += 2;
        } else if body[i..].starts_with(b"\n") {
            i += 1;
        }
    }
    Some(out)
}

fn parse_hex(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    let mut v = 0usize;
    for &b in s {
        let d = (b as char).to_digit(16)? as usize;
        v = v * 16 + d;
    }
    Some(v)
}

/// Why a body could not be content-decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// An encoding we cannot decode (`br`, `compress`, …).
    Unsupported(String),
    /// Encoded data that does not decode.
    Corrupt(String),
    /// Decodes to more than the record size limit.
    TooLarge,
}

/// Undoes the `Content-Encoding` list (applied in reverse order), bounded by
/// `max` decoded bytes. See the module docs for the pass-through rules.
pub fn decode_content(mut body: Vec<u8>, encodings: &[u8], max: u64) -> Result<Vec<u8>, BodyError> {
    let list: Vec<&[u8]> = encodings
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|e| {
            !e.is_empty()
                && !e.eq_ignore_ascii_case(b"identity")
                && !e.eq_ignore_ascii_case(b"none")
        })
        .collect();
    for enc in list.into_iter().rev() {
        let lower = enc.to_ascii_lowercase();
        body = match lower.as_slice() {
            b"gzip" | b"x-gzip" => {
                if !body.starts_with(&[0x1f, 0x8b]) {
                    continue;
                }
                bounded(MultiGzDecoder::new(body.as_slice()), max, "gzip")?
            }
            b"deflate" => {
                let zlib_header = body.len() >= 2
                    && (body[0] & 0x0f) == 8
                    && (u16::from(body[0]) << 8 | u16::from(body[1])) % 31 == 0;
                let decoded = if zlib_header {
                    bounded(ZlibDecoder::new(body.as_slice()), max, "deflate")
                } else {
                    bounded(DeflateDecoder::new(body.as_slice()), max, "deflate")
                };
                match decoded {
                    Err(BodyError::Corrupt(_)) if looks_decoded(&body) => continue,
                    other => other?,
                }
            }
            b"zstd" => {
                if !body.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                    continue;
                }
                match zstd::stream::read::Decoder::new(body.as_slice()) {
                    Ok(d) => bounded(d, max, "zstd")?,
                    Err(e) => return Err(BodyError::Corrupt(format!("zstd: {e}"))),
                }
            }
            _ => {
                if looks_decoded(&body) {
                    continue;
                }
                return Err(BodyError::Unsupported(
                    String::from_utf8_lossy(enc).chars().take(64).collect(),
                ));
            }
        };
    }
    Ok(body)
}

/// Reads a decoder to the end, at most `max` bytes. A decoder error after
/// some output keeps the output (truncated payloads are common: a record cut
/// at the crawler's size limit, a missing gzip trailer).
fn bounded<R: Read>(decoder: R, max: u64, name: &str) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    let mut limited = decoder.take(max.saturating_add(1));
    match limited.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if out.is_empty() => return Err(BodyError::Corrupt(format!("{name}: {e}"))),
        Err(_) => {}
    }
    if out.len() as u64 > max {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

/// True if a body announced as encoded plainly is not: it starts like
/// markup, or its first 512 bytes are text (UTF-8 or single-byte, no NUL or
/// other C0 controls besides whitespace).
fn looks_decoded(body: &[u8]) -> bool {
    let head = &body[..body.len().min(512)];
    let trimmed = head.trim_ascii_start();
    if trimmed.starts_with(b"<") {
        return true;
    }
    !head.is_empty()
        && std::str::from_utf8(head).is_ok()
        && !head.iter().any(|&b| b < 0x20 && !b.is_ascii_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_lenient_heads() {
        let block = b"HTTP/1.1 404 Not Found\nContent-Type: text/html;\n charset=gbk\r\nX-Junk-Line\r\nServer:  nginx \r\n\r\n<p>body</p>";
        let h = parse_response(block).unwrap();
        assert_eq!(h.status, Some(404));
        assert_eq!(h.get("content-type"), Some(&b"text/html; charset=gbk"[..]));
        assert_eq!(h.get("SERVER"), Some(&b"nginx"[..]));
        assert_eq!(&block[h.body_start..], b"<p>body</p>");
        assert!(!h.is_chunked());
        // Head without a blank line: the body is empty.
        let h = parse_response(b"HTTP/1.0 200 OK\r\nContent-Type: text/html").unwrap();
        assert_eq!(h.body_start, 40);
        assert_eq!(h.status, Some(200));
        // Garbage status code.
        assert_eq!(
            parse_response(b"HTTP/1.1 abc\r\n\r\n").unwrap().status,
            None
        );
        // Complete by its own framing (for stale record lengths).
        assert!(is_complete_message(
            b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc\n"
        ));
        assert!(!is_complete_message(
            b"HTTP/1.1 200 OK\nContent-Length: 9\n\nabc\n"
        ));
        assert!(!is_complete_message(
            b"HTTP/1.1 200 OK\nContent-Length: 0\nServer: x"
        ));
        assert!(!is_complete_message(b"HTTP/1.1 200 OK\r\n\r\nabc"));
        // Not HTTP.
        assert_eq!(
            parse_response(b"GET / HTTP/1.1\r\n\r\n").unwrap_err(),
            "GET / HTTP/1.1"
        );
        assert!(is_http_response(b"\r\nhttp/1.1 200 OK\r\n"));
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n").unwrap(),
            b"Wikipedia"
        );
        // Bare LFs and upper-case hex, no final chunk.
        assert_eq!(dechunk(b"A\nabcdefghij\n3\nxyz").unwrap(), b"abcdefghijxyz");
        // Truncated last chunk keeps what is there.
        assert_eq!(dechunk(b"10\r\nshort").unwrap(), b"short");
        // Not chunked at all: the caller keeps the raw body.
        assert_eq!(dechunk(b"<!doctype html>\n<html>"), None);
        // Broken after a good chunk: the rest is appended raw.
        assert_eq!(
            dechunk(b"3\r\nabc\r\nzz not hex\r\nmore").unwrap(),
            b"abczz not hex\r\nmore"
        );
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn content_encodings() {
        let html = b"<html><body>hello hello hello</body></html>".repeat(10);
        assert_eq!(decode_content(gz(&html), b"gzip", 1 << 20).unwrap(), html);
        assert_eq!(decode_content(gz(&html), b"X-GZIP", 1 << 20).unwrap(), html);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&html).unwrap();
        assert_eq!(
            decode_content(z.finish().unwrap(), b"deflate", 1 << 20).unwrap(),
            html
        );
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(&html).unwrap();
        assert_eq!(
            decode_content(d.finish().unwrap(), b"deflate", 1 << 20).unwrap(),
            html
        );
        let zs = zstd::encode_all(html.as_slice(), 1).unwrap();
        assert_eq!(decode_content(zs, b"zstd", 1 << 20).unwrap(), html);
        // Two layers, identity ignored.
        assert_eq!(
            decode_content(gz(&gz(&html)), b"gzip, identity, gzip", 1 << 20).unwrap(),
            html
        );
        // Already decoded bodies pass through.
        assert_eq!(
            decode_content(html.clone(), b"gzip", 1 << 20).unwrap(),
            html
        );
        assert_eq!(
            decode_content(html.clone(), b"deflate", 1 << 20).unwrap(),
            html
        );
        assert_eq!(decode_content(html.clone(), b"br", 1 << 20).unwrap(), html);
        // Unsupported and corrupt.
        assert_eq!(
            decode_content(vec![0x8b, 0x00, 0xff, 0x01], b"br", 1 << 20),
            Err(BodyError::Unsupported("br".into()))
        );
        assert!(matches!(
            decode_content(vec![0x1f, 0x8b, 0, 0, 9, 9], b"gzip", 1 << 20),
            Err(BodyError::Corrupt(_))
        ));
        // Decompression bombs stop at the limit.
        assert_eq!(
            decode_content(gz(&vec![0u8; 100_000]), b"gzip", 50_000),
            Err(BodyError::TooLarge)
        );
        // A missing gzip trailer keeps the decoded data.
        let mut cut = gz(&html);
        cut.truncate(cut.len() - 2);
        assert_eq!(decode_content(cut, b"gzip", 1 << 20).unwrap(), html);
    }

    #[test]
    fn media_types() {
        assert_eq!(
            media_type(b" Text/HTML ; charset=utf-8").as_deref(),
            Some("text/html")
        );
        assert_eq!(media_type(b"").as_deref(), None);
        assert!(is_html_media("application/xhtml+xml"));
        assert!(!is_html_media("text/plain"));
        assert!(sniff_html(b"\n<?xml version='1.0'?><!DOCTYPE HTML PUBLIC>"));
        assert!(sniff_html(b"<!-- x --><HTML lang=en>"));
        assert!(!sniff_html(b"{\"json\": true}"));
    }
}
