//! Declared or sniffed charset → UTF-8.
//!
//! The encoding is chosen in this order:
//!
//! 1. a byte-order mark (it is unambiguous, so it wins, as in browsers);
//! 2. the declared charset (the HTTP `Content-Type` parameter, or the WARC
//!    `Content-Type` of a resource record) when encoding_rs knows the label;
//! 3. for HTML, `<meta charset>` or `<meta http-equiv="content-type">` in
//!    the first [`META_PRESCAN_BYTES`] bytes;
//! 4. otherwise UTF-8 when the bytes are (almost all) valid UTF-8, else a
//!    [`chardetng`] guess, helped by the URL's top-level domain if known.
//!
//! A declared single- or double-byte legacy encoding is overridden by UTF-8
//! when the bytes are valid UTF-8 and contain non-ASCII: mislabelled UTF-8
//! pages are common, and valid multi-byte UTF-8 sequences are very rare in
//! real legacy text.
//!
//! Decoding uses encoding_rs; every malformed sequence becomes one U+FFFD
//! and is counted in [`Decoded::invalid_bytes`]. The reported charset is the
//! encoding actually used, as a lowercase encoding_rs name (`utf-8`, `gbk`,
//! `shift_jis`, `windows-1252`, …). Valid UTF-8 input is not copied
//! ([`decode_vec`]).

use encoding_rs::{
    DecoderResult, Encoding, ISO_2022_JP, REPLACEMENT, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252,
    X_USER_DEFINED,
};
use memchr::memchr_iter;

/// How far into an HTML document `<meta>` charset declarations are looked for.
pub const META_PRESCAN_BYTES: usize = 4096;

/// How many bytes chardetng sees at most.
const DETECT_BYTES: usize = 256 << 10;

/// Text decoded to UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    /// The encoding used, lowercase (`utf-8`, `gbk`, …).
    pub charset: &'static str,
    /// Number of malformed byte sequences replaced by U+FFFD.
    pub invalid_bytes: u64,
}

/// Decodes `bytes` to UTF-8 (see the module docs for how the encoding is
/// chosen). `declared` is a charset label such as `"ISO-8859-1"`.
pub fn decode(bytes: &[u8], declared: Option<&str>, is_html: bool) -> Decoded {
    decode_vec(bytes.to_vec(), declared, is_html, None)
}

/// Like [`decode`], but takes ownership (valid UTF-8 becomes the `String`
/// without a copy) and takes an optional top-level-domain hint for the
/// statistical guess (`"cn"`, `"jp"`; see [`tld_hint`]).
pub fn decode_vec(
    bytes: Vec<u8>,
    declared: Option<&str>,
    is_html: bool,
    tld: Option<&str>,
) -> Decoded {
    // 1. Byte-order mark.
    if let Some((enc, bom_len)) = Encoding::for_bom(&bytes) {
        return decode_as(&bytes[bom_len..], enc);
    }
    // 2./3. Declarations.
    let declared_enc = declared.and_then(label_to_encoding).or_else(|| {
        if is_html {
            meta_charset(&bytes)
        } else {
            None
        }
    });

    match String::from_utf8(bytes) {
        Ok(text) => {
            let enc = match declared_enc {
                None => UTF_8,
                Some(enc) if enc == UTF_8 => UTF_8,
                // Mislabelled UTF-8: valid and non-ASCII.
                Some(_) if !text.is_ascii() => UTF_8,
                // ASCII under an ASCII-compatible declaration: same text.
                Some(enc) if enc.is_ascii_compatible() && enc != ISO_2022_JP => {
                    return Decoded {
                        text,
                        charset: charset_name(enc),
                        invalid_bytes: 0,
                    }
                }
                Some(enc) => return decode_as(text.as_bytes(), enc),
            };
            Decoded {
                text,
                charset: charset_name(enc),
                invalid_bytes: 0,
            }
        }
        Err(e) => {
            let bytes = e.into_bytes();
            let enc = match declared_enc {
                Some(enc) => enc,
                None => guess_encoding(&bytes, tld),
            };
            decode_as(&bytes, enc)
        }
    }
}

/// Decodes with a known encoding (no BOM sniffing), counting malformed
/// sequences.
pub fn decode_as(bytes: &[u8], enc: &'static Encoding) -> Decoded {
    if enc == UTF_8 {
        return decode_utf8_lossy(bytes);
    }
    let mut decoder = enc.new_decoder_without_bom_handling();
    let cap = decoder
        .max_utf8_buffer_length_without_replacement(bytes.len())
        .unwrap_or(bytes.len().saturating_mul(2));
    let mut text = String::with_capacity(cap.min(bytes.len().saturating_mul(3) + 16));
    let mut src = bytes;
    let mut invalid = 0u64;
    loop {
        let (result, read) = decoder.decode_to_string_without_replacement(src, &mut text, true);
        src = src.get(read..).unwrap_or_default();
        match result {
            DecoderResult::InputEmpty => break,
            DecoderResult::OutputFull => {
                let more = decoder
                    .max_utf8_buffer_length_without_replacement(src.len())
                    .unwrap_or(src.len().saturating_mul(3))
                    .max(16);
                text.reserve(more);
            }
            DecoderResult::Malformed(_, _) => {
                invalid += 1;
                if text.capacity() - text.len() < 3 {
                    text.reserve(16);
                }
                text.push('\u{FFFD}');
            }
        }
    }
    Decoded {
        text,
        charset: charset_name(enc),
        invalid_bytes: invalid,
    }
}

fn decode_utf8_lossy(bytes: &[u8]) -> Decoded {
    let mut text = String::with_capacity(bytes.len() + 16);
    let mut invalid = 0u64;
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            invalid += 1;
            text.push('\u{FFFD}');
        }
    }
    Decoded {
        text,
        charset: "utf-8",
        invalid_bytes: invalid,
    }
}

/// Undeclared, invalid-UTF-8 bytes: UTF-8 if they are mostly UTF-8 (a few
/// broken sequences among many good multi-byte ones), else chardetng.
pub fn guess_encoding(bytes: &[u8], tld: Option<&str>) -> &'static Encoding {
    let sample = &bytes[..bytes.len().min(DETECT_BYTES)];
    let mut multibyte = 0usize;
    let mut invalid = 0usize;
    for chunk in sample.utf8_chunks() {
        multibyte += chunk.valid().bytes().filter(|&b| b >= 0xC0).count();
        if !chunk.invalid().is_empty() {
            invalid += 1;
        }
    }
    // A chunk cut at the end of the sample is not evidence against UTF-8.
    if multibyte >= 8 && multibyte >= 4 * invalid {
        return UTF_8;
    }
    let mut det = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Allow);
    det.feed(sample, sample.len() == bytes.len());
    let tld = tld.filter(|t| is_clean_tld(t)).map(str::as_bytes);
    det.guess(tld, chardetng::Utf8Detection::Allow)
}

/// chardetng panics on TLDs with upper case, periods or non-ASCII.
fn is_clean_tld(t: &str) -> bool {
    !t.is_empty()
        && t.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The top-level domain of a URL's host, for [`decode_vec`]'s guess, if it is
/// already in the lowercase ASCII form chardetng accepts.
pub fn tld_hint(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let mut host = &rest[..host_end];
    if let Some((_, h)) = host.rsplit_once('@') {
        host = h;
    }
    if let Some((h, port)) = host.rsplit_once(':') {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            host = h;
        }
    }
    let host = host.trim_end_matches('.');
    let (_, tld) = host.rsplit_once('.')?;
    if is_clean_tld(tld) && !tld.bytes().all(|b| b.is_ascii_digit()) {
        Some(tld)
    } else {
        None
    }
}

/// Resolves a charset label (`"ISO-8859-1"`, `"utf8"`, `"x-sjis"`, quoted or
/// not). The `replacement` encoding (labels of unsafe encodings such as
/// ISO-2022-KR) is ignored: it would turn the whole text into one U+FFFD.
pub fn label_to_encoding(label: &str) -> Option<&'static Encoding> {
    let label = label.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    match Encoding::for_label(label.as_bytes()) {
        Some(enc) if enc == REPLACEMENT => None,
        other => other,
    }
}

/// The charset declared by `<meta>` in the first [`META_PRESCAN_BYTES`]
/// bytes of an HTML document, with the HTML spec's adjustments (UTF-16 →
/// UTF-8, x-user-defined → windows-1252).
pub fn meta_charset(html: &[u8]) -> Option<&'static Encoding> {
    let head = &html[..html.len().min(META_PRESCAN_BYTES)];
    let mut skip_until = 0usize;
    for lt in memchr_iter(b'<', head) {
        if lt < skip_until {
            continue;
        }
        let rest = &head[lt + 1..];
        if rest.starts_with(b"!--") {
            // Skip comments, which may contain commented-out metas.
            skip_until =
                memchr::memmem::find(&rest[3..], b"-->").map_or(head.len(), |p| lt + 4 + p + 3);
            continue;
        }
        if rest.len() < 5 || !rest[..4].eq_ignore_ascii_case(b"meta") {
            continue;
        }
        if !(rest[4].is_ascii_whitespace() || rest[4] == b'/') {
            continue;
        }
        if let Some(label) = meta_label(&rest[4..]) {
            if let Some(enc) = label_to_encoding(&String::from_utf8_lossy(label)) {
                return Some(if enc == UTF_16BE || enc == UTF_16LE {
                    UTF_8
                } else if enc == X_USER_DEFINED {
                    WINDOWS_1252
                } else {
                    enc
                });
            }
        }
    }
    None
}

/// Parses the attributes of one `<meta …>` tag (starting right after
/// `meta`) and returns the charset label it declares, if any.
fn meta_label(tag: &[u8]) -> Option<&[u8]> {
    let mut i = 0;
    let mut charset: Option<&[u8]> = None;
    let mut content: Option<&[u8]> = None;
    let mut is_content_type = false;
    while i < tag.len() {
        // Skip whitespace and slashes.
        while i < tag.len() && (tag[i].is_ascii_whitespace() || tag[i] == b'/') {
            i += 1;
        }
        if i >= tag.len() || tag[i] == b'>' {
            break;
        }
        let name_start = i;
        while i < tag.len()
            && !tag[i].is_ascii_whitespace()
            && !matches!(tag[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        let name = &tag[name_start..i];
        while i < tag.len() && tag[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value: &[u8] = b"";
        if i < tag.len() && tag[i] == b'=' {
            i += 1;
            while i < tag.len() && tag[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < tag.len() && (tag[i] == b'"' || tag[i] == b'\'') {
                let q = tag[i];
                let start = i + 1;
                let end = memchr::memchr(q, &tag[start..]).map_or(tag.len(), |p| start + p);
                value = &tag[start..end];
                i = end + 1;
            } else {
                let start = i;
                while i < tag.len() && !tag[i].is_ascii_whitespace() && tag[i] != b'>' {
                    i += 1;
                }
                value = &tag[start..i];
            }
        }
        if name.is_empty() {
            i += 1;
            continue;
        }
        if name.eq_ignore_ascii_case(b"charset") && charset.is_none() {
            charset = Some(value);
        } else if name.eq_ignore_ascii_case(b"http-equiv") {
            is_content_type |= value.trim_ascii().eq_ignore_ascii_case(b"content-type");
        } else if name.eq_ignore_ascii_case(b"content") && content.is_none() {
            content = Some(value);
        }
    }
    if let Some(c) = charset {
        return Some(c.trim_ascii());
    }
    if is_content_type {
        return content.and_then(charset_param);
    }
    None
}

/// Extracts the `charset=` parameter of a `Content-Type` value.
pub fn charset_param(value: &[u8]) -> Option<&[u8]> {
    let lower_pos = find_ignore_case(value, b"charset")?;
    let mut rest = value[lower_pos + 7..].trim_ascii_start();
    rest = rest.strip_prefix(b"=")?.trim_ascii_start();
    if let Some(r) = rest.strip_prefix(b"\"").or_else(|| rest.strip_prefix(b"'")) {
        rest = r;
    }
    let end = rest
        .iter()
        .position(|&b| matches!(b, b'"' | b'\'' | b';' | b',') || b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    let label = &rest[..end];
    if label.is_empty() {
        None
    } else {
        Some(label)
    }
}

fn find_ignore_case(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

/// The lowercase name of an encoding (`utf-8`, `gbk`, `shift_jis`, …).
pub fn charset_name(enc: &'static Encoding) -> &'static str {
    match enc.name() {
        "UTF-8" => "utf-8",
        "UTF-16BE" => "utf-16be",
        "UTF-16LE" => "utf-16le",
        "GBK" => "gbk",
        "Big5" => "big5",
        "EUC-JP" => "euc-jp",
        "EUC-KR" => "euc-kr",
        "ISO-2022-JP" => "iso-2022-jp",
        "Shift_JIS" => "shift_jis",
        "IBM866" => "ibm866",
        "KOI8-R" => "koi8-r",
        "KOI8-U" => "koi8-u",
        "ISO-8859-2" => "iso-8859-2",
        "ISO-8859-3" => "iso-8859-3",
        "ISO-8859-4" => "iso-8859-4",
        "ISO-8859-5" => "iso-8859-5",
        "ISO-8859-6" => "iso-8859-6",
        "ISO-8859-7" => "iso-8859-7",
        "ISO-8859-8" => "iso-8859-8",
        "ISO-8859-8-I" => "iso-8859-8-i",
        "ISO-8859-10" => "iso-8859-10",
        "ISO-8859-13" => "iso-8859-13",
        "ISO-8859-14" => "iso-8859-14",
        "ISO-8859-15" => "iso-8859-15",
        "ISO-8859-16" => "iso-8859-16",
        // Already lowercase: gb18030, windows-*, macintosh, x-mac-cyrillic,
        // x-user-defined, replacement.
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use encoding_rs::{GBK, SHIFT_JIS};

    fn enc(text: &str, e: &'static Encoding) -> Vec<u8> {
        let (b, _, bad) = e.encode(text);
        assert!(!bad);
        b.into_owned()
    }

    #[test]
    fn utf8_fast_path() {
        let d = decode("héllo wörld".as_bytes(), None, false);
        assert_eq!(
            d,
            Decoded {
                text: "héllo wörld".into(),
                charset: "utf-8",
                invalid_bytes: 0
            }
        );
    }

    #[test]
    fn declared_gbk_and_shift_jis() {
        let zh = "中文网页，欢迎光临。这是一个测试页面。";
        let d = decode(&enc(zh, GBK), Some("gb2312"), false);
        assert_eq!(
            (d.text.as_str(), d.charset, d.invalid_bytes),
            (zh, "gbk", 0)
        );
        let ja = "日本語のウェブページです。ようこそ。";
        let d = decode(&enc(ja, SHIFT_JIS), Some("Shift_JIS"), true);
        assert_eq!(
            (d.text.as_str(), d.charset, d.invalid_bytes),
            (ja, "shift_jis", 0)
        );
    }

    #[test]
    fn windows_1252_declared_latin1() {
        let fr = "Café crème brûlée, « déjà vu » — naïve façade";
        let d = decode(&enc(fr, WINDOWS_1252), Some("\"ISO-8859-1\""), false);
        assert_eq!((d.text.as_str(), d.charset), (fr, "windows-1252"));
    }

    #[test]
    fn meta_charset_in_html() {
        let ja = "日本語のウェブページです。ようこそ。これはテストです。";
        let mut html = b"<!DOCTYPE html><html><head><!-- <meta charset=utf-8> -->\n<META HTTP-EQUIV='Content-Type' CONTENT='text/html; charset=Shift_JIS'>".to_vec();
        html.extend(b"</head><body>");
        html.extend(enc(ja, SHIFT_JIS));
        let d = decode(&html, None, true);
        assert_eq!(d.charset, "shift_jis");
        assert!(d.text.contains(ja));
        // Not HTML: the meta is not looked at, the guess still finds it.
        let d2 = decode(&html, None, false);
        assert!(d2.text.contains(ja), "{}", d2.charset);

        let m = b"<html><head><meta charset=\"gbk\"/><title>x</title>";
        assert_eq!(meta_charset(m), Some(GBK));
        assert_eq!(meta_charset(b"<meta charset=utf-16le>"), Some(UTF_8));
        assert_eq!(meta_charset(b"<metadata charset=gbk>"), None);
        assert_eq!(
            meta_charset(b"<meta name=x content='text/html; charset=gbk'>"),
            None
        );
    }

    #[test]
    fn http_header_beats_meta_and_bom_beats_all() {
        let html = b"<meta charset=gbk><p>caf\xe9</p>";
        let d = decode(html, Some("windows-1252"), true);
        assert_eq!((d.charset, d.text.contains("café")), ("windows-1252", true));
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend("<p>ü</p>".as_bytes());
        let d = decode(&bom, Some("windows-1252"), true);
        assert_eq!((d.text.as_str(), d.charset), ("<p>ü</p>", "utf-8"));
        let d = decode(b"\xFF\xFEh\x00i\x00", None, false);
        assert_eq!((d.text.as_str(), d.charset), ("hi", "utf-16le"));
    }

    #[test]
    fn undeclared_legacy_is_guessed() {
        let zh = "中华人民共和国是一个位于东亚的国家，首都是北京。这里有很多历史悠久的城市和美丽的风景。";
        let d = decode(&enc(zh, GBK), None, false);
        assert_eq!((d.text.as_str(), d.charset), (zh, "gbk"));
        let ja = "日本は東アジアにある島国です。首都は東京で、多くの歴史的な都市があります。";
        let d = decode(&enc(ja, SHIFT_JIS), None, true);
        assert_eq!((d.text.as_str(), d.charset), (ja, "shift_jis"));
    }

    #[test]
    fn mislabelled_utf8_is_read_as_utf8() {
        let d = decode("<p>naïve café</p>".as_bytes(), Some("iso-8859-1"), true);
        assert_eq!((d.text.as_str(), d.charset), ("<p>naïve café</p>", "utf-8"));
        // Pure ASCII keeps the declared (compatible) name.
        let d = decode(b"plain", Some("iso-8859-1"), false);
        assert_eq!((d.text.as_str(), d.charset), ("plain", "windows-1252"));
    }

    #[test]
    fn invalid_bytes_are_counted() {
        // Mostly UTF-8 with two broken sequences.
        let mut b = "日本語のテキスト。".repeat(4).into_bytes();
        b.push(0xFF);
        b.extend("続き".as_bytes());
        b.extend([0xE6, 0x97]); // truncated 3-byte sequence
        let d = decode(&b, None, false);
        assert_eq!(d.charset, "utf-8");
        assert_eq!(d.invalid_bytes, 2);
        assert!(d.text.ends_with("続き\u{FFFD}"));
        // Declared UTF-8, invalid bytes.
        let d = decode(b"a\x80b", Some("utf-8"), false);
        assert_eq!((d.text.as_str(), d.invalid_bytes), ("a\u{FFFD}b", 1));
        // Declared Shift_JIS with a broken lead byte at the end.
        let mut s = enc("テスト", SHIFT_JIS);
        s.push(0x82);
        let d = decode(&s, Some("shift_jis"), false);
        assert_eq!((d.text.as_str(), d.invalid_bytes), ("テスト\u{FFFD}", 1));
    }

    #[test]
    fn unknown_and_replacement_labels_are_ignored() {
        let d = decode(b"hello", Some("no-such-charset"), false);
        assert_eq!(d.charset, "utf-8");
        let d = decode(b"hello", Some("iso-2022-kr"), false);
        assert_eq!((d.text.as_str(), d.charset), ("hello", "utf-8"));
    }

    #[test]
    fn charset_param_and_tld() {
        assert_eq!(
            charset_param(b"text/html; charset=UTF-8"),
            Some(&b"UTF-8"[..])
        );
        assert_eq!(
            charset_param(b"text/html;CHARSET = \"gbk\" ; x=y"),
            Some(&b"gbk"[..])
        );
        assert_eq!(charset_param(b"text/html"), None);
        assert_eq!(charset_param(b"text/html; charset="), None);
        assert_eq!(tld_hint("http://www.example.co.jp:8080/a?b"), Some("jp"));
        assert_eq!(tld_hint("https://user@Example.CN/"), None);
        assert_eq!(tld_hint("http://10.0.0.1/"), None);
        assert_eq!(tld_hint("nohost"), None);
    }

    #[test]
    fn every_encoding_name_is_lowercase() {
        for label in [
            "utf-8",
            "gbk",
            "big5",
            "euc-jp",
            "euc-kr",
            "iso-2022-jp",
            "sjis",
            "koi8-r",
            "koi8-u",
            "ibm866",
            "iso-8859-2",
            "iso-8859-8-i",
            "iso-8859-16",
            "gb18030",
            "windows-1251",
            "macintosh",
            "x-user-defined",
            "utf-16be",
            "utf-16le",
        ] {
            let e = Encoding::for_label(label.as_bytes()).unwrap();
            let n = charset_name(e);
            assert_eq!(n, n.to_ascii_lowercase(), "{label}");
        }
    }
}
