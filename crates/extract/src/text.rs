//! Plain-text post-processing: whitespace, newlines, URLs.

/// Collapses every whitespace run to one space and trims.
pub(crate) fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for w in s.split(|c: char| c.is_whitespace() || is_invisible(c)) {
        if w.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Control and zero-width chars that carry no text.
fn is_invisible(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}'
        )
}

/// Collapses whitespace within lines (a run holding a tab becomes one tab, any
/// other run one space), trims lines, drops control chars, and keeps at most
/// `max_newlines` consecutive newlines (0: a space instead). Trims the result.
pub(crate) fn normalize(s: &str, max_newlines: usize) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_newlines = 0usize;
    let mut line = String::new();
    for raw in s.split('\n') {
        line.clear();
        let mut pending: Option<char> = None;
        for c in raw.chars() {
            if c == '\t' {
                pending = Some('\t');
            } else if c.is_whitespace() {
                if pending.is_none() {
                    pending = Some(' ');
                }
            } else if is_invisible(c) {
                // dropped: soft hyphens, zero-width spaces, stray controls
            } else {
                if let Some(p) = pending.take() {
                    if !line.is_empty() {
                        line.push(p);
                    }
                }
                line.push(c);
            }
        }
        if line.is_empty() {
            pending_newlines += 1;
            continue;
        }
        if !out.is_empty() {
            if max_newlines == 0 {
                out.push(' ');
            } else {
                for _ in 0..pending_newlines.clamp(1, max_newlines) {
                    out.push('\n');
                }
            }
        }
        out.push_str(&line);
        pending_newlines = 1;
    }
    out
}

/// Removes `http://…`, `https://…` and `www.…` URLs (up to the next
/// whitespace, minus trailing punctuation) that start a word.
pub(crate) fn strip_urls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut prev: Option<char> = None;
    while let Some(c) = rest.chars().next() {
        let starts_word = prev.is_none_or(|p| !p.is_alphanumeric() && p != '@' && p != '.');
        if starts_word && url_prefix(rest) {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let url = rest[..end].trim_end_matches(|ch: char| {
                matches!(
                    ch,
                    '.' | ','
                        | ';'
                        | ':'
                        | '!'
                        | '?'
                        | ')'
                        | ']'
                        | '}'
                        | '>'
                        | '"'
                        | '\''
                        | '»'
                        | '”'
                )
            });
            rest = &rest[url.len()..];
            prev = url.chars().next_back();
            continue;
        }
        out.push(c);
        prev = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn url_prefix(s: &str) -> bool {
    let head = |p: &str| s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    (head("http://") || head("https://") || head("www.")) && s.len() > 7
}
