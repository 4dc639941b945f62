//! Block lists: the shipped defaults, user files and UT1-style directories,
//! loaded once per process and shared between tasks.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use aho_corasick::AhoCorasick;

use crate::url::{normalize_domain, url_key};
use crate::{ConfigError, UrlFilterConfig};

/// The shipped domain list (`lists/blocked_domains.txt`): reserved TLDs and
/// fictional domains only, a format example.
pub const DEFAULT_BLOCKED_DOMAINS: &str = include_str!("../lists/blocked_domains.txt");
/// The shipped hard-banned words (`lists/banned_words.txt`).
pub const DEFAULT_BANNED_WORDS: &str = include_str!("../lists/banned_words.txt");
/// The shipped soft-banned words (`lists/soft_banned_words.txt`).
pub const DEFAULT_SOFT_BANNED_WORDS: &str = include_str!("../lists/soft_banned_words.txt");
/// The shipped banned substrings (`lists/banned_subwords.txt`).
pub const DEFAULT_BANNED_SUBWORDS: &str = include_str!("../lists/banned_subwords.txt");

/// The UT1 categories RefinedWeb blocked (Penedo et al. 2023, appendix G.1),
/// used when `ut1_categories` is not set.
pub const REFINEDWEB_UT1_CATEGORIES: &[&str] = &[
    "adult",
    "phishing",
    "dating",
    "gambling",
    "filehosting",
    "ddos",
    "agressif",
    "chat",
    "mixed_adult",
    "arjel",
];

/// A hasher for keys that already are 64-bit hashes (xxh3).
#[derive(Default)]
pub(crate) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else for safety.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A set of strings stored as their xxh3-64 hashes: 8 bytes per entry
/// (about 60 MB for UT1's 4.6 M domains instead of ~300 MB of strings). The
/// chance that a lookup collides with one of n entries is n / 2^64.
#[derive(Clone, Debug, Default)]
pub(crate) struct HashedSet(HashSet<u64, BuildHasherDefault<PreHashed>>);

impl HashedSet {
    pub(crate) fn insert(&mut self, s: &str) {
        self.0.insert(xxhash_rust::xxh3::xxh3_64(s.as_bytes()));
    }
    pub(crate) fn contains(&self, s: &str) -> bool {
        self.0.contains(&xxhash_rust::xxh3::xxh3_64(s.as_bytes()))
    }
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Every list of one configuration, ready for lookups.
#[derive(Debug, Default)]
pub(crate) struct Lists {
    pub(crate) blocked_domains: HashedSet,
    pub(crate) blocked_urls: HashedSet,
    pub(crate) excluded_domains: HashedSet,
    pub(crate) banned_words: HashSet<String>,
    pub(crate) soft_banned_words: HashSet<String>,
    pub(crate) banned_subwords: Option<AhoCorasick>,
}

/// Entries of a list file's text: trimmed lines, without blank lines and
/// `#` comments (whole-line, or after whitespace at the end of an entry).
fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|l| {
        let l = match l.find(" #").or_else(|| l.find("\t#")) {
            Some(i) => &l[..i],
            None => l,
        };
        let l = l.trim();
        (!l.is_empty() && !l.starts_with('#')).then_some(l)
    })
}

/// A word list entry: lowercase, letters and digits only (datatrove
/// normalises its word lists the same way, keeping ASCII only).
fn normalize_word(w: &str) -> Option<String> {
    let mut s = w.to_lowercase();
    s.retain(char::is_alphanumeric);
    (!s.is_empty()).then_some(s)
}

fn read(path: &Path, field: &str) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(field, format!("cannot read {}: {e}", path.display())))?;
    // UT1 lists are ASCII; tolerate stray invalid bytes rather than failing.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn add_domains(set: &mut HashedSet, text: &str) {
    for e in entries(text) {
        if let Some(d) = normalize_domain(e) {
            set.insert(&d);
        }
    }
}

fn add_urls(set: &mut HashedSet, text: &str) {
    for e in entries(text) {
        if let Some(k) = url_key(e) {
            set.insert(&k);
        }
    }
}

fn add_words(set: &mut HashSet<String>, text: &str) {
    set.extend(entries(text).filter_map(normalize_word));
}

impl Lists {
    /// Loads every list `cfg` names. Errors name the config field.
    pub(crate) fn load(cfg: &UrlFilterConfig) -> Result<Lists, ConfigError> {
        let mut l = Lists::default();
        let mut subwords: HashSet<String> = HashSet::new();
        if cfg.default_lists {
            add_domains(&mut l.blocked_domains, DEFAULT_BLOCKED_DOMAINS);
            add_words(&mut l.banned_words, DEFAULT_BANNED_WORDS);
            add_words(&mut l.soft_banned_words, DEFAULT_SOFT_BANNED_WORDS);
            add_words(&mut subwords, DEFAULT_BANNED_SUBWORDS);
        }
        for d in &cfg.blocked_domains {
            add_domains(&mut l.blocked_domains, d);
        }
        for w in &cfg.banned_words {
            add_words(&mut l.banned_words, w);
        }
        for w in &cfg.soft_banned_words {
            add_words(&mut l.soft_banned_words, w);
        }
        for d in &cfg.excluded_domains {
            add_domains(&mut l.excluded_domains, d);
        }
        if let Some(p) = &cfg.blocked_domains_file {
            add_domains(&mut l.blocked_domains, &read(p, "blocked_domains_file")?);
        }
        if let Some(p) = &cfg.blocked_urls_file {
            add_urls(&mut l.blocked_urls, &read(p, "blocked_urls_file")?);
        }
        if let Some(p) = &cfg.banned_words_file {
            add_words(&mut l.banned_words, &read(p, "banned_words_file")?);
        }
        if let Some(p) = &cfg.soft_banned_words_file {
            add_words(
                &mut l.soft_banned_words,
                &read(p, "soft_banned_words_file")?,
            );
        }
        if let Some(p) = &cfg.banned_subwords_file {
            add_words(&mut subwords, &read(p, "banned_subwords_file")?);
        }
        if let Some(dir) = &cfg.ut1_dir {
            l.load_ut1(dir, cfg.ut1_categories.as_deref())?;
        }
        if !subwords.is_empty() {
            let mut subwords: Vec<String> = subwords.into_iter().collect();
            subwords.sort();
            let ac = AhoCorasick::new(&subwords)
                .map_err(|e| ConfigError::new("banned_subwords_file", e.to_string()))?;
            l.banned_subwords = Some(ac);
        }
        Ok(l)
    }

    /// Reads `<dir>/<category>/domains` and `<dir>/<category>/urls`.
    /// Explicit categories must exist; with the RefinedWeb default, absent
    /// categories are skipped, but at least one must be present.
    fn load_ut1(&mut self, dir: &Path, categories: Option<&[String]>) -> Result<(), ConfigError> {
        if !dir.is_dir() {
            return Err(ConfigError::new(
                "ut1_dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        let explicit = categories.is_some();
        let cats: Vec<String> = match categories {
            Some(c) => c.to_vec(),
            None => REFINEDWEB_UT1_CATEGORIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let mut found = 0;
        for cat in &cats {
            if cat.is_empty() || cat.contains(['/', '\\']) || cat == ".." {
                return Err(ConfigError::new(
                    "ut1_categories",
                    format!("{cat:?} is not a category name"),
                ));
            }
            let cdir = dir.join(cat);
            if !cdir.is_dir() {
                if explicit {
                    return Err(ConfigError::new(
                        "ut1_categories",
                        format!("category {cat:?} not found in {}", dir.display()),
                    ));
                }
                continue;
            }
            found += 1;
            let domains = cdir.join("domains");
            if domains.is_file() {
                add_domains(&mut self.blocked_domains, &read(&domains, "ut1_dir")?);
            }
            let urls = cdir.join("urls");
            if urls.is_file() {
                add_urls(&mut self.blocked_urls, &read(&urls, "ut1_dir")?);
            }
        }
        if found == 0 {
            return Err(ConfigError::new(
                "ut1_dir",
                format!(
                    "none of the categories {} found in {}",
                    cats.join(", "),
                    dir.display()
                ),
            ));
        }
        Ok(())
    }

    /// The lists of `cfg`, loaded at most once per process: the registry
    /// builds one filter per task, and a UT1 list takes seconds to read.
    pub(crate) fn shared(cfg: &UrlFilterConfig) -> Result<Arc<Lists>, ConfigError> {
        type Cache = Mutex<HashMap<String, Arc<Lists>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        // The config's debug form is a faithful key (paths, lists, flags).
        let key = format!("{cfg:?}");
        let cache = CACHE.get_or_init(Cache::default);
        let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = guard.get(&key) {
            return Ok(Arc::clone(l));
        }
        let lists = Arc::new(Lists::load(cfg)?);
        guard.insert(key, Arc::clone(&lists));
        Ok(lists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_entries_skip_comments_and_blank_lines() {
        let got: Vec<_> =
            entries("# head\n\na.example\n  b.example  # note\n\t#x\nc\r\n").collect();
        assert_eq!(got, ["a.example", "b.example", "c"]);
    }

    #[test]
    fn shipped_lists_parse() {
        let l = Lists::load(&UrlFilterConfig::default()).unwrap();
        assert!(l.blocked_domains.len() >= 24, "{}", l.blocked_domains.len());
        assert!(l.banned_words.contains("porn"));
        assert!(l.soft_banned_words.contains("casino"));
        assert!(l.banned_subwords.is_some());
        for w in l.banned_words.iter() {
            assert!(
                !l.soft_banned_words.contains(w),
                "{w} is in both word lists"
            );
        }
    }

    #[test]
    fn words_are_normalised_like_datatrove() {
        assert_eq!(normalize_word("Hard-Core").as_deref(), Some("hardcore"));
        assert_eq!(normalize_word("--"), None);
        assert_eq!(
            normalize_word("Spielbank-Öffnung").as_deref(),
            Some("spielbanköffnung")
        );
    }
}
