//! Text splitting that reproduces datatrove's English helpers.
//!
//! datatrove's filters split text in three ways, and each one matters for
//! parity:
//!
//! * **lines**: Python `str.splitlines()` ([`py_lines`]), `str.split("\n")`, or
//!   `re.split("\n+")`, depending on the filter;
//! * **whitespace**: Python `str.isspace` / `str.split()` / `str.strip()`
//!   ([`is_py_space`], [`py_strip`]);
//! * **words and sentences**: `load_word_tokenizer("en")`, which is
//!   `spacy.blank("en")` plus the rule-based `sentencizer` (no statistical
//!   model). [`WordTokenizer`] is a port of spaCy's tokenizer algorithm
//!   (whitespace split, tokenizer exceptions, prefix/suffix/infix rules, URL
//!   match) with the English rules written out by hand instead of as regexes,
//!   and [`WordTokenizer::count_sentences`] ports the sentencizer.
//!
//! Residual differences from spaCy, all rare in web text: Unicode classes are
//! approximated with Rust's `char` properties (`ALPHA` ≈ `is_alphabetic`,
//! the `So` icon class ≈ a set of symbol blocks, category `P` ≈ a table); the
//! special-case *matcher* pass (which re-merges exceptions such as `:)` found
//! in the middle of a split token) is not ported; the URL matcher is a
//! simplified version of spaCy's `URL_PATTERN` without its IP-address branch.

use crate::tables::{PUNCTUATION, SENT_PUNCT, SPECIAL_CASES, TERMINAL_PUNCTUATION};

/// Python `str.isspace()` for one character.
#[inline]
pub fn is_py_space(c: char) -> bool {
    match c {
        ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\u{1c}'..='\u{1f}' => true,
        c if c.is_ascii() => false,
        c => c.is_whitespace(),
    }
}

/// Python `str.strip()`.
#[inline]
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// Python `str.splitlines()` (no line breaks kept; no empty last line).
pub fn py_lines(text: &str) -> PyLines<'_> {
    PyLines { rest: text }
}

/// Iterator of [`py_lines`].
pub struct PyLines<'a> {
    rest: &'a str,
}

impl<'a> Iterator for PyLines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let bytes = self.rest.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let brk = match b {
                b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1e => Some(1),
                0xc2 if bytes.get(i + 1) == Some(&0x85) => Some(2),
                0xe2 if bytes.get(i + 1) == Some(&0x80)
                    && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) =>
                {
                    Some(3)
                }
                _ => None,
            };
            if let Some(mut len) = brk {
                if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    len = 2;
                }
                let line = &self.rest[..i];
                self.rest = &self.rest[i + len..];
                return Some(line);
            }
            i += 1;
        }
        let line = self.rest;
        self.rest = "";
        Some(line)
    }
}

/// Whether `c` is in datatrove's `PUNCTUATION_SET`.
#[inline]
pub fn is_dt_punctuation(c: char) -> bool {
    PUNCTUATION.binary_search(&c).is_ok()
}

/// Whether `c` is in datatrove's `TERMINAL_PUNCTUATION`.
#[inline]
pub fn is_terminal_punctuation(c: char) -> bool {
    TERMINAL_PUNCTUATION.binary_search(&c).is_ok()
}

/// Python `str.isalpha()` for one character (approximated by Unicode
/// `Alphabetic`).
#[inline]
pub fn is_py_alpha(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic()
    } else {
        c.is_alphabetic()
    }
}

/// Unicode general category `P*` (spaCy's `is_punct`), approximated by a table
/// of the punctuation blocks.
fn is_unicode_punct(c: char) -> bool {
    if c.is_ascii() {
        return matches!(
            c,
            '!' | '"'
                | '#'
                | '%'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | ','
                | '-'
                | '.'
                | '/'
                | ':'
                | ';'
                | '?'
                | '@'
                | '['
                | '\\'
                | ']'
                | '_'
                | '{'
                | '}'
        );
    }
    matches!(c,
        '¡' | '§' | '«' | '¶' | '·' | '»' | '¿'
        | '\u{2010}'..='\u{2027}'
        | '\u{2030}'..='\u{2043}'
        | '\u{2045}'..='\u{2051}'
        | '\u{2053}'..='\u{205e}'
        | '\u{2e00}'..='\u{2e4f}'
        | '\u{3001}'..='\u{3003}'
        | '\u{3008}'..='\u{3011}'
        | '\u{3014}'..='\u{301f}'
        | '\u{30fb}'
        | '\u{ff01}'..='\u{ff03}'
        | '\u{ff05}'..='\u{ff0a}'
        | '\u{ff0c}'..='\u{ff0f}'
        | '\u{ff1a}' | '\u{ff1b}' | '\u{ff1f}' | '\u{ff20}'
        | '\u{ff3b}'..='\u{ff3d}'
        | '\u{ff3f}' | '\u{ff5b}' | '\u{ff5d}'
        | '\u{ff5f}'..='\u{ff65}'
        | '\u{55a}'..='\u{55f}' | '\u{589}' | '\u{5be}' | '\u{5c0}' | '\u{5c3}'
        | '\u{60c}' | '\u{60d}' | '\u{61b}' | '\u{61f}' | '\u{66a}'..='\u{66d}' | '\u{6d4}'
        | '\u{964}' | '\u{965}' | '\u{970}'
    ) || SENT_PUNCT.binary_search(&c).is_ok()
}

/// spaCy's `LIST_ICONS` (category `So`), approximated by the main symbol blocks.
#[inline]
fn is_icon(c: char) -> bool {
    matches!(c,
        '¦' | '©' | '®' | '°' | '҂' | '֍' | '֎' | '؎' | '؏' | '۞' | '۩' | '۽' | '۾'
        | '\u{2100}'..='\u{2101}'
        | '\u{2103}'..='\u{2106}'
        | '\u{2108}' | '\u{2109}' | '\u{2114}' | '\u{2116}' | '\u{2117}'
        | '\u{211e}'..='\u{2123}'
        | '\u{2125}' | '\u{2127}' | '\u{2129}' | '\u{212e}'
        | '\u{2195}'..='\u{2199}'
        | '\u{219c}'..='\u{219f}'
        | '\u{21a1}' | '\u{21a2}' | '\u{21a4}' | '\u{21a5}'
        | '\u{21a7}'..='\u{21ad}'
        | '\u{21af}'..='\u{21cd}'
        | '\u{21d0}' | '\u{21d1}' | '\u{21d3}'
        | '\u{21d5}'..='\u{21f3}'
        | '\u{2300}'..='\u{2307}'
        | '\u{230c}'..='\u{231f}'
        | '\u{2322}'..='\u{2328}'
        | '\u{232b}'..='\u{237b}'
        | '\u{237d}'..='\u{239a}'
        | '\u{23b4}'..='\u{23db}'
        | '\u{23e2}'..='\u{2426}'
        | '\u{2440}'..='\u{244a}'
        | '\u{249c}'..='\u{24e9}'
        | '\u{2500}'..='\u{25b6}'
        | '\u{25b8}'..='\u{25c0}'
        | '\u{25c2}'..='\u{25f7}'
        | '\u{2600}'..='\u{266e}'
        | '\u{2670}'..='\u{2767}'
        | '\u{2794}'..='\u{27bf}'
        | '\u{2800}'..='\u{28ff}'
        | '\u{2b00}'..='\u{2b2f}'
        | '\u{2b45}' | '\u{2b46}'
        | '\u{2b4d}'..='\u{2b73}'
        | '\u{2b76}'..='\u{2b95}'
        | '\u{2b98}'..='\u{2bfe}'
        | '\u{3004}' | '\u{3012}' | '\u{3013}' | '\u{3020}' | '\u{3036}' | '\u{3037}'
        | '\u{303e}' | '\u{303f}'
        | '\u{fffc}' | '\u{fffd}'
        | '\u{1f000}'..='\u{1f02b}'
        | '\u{1f030}'..='\u{1f093}'
        | '\u{1f0a0}'..='\u{1f0f5}'
        | '\u{1f110}'..='\u{1f16b}'
        | '\u{1f170}'..='\u{1f1ac}'
        | '\u{1f1e6}'..='\u{1f202}'
        | '\u{1f210}'..='\u{1f23b}'
        | '\u{1f240}'..='\u{1f251}'
        | '\u{1f260}'..='\u{1f265}'
        | '\u{1f300}'..='\u{1f3fa}'
        | '\u{1f400}'..='\u{1f6d4}'
        | '\u{1f6e0}'..='\u{1f6ec}'
        | '\u{1f6f0}'..='\u{1f6f9}'
        | '\u{1f700}'..='\u{1f773}'
        | '\u{1f780}'..='\u{1f7d8}'
        | '\u{1f800}'..='\u{1f8ad}'
        | '\u{1f900}'..='\u{1f9ff}'
        | '\u{1fa60}'..='\u{1fa6d}'
    )
}

/// spaCy `LIST_PUNCT` (one-char entries), `LIST_QUOTES`, and the extra
/// one-char prefixes `§ % = — –`.
#[inline]
fn is_punct_or_quote(c: char) -> bool {
    matches!(
        c,
        '…' | ','
            | ':'
            | ';'
            | '!'
            | '?'
            | '¿'
            | '؟'
            | '¡'
            | '('
            | ')'
            | '['
            | ']'
            | '{'
            | '}'
            | '<'
            | '>'
            | '_'
            | '#'
            | '*'
            | '&'
            | '。'
            | '？'
            | '！'
            | '，'
            | '、'
            | '；'
            | '：'
            | '～'
            | '·'
            | '।'
            | '،'
            | '۔'
            | '؛'
            | '٪'
    ) || is_quote(c)
}

#[inline]
fn is_quote(c: char) -> bool {
    matches!(
        c,
        '\'' | '"'
            | '”'
            | '“'
            | '`'
            | '‘'
            | '´'
            | '’'
            | '‚'
            | ','
            | '„'
            | '»'
            | '«'
            | '「'
            | '」'
            | '『'
            | '』'
            | '（'
            | '）'
            | '〔'
            | '〕'
            | '【'
            | '】'
            | '《'
            | '》'
            | '〈'
            | '〉'
            | '\u{2329}'
            | '\u{232a}'
            | '⟦'
            | '⟧'
    )
}

#[inline]
fn is_currency_char(c: char) -> bool {
    matches!(
        c,
        '$' | '£' | '€' | '¥' | '฿' | '₽' | '﷼' | '\u{20a0}'..='\u{20bf}'
    )
}

/// spaCy `ALPHA` ≈ alphabetic.
#[inline]
fn is_alpha(c: char) -> bool {
    is_py_alpha(c)
}

#[inline]
fn is_lower(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_lowercase()
    } else {
        c.is_lowercase()
    }
}

#[inline]
fn is_upper(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_uppercase()
    } else {
        c.is_uppercase()
    }
}

/// The characters of spaCy's suffix class `[0-9{al}%²\-\+{PUNCT}(?:{q})]`
/// that may precede a suffix `.`.
#[inline]
fn precedes_suffix_dot(c: char) -> bool {
    c.is_ascii_digit()
        || is_lower(c)
        || matches!(
            c,
            '%' | '²' | '-' | '+' | '|' | '\\' | '(' | '?' | ':' | ')'
        )
        || is_punct_or_quote(c)
}

fn last_char(s: &str) -> Option<char> {
    s.chars().next_back()
}

fn first_char(s: &str) -> Option<char> {
    s.chars().next()
}

/// Length in bytes of the prefix spaCy's English prefix rules strip, or 0.
fn find_prefix(s: &str) -> usize {
    let Some(c) = first_char(s) else { return 0 };
    if s.starts_with("..") {
        return s.len() - s.trim_start_matches('.').len();
    }
    if c == '+' {
        let next = s[1..].chars().next();
        return if next.is_some_and(|n| n.is_ascii_digit()) {
            0
        } else {
            1
        };
    }
    if s.starts_with("US$") {
        return 3;
    }
    if s.starts_with("C$") || s.starts_with("A$") {
        return 2;
    }
    if matches!(c, '§' | '%' | '=' | '—' | '–')
        || is_punct_or_quote(c)
        || is_currency_char(c)
        || is_icon(c)
    {
        return c.len_utf8();
    }
    0
}

const UNITS: &[&str] = &[
    "km",
    "km²",
    "km³",
    "m",
    "m²",
    "m³",
    "dm",
    "dm²",
    "dm³",
    "cm",
    "cm²",
    "cm³",
    "mm",
    "mm²",
    "mm³",
    "ha",
    "µm",
    "nm",
    "yd",
    "in",
    "ft",
    "kg",
    "g",
    "mg",
    "µg",
    "t",
    "lb",
    "oz",
    "m/s",
    "km/h",
    "kmh",
    "mph",
    "hPa",
    "Pa",
    "mbar",
    "mb",
    "MB",
    "kb",
    "KB",
    "gb",
    "GB",
    "tb",
    "TB",
    "T",
    "G",
    "M",
    "K",
    "%",
    "км",
    "км²",
    "км³",
    "м",
    "м²",
    "м³",
    "дм",
    "дм²",
    "дм³",
    "см",
    "см²",
    "см³",
    "мм",
    "мм²",
    "мм³",
    "нм",
    "кг",
    "г",
    "мг",
    "м/с",
    "км/ч",
    "кПа",
    "Па",
    "мбар",
    "Кб",
    "КБ",
    "кб",
    "Мб",
    "МБ",
    "мб",
    "Гб",
    "ГБ",
    "гб",
    "Тб",
    "ТБ",
    "тбكم",
    "كم²",
    "كم³",
    "م",
    "م²",
    "م³",
    "سم",
    "سم²",
    "سم³",
    "مم",
    "مم²",
    "مم³",
    "كم",
    "غرام",
    "جرام",
    "جم",
    "كغ",
    "ملغ",
    "كوب",
    "اكواب",
];

const CURRENCIES: &[&str] = &["US$", "C$", "A$"];

/// Length in bytes of the suffix spaCy's English suffix rules strip, or 0.
/// Python's `re.search` returns the leftmost match, so the earliest start
/// among all alternatives that match up to the end wins.
fn find_suffix(s: &str) -> usize {
    let n = s.len();
    let Some(c) = last_char(s) else { return 0 };
    let mut start = n;
    let mut consider = |st: usize| {
        if st < start {
            start = st;
        }
    };
    let before = |st: usize| last_char(&s[..st]);
    // One-char punctuation, quotes, icons, dashes.
    if is_punct_or_quote(c) || is_icon(c) || c == '—' || c == '–' {
        consider(n - c.len_utf8());
    }
    if s.ends_with("……") {
        consider(n - "……".len());
    }
    if c == '.' {
        let dots = n - s.trim_end_matches('.').len();
        if dots >= 2 {
            consider(n - dots);
        } else {
            let st = n - 1;
            let p = before(st);
            let p2 = p.and_then(|p| last_char(&s[..st - p.len_utf8()]));
            let ok = p.is_some_and(precedes_suffix_dot)
                || (p.is_some_and(is_upper) && p2.is_some_and(is_upper))
                || (p.is_some_and(|p| matches!(p, 'F' | 'f' | 'C' | 'c' | 'K' | 'k'))
                    && p2 == Some('°'));
            if ok {
                consider(st);
            }
        }
    }
    for q in ["'s", "'S", "’s", "’S"] {
        if s.ends_with(q) {
            consider(n - q.len());
        }
    }
    if !s.bytes().any(|b| b.is_ascii_digit()) {
        return n - start;
    }
    let digit_before = |st: usize| before(st).is_some_and(|p| p.is_ascii_digit());
    if c == '+' && digit_before(n - 1) {
        consider(n - 1);
    }
    if is_currency_char(c) && digit_before(n - c.len_utf8()) {
        consider(n - c.len_utf8());
    }
    for cur in CURRENCIES {
        if s.ends_with(cur) && digit_before(n - cur.len()) {
            consider(n - cur.len());
        }
    }
    for u in UNITS {
        if s.ends_with(u) && digit_before(n - u.len()) {
            consider(n - u.len());
        }
    }
    n - start
}

/// Appends the infix matches of spaCy's English infix rules as byte ranges
/// (`re.finditer`: non-overlapping, left to right).
fn find_infixes(s: &str, out: &mut Vec<(usize, usize)>) {
    out.clear();
    let b = s.as_bytes();
    let mut prev: Option<char> = None;
    let mut i = 0;
    while i < s.len() {
        let Some(c) = s[i..].chars().next() else {
            break;
        };
        let cl = c.len_utf8();
        let next = s[i + cl..].chars().next();
        let mut m: Option<usize> = None; // match length in bytes
        if c == '.' && b.get(i + 1) == Some(&b'.') {
            let run = s[i..].len() - s[i..].trim_start_matches('.').len();
            m = Some(run);
        } else if c == '…' || is_icon(c) {
            m = Some(cl);
        } else if (matches!(c, '+' | '-' | '*' | '^')
            && prev.is_some_and(|p| p.is_ascii_digit())
            && next.is_some_and(|n| n.is_ascii_digit() || n == '-'))
            || (c == '.'
                && prev.is_some_and(|p| is_lower(p) || is_quote(p))
                && next.is_some_and(|n| is_upper(n) || is_quote(n)))
            || (c == ',' && prev.is_some_and(is_alpha) && next.is_some_and(is_alpha))
        {
            m = Some(1);
        } else if prev.is_some_and(|p| is_alpha(p) || p.is_ascii_digit()) {
            if matches!(c, '-' | '–' | '—' | '~') {
                // Alternatives in order: - – — -- --- —— ~, each followed by ALPHA.
                let rest = &s[i..];
                let after = |len: usize| rest[len..].chars().next().is_some_and(is_alpha);
                let cands: &[&str] = match c {
                    '-' => &["-", "--", "---"],
                    '—' => &["—", "——"],
                    '–' => &["–"],
                    _ => &["~"],
                };
                for cand in cands {
                    if rest.starts_with(cand) && after(cand.len()) {
                        m = Some(cand.len());
                        break;
                    }
                }
            } else if matches!(c, ':' | '<' | '>' | '=' | '/') && next.is_some_and(is_alpha) {
                m = Some(1);
            }
        }
        match m {
            Some(len) => {
                out.push((i, i + len));
                prev = s[..i + len].chars().next_back();
                i += len;
            }
            None => {
                prev = Some(c);
                i += cl;
            }
        }
    }
}

/// A simplified spaCy `URL_MATCH`: optional `scheme://`, optional `user@`,
/// a host of dot-separated labels ending in a lowercase TLD of 2–63 letters,
/// an optional `:port`, and an optional path starting with `/`, `?` or `#`.
fn url_match(s: &str) -> bool {
    let mut rest = s;
    if let Some(p) = rest.find("://") {
        let scheme = &rest[..p];
        if scheme.chars().count() >= 2
            && scheme
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
        {
            rest = &rest[p + 3..];
        }
    }
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if let Some(at) = rest[..host_end].rfind('@') {
        rest = &rest[at + 1..];
    }
    let host_end = rest.find([':', '/', '?', '#']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(host_end);
    let label_ok = |l: &str, inner: bool| {
        let edge = |c: char| c.is_ascii_alphanumeric() || ('\u{a1}'..='\u{ffff}').contains(&c);
        !l.is_empty()
            && (!inner || l.chars().count() <= 63)
            && l.chars().next().is_some_and(edge)
            && l.chars().next_back().is_some_and(edge)
            && l.chars().all(|c| edge(c) || c == '_' || c == '-')
    };
    let Some((labels, tld)) = host.rsplit_once('.') else {
        return false;
    };
    let tld_len = tld.chars().count();
    if !(2..=63).contains(&tld_len) || !tld.chars().all(|c| c.is_alphabetic() && is_lower(c)) {
        return false;
    }
    if !labels.split('.').all(|l| label_ok(l, true)) {
        return false;
    }
    let mut tail = tail;
    if let Some(port) = tail.strip_prefix(':') {
        let digits = port.len() - port.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if !(2..=5).contains(&digits) {
            return false;
        }
        tail = &port[digits..];
    }
    tail.is_empty() || tail.starts_with(['/', '?', '#'])
}

fn special_case(s: &str) -> Option<&'static [u8]> {
    // Every exception is at most a few dozen bytes; skip the search for
    // longer strings.
    if s.len() > 40 {
        return None;
    }
    SPECIAL_CASES
        .binary_search_by(|(k, _)| k.as_bytes().cmp(s.as_bytes()))
        .ok()
        .map(|i| SPECIAL_CASES[i].1)
}

/// datatrove's English word tokenizer (spaCy `blank("en")`), with reusable
/// buffers. One per filter instance.
#[derive(Debug, Default)]
pub struct WordTokenizer {
    prefixes: Vec<(usize, usize)>,
    suffixes: Vec<(usize, usize)>,
    infixes: Vec<(usize, usize)>,
}

impl WordTokenizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// `split_into_words(text, "en")`: the non-whitespace spaCy tokens.
    pub fn words<'a>(&mut self, text: &'a str, out: &mut Vec<&'a str>) {
        out.clear();
        self.tokenize(text, |t, ws| {
            if !ws {
                out.push(t)
            }
        });
    }

    /// `len(split_into_sentences(text, "en"))`: the number of sentences the
    /// spaCy sentencizer finds (at least 1).
    pub fn count_sentences(&mut self, text: &str) -> usize {
        let mut sentences = 1usize;
        let mut seen_period = false;
        let mut first = true;
        self.tokenize(text, |t, _| {
            let mut cs = t.chars();
            let single = match (cs.next(), cs.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            };
            let in_punct_chars = single.is_some_and(|c| SENT_PUNCT.binary_search(&c).is_ok());
            if seen_period && !in_punct_chars && !t.chars().all(is_unicode_punct) {
                if !first {
                    sentences += 1;
                }
                seen_period = false;
            } else if in_punct_chars {
                seen_period = true;
            }
            first = false;
        });
        sentences
    }

    /// Calls `emit(token, is_whitespace)` for every spaCy token of `text`.
    /// Whitespace runs other than a single separating space are tokens too.
    pub fn tokenize<'a>(&mut self, text: &'a str, mut emit: impl FnMut(&'a str, bool)) {
        let mut start = 0usize;
        let mut in_ws = false;
        for (i, c) in text.char_indices() {
            if is_py_space(c) != in_ws {
                if start < i {
                    let span = &text[start..i];
                    if in_ws {
                        emit(span, true);
                    } else {
                        self.tokenize_span(span, &mut emit);
                    }
                }
                start = if c == ' ' { i + 1 } else { i };
                in_ws = !in_ws;
            }
        }
        if start < text.len() {
            let span = &text[start..];
            if in_ws {
                emit(span, true);
            } else {
                self.tokenize_span(span, &mut emit);
            }
        }
    }

    fn emit_special<'a>(s: &'a str, lens: &[u8], emit: &mut impl FnMut(&'a str, bool)) {
        let mut rest = s;
        for &l in lens {
            let cut = rest
                .char_indices()
                .nth(l as usize)
                .map_or(rest.len(), |(i, _)| i);
            emit(&rest[..cut], false);
            rest = &rest[cut..];
        }
    }

    fn tokenize_span<'a>(&mut self, span: &'a str, emit: &mut impl FnMut(&'a str, bool)) {
        // Fast path, the common case: a plain ASCII word has no affixes, no
        // infixes and is no URL; only an exception can split it.
        if span.bytes().all(|b| b.is_ascii_alphabetic()) {
            match special_case(span) {
                Some(lens) => Self::emit_special(span, lens, emit),
                None => emit(span, false),
            }
            return;
        }
        if let Some(lens) = special_case(span) {
            Self::emit_special(span, lens, emit);
            return;
        }
        // _split_affixes: peel prefixes and suffixes, as byte ranges of `span`.
        self.prefixes.clear();
        self.suffixes.clear();
        let (mut lo, mut hi) = (0usize, span.len());
        let mut last_size = usize::MAX;
        while lo < hi && hi - lo != last_size {
            let s = &span[lo..hi];
            if special_case(s).is_some() {
                break;
            }
            last_size = hi - lo;
            let pre = find_prefix(s);
            if pre != 0 {
                let minus_pre = &s[pre..];
                if !minus_pre.is_empty() && special_case(minus_pre).is_some() {
                    self.prefixes.push((lo, lo + pre));
                    lo += pre;
                    break;
                }
            }
            let suf = find_suffix(&s[pre..]);
            if suf != 0 {
                let minus_suf = &s[..s.len() - suf];
                if !minus_suf.is_empty() && special_case(minus_suf).is_some() {
                    self.suffixes.push((hi - suf, hi));
                    hi -= suf;
                    break;
                }
            }
            if pre != 0 && suf != 0 && pre + suf <= s.len() {
                self.prefixes.push((lo, lo + pre));
                self.suffixes.push((hi - suf, hi));
                lo += pre;
                hi -= suf;
            } else if pre != 0 {
                self.prefixes.push((lo, lo + pre));
                lo += pre;
            } else if suf != 0 {
                self.suffixes.push((hi - suf, hi));
                hi -= suf;
            }
            if lo < hi && special_case(&span[lo..hi]).is_some() {
                break;
            }
        }
        // _attach_tokens.
        for &(a, b) in &self.prefixes {
            emit(&span[a..b], false);
        }
        if lo < hi {
            let core = &span[lo..hi];
            if let Some(lens) = special_case(core) {
                Self::emit_special(core, lens, emit);
            } else if url_match(core) {
                emit(core, false);
            } else {
                let mut infixes = std::mem::take(&mut self.infixes);
                find_infixes(core, &mut infixes);
                let mut start = 0usize;
                for &(a, b) in &infixes {
                    if a == 0 {
                        continue;
                    }
                    if a != start {
                        emit(&core[start..a], false);
                    }
                    if a != b {
                        emit(&core[a..b], false);
                    }
                    start = b;
                }
                if start < core.len() {
                    emit(&core[start..], false);
                }
                self.infixes = infixes;
            }
        }
        for &(a, b) in self.suffixes.iter().rev() {
            emit(&span[a..b], false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(t: &str) -> Vec<String> {
        let mut out = Vec::new();
        WordTokenizer::new().words(t, &mut out);
        out.into_iter().map(String::from).collect()
    }

    #[test]
    fn spacy_english_tokens() {
        assert_eq!(
            words("Hello, world! I don't know."),
            ["Hello", ",", "world", "!", "I", "do", "n't", "know", "."]
        );
        assert_eq!(
            words("(U.S.) cost $5.50 — e-mail me at 10km/h..."),
            [
                "(", "U.S.", ")", "cost", "$", "5.50", "—", "e", "-", "mail", "me", "at", "10",
                "km/h", "..."
            ]
        );
        assert_eq!(
            words("see www.example.com/a-b ok"),
            ["see", "www.example.com/a-b", "ok"]
        );
        assert_eq!(words("end.Start a,b"), ["end", ".", "Start", "a", ",", "b"]);
        assert_eq!(words("  \n\t "), Vec::<String>::new());
    }

    #[test]
    fn sentences() {
        let mut t = WordTokenizer::new();
        assert_eq!(t.count_sentences("One. Two! Three?"), 3);
        assert_eq!(t.count_sentences("No period"), 1);
        assert_eq!(t.count_sentences("Wait... what"), 1);
        assert_eq!(t.count_sentences(""), 1);
    }

    #[test]
    fn python_lines_and_strip() {
        let l: Vec<_> = py_lines("a\r\nb\rc\u{2028}d\n").collect();
        assert_eq!(l, ["a", "b", "c", "d"]);
        assert_eq!(py_lines("").count(), 0);
        assert_eq!(py_lines("\n").collect::<Vec<_>>(), [""]);
        assert_eq!(py_strip("\u{a0} x \u{1f}"), "x");
    }
}
