//! What the three methods hash: URL normalization, date ranks for
//! `--keep newest`, and the line/paragraph segmentation of a text.

use crate::exact::{ExactDedup, ExactDedupConfig};

/// Normalizes a URL for URL dedup (version `url-v1`):
///
/// 1. surrounding whitespace is trimmed;
/// 2. the fragment (`#…`) is dropped;
/// 3. the scheme and the host (the authority, without user info) are
///    lowercased, and a default port (`:80` for http, `:443` for https) is
///    dropped;
/// 4. trailing slashes of the path are dropped (`/a/` → `/a`, `/` → ``), and
///    so is an empty query (`?` at the end).
///
/// The path and the query keep their case and order; `http` and `https`
/// stay different URLs. A string without `scheme://` is only trimmed and
/// stripped of its fragment and trailing slashes. Returns `None` for an
/// empty URL.
pub fn normalize_url(url: &str) -> Option<String> {
    let url = url.trim();
    let url = url.split('#').next().unwrap_or("");
    if url.is_empty() {
        return None;
    }
    let (scheme, rest) = match url.find("://") {
        Some(i)
            if i > 0
                && url[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (Some(url[..i].to_ascii_lowercase()), &url[i + 3..])
        }
        _ => (None, url),
    };
    let mut out = String::with_capacity(url.len());
    let path_and_query = match &scheme {
        Some(s) => {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let authority = &rest[..end];
            let host = authority.rsplit('@').next().unwrap_or(authority);
            let mut host = host.to_lowercase();
            let default_port = match s.as_str() {
                "http" => Some(":80"),
                "https" => Some(":443"),
                _ => None,
            };
            if let Some(p) = default_port {
                if host.ends_with(p) {
                    host.truncate(host.len() - p.len());
                }
            }
            out.push_str(s);
            out.push_str("://");
            out.push_str(&host);
            &rest[end..]
        }
        None => rest,
    };
    let (path, query) = match path_and_query.find('?') {
        Some(i) => (&path_and_query[..i], &path_and_query[i + 1..]),
        None => (path_and_query, ""),
    };
    out.push_str(path.trim_end_matches('/'));
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// Seconds since 1970-01-01T00:00:00Z of an ISO 8601 date or date-time:
/// `YYYY-MM-DD`, optionally followed by `T` or a space, `HH:MM[:SS[.fff]]`
/// and `Z` or `±HH[:]MM`. A missing zone is UTC; fractions of a second are
/// ignored. `None` when the string does not parse.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.is_empty() || !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    let mut i = 10;
    if i < b.len() && (b[i] == b'T' || b[i] == b't' || b[i] == b' ') {
        i += 1;
        let hh = num(i..i + 2)?;
        if b.get(i + 2) != Some(&b':') {
            return None;
        }
        let mm = num(i + 3..i + 5)?;
        i += 5;
        let mut ss = 0;
        if b.get(i) == Some(&b':') {
            ss = num(i + 1..i + 3)?;
            i += 3;
            if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
            }
        }
        if hh > 24 || mm > 59 || ss > 60 {
            return None;
        }
        secs += hh * 3600 + mm * 60 + ss;
        match b.get(i) {
            None => {}
            Some(b'Z') | Some(b'z') if i + 1 == b.len() => {}
            Some(&c) if c == b'+' || c == b'-' => {
                let zone = &s[i + 1..];
                let digits: String = zone.chars().filter(|c| *c != ':').collect();
                if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                let zh: i64 = digits[..2].parse().ok()?;
                let zm: i64 = digits[2..].parse().ok()?;
                let off = zh * 3600 + zm * 60;
                secs += if c == b'+' { -off } else { off };
            }
            _ => return None,
        }
    } else if i != b.len() {
        return None;
    }
    Some(secs)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The rank of a document among equal URLs under `--keep newest`: smaller
/// is newer. A missing or unparseable date ranks last (oldest); equal ranks
/// fall back to input order.
pub fn newest_rank(date: Option<&str>) -> u64 {
    match date.and_then(parse_date) {
        // Order-preserving i64 → u64, then inverted so newer is smaller.
        Some(secs) => u64::MAX - 1 - ((secs as u64) ^ (1 << 63)).min(u64::MAX - 1),
        None => u64::MAX,
    }
}

/// The unit of line dedup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// A line: the text up to and including `\n`.
    #[default]
    Line,
    /// A paragraph: a maximal run of non-blank lines, together with the
    /// blank lines that follow it.
    Paragraph,
}

/// One segment of a text: `full` is what is removed with it (content and
/// terminator), `content` what is hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub start: usize,
    pub content_end: usize,
    pub end: usize,
}

/// Splits `text` into segments that concatenate back to `text`.
///
/// * Lines: each line with its `\n`; the content excludes `\n` and a `\r`
///   before it.
/// * Paragraphs: leading blank lines form a segment of their own; then each
///   paragraph (non-blank lines) with the blank lines after it; the content
///   is the paragraph without its last line terminator.
pub fn segments(text: &str, unit: Unit) -> Vec<Segment> {
    let mut lines = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let end = text[start..]
            .find('\n')
            .map(|i| start + i + 1)
            .unwrap_or(text.len());
        let mut content_end = end;
        if text[start..end].ends_with('\n') {
            content_end -= 1;
            if text[start..content_end].ends_with('\r') {
                content_end -= 1;
            }
        }
        lines.push(Segment {
            start,
            content_end,
            end,
        });
        start = end;
    }
    if unit == Unit::Line {
        return lines;
    }
    let blank = |s: &Segment| text[s.start..s.content_end].trim().is_empty();
    let mut out: Vec<Segment> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let first = lines[i];
        if blank(&first) {
            // Leading blank lines (only possible at the start).
            let mut j = i;
            while j < lines.len() && blank(&lines[j]) {
                j += 1;
            }
            out.push(Segment {
                start: first.start,
                content_end: first.start,
                end: lines[j - 1].end,
            });
            i = j;
            continue;
        }
        let mut j = i;
        while j < lines.len() && !blank(&lines[j]) {
            j += 1;
        }
        let content_end = lines[j - 1].content_end;
        while j < lines.len() && blank(&lines[j]) {
            j += 1;
        }
        out.push(Segment {
            start: first.start,
            content_end,
            end: lines[j - 1].end,
        });
        i = j;
    }
    out
}

/// Hashes segments (and whole texts) with the normalization of
/// [`ExactDedup`]: lowercase, punctuation removed, whitespace collapsed; or
/// the raw bytes when normalization is off.
pub struct SegmentHasher {
    inner: ExactDedup,
    normalize: bool,
}

impl SegmentHasher {
    pub fn new(normalize: bool) -> Self {
        let config = if normalize {
            ExactDedupConfig::default()
        } else {
            ExactDedupConfig {
                lowercase: false,
                strip_punctuation: false,
                collapse_whitespace: false,
                annotate_hash: false,
            }
        };
        SegmentHasher {
            inner: ExactDedup::new(config),
            normalize,
        }
    }

    /// The xxh3-128 of the normalized text (of a whole document).
    pub fn text(&mut self, text: &str) -> u128 {
        self.inner.hash(text)
    }

    /// The hash of a segment's content, or `None` when it is blank: empty
    /// after normalization (no letter or digit), or whitespace only when
    /// normalization is off. Blank segments are never counted or removed.
    pub fn segment(&mut self, content: &str) -> Option<u128> {
        let blank = if self.normalize {
            !content.chars().any(char::is_alphanumeric)
        } else {
            content.trim().is_empty()
        };
        if blank {
            None
        } else {
            Some(self.inner.hash(content))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalize() {
        let n = |s| normalize_url(s);
        assert_eq!(n("HTTP://Example.COM/"), Some("http://example.com".into()));
        assert_eq!(n("http://example.com"), n("http://EXAMPLE.com:80/#top"));
        assert_eq!(
            n("https://a.org/Path/?q=1#x"),
            Some("https://a.org/Path?q=1".into())
        );
        assert_eq!(n("https://a.org:443/x//"), Some("https://a.org/x".into()));
        assert_eq!(
            n("https://a.org:8443/x"),
            Some("https://a.org:8443/x".into())
        );
        assert_eq!(n("https://u@A.org/x?"), Some("https://a.org/x".into()));
        assert_ne!(n("http://a.org/x"), n("https://a.org/x"));
        assert_ne!(n("http://a.org/X"), n("http://a.org/x"));
        assert_eq!(n("  "), None);
        assert_eq!(n("#frag"), None);
        assert_eq!(n("a/b/"), Some("a/b".into()));
    }

    #[test]
    fn dates_parse_and_rank() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-05-20T12:34:56Z"), Some(1_716_208_496));
        assert_eq!(parse_date("2024-05-20T14:34:56+02:00"), Some(1_716_208_496));
        assert_eq!(parse_date("2024-05-20 12:34:56.789"), Some(1_716_208_496));
        assert_eq!(parse_date("2024-05-20T12:34Z"), Some(1_716_208_440));
        assert_eq!(parse_date("1969-12-31T23:59:59Z"), Some(-1));
        for bad in [
            "",
            "2024",
            "2024-13-01",
            "2024-05-20T",
            "2024-05-20X",
            "yesterday",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        let r = |s| newest_rank(Some(s));
        assert!(r("2024-01-02") < r("2024-01-01"));
        assert!(r("1969-01-01") < newest_rank(None));
        assert!(r("garbage") == newest_rank(None));
    }

    fn parts(text: &str, unit: Unit) -> Vec<(&str, &str)> {
        segments(text, unit)
            .iter()
            .map(|s| (&text[s.start..s.content_end], &text[s.start..s.end]))
            .collect()
    }

    #[test]
    fn segments_cover_the_text() {
        let t = "a\r\nb\n\n\nc\nd\n\ne";
        assert_eq!(
            parts(t, Unit::Line),
            [
                ("a", "a\r\n"),
                ("b", "b\n"),
                ("", "\n"),
                ("", "\n"),
                ("c", "c\n"),
                ("d", "d\n"),
                ("", "\n"),
                ("e", "e")
            ]
        );
        assert_eq!(
            parts(t, Unit::Paragraph),
            [("a\r\nb", "a\r\nb\n\n\n"), ("c\nd", "c\nd\n\n"), ("e", "e")]
        );
        assert_eq!(
            parts("\n \nx\n", Unit::Paragraph),
            [("", "\n \n"), ("x", "x\n")]
        );
        assert!(segments("", Unit::Line).is_empty());
        let mut h = SegmentHasher::new(true);
        assert_eq!(h.segment("- Home!"), h.segment("home"));
        assert_eq!(h.segment(" -- "), None);
        let mut raw = SegmentHasher::new(false);
        assert_ne!(raw.segment("- Home!"), raw.segment("home"));
        assert_eq!(raw.segment(" \t"), None);
        assert!(raw.segment("--").is_some());
    }
}
