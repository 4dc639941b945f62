//! Plain-text and single-page HTML readers.
//!
//! [`read_text`] splits by `opts.text_unit`:
//!
//! * `file`: the whole file is one document, id `source#0`;
//! * `line`: every non-blank line is a document, id `source#<line index>`
//!   (0-based, blank lines included in the numbering);
//! * `paragraph`: blocks separated by blank (whitespace-only) lines, id
//!   `source#<paragraph index>` (0-based). Lines keep their line ends inside
//!   a paragraph; the final line end is removed.
//!
//! Empty and whitespace-only units are not records. A unit larger than
//! `opts.max_record_bytes` is dropped as `text:too_large` (`html:too_large`
//! for [`read_html`]) without being buffered.
//!
//! Text is decoded with [`charset`](super::charset) (no HTML meta sniffing).
//! For line and paragraph units the file's encoding is guessed once from its
//! first [`HEAD_BYTES`] bytes (BOM, else UTF-8 if valid, else chardetng), so
//! that short lines of a legacy-encoded file decode consistently; a unit that
//! is not valid in a UTF-8 file is decoded on its own. These units assume an
//! ASCII-compatible encoding (UTF-16 text should use `file`).
//!
//! [`read_html`] reads the whole file as one HTML document (`is_html`,
//! content type `text/html`, charset from BOM/`<meta>`/guess), id `source#0`.

use std::io::{BufRead, Cursor, Read};

use encoding_rs::{Encoding, UTF_8};
use serde_json::Value;

use super::charset::{self, Decoded};
use super::decompress::{read_failure, Input};
use super::{Failure, Item, ItemStream, ReaderOptions, TextUnit};
use crate::{Document, Metadata};

/// How much of a file is looked at to choose its encoding (line and
/// paragraph units).
pub const HEAD_BYTES: usize = 64 << 10;

/// Reads a plain-text stream lazily, split by `opts.text_unit`.
pub fn read_text(
    stream: Box<dyn BufRead + Send>,
    source: &str,
    opts: &ReaderOptions,
) -> ItemStream {
    match opts.text_unit {
        TextUnit::File => Box::new(WholeFile::new(stream, source, opts, false)),
        unit => Box::new(UnitReader {
            stream: Some(stream),
            input: Input::new(Box::new(std::io::empty())),
            source: source.to_string(),
            paragraphs: unit == TextUnit::Paragraph,
            max: opts.max_record_bytes,
            limit: usize::try_from(opts.max_record_bytes)
                .unwrap_or(usize::MAX)
                .saturating_add(2),
            encoding: UTF_8,
            line_index: 0,
            unit_index: 0,
            done: false,
            line: Vec::new(),
            para: Vec::new(),
            para_start: 0,
            in_para: false,
            para_too_large: false,
        }),
    }
}

/// Reads a whole file as one HTML document.
pub fn read_html(
    stream: Box<dyn BufRead + Send>,
    source: &str,
    opts: &ReaderOptions,
) -> ItemStream {
    Box::new(WholeFile::new(stream, source, opts, true))
}

fn make_doc(id: String, source: &str, d: Decoded, is_html: bool) -> Document {
    let mut metadata = Metadata {
        content_type: Some(if is_html { "text/html" } else { "text/plain" }.to_string()),
        charset: Some(d.charset.to_string()),
        ..Metadata::default()
    };
    if d.invalid_bytes > 0 {
        metadata.set("invalid_bytes", Value::from(d.invalid_bytes));
    }
    Document {
        id,
        text: d.text,
        source: source.to_string(),
        metadata,
        is_html,
    }
}

struct WholeFile {
    input: Input,
    source: String,
    max: u64,
    is_html: bool,
    done: bool,
}

impl WholeFile {
    fn new(
        stream: Box<dyn BufRead + Send>,
        source: &str,
        opts: &ReaderOptions,
        is_html: bool,
    ) -> Self {
        WholeFile {
            input: Input::new(stream),
            source: source.to_string(),
            max: opts.max_record_bytes,
            is_html,
            done: false,
        }
    }
}

impl Iterator for WholeFile {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.done {
            return None;
        }
        self.done = true;
        let mut buf = Vec::new();
        match self.input.read_into(&mut buf, self.max.saturating_add(1)) {
            Ok(n) if n > self.max => {
                drop(buf);
                return Some(match self.input.skip(u64::MAX) {
                    Ok(_) => Item::Dropped {
                        reason: if self.is_html {
                            "html:too_large"
                        } else {
                            "text:too_large"
                        }
                        .into(),
                        offset: 0,
                    },
                    Err(e) => Item::Failed(read_failure(&e, 0)),
                });
            }
            Ok(_) => {}
            Err(e) => return Some(Item::Failed(read_failure(&e, 0))),
        }
        if buf.trim_ascii().is_empty() {
            return None;
        }
        let d = charset::decode_vec(buf, None, self.is_html, None);
        if d.text.trim().is_empty() {
            return None;
        }
        Some(Item::Doc(make_doc(
            format!("{}#0", self.source),
            &self.source,
            d,
            self.is_html,
        )))
    }
}

struct UnitReader {
    /// The raw stream until the first call (the head is read lazily).
    stream: Option<Box<dyn BufRead + Send>>,
    input: Input,
    source: String,
    paragraphs: bool,
    max: u64,
    limit: usize,
    encoding: &'static Encoding,
    line_index: u64,
    unit_index: u64,
    done: bool,
    line: Vec<u8>,
    para: Vec<u8>,
    para_start: u64,
    in_para: bool,
    para_too_large: bool,
}

impl UnitReader {
    /// Reads the head, chooses the file's encoding, and chains the head back
    /// in front of the stream.
    fn start(&mut self, mut stream: Box<dyn BufRead + Send>) -> Result<(), Failure> {
        let mut head = Vec::with_capacity(HEAD_BYTES);
        let res = (&mut stream).take(HEAD_BYTES as u64).read_to_end(&mut head);
        if let Err(e) = res {
            return Err(read_failure(&e, 0));
        }
        self.encoding = file_encoding(&head, head.len() < HEAD_BYTES);
        self.input = Input::new(Box::new(Cursor::new(head).chain(stream)));
        Ok(())
    }

    fn decode(&self, bytes: Vec<u8>) -> Decoded {
        if self.encoding == UTF_8 {
            charset::decode_vec(bytes, None, false, None)
        } else {
            charset::decode_vec(bytes, Some(self.encoding.name()), false, None)
        }
    }

    /// Ends the current paragraph: its item, or `None` if it decodes to
    /// whitespace only.
    fn flush(&mut self) -> Option<Item> {
        self.in_para = false;
        let offset = self.para_start;
        if self.para_too_large {
            self.para_too_large = false;
            self.unit_index += 1;
            return Some(Item::Dropped {
                reason: "text:too_large".into(),
                offset,
            });
        }
        let mut bytes = std::mem::take(&mut self.para);
        while bytes.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
            bytes.pop();
        }
        let d = self.decode(bytes);
        if d.text.trim().is_empty() {
            return None;
        }
        let id = format!("{}#{}", self.source, self.unit_index);
        self.unit_index += 1;
        Some(Item::Doc(make_doc(id, &self.source, d, false)))
    }
}

impl Iterator for UnitReader {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if let Some(stream) = self.stream.take() {
            if let Err(f) = self.start(stream) {
                self.done = true;
                return Some(Item::Failed(f));
            }
        }
        loop {
            if self.done {
                return None;
            }
            let start = self.input.pos();
            self.line.clear();
            let l = match self.input.read_line(&mut self.line, self.limit) {
                Ok(l) => l,
                Err(e) => {
                    self.done = true;
                    let offset = if self.in_para { self.para_start } else { start };
                    return Some(Item::Failed(read_failure(&e, offset)));
                }
            };
            if l.consumed == 0 {
                self.done = true;
                if self.in_para {
                    if let Some(item) = self.flush() {
                        return Some(item);
                    }
                }
                return None;
            }
            let index = self.line_index;
            self.line_index += 1;
            let blank = !l.overflow && self.line.trim_ascii().is_empty();
            if self.paragraphs {
                if blank {
                    if self.in_para {
                        if let Some(item) = self.flush() {
                            return Some(item);
                        }
                    }
                    continue;
                }
                if !self.in_para {
                    self.in_para = true;
                    self.para_start = start;
                }
                if l.overflow
                    || self.para_too_large
                    || (self.para.len() + self.line.len()) as u64 > self.max.saturating_add(2)
                {
                    self.para_too_large = true;
                    self.para = Vec::new();
                } else {
                    self.para.extend_from_slice(&self.line);
                }
                continue;
            }
            // Line units.
            if blank {
                continue;
            }
            let mut bytes = std::mem::take(&mut self.line);
            while bytes.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                bytes.pop();
            }
            if l.overflow || bytes.len() as u64 > self.max {
                return Some(Item::Dropped {
                    reason: "text:too_large".into(),
                    offset: start,
                });
            }
            let d = self.decode(bytes);
            if d.text.trim().is_empty() {
                continue;
            }
            let id = format!("{}#{index}", self.source);
            return Some(Item::Doc(make_doc(id, &self.source, d, false)));
        }
    }
}

/// The encoding of a text file from its head: BOM, else UTF-8 if valid (a
/// sequence cut at the end of an incomplete head is fine), else a guess.
fn file_encoding(head: &[u8], complete: bool) -> &'static Encoding {
    if let Some((enc, _)) = Encoding::for_bom(head) {
        return enc;
    }
    match std::str::from_utf8(head) {
        Ok(_) => UTF_8,
        Err(e) if e.error_len().is_none() && !complete => UTF_8,
        Err(_) => charset::guess_encoding(head, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(data: &[u8], unit: TextUnit, max: u64) -> Vec<Item> {
        let opts = ReaderOptions {
            text_unit: unit,
            max_record_bytes: max,
            ..ReaderOptions::default()
        };
        read_text(Box::new(Cursor::new(data.to_vec())), "f.txt", &opts).collect()
    }

    fn docs(items: &[Item]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|i| match i {
                Item::Doc(d) => (d.id.clone(), d.text.clone()),
                Item::Dropped { reason, offset } => (format!("drop@{offset}"), reason.to_string()),
                Item::Failed(f) => (format!("fail@{}", f.offset), f.reason.to_string()),
                Item::Warning(f) => (format!("warn@{}", f.offset), f.reason.to_string()),
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    const SAMPLE: &[u8] = b"first line\r\nsecond\n\n   \nthird para l1\nl2\n\n\n";

    #[test]
    fn whole_file() {
        let items = read(SAMPLE, TextUnit::File, 1 << 20);
        assert_eq!(
            docs(&items),
            pairs(&[("f.txt#0", std::str::from_utf8(SAMPLE).unwrap())])
        );
        let Item::Doc(d) = &items[0] else { panic!() };
        assert_eq!(d.metadata.content_type.as_deref(), Some("text/plain"));
        assert!(!d.is_html);
        assert!(read(b"", TextUnit::File, 100).is_empty());
        assert!(read(b" \n\t\n", TextUnit::File, 100).is_empty());
        assert_eq!(
            docs(&read(SAMPLE, TextUnit::File, 10)),
            pairs(&[("drop@0", "text:too_large")])
        );
    }

    #[test]
    fn lines() {
        let items = read(SAMPLE, TextUnit::Line, 1 << 20);
        assert_eq!(
            docs(&items),
            pairs(&[
                ("f.txt#0", "first line"),
                ("f.txt#1", "second"),
                ("f.txt#4", "third para l1"),
                ("f.txt#5", "l2")
            ])
        );
        let items = read(b"short\nthis line is too long\nok", TextUnit::Line, 10);
        assert_eq!(
            docs(&items),
            pairs(&[
                ("f.txt#0", "short"),
                ("drop@6", "text:too_large"),
                ("f.txt#2", "ok")
            ])
        );
    }

    #[test]
    fn paragraphs() {
        let items = read(SAMPLE, TextUnit::Paragraph, 1 << 20);
        assert_eq!(
            docs(&items),
            pairs(&[
                ("f.txt#0", "first line\r\nsecond"),
                ("f.txt#1", "third para l1\nl2")
            ])
        );
        let items = read(b"aaaa\nbbbb\ncccc\n\nok\n\n\nlast", TextUnit::Paragraph, 8);
        assert_eq!(
            docs(&items),
            pairs(&[
                ("drop@0", "text:too_large"),
                ("f.txt#1", "ok"),
                ("f.txt#2", "last")
            ])
        );
        assert!(read(b"\n\n", TextUnit::Paragraph, 8).is_empty());
    }

    #[test]
    fn legacy_encoded_lines_decode_consistently() {
        let lines = [
            "c'est un film très réussi",
            "l'acteur principal était génial",
            "plain ascii line",
            "à voir, même deux fois",
        ];
        let mut data = Vec::new();
        for l in lines {
            let (b, _, _) = encoding_rs::WINDOWS_1252.encode(l);
            data.extend_from_slice(&b);
            data.push(b'\n');
        }
        let items = read(&data, TextUnit::Line, 1 << 20);
        let got: Vec<String> = docs(&items).into_iter().map(|(_, t)| t).collect();
        assert_eq!(got, lines);
        let Item::Doc(d) = &items[0] else { panic!() };
        assert_eq!(d.metadata.charset.as_deref(), Some("windows-1252"));
    }

    #[test]
    fn bom_is_stripped() {
        let items = read(b"\xEF\xBB\xBFhello\nworld\n", TextUnit::Line, 100);
        assert_eq!(
            docs(&items),
            pairs(&[("f.txt#0", "hello"), ("f.txt#1", "world")])
        );
    }

    #[test]
    fn html_file() {
        let (sjis, _, _) = encoding_rs::SHIFT_JIS
            .encode("<html><head><meta charset=shift_jis></head><body>日本語</body></html>");
        let opts = ReaderOptions::default();
        let items: Vec<Item> =
            read_html(Box::new(Cursor::new(sjis.into_owned())), "p.html", &opts).collect();
        let Item::Doc(d) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(d.id, "p.html#0");
        assert!(d.is_html && d.text.contains("日本語"));
        assert_eq!(d.metadata.charset.as_deref(), Some("shift_jis"));
        assert_eq!(d.metadata.content_type.as_deref(), Some("text/html"));
        assert_eq!(items.len(), 1);
    }
}
