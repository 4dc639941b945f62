//! [`UrlFilter`]: drops documents by their URL, following RefinedWeb's URL
//! filter as reproduced by datatrove's `URLFilter`.

use std::path::PathBuf;
use std::sync::Arc;

use refinery_corpus::{Document, Filter, Verdict};
use serde::{Deserialize, Serialize};

use crate::lists::Lists;
use crate::url::{
    host, host_and_parents, label_count, registrable_labels, squashed, url_key, words,
};
use crate::ConfigError;

/// Drop reason: the document has no URL (only with `drop_missing_url`).
pub const REASON_MISSING: &str = "url:missing";
/// Drop reason: the host is, or is under, an `excluded_domains` entry.
pub const REASON_EXCLUDED_DOMAIN: &str = "url:excluded_domain";
/// Drop reason: the host's registrable domain, or a parent of it, is
/// blocked (e.g. `bad.example` blocks `www.bad.example`).
pub const REASON_BLOCKED_DOMAIN: &str = "url:blocked_domain";
/// Drop reason: a blocked entry is a subdomain: longer than the host's
/// registrable domain (e.g. `ads.good.example` blocked, `good.example` not).
pub const REASON_BLOCKED_SUBDOMAIN: &str = "url:blocked_subdomain";
/// Drop reason: the URL is in the exact-URL blocklist.
pub const REASON_BLOCKED_URL: &str = "url:blocked_url";
/// Drop reason: one of the URL's words is a hard-banned word.
pub const REASON_HARD_BANNED_WORD: &str = "url:hard_banned_word";
/// Drop reason: the URL holds at least `soft_word_threshold` distinct
/// soft-banned words.
pub const REASON_SOFT_BANNED_WORDS: &str = "url:soft_banned_words";
/// Drop reason: the squashed URL contains a banned substring.
pub const REASON_BANNED_SUBWORD: &str = "url:banned_subword";

/// Configuration of [`UrlFilter`]. With the defaults it uses only the
/// shipped lists (reserved and fictional domains, generic adult and
/// gambling words), keeps documents without a URL, and excludes nothing.
///
/// List files hold one entry per line; blank lines and `#` comments are
/// ignored. Relative paths are relative to the working directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UrlFilterConfig {
    /// Use the lists shipped in `crates/url-filter/lists/` (default true).
    pub default_lists: bool,
    /// Extra blocked domains; each blocks itself and all its subdomains.
    pub blocked_domains: Vec<String>,
    /// A file of blocked domains.
    pub blocked_domains_file: Option<PathBuf>,
    /// A file of blocked URLs, matched exactly after normalisation (scheme,
    /// port, fragment and trailing `/` ignored; host lowercased).
    pub blocked_urls_file: Option<PathBuf>,
    /// Extra hard-banned words: one in the URL's words drops it.
    pub banned_words: Vec<String>,
    /// A file of hard-banned words.
    pub banned_words_file: Option<PathBuf>,
    /// Extra soft-banned words.
    pub soft_banned_words: Vec<String>,
    /// A file of soft-banned words.
    pub soft_banned_words_file: Option<PathBuf>,
    /// A file of banned substrings of the squashed URL (datatrove's
    /// `banned_subwords`).
    pub banned_subwords_file: Option<PathBuf>,
    /// A UT1-style directory: `<ut1_dir>/<category>/domains` and
    /// `<ut1_dir>/<category>/urls`.
    pub ut1_dir: Option<PathBuf>,
    /// UT1 categories to use. Unset: RefinedWeb's ten (`adult`, `phishing`,
    /// `dating`, `gambling`, `filehosting`, `ddos`, `agressif`, `chat`,
    /// `mixed_adult`, `arjel`), skipping those absent. Set: exactly these,
    /// each of which must exist.
    pub ut1_categories: Option<Vec<String>>,
    /// Distinct soft-banned words that drop a URL (default 2, as RefinedWeb).
    pub soft_word_threshold: usize,
    /// Domains to drop because they are used elsewhere (RefinedWeb drops
    /// Wikipedia, arXiv, …); default none.
    pub excluded_domains: Vec<String>,
    /// Drop documents without `metadata.url` as `url:missing` (default
    /// false: keep them).
    pub drop_missing_url: bool,
}

impl Default for UrlFilterConfig {
    fn default() -> Self {
        UrlFilterConfig {
            default_lists: true,
            blocked_domains: Vec::new(),
            blocked_domains_file: None,
            blocked_urls_file: None,
            banned_words: Vec::new(),
            banned_words_file: None,
            soft_banned_words: Vec::new(),
            soft_banned_words_file: None,
            banned_subwords_file: None,
            ut1_dir: None,
            ut1_categories: None,
            soft_word_threshold: 2,
            excluded_domains: Vec::new(),
            drop_missing_url: false,
        }
    }
}

impl UrlFilterConfig {
    /// Checks the config, loads (or reuses) its lists and builds the filter.
    /// Fails on `soft_word_threshold = 0` and on unreadable list files.
    pub fn validate(self) -> Result<UrlFilter, ConfigError> {
        if self.soft_word_threshold == 0 {
            return Err(ConfigError::new(
                "soft_word_threshold",
                "must be at least 1",
            ));
        }
        let lists = Lists::shared(&self)?;
        Ok(UrlFilter {
            config: self,
            lists,
        })
    }
}

/// Drops documents by `metadata.url`. Checks, in order, and the first hit
/// gives the reason:
///
/// 1. no URL: kept, or `url:missing` with `drop_missing_url`;
/// 2. the host or a parent domain is excluded: `url:excluded_domain`;
/// 3. the host or a parent domain is blocked: `url:blocked_domain` when the
///    blocked entry is the registrable domain or shorter,
///    `url:blocked_subdomain` when it is longer;
/// 4. the normalised URL is blocked: `url:blocked_url`;
/// 5. a URL word is hard-banned: `url:hard_banned_word`;
/// 6. at least `soft_word_threshold` distinct soft-banned words:
///    `url:soft_banned_words`;
/// 7. a banned substring in the squashed URL: `url:banned_subword`.
///
/// The lists are shared by all instances with the same config.
#[derive(Clone, Debug)]
pub struct UrlFilter {
    config: UrlFilterConfig,
    lists: Arc<Lists>,
}

impl UrlFilter {
    /// Same as [`UrlFilterConfig::validate`].
    pub fn new(config: UrlFilterConfig) -> Result<Self, ConfigError> {
        config.validate()
    }

    pub fn config(&self) -> &UrlFilterConfig {
        &self.config
    }

    /// The drop reason for `url`, or `None` to keep it.
    pub fn check_url(&self, url: &str) -> Option<&'static str> {
        let l = &*self.lists;
        if let Some(host) = host(url) {
            let parents = host_and_parents(&host);
            if parents.iter().any(|d| l.excluded_domains.contains(d)) {
                return Some(REASON_EXCLUDED_DOMAIN);
            }
            // Shortest first, so a blocked domain wins over a blocked
            // subdomain of it.
            let registrable = registrable_labels(&host);
            if let Some(d) = parents.iter().rev().find(|d| l.blocked_domains.contains(d)) {
                return Some(if label_count(d) <= registrable {
                    REASON_BLOCKED_DOMAIN
                } else {
                    REASON_BLOCKED_SUBDOMAIN
                });
            }
            if l.blocked_urls.len() > 0 {
                if let Some(key) = url_key(url) {
                    if l.blocked_urls.contains(&key) {
                        return Some(REASON_BLOCKED_URL);
                    }
                }
            }
        }
        if !l.banned_words.is_empty() || !l.soft_banned_words.is_empty() {
            let words = words(url);
            if words.iter().any(|w| l.banned_words.contains(w)) {
                return Some(REASON_HARD_BANNED_WORD);
            }
            let mut soft: Vec<&str> = words
                .iter()
                .filter(|w| l.soft_banned_words.contains(*w))
                .map(String::as_str)
                .collect();
            soft.sort_unstable();
            soft.dedup();
            if soft.len() >= self.config.soft_word_threshold {
                return Some(REASON_SOFT_BANNED_WORDS);
            }
        }
        if let Some(ac) = &l.banned_subwords {
            if ac.is_match(&squashed(url)) {
                return Some(REASON_BANNED_SUBWORD);
            }
        }
        None
    }
}

impl Filter for UrlFilter {
    fn filter(&mut self, doc: &Document) -> Verdict {
        let url = doc.metadata.url.as_deref().map(str::trim).unwrap_or("");
        if url.is_empty() {
            return if self.config.drop_missing_url {
                Verdict::drop(REASON_MISSING)
            } else {
                Verdict::Keep
            };
        }
        match self.check_url(url) {
            Some(r) => Verdict::drop(r),
            None => Verdict::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn doc(url: Option<&str>) -> Document {
        let mut d = Document::new("1", "text", "mem");
        d.metadata.url = url.map(str::to_string);
        d
    }

    fn run(c: UrlFilterConfig, url: &str) -> Verdict {
        c.validate().unwrap().filter(&doc(Some(url)))
    }

    /// A config with only the given domains and no shipped lists.
    fn only(domains: &[&str]) -> UrlFilterConfig {
        UrlFilterConfig {
            default_lists: false,
            blocked_domains: domains.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn missing_url_is_kept_by_default_and_dropped_on_request() {
        assert_eq!(REASON_MISSING, "url:missing");
        let mut f = UrlFilterConfig::default().validate().unwrap();
        assert_eq!(f.filter(&doc(None)), Verdict::Keep);
        assert_eq!(f.filter(&doc(Some("  "))), Verdict::Keep);
        let mut f = UrlFilterConfig {
            drop_missing_url: true,
            ..Default::default()
        }
        .validate()
        .unwrap();
        assert_eq!(f.filter(&doc(None)), Verdict::drop(REASON_MISSING));
        assert_eq!(f.filter(&doc(Some(""))), Verdict::drop(REASON_MISSING));
        assert_eq!(
            f.filter(&doc(Some("https://fine.example.org/"))),
            Verdict::Keep
        );
    }

    #[test]
    fn blocked_domain_covers_the_domain_and_every_subdomain() {
        assert_eq!(REASON_BLOCKED_DOMAIN, "url:blocked_domain");
        let c = only(&["badsite.com", "evil.co.uk"]);
        for u in [
            "https://badsite.com/",
            "http://www.badsite.com/x",
            "a.b.c.BADSITE.com:8080/x?y",
            "https://user@badsite.com./",
            "https://www.evil.co.uk/page",
        ] {
            assert_eq!(
                run(c.clone(), u),
                Verdict::drop(REASON_BLOCKED_DOMAIN),
                "{u}"
            );
        }
        for u in [
            "https://notbadsite.com/",
            "https://example.com/badsite.com",
            "https://co.uk/",
        ] {
            assert_eq!(run(c.clone(), u), Verdict::Keep, "{u}");
        }
    }

    #[test]
    fn blocked_subdomain_covers_only_that_subdomain() {
        assert_eq!(REASON_BLOCKED_SUBDOMAIN, "url:blocked_subdomain");
        let c = only(&["ads.good.example.com", "spam.shop.co.uk"]);
        assert_eq!(
            run(c.clone(), "https://ads.good.example.com/"),
            Verdict::drop(REASON_BLOCKED_SUBDOMAIN)
        );
        assert_eq!(
            run(c.clone(), "https://x.ads.good.example.com/"),
            Verdict::drop(REASON_BLOCKED_SUBDOMAIN)
        );
        assert_eq!(
            run(c.clone(), "https://spam.shop.co.uk/"),
            Verdict::drop(REASON_BLOCKED_SUBDOMAIN)
        );
        assert_eq!(
            run(c.clone(), "https://good.example.com/ads"),
            Verdict::Keep
        );
        assert_eq!(
            run(c.clone(), "https://www.good.example.com/"),
            Verdict::Keep
        );
        assert_eq!(run(c, "https://shop.co.uk/"), Verdict::Keep);
    }

    #[test]
    fn shipped_domain_list_blocks_reserved_tlds() {
        let c = UrlFilterConfig::default();
        assert_eq!(
            run(c.clone(), "http://anything.invalid/"),
            Verdict::drop(REASON_BLOCKED_DOMAIN)
        );
        assert_eq!(
            run(c.clone(), "http://www.casino-jackpot.example/"),
            Verdict::drop(REASON_BLOCKED_DOMAIN)
        );
        assert_eq!(run(c, "https://example.com/"), Verdict::Keep);
    }

    #[test]
    fn blocked_url_matches_after_normalisation() {
        assert_eq!(REASON_BLOCKED_URL, "url:blocked_url");
        let f = file("# urls\nhttp://good.example.org/bad/page\ngood.example.org/other?id=3\n");
        let c = UrlFilterConfig {
            default_lists: false,
            blocked_urls_file: Some(f.path().to_path_buf()),
            ..Default::default()
        };
        for u in [
            "http://good.example.org/bad/page",
            "https://GOOD.example.org/bad/page/",
            "good.example.org:80/bad/page#frag",
            "https://good.example.org/other?id=3",
        ] {
            assert_eq!(run(c.clone(), u), Verdict::drop(REASON_BLOCKED_URL), "{u}");
        }
        for u in [
            "http://good.example.org/bad",
            "http://good.example.org/bad/page2",
            "http://good.example.org/other?id=4",
        ] {
            assert_eq!(run(c.clone(), u), Verdict::Keep, "{u}");
        }
    }

    #[test]
    fn hard_banned_word_matches_whole_url_words() {
        assert_eq!(REASON_HARD_BANNED_WORD, "url:hard_banned_word");
        let c = UrlFilterConfig::default();
        assert_eq!(
            run(c.clone(), "https://videos.example.org/free-PORN/1"),
            Verdict::drop(REASON_HARD_BANNED_WORD)
        );
        assert_eq!(
            run(c.clone(), "https://xxx.example.org/"),
            Verdict::drop(REASON_HARD_BANNED_WORD)
        );
        assert_eq!(
            run(c.clone(), "https://example.org/a%20xxx%20b"),
            Verdict::drop(REASON_HARD_BANNED_WORD)
        );
        // Words only: `xxxl` is a clothing size, not a banned word.
        assert_eq!(
            run(c, "https://shop.example.org/shirts-xxxl"),
            Verdict::Keep
        );
        // A user word list, normalised like the URL.
        let f = file("Forbidden-Word\n");
        let c = UrlFilterConfig {
            default_lists: false,
            banned_words_file: Some(f.path().to_path_buf()),
            ..Default::default()
        };
        assert_eq!(
            run(c.clone(), "https://a.example.org/forbiddenword"),
            Verdict::drop(REASON_HARD_BANNED_WORD)
        );
        assert_eq!(
            run(c, "https://a.example.org/forbidden-word"),
            Verdict::Keep
        );
    }

    #[test]
    fn soft_banned_words_need_the_threshold_of_distinct_words() {
        assert_eq!(REASON_SOFT_BANNED_WORDS, "url:soft_banned_words");
        let c = UrlFilterConfig::default();
        assert_eq!(
            run(c.clone(), "https://news.example.org/casino-opens-downtown"),
            Verdict::Keep
        );
        assert_eq!(
            run(c.clone(), "https://news.example.org/casino/casino"),
            Verdict::Keep
        );
        assert_eq!(
            run(
                c.clone(),
                "https://news.example.org/online-casino-poker-bonus"
            ),
            Verdict::drop(REASON_SOFT_BANNED_WORDS)
        );
        let c3 = UrlFilterConfig {
            soft_word_threshold: 3,
            ..Default::default()
        };
        assert_eq!(
            run(c3.clone(), "https://x.example.org/casino-poker"),
            Verdict::Keep
        );
        assert_eq!(
            run(c3, "https://x.example.org/casino-poker-slots"),
            Verdict::drop(REASON_SOFT_BANNED_WORDS)
        );
        let inline = UrlFilterConfig {
            default_lists: false,
            soft_banned_words: vec!["alpha".into(), "beta".into()],
            ..Default::default()
        };
        assert_eq!(
            run(inline, "https://x.example.org/Alpha/Beta"),
            Verdict::drop(REASON_SOFT_BANNED_WORDS)
        );
    }

    #[test]
    fn banned_subword_matches_inside_words() {
        assert_eq!(REASON_BANNED_SUBWORD, "url:banned_subword");
        let c = UrlFilterConfig::default();
        assert_eq!(
            run(c.clone(), "https://freepornclips.example.org/"),
            Verdict::drop(REASON_BANNED_SUBWORD)
        );
        assert_eq!(
            run(c.clone(), "https://www.essex.example.org/middlesex"),
            Verdict::Keep
        );
        // A real URL that squashing to ASCII would turn into `…contempornea`.
        let u = "http://link.libraries.ou.edu/portal/Am%C3%A9rica-literaria-contempor%C3%A1nea--una-mirada/x/";
        assert_eq!(run(c, u), Verdict::Keep);
    }

    #[test]
    fn excluded_domains_are_dropped_first() {
        assert_eq!(REASON_EXCLUDED_DOMAIN, "url:excluded_domain");
        let c = UrlFilterConfig {
            excluded_domains: vec!["wikipedia.org".into(), "arxiv.org".into()],
            blocked_domains: vec!["wikipedia.org".into()],
            ..Default::default()
        };
        assert_eq!(
            run(c.clone(), "https://en.wikipedia.org/wiki/X"),
            Verdict::drop(REASON_EXCLUDED_DOMAIN)
        );
        assert_eq!(
            run(c.clone(), "arxiv.org/abs/2306.01116"),
            Verdict::drop(REASON_EXCLUDED_DOMAIN)
        );
        assert_eq!(run(c.clone(), "https://notwikipedia.org/"), Verdict::Keep);
        assert_eq!(
            run(
                UrlFilterConfig::default(),
                "https://en.wikipedia.org/wiki/X"
            ),
            Verdict::Keep
        );
    }

    #[test]
    fn ut1_directory_categories() {
        let dir = tempfile::tempdir().unwrap();
        for (cat, domains, urls) in [
            ("adult", "adultsite.net\n", "ok.example.net/adult-page\n"),
            ("gambling", "bets.example.net\n", ""),
            ("news", "news.example.net\n", ""),
        ] {
            std::fs::create_dir(dir.path().join(cat)).unwrap();
            std::fs::write(dir.path().join(cat).join("domains"), domains).unwrap();
            std::fs::write(dir.path().join(cat).join("urls"), urls).unwrap();
        }
        let c = UrlFilterConfig {
            default_lists: false,
            ut1_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        // Default categories: RefinedWeb's, `news` is not among them.
        assert_eq!(
            run(c.clone(), "http://www.adultsite.net/"),
            Verdict::drop(REASON_BLOCKED_DOMAIN)
        );
        assert_eq!(
            run(c.clone(), "http://bets.example.net/"),
            Verdict::drop(REASON_BLOCKED_SUBDOMAIN)
        );
        assert_eq!(
            run(c.clone(), "http://ok.example.net/adult-page"),
            Verdict::drop(REASON_BLOCKED_URL)
        );
        assert_eq!(run(c.clone(), "http://news.example.net/"), Verdict::Keep);
        let news = UrlFilterConfig {
            ut1_categories: Some(vec!["news".into()]),
            ..c.clone()
        };
        assert_eq!(
            run(news.clone(), "http://news.example.net/"),
            Verdict::drop(REASON_BLOCKED_SUBDOMAIN)
        );
        assert_eq!(run(news, "http://bets.example.net/"), Verdict::Keep);
        let missing = UrlFilterConfig {
            ut1_categories: Some(vec!["nope".into()]),
            ..c.clone()
        };
        assert_eq!(missing.validate().unwrap_err().field, "ut1_categories");
        let bad = UrlFilterConfig {
            ut1_categories: Some(vec!["../x".into()]),
            ..c
        };
        assert_eq!(bad.validate().unwrap_err().field, "ut1_categories");
        let empty = tempfile::tempdir().unwrap();
        let none = UrlFilterConfig {
            ut1_dir: Some(empty.path().to_path_buf()),
            ..Default::default()
        };
        assert_eq!(none.validate().unwrap_err().field, "ut1_dir");
    }

    #[test]
    fn config_from_json_and_validation() {
        let c: UrlFilterConfig = serde_json::from_str(
            r#"{"soft_word_threshold": 3, "excluded_domains": ["arxiv.org"]}"#,
        )
        .unwrap();
        assert_eq!(c.soft_word_threshold, 3);
        assert!(c.default_lists);
        assert_eq!(
            serde_json::from_str::<UrlFilterConfig>("{}").unwrap(),
            UrlFilterConfig::default()
        );
        assert!(serde_json::from_str::<UrlFilterConfig>(r#"{"blocked_domain": []}"#).is_err());
        let e = UrlFilterConfig {
            soft_word_threshold: 0,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "soft_word_threshold");
        let e = UrlFilterConfig {
            blocked_domains_file: Some("/nonexistent/list.txt".into()),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "blocked_domains_file");
        assert!(e.message.contains("/nonexistent/list.txt"), "{e}");
    }

    #[test]
    fn odd_urls_never_panic() {
        let mut f = UrlFilterConfig::default().validate().unwrap();
        for u in [
            "::",
            "://",
            "http://",
            "[",
            "http://[::1",
            "%",
            "%%%",
            "a@b@c",
            "http://a..b/",
            ".",
            "..",
            "http://\u{1F600}.example/",
            "mailto:x@y",
            "javascript:void(0)",
            "http://1.2.3.4:99999/",
        ] {
            let _ = f.filter(&doc(Some(u)));
        }
    }
}
