//! URL helpers: the host, the normalised URL key, and the URL's words.
//!
//! URLs come from crawls, so they are taken as found: with or without a
//! scheme (`https://a.example/x`, `a.example/x`), with user info, ports,
//! IPv6 literals, percent escapes or junk. Nothing here fails; a URL without
//! a usable host yields `None` from [`host`].

/// The lowercase host of `url`, without user info, port or trailing dot.
/// IPv6 literals keep their brackets (`[2001:db8::1]`). `None` when the URL
/// has no host.
pub fn host(url: &str) -> Option<String> {
    let authority = authority(url);
    // User info ends at the last `@` of the authority.
    let hostport = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    let host = if hostport.starts_with('[') {
        match hostport.find(']') {
            Some(i) => &hostport[..=i],
            None => hostport,
        }
    } else {
        match hostport.find(':') {
            Some(i) => &hostport[..i],
            None => hostport,
        }
    };
    let host = host.trim_end_matches('.');
    if host.is_empty() {
        None
    } else {
        Some(host.to_ascii_lowercase())
    }
}

/// The part of `url` after the scheme and `//`, up to the end of the
/// authority (the first `/`, `?`, `#` or `\`).
fn authority(url: &str) -> &str {
    let rest = after_scheme(url.trim());
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    &rest[..end]
}

/// `url` without `scheme://` (or a leading `//`).
fn after_scheme(url: &str) -> &str {
    if let Some(i) = url.find("://") {
        let scheme = &url[..i];
        if !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        {
            return &url[i + 3..];
        }
    }
    url.strip_prefix("//").unwrap_or(url)
}

/// The key under which a URL is looked up in the exact-URL blocklist:
/// `host` (lowercase, no port, no user info) followed by the path and query
/// as written, without the scheme, the fragment and a trailing `/`. So
/// `HTTPS://A.example:443/x/?q#top`, `a.example/x/?q` and `http://a.example/x/?q`
/// share the key `a.example/x/?q`, and `http://a.example/` is `a.example`.
pub fn url_key(url: &str) -> Option<String> {
    let host = host(url)?;
    let rest = after_scheme(url.trim());
    let start = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let tail = &rest[start..];
    let tail = match tail.find('#') {
        Some(i) => &tail[..i],
        None => tail,
    };
    let tail = tail.trim_end_matches('/');
    Some(format!("{host}{tail}"))
}

/// A host and its parent domains, longest first:
/// `a.b.example` → `a.b.example`, `b.example`, `example`.
/// IP literals (bracketed IPv6, dotted IPv4) have no parents.
pub fn host_and_parents(host: &str) -> Vec<&str> {
    if host.starts_with('[') || is_ipv4_like(host) {
        return vec![host];
    }
    let mut out = vec![host];
    let mut rest = host;
    while let Some(i) = rest.find('.') {
        rest = &rest[i + 1..];
        if !rest.is_empty() {
            out.push(rest);
        }
    }
    out
}

fn is_ipv4_like(host: &str) -> bool {
    host.split('.').count() == 4
        && host
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Second-level labels under which country-code TLDs register names
/// (`example.co.uk`, `example.com.au`): the registrable domain then has
/// three labels. An approximation of the Public Suffix List that needs no
/// data file; it only decides between the `url:blocked_domain` and
/// `url:blocked_subdomain` reasons, never whether a URL is blocked.
const GENERIC_SECOND_LEVEL: &[&str] = &[
    "ac", "co", "com", "edu", "go", "gob", "gov", "ltd", "mil", "ne", "net", "nic", "nom", "or",
    "org", "plc", "sch",
];

/// How many labels the registrable domain of `host` has: 2, or 3 under a
/// generic second level of a two-letter country TLD (`co.uk`, `com.br`).
/// IP literals count as one label.
pub fn registrable_labels(host: &str) -> usize {
    if host.starts_with('[') || is_ipv4_like(host) {
        return 1;
    }
    let labels: Vec<&str> = host.rsplit('.').take(2).collect();
    match labels.as_slice() {
        [tld, second] if tld.len() == 2 && GENERIC_SECOND_LEVEL.contains(second) => 3,
        _ => 2,
    }
}

/// The number of dot-separated labels of a domain.
pub fn label_count(domain: &str) -> usize {
    domain.split('.').count()
}

/// Normalises a domain list entry: trimmed, lowercase, without a leading
/// `*.` or `.`, a trailing dot, a scheme or a path (so an entry written as
/// a URL still names its host). `None` for an empty entry.
pub fn normalize_domain(entry: &str) -> Option<String> {
    let e = entry.trim();
    let e = e.strip_prefix("*.").unwrap_or(e);
    let e = e.strip_prefix('.').unwrap_or(e);
    host(e)
}

/// The URL's words: lowercase runs of letters and digits, after
/// percent-decoding. This follows datatrove's `URLFilter`, which splits on
/// `[^a-zA-Z0-9]+`, with three differences: the URL is lowercased (hosts
/// are case-insensitive), `%XX` escapes are decoded (`Sexy%20Girls` yields
/// `sexy`, `girls` rather than `Sexy`, `20Girls`), and non-ASCII letters
/// belong to words (`contemporánea` is one word, not `contempor`, `nea`).
pub fn words(url: &str) -> Vec<String> {
    let decoded = percent_decode_lower(url);
    decoded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The URL lowercased, percent-decoded, with every character that is not
/// a letter or digit removed (datatrove's `normalize`, which also drops
/// non-ASCII letters: keeping them stops `porn` from matching inside
/// `contemporánea`), for substring matching.
pub fn squashed(url: &str) -> String {
    let mut s = percent_decode_lower(url);
    s.retain(char::is_alphanumeric);
    s
}

/// Lowercases `url` and decodes `%XX` escapes. Decoded bytes that do not
/// form valid UTF-8 become U+FFFD (a separator for [`words`]).
fn percent_decode_lower(url: &str) -> String {
    let b = url.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).to_lowercase()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_found_with_or_without_scheme() {
        assert_eq!(
            host("https://A.Example.com/x").as_deref(),
            Some("a.example.com")
        );
        assert_eq!(host("a.example.com/x?y").as_deref(), Some("a.example.com"));
        assert_eq!(
            host("http://user:pw@a.example.com:8080/").as_deref(),
            Some("a.example.com")
        );
        assert_eq!(host("//a.example.com.").as_deref(), Some("a.example.com"));
        assert_eq!(
            host("http://[2001:DB8::1]:80/x").as_deref(),
            Some("[2001:db8::1]")
        );
        assert_eq!(
            host("16thfleet.wikidot.com/chatter:anewhome").as_deref(),
            Some("16thfleet.wikidot.com")
        );
        assert_eq!(host("http:///path"), None);
        assert_eq!(host(""), None);
        assert_eq!(host("   "), None);
    }

    #[test]
    fn url_keys_ignore_scheme_port_fragment_and_trailing_slash() {
        let k = url_key("HTTPS://A.example:443/x/?q#top");
        assert_eq!(k.as_deref(), Some("a.example/x/?q"));
        assert_eq!(url_key("a.example/x/?q").as_deref(), Some("a.example/x/?q"));
        assert_eq!(url_key("http://a.example/").as_deref(), Some("a.example"));
        assert_eq!(
            url_key("http://a.example/Path").as_deref(),
            Some("a.example/Path")
        );
    }

    #[test]
    fn parents_are_walked_except_for_ip_literals() {
        assert_eq!(
            host_and_parents("a.b.example"),
            ["a.b.example", "b.example", "example"]
        );
        assert_eq!(host_and_parents("10.0.0.1"), ["10.0.0.1"]);
        assert_eq!(host_and_parents("[::1]"), ["[::1]"]);
    }

    #[test]
    fn registrable_domains_are_approximated() {
        assert_eq!(registrable_labels("www.example.com"), 2);
        assert_eq!(registrable_labels("www.example.co.uk"), 3);
        assert_eq!(registrable_labels("example.com.br"), 3);
        assert_eq!(registrable_labels("a.b.example.org"), 2);
        assert_eq!(registrable_labels("1.2.3.4"), 1);
    }

    #[test]
    fn words_are_lowercase_ascii_alnum_runs_after_decoding() {
        assert_eq!(
            words("https://Sexy%20Girls.example/a_b"),
            ["https", "sexy", "girls", "example", "a", "b"]
        );
        assert_eq!(words("%"), Vec::<String>::new());
        assert_eq!(words("%4"), ["4"]);
        assert_eq!(words("x%ZZy"), ["x", "zzy"]);
        assert_eq!(words("Ünï-cödé"), ["ünï", "cödé"]);
        assert_eq!(words("a%C3%A9b%FFc"), ["aéb", "c"]);
        assert_eq!(squashed("Free-PORN_clips.example"), "freepornclipsexample");
        assert_eq!(
            squashed("/Am%C3%A9rica-contempor%C3%A1nea"),
            "américacontemporánea"
        );
    }

    #[test]
    fn domain_entries_are_normalised() {
        assert_eq!(
            normalize_domain("  *.Bad.Example. ").as_deref(),
            Some("bad.example")
        );
        assert_eq!(
            normalize_domain(".bad.example").as_deref(),
            Some("bad.example")
        );
        assert_eq!(
            normalize_domain("http://bad.example/x").as_deref(),
            Some("bad.example")
        );
        assert_eq!(normalize_domain(""), None);
    }
}
