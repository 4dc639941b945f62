//! # refinery-urlfilter
//!
//! The URL filter of RefinedWeb (Penedo et al. 2023, stage 1) and FineWeb,
//! following the logic of datatrove's `URLFilter`: a domain blocklist
//! matched against the host and every parent domain, an exact-URL
//! blocklist, hard-banned words (one is enough) and soft-banned words (at
//! least two distinct ones) matched against the URL's words, and banned
//! substrings of the squashed URL. Documents from `excluded_domains`
//! (RefinedWeb drops Wikipedia, arXiv, … to use them elsewhere) can be
//! dropped too.
//!
//! The shipped lists (`lists/*.txt`) were written for refinery and are
//! small: reserved and fictional domains, generic adult and gambling words.
//! Real runs supply real lists: `blocked_domains_file`, `blocked_urls_file`,
//! `banned_words_file`, `soft_banned_words_file`, `banned_subwords_file`,
//! or a UT1-style `ut1_dir`.
//!
//! | reason | when |
//! |---|---|
//! | `url:missing` | no URL, with `drop_missing_url` (kept by default) |
//! | `url:excluded_domain` | the host is under an `excluded_domains` entry |
//! | `url:blocked_domain` | the registrable domain or a parent is blocked |
//! | `url:blocked_subdomain` | a subdomain of the registrable domain is blocked |
//! | `url:blocked_url` | the normalised URL is blocked |
//! | `url:hard_banned_word` | a URL word is hard-banned |
//! | `url:soft_banned_words` | ≥ `soft_word_threshold` distinct soft-banned words |
//! | `url:banned_subword` | a banned substring of the squashed URL |
//!
//! ```
//! use refinery_corpus::{Document, Filter, Verdict};
//! use refinery_urlfilter::{UrlFilterConfig, REASON_BLOCKED_DOMAIN};
//!
//! let mut f = UrlFilterConfig {
//!     blocked_domains: vec!["spamsite.net".into()],
//!     ..Default::default()
//! }
//! .validate()?;
//! let mut d = Document::new("1", "text", "mem");
//! d.metadata.url = Some("https://www.spamsite.net/page".into());
//! assert_eq!(f.filter(&d), Verdict::drop(REASON_BLOCKED_DOMAIN));
//! # Ok::<(), refinery_urlfilter::ConfigError>(())
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod filter;
mod lists;
pub mod url;

pub use filter::{
    UrlFilter, UrlFilterConfig, REASON_BANNED_SUBWORD, REASON_BLOCKED_DOMAIN,
    REASON_BLOCKED_SUBDOMAIN, REASON_BLOCKED_URL, REASON_EXCLUDED_DOMAIN, REASON_HARD_BANNED_WORD,
    REASON_MISSING, REASON_SOFT_BANNED_WORDS,
};
pub use lists::{
    DEFAULT_BANNED_SUBWORDS, DEFAULT_BANNED_WORDS, DEFAULT_BLOCKED_DOMAINS,
    DEFAULT_SOFT_BANNED_WORDS, REFINEDWEB_UT1_CATEGORIES,
};

/// A configuration value that makes no sense; `field` names it (shared by the stage crates).
pub use refinery_corpus::ConfigError;
