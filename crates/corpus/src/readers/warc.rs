//! WARC (1.0, 1.1, also older 0.x dialects; WET and WAT files are WARC) and
//! ARC (v1, and v2 field layouts) readers.
//!
//! Both are lazy state machines over [`Input`]: one record is in memory at a
//! time, payloads over `max_record_bytes` are skipped without buffering.
//!
//! # WARC outcomes (one item per record)
//!
//! | record | item |
//! |---|---|
//! | `response` with an HTML payload (HTTP `Content-Type`, else `WARC-Identified-Payload-Type`, else body sniffing) | `Doc`, `is_html` |
//! | `resource` with an HTML WARC `Content-Type` (same fallbacks) | `Doc`, `is_html` |
//! | `conversion` (WET) | `Doc`, plain text |
//! | other `response`/`resource` | dropped `warc:non_html` |
//! | `warcinfo`, `request`, `metadata`, `revisit`, `continuation` | dropped `warc:<type>` |
//! | any other type | dropped `warc:other` |
//! | payload over the size limit | dropped `warc:too_large` |
//! | `Content-Length` past EOF, EOF inside a header | failed `warc:truncated` (ends the file) |
//! | no/bad `Content-Length`, no `WARC-Type`, oversized header | failed `warc:bad_header`, then resync |
//! | `response` that is `application/http` but has no status line | failed `http:bad_header` |
//! | unsupported or corrupt `Content-Encoding` | failed `http:content_encoding` |
//! | stream error (corrupt gzip/zstd) | failed `decompress:gzip`/`decompress:zstd` (ends the file) |
//!
//! Between records, blank lines are skipped. Other bytes there ("junk") are
//! skipped up to the next line that starts with `WARC/<digit>` (resync). A
//! junk region counts as one lost record (failed `warc:bad_header`) if it
//! contains a line starting with `WARC-` (the header of a record whose
//! version line was damaged) or if it is at the start of the file; otherwise
//! (stray bytes after a record whose `Content-Length` was slightly short, as
//! in warcio's `example-trunc.warc`) it is not a record and is not counted.
//!
//! Documents: `id` is the `WARC-Record-ID` without `<>` (else `source#index`,
//! index = 0-based record index in the file); metadata `url`
//! (`WARC-Target-URI`, trimmed, `<>` stripped, spaces as `%20`), `date`
//! (`WARC-Date`), `content_type` (media type), `charset` (used to decode),
//! extra `http_status` and `invalid_bytes` (only if > 0).
//!
//! # ARC
//!
//! A `filedesc://` record (dropped `arc:filedesc`), then records whose header
//! line is `URL IP-address Archive-date Content-type Archive-length` (v1; the
//! URL may contain spaces: the *last* fields are the fixed ones; the v2
//! layout is recognised from the filedesc field list). Outcomes as for WARC
//! responses with `arc:` reasons: `arc:non_html`, `arc:too_large`,
//! `arc:truncated`, `arc:bad_header` (a header-looking line that does not
//! parse, e.g. a negative length; lines that do not look like a header are
//! skipped). Dates become ISO 8601 (`20140216050221` →
//! `2014-02-16T05:02:21Z`), ids are `source#index`.

use std::ops::Range;

use serde_json::Value;

use super::charset::{self, charset_param};
use super::decompress::{read_failure, show_bytes, Input};
use super::http::{self, BodyError};
use super::{Failure, Item, ItemStream, ReaderOptions};
use crate::{Document, Metadata};

/// Longest WARC header line and header block accepted.
const MAX_HEADER_LINE: usize = 64 << 10;
const MAX_HEADER_BLOCK: usize = 256 << 10;
/// How much of a junk line is kept to classify it.
const PREFIX: usize = 256;
/// How much of a line is looked at while resynchronising.
const RESYNC_PREFIX: usize = 64;
/// Largest up-front reservation for a payload.
const INITIAL_CAPACITY: u64 = 16 << 20;

/// Reads a WARC (or WET/WAT) stream lazily.
pub fn read_warc(
    stream: Box<dyn std::io::BufRead + Send>,
    source: &str,
    opts: &ReaderOptions,
) -> ItemStream {
    Box::new(WarcReader {
        input: Input::new(stream),
        source: source.to_string(),
        max: opts.max_record_bytes,
        index: 0,
        done: false,
        line: Vec::with_capacity(PREFIX),
        header: Header::default(),
        pending: None,
        queued: None,
    })
}

/// Reads an ARC stream lazily.
pub fn read_arc(
    stream: Box<dyn std::io::BufRead + Send>,
    source: &str,
    opts: &ReaderOptions,
) -> ItemStream {
    Box::new(ArcReader {
        input: Input::new(stream),
        source: source.to_string(),
        max: opts.max_record_bytes,
        index: 0,
        done: false,
        line: Vec::with_capacity(PREFIX),
        nfields: 5,
    })
}

/// Header fields of one record, stored in one reusable buffer.
#[derive(Default)]
struct Header {
    buf: Vec<u8>,
    fields: Vec<(Range<usize>, Range<usize>)>,
}

impl Header {
    fn clear(&mut self) {
        self.buf.clear();
        self.fields.clear();
    }

    /// Adds one header line (without line end). Continuation lines extend
    /// the previous value; lines without a colon are ignored.
    fn push_line(&mut self, line: &[u8]) {
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            let cont = line.trim_ascii();
            if let Some((_, value)) = self.fields.last_mut() {
                // The previous value is the tail of `buf`: extend in place.
                if !cont.is_empty() {
                    self.buf.push(b' ');
                    self.buf.extend_from_slice(cont);
                    value.end = self.buf.len();
                }
            }
            return;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return;
        };
        let name = line[..colon].trim_ascii();
        let value = line[colon + 1..].trim_ascii();
        let n0 = self.buf.len();
        self.buf.extend_from_slice(name);
        let v0 = self.buf.len();
        self.buf.extend_from_slice(value);
        self.fields.push((n0..v0, v0..self.buf.len()));
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| self.buf[n.clone()].eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| &self.buf[v.clone()])
    }

    fn get_str(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .filter(|s| !s.is_empty())
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

fn is_version_line(line: &[u8]) -> bool {
    line.len() > 5 && line.starts_with(b"WARC/") && line[5].is_ascii_digit()
}

fn starts_with_ignore_case(line: &[u8], prefix: &[u8]) -> bool {
    line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

struct WarcReader {
    input: Input,
    source: String,
    max: u64,
    /// Records met so far (the next record's index).
    index: u64,
    done: bool,
    line: Vec<u8>,
    header: Header,
    /// Offset of a version line already consumed while resynchronising.
    pending: Option<u64>,
    /// An item to return before reading on (a stream error met while
    /// resynchronising after a failure).
    queued: Option<Item>,
}

impl Iterator for WarcReader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if let Some(item) = self.queued.take() {
            return Some(item);
        }
        loop {
            if self.done {
                return None;
            }
            if let Some(start) = self.pending.take() {
                return Some(self.read_record(start));
            }
            let start = self.input.pos();
            self.line.clear();
            match self.input.read_line(&mut self.line, PREFIX) {
                Ok(l) if l.consumed == 0 => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Item::Failed(read_failure(&e, start)));
                }
            }
            if is_blank(&self.line) {
                continue;
            }
            if is_version_line(&self.line) {
                return Some(self.read_record(start));
            }
            if let Some(item) = self.skip_junk(start) {
                return Some(item);
            }
        }
    }
}

impl WarcReader {
    fn fail(&mut self, reason: &'static str, offset: u64, detail: impl Into<String>) -> Item {
        Item::Failed(Failure::new(reason, offset, detail))
    }

    /// Junk where a record should start (its first line is in `self.line`):
    /// skip to the next version line; one failed record if it looks like a
    /// lost record (see the module docs).
    fn skip_junk(&mut self, start: u64) -> Option<Item> {
        let detail = show_bytes(&self.line);
        let mut lost = start == 0 || looks_like_warc_field(&self.line);
        let err = self.resync(&mut lost);
        let item = if lost {
            self.index += 1;
            Item::Failed(Failure::new(
                "warc:bad_header",
                start,
                format!("no WARC version line: {detail}"),
            ))
        } else {
            Item::Warning(Failure::new(
                "warc:stray_bytes",
                start,
                format!("bytes between records skipped: {detail}"),
            ))
        };
        self.queued = err;
        Some(item)
    }

    /// Consumes lines up to the next version line (which becomes
    /// `pending`) or EOF. Sets `lost` if a `WARC-` field line is seen.
    /// Returns a stream failure, if one ends the file.
    fn resync(&mut self, lost: &mut bool) -> Option<Item> {
        loop {
            let lstart = self.input.pos();
            self.line.clear();
            match self.input.read_line(&mut self.line, RESYNC_PREFIX) {
                Ok(l) if l.consumed == 0 => return None,
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Item::Failed(read_failure(&e, lstart)));
                }
            }
            if is_version_line(&self.line) {
                self.pending = Some(lstart);
                return None;
            }
            *lost |= looks_like_warc_field(&self.line);
        }
    }

    /// A failed record whose framing is unknown: report it, then resync.
    fn bad_header(&mut self, start: u64, detail: String) -> Item {
        let mut ignored = false;
        self.queued = self.resync(&mut ignored);
        self.fail("warc:bad_header", start, detail)
    }

    /// Reads one record whose version line was just consumed.
    fn read_record(&mut self, start: u64) -> Item {
        let record_index = self.index;
        self.index += 1;
        self.header.clear();
        let mut block_size = 0usize;
        loop {
            self.line.clear();
            let l = match self.input.read_line(&mut self.line, MAX_HEADER_LINE) {
                Ok(l) => l,
                Err(e) => {
                    self.done = true;
                    return Item::Failed(read_failure(&e, start));
                }
            };
            if l.consumed == 0 || (!l.complete && !l.overflow) {
                self.done = true;
                return self.fail(
                    "warc:truncated",
                    start,
                    "end of file inside the WARC header",
                );
            }
            block_size += l.consumed as usize;
            if l.overflow || block_size > MAX_HEADER_BLOCK {
                return self.bad_header(
                    start,
                    format!("WARC header longer than {MAX_HEADER_BLOCK} bytes"),
                );
            }
            let line = strip_line_end(&self.line);
            if line.trim_ascii().is_empty() {
                break;
            }
            // A version line inside a header: the previous header was cut.
            if is_version_line(line) {
                self.pending = Some(self.input.pos() - l.consumed);
                return self.fail(
                    "warc:bad_header",
                    start,
                    "WARC header interrupted by another version line",
                );
            }
            self.header.push_line(line);
        }

        let length = match self.header.get("Content-Length") {
            None => return self.bad_header(start, "missing Content-Length".into()),
            Some(v) => match parse_u64(v) {
                Some(n) => n,
                None => {
                    return self.bad_header(start, format!("bad Content-Length: {}", show_bytes(v)))
                }
            },
        };
        let Some(wtype) = self.header.get("WARC-Type").map(<[u8]>::to_ascii_lowercase) else {
            return match self.skip_block(start, length) {
                Some(item) => item,
                None => self.fail("warc:bad_header", start, "missing WARC-Type"),
            };
        };
        let drop_reason: Option<&'static str> = match wtype.as_slice() {
            b"response" | b"resource" | b"conversion" => None,
            b"warcinfo" => Some("warc:warcinfo"),
            b"request" => Some("warc:request"),
            b"metadata" => Some("warc:metadata"),
            b"revisit" => Some("warc:revisit"),
            b"continuation" => Some("warc:continuation"),
            _ => Some("warc:other"),
        };
        if let Some(reason) = drop_reason {
            if length > self.max {
                return self.drop_block(start, length, reason);
            }
            // Read, not skipped: a length that runs into the next record
            // is noticed (and the record recovered) as for documents.
            let mut block = Vec::with_capacity(initial_capacity(length));
            return match self.input.read_into(&mut block, length) {
                Ok(n) if n < length => {
                    self.done = true;
                    self.fail(
                        "warc:truncated",
                        start,
                        format!("Content-Length {length} but only {n} bytes before end of file"),
                    )
                }
                Ok(_) => {
                    self.check_boundary(start, length, &mut block);
                    Item::Dropped {
                        reason: reason.into(),
                        offset: start,
                    }
                }
                Err(e) => {
                    self.done = true;
                    Item::Failed(read_failure(&e, start))
                }
            };
        }
        if length > self.max {
            return self.drop_block(start, length, "warc:too_large");
        }
        // Bounded by max_record_bytes above, and the up-front reservation
        // also by INITIAL_CAPACITY (a lying Content-Length must not make
        // us allocate what the stream does not hold).
        let mut block = Vec::with_capacity(initial_capacity(length));
        match self.input.read_into(&mut block, length) {
            // The file ends early, but if the payload is a complete HTTP
            // message the declared length was stale: nothing is missing.
            Ok(n) if n < length && wtype == b"response" && http::is_complete_message(&block) => {
                self.done = true
            }
            Ok(n) if n < length => {
                self.done = true;
                return self.fail(
                    "warc:truncated",
                    start,
                    format!("Content-Length {length} but only {n} bytes before end of file"),
                );
            }
            Ok(_) => self.check_boundary(start, length, &mut block),
            Err(e) => {
                self.done = true;
                return Item::Failed(read_failure(&e, start));
            }
        }
        let h = &self.header;
        let rec = RecordInfo {
            id: h
                .get_str("WARC-Record-ID")
                .map(|s| s.trim_matches(|c| c == '<' || c == '>').trim().to_string())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| format!("{}#{record_index}", self.source)),
            url: h.get_str("WARC-Target-URI").map(|u| clean_url(&u)),
            date: h.get_str("WARC-Date"),
            offset: start,
            truncated: h.get("WARC-Truncated").is_some(),
        };
        let content_type = h.get("Content-Type").map(<[u8]>::to_vec);
        let payload_type = h
            .get("WARC-Identified-Payload-Type")
            .and_then(http::media_type);
        let outcome = match wtype.as_slice() {
            b"conversion" => {
                let label = content_type
                    .as_deref()
                    .and_then(charset_param)
                    .map(|l| String::from_utf8_lossy(l).into_owned());
                Outcome::Keep(Payload {
                    body: block,
                    media: "text/plain".into(),
                    charset: label,
                    status: None,
                    is_html: false,
                    warnings: Vec::new(),
                })
            }
            b"response" if http::is_http_response(&block) => {
                http_payload(block, payload_type.as_deref(), self.max)
            }
            b"response"
                if content_type
                    .as_deref()
                    .and_then(http::media_type)
                    .as_deref()
                    == Some("application/http") =>
            {
                let first = block.split(|&b| b == b'\n').next().unwrap_or_default();
                Outcome::Fail(
                    "http:bad_header",
                    format!("no HTTP status line: {}", show_bytes(first)),
                )
            }
            _ => plain_payload(block, content_type.as_deref(), payload_type.as_deref()),
        };
        finish(outcome, rec, &self.source, &WARC_REASONS)
    }

    /// Called after a whole block of the declared `length` was read: the
    /// next bytes should be blank lines, then a version line or the end of
    /// the file. If they are not, and the block holds the start of a record
    /// (a version line after a blank line), the declared length ran into the
    /// next record: the block is cut there, the rest is put back to be read
    /// as the next record, and a `warc:length_mismatch` warning is queued.
    fn check_boundary(&mut self, start: u64, length: u64, block: &mut Vec<u8>) {
        let mut peek = Vec::with_capacity(BOUNDARY_PEEK);
        // A stream error met here is met again by the next read (sticky).
        let _ = self.input.read_into(&mut peek, BOUNDARY_PEEK as u64);
        self.input.unread(&peek);
        let rest = peek.trim_ascii_start();
        if rest.is_empty() || rest.starts_with(b"WARC/") {
            return;
        }
        let Some((end, next)) = swallowed_record(block) else {
            return;
        };
        self.input.unread(&block[next..]);
        let at = self.input.pos();
        block.truncate(end);
        self.queued = Some(Item::Warning(Failure::new(
            "warc:length_mismatch",
            start,
            format!(
                "Content-Length {length} runs into the next record (at offset {at}): \
                 the record was cut there and the next one read in full"
            ),
        )));
    }

    /// Skips a block; `Some(failure)` if the file ends or breaks inside it.
    fn skip_block(&mut self, start: u64, length: u64) -> Option<Item> {
        match self.input.skip(length) {
            Ok(n) if n < length => {
                self.done = true;
                Some(self.fail(
                    "warc:truncated",
                    start,
                    format!("Content-Length {length} but only {n} bytes before end of file"),
                ))
            }
            Ok(_) => None,
            Err(e) => {
                self.done = true;
                Some(Item::Failed(read_failure(&e, start)))
            }
        }
    }

    fn drop_block(&mut self, start: u64, length: u64, reason: &'static str) -> Item {
        self.skip_block(start, length).unwrap_or(Item::Dropped {
            reason: reason.into(),
            offset: start,
        })
    }
}

/// Bytes looked at after a block for the next record's version line.
const BOUNDARY_PEEK: usize = 64;

/// In a block whose declared length was too long: `(end of this record's
/// block, start of the swallowed record's version line)` for the first
/// version line that follows a blank line, if any.
fn swallowed_record(block: &[u8]) -> Option<(usize, usize)> {
    for i in memchr::memmem::find_iter(block, b"\nWARC/") {
        let next = i + 1;
        if !block.get(next + 5).is_some_and(u8::is_ascii_digit) {
            continue;
        }
        // `i` ends the blank line; the line before it must have ended too.
        let mut end = i;
        if end > 0 && block[end - 1] == b'\r' {
            end -= 1;
        }
        if end == 0 || block[end - 1] != b'\n' {
            continue;
        }
        end -= 1;
        if end > 0 && block[end - 1] == b'\r' {
            end -= 1;
        }
        return Some((end, next));
    }
    None
}

/// Reservation for a payload of `length` bytes.
fn initial_capacity(length: u64) -> usize {
    usize::try_from(length.min(INITIAL_CAPACITY)).unwrap_or(0)
}

fn looks_like_warc_field(line: &[u8]) -> bool {
    starts_with_ignore_case(line, b"WARC-") && memchr::memchr(b':', line).is_some()
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// `WARC-Target-URI`/ARC URL cleanup: trim, strip `<>` (wget), spaces → `%20`.
fn clean_url(u: &str) -> String {
    let u = u.trim();
    let u = u
        .strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(u)
        .trim();
    if u.contains(' ') {
        u.replace(' ', "%20")
    } else {
        u.to_string()
    }
}

/// Identity of a record, for its document.
struct RecordInfo {
    id: String,
    url: Option<String>,
    date: Option<String>,
    offset: u64,
    /// The record carries a `WARC-Truncated` header (e.g. Common Crawl's 1 MiB cap).
    truncated: bool,
}

/// A payload to turn into a document.
struct Payload {
    body: Vec<u8>,
    media: String,
    /// Declared charset label.
    charset: Option<String>,
    status: Option<u16>,
    is_html: bool,
    /// Anomalies recovered from, for `metadata.warnings`.
    warnings: Vec<&'static str>,
}

enum Outcome {
    Keep(Payload),
    NonHtml,
    TooLarge,
    Fail(&'static str, String),
}

/// Format-specific reasons for the shared outcomes.
struct Reasons {
    non_html: &'static str,
    too_large: &'static str,
}

const WARC_REASONS: Reasons = Reasons {
    non_html: "warc:non_html",
    too_large: "warc:too_large",
};

const ARC_REASONS: Reasons = Reasons {
    non_html: "arc:non_html",
    too_large: "arc:too_large",
};

/// An HTTP response block: head, transfer and content decoding, HTML test.
fn http_payload(mut block: Vec<u8>, payload_type: Option<&str>, max: u64) -> Outcome {
    let mut warnings = Vec::new();
    let (status, media, label, chunked, encoding, body_start, declared_len) =
        match http::parse_response(&block) {
            Err(first) => {
                return Outcome::Fail("http:bad_header", format!("bad HTTP status line: {first}"))
            }
            Ok(head) => {
                let ct = head.get("Content-Type");
                (
                    head.status,
                    ct.and_then(http::media_type),
                    ct.and_then(charset_param)
                        .map(|l| String::from_utf8_lossy(l).into_owned()),
                    head.is_chunked(),
                    head.get("Content-Encoding").map(<[u8]>::to_vec),
                    head.body_start,
                    head.get("Content-Length").and_then(parse_u64),
                )
            }
        };
    let media = media.or_else(|| payload_type.map(str::to_string));
    if media.as_deref().is_some_and(|m| !http::is_html_media(m)) {
        return Outcome::NonHtml;
    }
    block.drain(..body_start);
    let mut body = block;
    if !chunked && declared_len.is_some_and(|n| (body.len() as u64) < n) {
        warnings.push("http:truncated_body");
    }
    if chunked {
        if let Some(d) = http::dechunk(&body) {
            body = d;
        }
    }
    if let Some(enc) = encoding {
        body = match http::decode_content(body, &enc, max) {
            Ok(b) => b,
            Err(BodyError::TooLarge) => return Outcome::TooLarge,
            Err(BodyError::Unsupported(e)) => {
                return Outcome::Fail(
                    "http:content_encoding",
                    format!("unsupported Content-Encoding: {e}"),
                )
            }
            Err(BodyError::Corrupt(e)) => return Outcome::Fail("http:content_encoding", e),
        };
    }
    let media = match media {
        Some(m) => m,
        None if http::sniff_html(&body) => "text/html".to_string(),
        None => return Outcome::NonHtml,
    };
    Outcome::Keep(Payload {
        body,
        media,
        charset: label,
        status,
        is_html: true,
        warnings,
    })
}

/// A payload without HTTP head (WARC resource, non-HTTP response, ARC
/// record of a non-HTTP URL): the record's own content type decides.
fn plain_payload(
    body: Vec<u8>,
    content_type: Option<&[u8]>,
    payload_type: Option<&str>,
) -> Outcome {
    let warnings = Vec::new();
    let media = content_type
        .and_then(http::media_type)
        .or_else(|| payload_type.map(str::to_string));
    let media = match media {
        Some(m) if http::is_html_media(&m) => m,
        Some(_) => return Outcome::NonHtml,
        None if http::sniff_html(&body) => "text/html".to_string(),
        None => return Outcome::NonHtml,
    };
    Outcome::Keep(Payload {
        body,
        media,
        charset: content_type
            .and_then(charset_param)
            .map(|l| String::from_utf8_lossy(l).into_owned()),
        status: None,
        is_html: true,
        warnings,
    })
}

/// Turns an outcome into the record's item.
fn finish(outcome: Outcome, rec: RecordInfo, source: &str, reasons: &Reasons) -> Item {
    let p = match outcome {
        Outcome::Keep(p) => p,
        Outcome::NonHtml => {
            return Item::Dropped {
                reason: reasons.non_html.into(),
                offset: rec.offset,
            }
        }
        Outcome::TooLarge => {
            return Item::Dropped {
                reason: reasons.too_large.into(),
                offset: rec.offset,
            }
        }
        Outcome::Fail(reason, detail) => {
            return Item::Failed(Failure::new(reason, rec.offset, detail))
        }
    };
    let tld = rec.url.as_deref().and_then(charset::tld_hint);
    let decoded = charset::decode_vec(p.body, p.charset.as_deref(), p.is_html, tld);
    let mut metadata = Metadata {
        url: rec.url,
        date: rec.date,
        content_type: Some(p.media),
        charset: Some(decoded.charset.to_string()),
        ..Metadata::default()
    };
    if let Some(s) = p.status {
        metadata.set("http_status", Value::from(s));
    }
    if decoded.invalid_bytes > 0 {
        metadata.set("invalid_bytes", Value::from(decoded.invalid_bytes));
    }
    let mut warnings = p.warnings;
    if rec.truncated {
        warnings.push("warc:truncated_payload");
    }
    if !warnings.is_empty() {
        metadata.set("warnings", Value::from(warnings));
    }
    Item::Doc(Document {
        id: rec.id,
        text: decoded.text,
        source: source.to_string(),
        metadata,
        is_html: p.is_html,
    })
}

struct ArcReader {
    input: Input,
    source: String,
    max: u64,
    index: u64,
    done: bool,
    line: Vec<u8>,
    /// Fields per header line: 5 (v1) or 10 (v2), from the filedesc record.
    nfields: usize,
}

/// A parsed ARC header line.
struct ArcHeader {
    url: String,
    date: Option<String>,
    content_type: String,
    length: u64,
}

impl Iterator for ArcReader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if self.done {
                return None;
            }
            let start = self.input.pos();
            self.line.clear();
            match self.input.read_line(&mut self.line, MAX_HEADER_LINE) {
                Ok(l) if l.consumed == 0 => {
                    self.done = true;
                    return None;
                }
                Ok(l) if l.overflow => {
                    if looks_like_arc_header(&self.line) {
                        self.index += 1;
                        return Some(Item::Failed(Failure::new(
                            "arc:bad_header",
                            start,
                            format!("ARC header line longer than {MAX_HEADER_LINE} bytes"),
                        )));
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Item::Failed(read_failure(&e, start)));
                }
            }
            let line = strip_line_end(&self.line);
            if is_blank(line) || !looks_like_arc_header(line) {
                // Blank separators, the rest of a record whose header did
                // not parse, stray bytes: not records.
                continue;
            }
            let record_index = self.index;
            self.index += 1;
            let header = match parse_arc_header(line, self.nfields) {
                Ok(h) => h,
                Err(why) => {
                    return Some(Item::Failed(Failure::new(
                        "arc:bad_header",
                        start,
                        format!("{why}: {}", show_bytes(line)),
                    )))
                }
            };
            return Some(self.read_record(start, record_index, header));
        }
    }
}

impl ArcReader {
    fn read_record(&mut self, start: u64, record_index: u64, h: ArcHeader) -> Item {
        let is_filedesc = h.url.starts_with("filedesc:");
        if h.length > self.max {
            return self.skip_or(start, h.length, "arc:too_large");
        }
        let mut body = Vec::with_capacity(initial_capacity(h.length));
        match self.input.read_into(&mut body, h.length) {
            // A stale Archive-length on a complete HTTP message (see WARC).
            Ok(n) if n < h.length && !is_filedesc && http::is_complete_message(&body) => {
                self.done = true
            }
            Ok(n) if n < h.length => {
                self.done = true;
                return Item::Failed(Failure::new(
                    "arc:truncated",
                    start,
                    format!(
                        "Archive-length {} but only {n} bytes before end of file",
                        h.length
                    ),
                ));
            }
            Ok(_) => {}
            Err(e) => {
                self.done = true;
                return Item::Failed(read_failure(&e, start));
            }
        }
        if is_filedesc {
            // Line 3 of the version block lists the header fields.
            if let Some(defs) = body.split(|&b| b == b'\n').nth(1) {
                let n = defs
                    .split(u8::is_ascii_whitespace)
                    .filter(|f| !f.is_empty())
                    .count();
                if n == 5 || n == 10 {
                    self.nfields = n;
                }
            }
            return Item::Dropped {
                reason: "arc:filedesc".into(),
                offset: start,
            };
        }
        let rec = RecordInfo {
            id: format!("{}#{record_index}", self.source),
            url: Some(clean_url(&h.url)),
            date: h.date,
            offset: start,
            truncated: false,
        };
        let outcome = if http::is_http_response(&body) {
            http_payload(body, None, self.max)
        } else {
            plain_payload(body, Some(h.content_type.as_bytes()), None)
        };
        finish(outcome, rec, &self.source, &ARC_REASONS)
    }

    fn skip_or(&mut self, start: u64, length: u64, reason: &'static str) -> Item {
        match self.input.skip(length) {
            Ok(n) if n < length => {
                self.done = true;
                Item::Failed(Failure::new(
                    "arc:truncated",
                    start,
                    format!("Archive-length {length} but only {n} bytes before end of file"),
                ))
            }
            Ok(_) => Item::Dropped {
                reason: reason.into(),
                offset: start,
            },
            Err(e) => {
                self.done = true;
                Item::Failed(read_failure(&e, start))
            }
        }
    }
}

/// At least 5 fields and a first field like `scheme:rest`.
fn looks_like_arc_header(line: &[u8]) -> bool {
    let mut fields = line
        .split(u8::is_ascii_whitespace)
        .filter(|f| !f.is_empty());
    let Some(first) = fields.next() else {
        return false;
    };
    let Some(colon) = memchr::memchr(b':', first) else {
        return false;
    };
    let scheme_ok = colon > 0
        && first[0].is_ascii_alphabetic()
        && first[..colon]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    scheme_ok && colon + 1 < first.len() && fields.count() >= 4
}

fn parse_arc_header(line: &[u8], nfields: usize) -> Result<ArcHeader, &'static str> {
    let text = String::from_utf8_lossy(line);
    // Field spans, so that the URL (which may contain spaces) is everything
    // before the fixed trailing fields.
    let mut spans: Vec<(usize, usize)> = Vec::with_capacity(12);
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let s = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i > s {
            spans.push((s, i));
        }
    }
    let tail = nfields - 1;
    let n = if spans.len() > tail { tail } else { 4 };
    if spans.len() < n + 1 {
        return Err("too few fields");
    }
    let fixed = &spans[spans.len() - n..];
    let field = |k: usize| &text[fixed[k].0..fixed[k].1];
    let url = text[..fixed[0].0].trim().to_string();
    let length_field = field(n - 1);
    let length = parse_u64(length_field.as_bytes()).ok_or("bad Archive-length")?;
    Ok(ArcHeader {
        url,
        date: arc_date(field(1)),
        content_type: field(2).to_string(),
        length,
    })
}

/// `YYYYMMDDhhmmss` (or longer, or `YYYYMMDDhhmm`) → ISO 8601.
fn arc_date(d: &str) -> Option<String> {
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (ymd_hm, ss) = match d.len() {
        n if n >= 14 => (&d[..12], &d[12..14]),
        12 => (&d[..12], "00"),
        _ => return None,
    };
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &ymd_hm[..4],
        &ymd_hm[4..6],
        &ymd_hm[6..8],
        &ymd_hm[8..10],
        &ymd_hm[10..12],
        ss
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::{Cursor, Write};

    fn opts() -> ReaderOptions {
        ReaderOptions::default()
    }

    fn record(wtype: &str, extra: &str, block: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "WARC/1.1\r\nWARC-Type: {wtype}\r\nWARC-Record-ID: <urn:uuid:{wtype}-{}>\r\nWARC-Date: 2024-01-02T03:04:05Z\r\n{extra}Content-Length: {}\r\n\r\n",
            block.len(),
            block.len()
        )
        .into_bytes();
        r.extend_from_slice(block);
        r.extend_from_slice(b"\r\n\r\n");
        r
    }

    fn response(url: &str, http_head: &str, body: &[u8]) -> Vec<u8> {
        let mut block = http_head.as_bytes().to_vec();
        block.extend_from_slice(body);
        record(
            "response",
            &format!(
                "WARC-Target-URI: {url}\r\nContent-Type: application/http; msgtype=response\r\n"
            ),
            &block,
        )
    }

    fn read(data: Vec<u8>) -> Vec<Item> {
        read_warc(Box::new(Cursor::new(data)), "t.warc", &opts()).collect()
    }

    /// (docs, dropped by reason, failed by reason)
    fn tally(items: &[Item]) -> (usize, BTreeMap<String, usize>, BTreeMap<String, usize>) {
        let mut docs = 0;
        let mut dropped = BTreeMap::new();
        let mut failed = BTreeMap::new();
        for it in items {
            match it {
                Item::Doc(_) => docs += 1,
                Item::Dropped { reason, .. } => {
                    *dropped.entry(reason.to_string()).or_default() += 1
                }
                Item::Failed(f) => *failed.entry(f.reason.to_string()).or_default() += 1,
                Item::Warning(_) => {}
            }
        }
        (docs, dropped, failed)
    }

    fn docs(items: &[Item]) -> Vec<&Document> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Doc(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    fn map(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn record_types_and_document_fields() {
        let mut data = record("warcinfo", "", b"software: test\r\n");
        data.extend(record("request", "", b"GET / HTTP/1.1\r\n\r\n"));
        data.extend(response(
            "<http://example.com/a b>",
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n",
            "<html><body>héllo</body></html>".as_bytes(),
        ));
        data.extend(response(
            "http://example.com/i.png",
            "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n\r\n",
            b"\x89PNG",
        ));
        data.extend(record("metadata", "", b"fetchTimeMs: 1\r\n"));
        data.extend(record("revisit", "", b""));
        data.extend(record("continuation", "", b"x"));
        data.extend(record("weird", "", b"x"));
        data.extend(record(
            "resource",
            "Content-Type: text/html\r\n",
            b"<p>res</p>",
        ));
        data.extend(record("resource", "Content-Type: text/plain\r\n", b"log"));
        data.extend(record(
            "conversion",
            "Content-Type: text/plain\r\n",
            "plain WET text ✓".as_bytes(),
        ));
        let items = read(data);
        let (n, dropped, failed) = tally(&items);
        assert_eq!(n, 3);
        assert_eq!(
            dropped,
            map(&[
                ("warc:continuation", 1),
                ("warc:metadata", 1),
                ("warc:non_html", 2),
                ("warc:other", 1),
                ("warc:request", 1),
                ("warc:revisit", 1),
                ("warc:warcinfo", 1)
            ])
        );
        assert!(failed.is_empty());
        let d = docs(&items);
        assert_eq!(d[0].id, "urn:uuid:response-91");
        assert_eq!(d[0].text, "<html><body>héllo</body></html>");
        assert_eq!(d[0].source, "t.warc");
        assert!(d[0].is_html);
        let m = &d[0].metadata;
        assert_eq!(m.url.as_deref(), Some("http://example.com/a%20b"));
        assert_eq!(m.date.as_deref(), Some("2024-01-02T03:04:05Z"));
        assert_eq!(m.content_type.as_deref(), Some("text/html"));
        assert_eq!(m.charset.as_deref(), Some("utf-8"));
        assert_eq!(m.get("http_status"), Some(&Value::from(200)));
        assert_eq!(m.get("invalid_bytes"), None);
        assert_eq!(d[1].text, "<p>res</p>");
        assert!(d[1].is_html);
        assert_eq!(d[2].text, "plain WET text ✓");
        assert!(!d[2].is_html);
        assert_eq!(d[2].metadata.content_type.as_deref(), Some("text/plain"));
    }

    #[test]
    fn chunked_gzip_and_legacy_charsets() {
        let gbk_text =
            "<html><head><title>测试</title></head><body>中文网页内容，欢迎光临。</body></html>";
        let (gbk, _, _) = encoding_rs::GBK.encode(gbk_text);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&gbk).unwrap();
        let gz = gz.finish().unwrap();
        // Chunked transfer coding of the gzip-encoded body, in two chunks.
        let (a, b) = gz.split_at(10);
        let mut body = format!("{:x}\r\n", a.len()).into_bytes();
        body.extend(a);
        body.extend(format!("\r\n{:X}\r\n", b.len()).bytes());
        body.extend(b);
        body.extend(b"\r\n0\r\n\r\n");
        let mut data = response(
            "http://example.cn/",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\nContent-Type: text/html; charset=gb2312\r\n\r\n",
            &body,
        );
        let sjis_text =
            "<html><head><meta charset=\"Shift_JIS\"></head><body>日本語のページ</body></html>";
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(sjis_text);
        data.extend(response(
            "http://example.jp/",
            "HTTP/1.1 200 OK\nContent-Type: text/html\n\n",
            &sjis,
        ));
        let latin = "<html><body>Caf\u{e9} cr\u{e8}me</body></html>";
        let (w1252, _, _) = encoding_rs::WINDOWS_1252.encode(latin);
        data.extend(response(
            "http://example.fr/",
            "HTTP/1.1 200 OK\r\nContent-Type: text/html;charset=iso-8859-1\r\n\r\n",
            &w1252,
        ));
        let items = read(data);
        let d = docs(&items);
        assert_eq!(d.len(), 3, "{items:?}");
        assert_eq!(
            (d[0].text.as_str(), d[0].metadata.charset.as_deref()),
            (gbk_text, Some("gbk"))
        );
        assert_eq!(
            (d[1].text.as_str(), d[1].metadata.charset.as_deref()),
            (sjis_text, Some("shift_jis"))
        );
        assert_eq!(
            (d[2].text.as_str(), d[2].metadata.charset.as_deref()),
            (latin, Some("windows-1252"))
        );
    }

    #[test]
    fn html_detection_fallbacks() {
        // No HTTP Content-Type: WARC-Identified-Payload-Type decides.
        let mut block = b"HTTP/1.1 200 OK\r\n\r\n<p>x</p>".to_vec();
        let mut data = record(
            "response",
            "WARC-Identified-Payload-Type: text/html\r\nContent-Type: application/http; msgtype=response\r\n",
            &block,
        );
        data.extend(record(
            "response",
            "WARC-Identified-Payload-Type: application/pdf\r\n",
            &block,
        ));
        // Neither: sniff the body.
        block = b"HTTP/1.1 200 OK\r\n\r\n\n<!DOCTYPE html><html></html>".to_vec();
        data.extend(record("response", "", &block));
        data.extend(record("response", "", b"HTTP/1.1 200 OK\r\n\r\n%PDF-1.4"));
        // application/http without a status line.
        data.extend(record(
            "response",
            "Content-Type: application/http; msgtype=response\r\n",
            b"garbage\r\n\r\n",
        ));
        // Unsupported content encoding.
        data.extend(record(
            "response",
            "",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: br\r\n\r\n\x8b\x02\x80\x00\x01\x02",
        ));
        let items = read(data);
        let (n, dropped, failed) = tally(&items);
        assert_eq!(n, 2);
        assert_eq!(dropped, map(&[("warc:non_html", 2)]));
        assert_eq!(
            failed,
            map(&[("http:bad_header", 1), ("http:content_encoding", 1)])
        );
    }

    #[test]
    fn missing_record_id_uses_source_and_index() {
        let mut data = record("warcinfo", "", b"x");
        data.extend(b"WARC/1.0\r\nWARC-Type: resource\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\n<p>\r\n\r\n");
        let items = read(data);
        assert_eq!(docs(&items)[0].id, "t.warc#1");
    }

    #[test]
    fn truncated_record_fails_and_ends_the_file() {
        let mut data = record("warcinfo", "", b"x");
        let full = response(
            "http://e.com/",
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",
            b"<p>long body</p>",
        );
        data.extend(&full[..full.len() - 10]);
        let items = read(data);
        let (n, dropped, failed) = tally(&items);
        assert_eq!(
            (n, dropped, failed),
            (
                0,
                map(&[("warc:warcinfo", 1)]),
                map(&[("warc:truncated", 1)])
            )
        );
        let Item::Failed(f) = &items[1] else { panic!() };
        assert_eq!(f.offset, record("warcinfo", "", b"x").len() as u64);
        // A stale Content-Length on a complete last HTTP message is accepted.
        let http = b"HTTP/1.1 200 OK\nContent-Type: text/html\nContent-Length: 9\n\n<p>ok</p>";
        let mut rec = format!(
            "WARC/1.0\r\nWARC-Type: response\r\nContent-Length: {}\r\n\r\n",
            http.len() + 13
        )
        .into_bytes();
        rec.extend(http);
        let items = read(rec);
        assert_eq!(docs(&items).len(), 1, "{items:?}");
        // EOF inside the header.
        let items = read(b"WARC/1.0\r\nWARC-Type: response\r\nContent-Len".to_vec());
        assert_eq!(tally(&items).2, map(&[("warc:truncated", 1)]));
    }

    #[test]
    fn garbage_between_records_resyncs() {
        let good = response(
            "http://e.com/",
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",
            b"<p>ok</p>",
        );
        let mut data = good.clone();
        // Stray bytes (not a record): skipped, not counted.
        data.extend(b"\x00\x00 stray bytes\r\n");
        data.extend(&good);
        // A record whose version line is damaged: one failure.
        let mut damaged = good.clone();
        damaged[..4].copy_from_slice(b"WORC");
        data.extend(&damaged);
        // A record without Content-Length: one failure, then resync.
        data.extend(b"WARC/1.0\r\nWARC-Type: response\r\n\r\nHTTP/1.1 200 OK\r\n\r\nlost body\r\nmore\r\n\r\n");
        // Bad Content-Length.
        data.extend(b"WARC/1.0\r\nWARC-Type: response\r\nContent-Length: -5\r\n\r\nbody\r\n\r\n");
        data.extend(&good);
        let items = read(data);
        let (n, dropped, failed) = tally(&items);
        assert_eq!(n, 3, "{items:?}");
        assert!(dropped.is_empty());
        assert_eq!(failed, map(&[("warc:bad_header", 3)]));
        // Details name the problem.
        let details: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Item::Failed(f) => Some(f.detail.clone()),
                _ => None,
            })
            .collect();
        assert!(
            details[0].starts_with("no WARC version line: WORC/1.1"),
            "{details:?}"
        );
        assert_eq!(details[1], "missing Content-Length");
        assert_eq!(details[2], "bad Content-Length: -5");
    }

    #[test]
    fn content_length_too_long_does_not_swallow_the_next_record() {
        let page = |n: usize| {
            response(
                &format!("http://x/{n}"),
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",
                format!("<p>page {n}</p>").as_bytes(),
            )
        };
        for (kind, first) in [
            ("response", page(0)),
            ("request", record("request", "", b"GET / HTTP/1.1\r\n\r\n")),
        ] {
            // The first record claims 300 bytes more than it has.
            let text = String::from_utf8(first).unwrap();
            let old = text
                .split("Content-Length: ")
                .nth(1)
                .and_then(|r| r.split("\r\n").next())
                .unwrap()
                .to_string();
            let grown = (old.parse::<usize>().unwrap() + 300).to_string();
            let mut data = text
                .replacen(
                    &format!("Content-Length: {old}"),
                    &format!("Content-Length: {grown}"),
                    1,
                )
                .into_bytes();
            for n in 1..4 {
                data.extend(page(n));
            }
            let items = read(data);
            let (docs_n, dropped, failed) = tally(&items);
            assert!(failed.is_empty(), "{kind}: {failed:?}");
            assert_eq!(
                docs_n + dropped.values().sum::<usize>(),
                4,
                "{kind}: every record is counted"
            );
            let urls: Vec<_> = docs(&items)
                .iter()
                .map(|d| d.metadata.url.clone().unwrap())
                .collect();
            let want: Vec<String> = (usize::from(kind == "request")..4)
                .map(|n| format!("http://x/{n}"))
                .collect();
            assert_eq!(urls, want, "{kind}");
            if kind == "response" {
                assert_eq!(docs(&items)[0].text, "<p>page 0</p>");
            }
            let warnings: Vec<_> = items
                .iter()
                .filter_map(|i| match i {
                    Item::Warning(w) => Some(w.reason.to_string()),
                    _ => None,
                })
                .collect();
            assert_eq!(warnings, ["warc:length_mismatch"], "{kind}");
        }
    }

    #[test]
    fn not_a_warc_at_all_is_one_failure() {
        let items = read(b"hello\nworld\n".to_vec());
        assert_eq!(tally(&items).2, map(&[("warc:bad_header", 1)]));
        assert!(read(Vec::new()).is_empty());
    }

    #[test]
    fn too_large_is_skipped_without_reading() {
        let big = vec![b'a'; 5000];
        let mut data = response(
            "http://e.com/",
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",
            &big,
        );
        data.extend(record("request", "", &big));
        data.extend(response(
            "http://e.com/",
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",
            b"<p>small</p>",
        ));
        let o = ReaderOptions {
            max_record_bytes: 1000,
            ..opts()
        };
        let items: Vec<Item> = read_warc(Box::new(Cursor::new(data)), "t", &o).collect();
        let (n, dropped, _) = tally(&items);
        assert_eq!(n, 1);
        assert_eq!(dropped, map(&[("warc:request", 1), ("warc:too_large", 1)]));
    }

    #[test]
    fn gzip_member_per_record_through_open() {
        let mut file = Vec::new();
        for rec in [
            record("warcinfo", "", b"x"),
            response(
                "http://e.com/",
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",
                b"<p>1</p>",
            ),
        ] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&rec).unwrap();
            file.extend(gz.finish().unwrap());
        }
        // Corrupt member at the end: the file ends with a decompress failure.
        file.extend([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff]);
        let dir = tempfile::tempdir().unwrap();
        // A misleading name: the content decides.
        let path = dir.path().join("records.txt");
        std::fs::write(&path, &file).unwrap();
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let items: Vec<Item> =
            super::super::open(&path, "records.txt", &opts(), counter.clone()).collect();
        let (n, dropped, failed) = tally(&items);
        assert_eq!(
            (n, dropped, failed),
            (
                1,
                map(&[("warc:warcinfo", 1)]),
                map(&[("decompress:gzip", 1)])
            )
        );
        assert_eq!(
            counter.load(std::sync::atomic::Ordering::Relaxed),
            file.len() as u64
        );
    }

    fn arc_record(url: &str, date: &str, ctype: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!("{url} 1.2.3.4 {date} {ctype} {}\n", body.len()).into_bytes();
        r.extend_from_slice(body);
        r.push(b'\n');
        r
    }

    #[test]
    fn arc_records() {
        let desc = b"1 0 Test\nURL IP-address Archive-date Content-type Archive-length\n\n";
        let mut data = arc_record("filedesc://t.arc", "20140101000000", "text/plain", desc);
        data.extend(arc_record(
            "http://example.com/a page",
            "20140216050221",
            "text/html",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>hi</html>",
        ));
        data.extend(arc_record(
            "http://example.com/x.txt",
            "20140216050221",
            "text/plain",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhi",
        ));
        data.extend(b"http://example.com/ 1.2.3.4 20140216050221 text/html -1\n\njunk line\n");
        data.extend(arc_record(
            "dns:example.com",
            "20140216050221",
            "text/dns",
            b"example.com. 300 IN A 1.2.3.4",
        ));
        let full = arc_record(
            "http://example.com/t",
            "201402160502",
            "text/html",
            b"<html>cut</html>",
        );
        data.extend(&full[..full.len() - 5]);
        let items: Vec<Item> = read_arc(Box::new(Cursor::new(data)), "t.arc", &opts()).collect();
        let (n, dropped, failed) = tally(&items);
        assert_eq!(n, 1, "{items:?}");
        assert_eq!(dropped, map(&[("arc:filedesc", 1), ("arc:non_html", 2)]));
        assert_eq!(failed, map(&[("arc:bad_header", 1), ("arc:truncated", 1)]));
        let d = docs(&items)[0];
        assert_eq!(d.id, "t.arc#1");
        assert_eq!(d.text, "<html>hi</html>");
        assert_eq!(
            d.metadata.url.as_deref(),
            Some("http://example.com/a%20page")
        );
        assert_eq!(d.metadata.date.as_deref(), Some("2014-02-16T05:02:21Z"));
        assert_eq!(
            arc_date("201402160502").as_deref(),
            Some("2014-02-16T05:02:00Z")
        );
        assert_eq!(arc_date("2014"), None);
    }

    #[test]
    fn arc_v2_layout() {
        let desc = b"2 0 Test\nURL IP-address Archive-date Content-type Result-code Checksum Location Offset Filename Archive-length\n\n";
        let mut data = format!(
            "filedesc://t.arc 0.0.0.0 20140101000000 text/plain 200 - - 0 t.arc {}\n",
            desc.len()
        )
        .into_bytes();
        data.extend(desc);
        data.push(b'\n');
        let body = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>v2</html>";
        data.extend(
            format!(
                "http://e.com/ 1.2.3.4 20140216050221 text/html 200 abc - 123 t.arc {}\n",
                body.len()
            )
            .bytes(),
        );
        data.extend(body);
        data.push(b'\n');
        let items: Vec<Item> = read_arc(Box::new(Cursor::new(data)), "t.arc", &opts()).collect();
        let d = docs(&items);
        assert_eq!(d.len(), 1, "{items:?}");
        assert_eq!(d[0].metadata.url.as_deref(), Some("http://e.com/"));
        assert_eq!(d[0].text, "<html>v2</html>");
    }
}
