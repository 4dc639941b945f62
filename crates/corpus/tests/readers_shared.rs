//! Readers over the real third-party WARC/ARC files in `../shared`:
//! exact per-file outcomes, cross-checked against Python `warcio`.
//!
//! The shared data lives at `$REFINERY_SHARED`, else `../shared` next to the
//! workspace root. Without it the tests print `skipping: ../shared not
//! found` and pass (a fresh clone has no shared data; CI has it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use refinery_corpus::readers::{open, ReaderOptions};
use refinery_corpus::{Document, Item};

fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("REFINERY_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    if dir.join("data/web/warc").is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipping: ../shared not found (looked in {})",
            dir.display()
        );
        None
    }
}

/// Expected outcome of one file.
struct Expect {
    /// Path under `data/web/warc/`.
    file: &'static str,
    docs: usize,
    dropped: &'static [(&'static str, usize)],
    failed: &'static [(&'static str, usize)],
    /// Record types per Python warcio 1.7 (`tests/fixtures/warcio_counts.py`),
    /// `html` = responses/resources with an HTML content type.
    warcio: &'static str,
}

/// Established by inspecting each file (record boundaries, HTTP heads,
/// content types) and cross-checked with `warcio_counts.py` (output copied
/// into `warcio`). Notes:
/// * example-bad-non-chunked.warc.gz and example-bad.warc.gz.bad are one gzip
///   member for the whole file, and example-wrong-chunks.warc.gz has a member
///   boundary inside a record: warcio refuses all three, so their warcio
///   counts come from the script's "via gunzip" fallback. refinery reads
///   them directly (multi-member stream decoding).
/// * example-wrong-chunks: the response's Content-Length is one byte short
///   (a stray `\n` follows it); example-trunc: two bytes short, cutting the
///   gzip trailer of a gzip-encoded body. Both still yield their document.
/// * example-space-in-url.arc: the Archive-length (1591) exceeds the data
///   (1579; the HTTP head was rewritten with bare LFs) but the HTTP message
///   is complete by its own Content-Length, so it is a document, not
///   `arc:truncated`.
/// * bad.arc: the filedesc and two records have lengths `-1`/`abc`
///   (`arc:bad_header`); the one parseable record is `text/plain`.
/// * resiliparse-clueweb-quirk: WARC/0.18, `Content-Encoding: gzip` headers
///   on bodies stored decoded (passed through), EUC-JP pages.
const EXPECTED: &[Expect] = &[
    Expect {
        file: "cc-whirlwind.warc.gz",
        docs: 1,
        dropped: &[
            ("warc:metadata", 1),
            ("warc:request", 1),
            ("warc:warcinfo", 1),
        ],
        failed: &[],
        warcio: "warcinfo=1 request=1 response=1 metadata=1 html=1",
    },
    Expect {
        file: "cc-whirlwind.warc.wat.gz",
        docs: 0,
        dropped: &[("warc:metadata", 1), ("warc:warcinfo", 1)],
        failed: &[],
        warcio: "warcinfo=1 metadata=1 html=0",
    },
    Expect {
        file: "cc-whirlwind.warc.wet.gz",
        docs: 1,
        dropped: &[("warc:warcinfo", 1)],
        failed: &[],
        warcio: "warcinfo=1 conversion=1 html=0",
    },
    Expect {
        file: "dolma-sample-0000.warc.gz",
        docs: 22,
        dropped: &[
            ("warc:metadata", 1),
            ("warc:non_html", 2),
            ("warc:request", 22),
            ("warc:warcinfo", 1),
        ],
        failed: &[],
        warcio: "warcinfo=1 request=22 response=22 metadata=1 resource=2 html=22",
    },
    Expect {
        file: "dolma-sample-0001.warc.gz",
        docs: 15,
        dropped: &[
            ("warc:metadata", 1),
            ("warc:non_html", 2),
            ("warc:request", 15),
            ("warc:warcinfo", 1),
        ],
        failed: &[],
        warcio: "warcinfo=1 request=15 response=15 metadata=1 resource=2 html=15",
    },
    Expect {
        file: "resiliparse-clueweb-quirk.warc.gz",
        docs: 29,
        dropped: &[("warc:warcinfo", 1)],
        failed: &[],
        warcio: "warcinfo=1 response=29 html=29",
    },
    Expect {
        file: "resiliparse-warcfile.warc.gz",
        docs: 16,
        dropped: &[
            ("warc:metadata", 16),
            ("warc:request", 17),
            ("warc:warcinfo", 1),
        ],
        failed: &[],
        warcio: "warcinfo=1 request=17 response=16 metadata=16 html=16",
    },
    Expect {
        file: "warcio-test-data/bad.arc",
        docs: 0,
        dropped: &[("arc:non_html", 1)],
        failed: &[("arc:bad_header", 3)],
        warcio: "arc_header=1 response=3 html=0",
    },
    Expect {
        file: "warcio-test-data/example-bad-non-chunked.warc.gz",
        docs: 1,
        dropped: &[
            ("warc:request", 2),
            ("warc:revisit", 1),
            ("warc:warcinfo", 2),
        ],
        failed: &[],
        warcio: "warcinfo=2 response=1 request=2 revisit=1 html=1",
    },
    Expect {
        file: "warcio-test-data/example-bad.warc.gz.bad",
        docs: 2,
        dropped: &[
            ("warc:request", 2),
            ("warc:revisit", 1),
            ("warc:warcinfo", 1),
        ],
        failed: &[],
        warcio: "warcinfo=1 response=2 request=2 revisit=1 html=2",
    },
    Expect {
        file: "warcio-test-data/example-digest.warc",
        docs: 0,
        dropped: &[("warc:request", 4)],
        failed: &[],
        warcio: "request=4 html=0",
    },
    Expect {
        file: "warcio-test-data/example-iana.org-chunked.warc",
        docs: 1,
        dropped: &[("warc:request", 1), ("warc:warcinfo", 1)],
        failed: &[],
        warcio: "warcinfo=1 response=1 request=1 html=1",
    },
    Expect {
        file: "warcio-test-data/example-resource.warc.gz",
        docs: 1,
        dropped: &[("warc:warcinfo", 2)],
        failed: &[],
        warcio: "warcinfo=2 resource=1 html=1",
    },
    Expect {
        file: "warcio-test-data/example-space-in-target-uri.warc.gz",
        docs: 0,
        dropped: &[("warc:non_html", 1), ("warc:warcinfo", 1)],
        failed: &[],
        warcio: "warcinfo=1 resource=1 html=0",
    },
    Expect {
        file: "warcio-test-data/example-space-in-url.arc",
        docs: 1,
        dropped: &[("arc:filedesc", 1)],
        failed: &[],
        warcio: "arc_header=1 response=1 html=1",
    },
    Expect {
        file: "warcio-test-data/example-trunc.warc",
        docs: 1,
        dropped: &[("warc:request", 1), ("warc:warcinfo", 2)],
        failed: &[],
        warcio: "warcinfo=2 response=1 request=1 html=1",
    },
    Expect {
        file: "warcio-test-data/example-wget-bad-target-uri.warc.gz",
        docs: 1,
        dropped: &[
            ("warc:metadata", 1),
            ("warc:non_html", 2),
            ("warc:request", 1),
            ("warc:warcinfo", 1),
        ],
        failed: &[],
        warcio: "warcinfo=1 request=1 response=1 metadata=1 resource=2 html=1",
    },
    Expect {
        file: "warcio-test-data/example-wrong-chunks.warc.gz",
        docs: 1,
        dropped: &[("warc:request", 1)],
        failed: &[],
        warcio: "response=1 request=1 html=1",
    },
    Expect {
        file: "warcio-test-data/example.arc",
        docs: 1,
        dropped: &[("arc:filedesc", 1)],
        failed: &[],
        warcio: "arc_header=1 response=1 html=1",
    },
    Expect {
        file: "warcio-test-data/example.arc.gz",
        docs: 1,
        dropped: &[("arc:filedesc", 1)],
        failed: &[],
        warcio: "arc_header=1 response=1 html=1",
    },
    Expect {
        file: "warcio-test-data/example.warc",
        docs: 1,
        dropped: &[
            ("warc:request", 2),
            ("warc:revisit", 1),
            ("warc:warcinfo", 2),
        ],
        failed: &[],
        warcio: "warcinfo=2 response=1 request=2 revisit=1 html=1",
    },
    Expect {
        file: "warcio-test-data/example.warc.gz",
        docs: 1,
        dropped: &[
            ("warc:request", 2),
            ("warc:revisit", 1),
            ("warc:warcinfo", 2),
        ],
        failed: &[],
        warcio: "warcinfo=2 response=1 request=2 revisit=1 html=1",
    },
    Expect {
        file: "warcio-test-data/post-test.warc.gz",
        docs: 0,
        dropped: &[("warc:non_html", 3), ("warc:request", 3)],
        failed: &[],
        warcio: "response=3 request=3 html=0",
    },
];

struct Tally {
    docs: Vec<Document>,
    dropped: BTreeMap<String, usize>,
    failed: BTreeMap<String, usize>,
    /// Recovered anomalies: not records.
    warnings: BTreeMap<String, usize>,
    records: usize,
}

fn read(path: &Path, source: &str) -> (Tally, u64) {
    let bytes = Arc::new(AtomicU64::new(0));
    let mut t = Tally {
        docs: Vec::new(),
        dropped: BTreeMap::new(),
        failed: BTreeMap::new(),
        warnings: BTreeMap::new(),
        records: 0,
    };
    let mut last_offset = 0u64;
    for item in open(path, source, &ReaderOptions::default(), bytes.clone()) {
        t.records += 1;
        let offset = match item {
            Item::Doc(d) => {
                t.docs.push(d);
                None
            }
            Item::Dropped { reason, offset } => {
                *t.dropped.entry(reason.to_string()).or_default() += 1;
                Some(offset)
            }
            Item::Failed(f) => {
                *t.failed.entry(f.reason.to_string()).or_default() += 1;
                Some(f.offset)
            }
            Item::Warning(w) => {
                t.records -= 1;
                *t.warnings.entry(w.reason.to_string()).or_default() += 1;
                Some(w.offset)
            }
        };
        if let Some(o) = offset {
            assert!(
                o >= last_offset,
                "{source}: offsets go backwards ({o} < {last_offset})"
            );
            last_offset = o;
        }
    }
    (t, bytes.load(Ordering::Relaxed))
}

fn to_map(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn warcio_counts(s: &str) -> BTreeMap<&str, usize> {
    s.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("k=v");
            (k, v.parse().expect("count"))
        })
        .collect()
}

#[test]
fn every_shared_warc_file_has_the_expected_outcome() {
    let Some(shared) = shared_dir() else { return };
    let root = shared.join("data/web/warc");
    // Every file is covered by the table, and every table entry exists.
    let mut found: Vec<String> = Vec::new();
    for dir in [root.clone(), root.join("warcio-test-data")] {
        for e in std::fs::read_dir(&dir).expect("read shared dir") {
            let p = e.expect("dir entry").path();
            if p.is_file() {
                found.push(
                    p.strip_prefix(&root)
                        .expect("under root")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    found.sort();
    let mut listed: Vec<String> = EXPECTED.iter().map(|e| e.file.to_string()).collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "shared WARC files and the expectation table differ"
    );

    for exp in EXPECTED {
        let path = root.join(exp.file);
        let (t, raw_bytes) = read(&path, exp.file);
        let size = std::fs::metadata(&path).expect("stat").len();
        assert_eq!(
            raw_bytes, size,
            "{}: bytes_read counts the whole file",
            exp.file
        );
        assert_eq!(
            (t.docs.len(), &t.dropped, &t.failed),
            (exp.docs, &to_map(exp.dropped), &to_map(exp.failed)),
            "{}",
            exp.file
        );
        for d in &t.docs {
            assert!(
                d.is_html || d.metadata.content_type.as_deref() == Some("text/plain"),
                "{}",
                exp.file
            );
            assert_eq!(d.source, exp.file);
            assert!(
                !d.id.is_empty() && !d.id.starts_with('<'),
                "{}: {}",
                exp.file,
                d.id
            );
            assert!(
                d.metadata.charset.is_some() && d.metadata.url.is_some(),
                "{}",
                exp.file
            );
        }

        // Cross-check with warcio's view of the same file.
        let w = warcio_counts(exp.warcio);
        let records: usize = w
            .iter()
            .filter(|(k, _)| **k != "html")
            .map(|(_, v)| v)
            .sum();
        assert_eq!(
            t.records, records,
            "{}: record count differs from warcio",
            exp.file
        );
        let html_like = w["html"] + w.get("conversion").copied().unwrap_or(0);
        assert_eq!(
            t.docs.len(),
            html_like,
            "{}: documents vs warcio HTML + conversion records",
            exp.file
        );
        for kind in ["warcinfo", "request", "metadata", "revisit"] {
            let ours = t.dropped.get(&format!("warc:{kind}")).copied().unwrap_or(0);
            assert_eq!(
                ours,
                w.get(kind).copied().unwrap_or(0),
                "{}: {kind} records",
                exp.file
            );
        }
    }
}

fn docs_of(shared: &Path, file: &str) -> Vec<Document> {
    read(&shared.join("data/web/warc").join(file), file).0.docs
}

#[test]
fn shared_documents_are_decoded_correctly() {
    let Some(shared) = shared_dir() else { return };

    // Chunked transfer coding is removed (the first chunk size is 0x1c37).
    let d = &docs_of(&shared, "warcio-test-data/example-iana.org-chunked.warc")[0];
    assert!(d.text.starts_with("<!doctype html>"), "{:?}", &d.text[..40]);
    assert!(!d.text.contains("\r\n1c37") && !d.text.contains("001c37"));
    assert!(d.text.trim_end().ends_with("</html>"));
    assert_eq!(d.metadata.url.as_deref(), Some("http://www.iana.org/"));
    assert_eq!(d.metadata.get("http_status"), Some(&serde_json::json!(200)));

    // gzip Content-Encoding with the last two trailer bytes outside the record.
    let d = &docs_of(&shared, "warcio-test-data/example-trunc.warc")[0];
    assert_eq!(d.text.len(), 1270);
    assert!(d.text.contains("<title>Example Domain</title>") && d.text.ends_with("</html>\n"));
    assert_eq!(d.id, "urn:uuid:a9c51e3e-0221-11e7-bf66-0242ac120005");
    // The document is kept, but the truncation is on record: in its metadata,
    // and the two stray bytes after the record as a file-level warning.
    assert_eq!(
        d.metadata.get("warnings"),
        Some(&serde_json::json!(["http:truncated_body"]))
    );
    let (t, _) = read(
        &shared.join("data/web/warc/warcio-test-data/example-trunc.warc"),
        "example-trunc.warc",
    );
    assert_eq!(t.warnings, to_map(&[("warc:stray_bytes", 1)]));
    assert_eq!(d.metadata.date.as_deref(), Some("2017-03-06T04:02:06Z"));

    // wget's `<…>` around WARC-Target-URI is stripped.
    let d = &docs_of(
        &shared,
        "warcio-test-data/example-wget-bad-target-uri.warc.gz",
    )[0];
    assert_eq!(d.metadata.url.as_deref(), Some("http://example.com/"));

    // ARC: URL with spaces, ISO date, `file#index` id.
    let d = &docs_of(&shared, "warcio-test-data/example-space-in-url.arc")[0];
    assert_eq!(
        d.metadata.url.as_deref(),
        Some("http://example.com/index.cfm?FuseAction=Email&EmailTitle=Examples%20From%20The%20Live%20Web&IsPopUp=False")
    );
    assert_eq!(d.metadata.date.as_deref(), Some("2014-02-16T05:02:21Z"));
    assert_eq!(d.id, "warcio-test-data/example-space-in-url.arc#1");
    assert!(d.text.starts_with("<!doctype html>"));

    // ClueWeb09: EUC-JP from the HTTP header; bogus gzip label passed through.
    let docs = docs_of(&shared, "resiliparse-clueweb-quirk.warc.gz");
    assert!(docs
        .iter()
        .all(|d| d.metadata.charset.as_deref() == Some("euc-jp")));
    assert!(
        docs[0].text.contains("ブラウニー ブリーフケース"),
        "{}",
        &docs[0].text[..200]
    );
    assert!(docs
        .iter()
        .all(|d| d.metadata.get("invalid_bytes").is_none()));

    // Real Common Crawl pages: declared charsets (HTTP header or <meta>).
    let docs = docs_of(&shared, "resiliparse-warcfile.warc.gz");
    let mut charsets: BTreeMap<String, usize> = BTreeMap::new();
    for d in &docs {
        *charsets
            .entry(d.metadata.charset.clone().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(
        charsets,
        to_map(&[
            ("gbk", 6),
            ("utf-8", 7),
            ("windows-1251", 1),
            ("windows-1252", 2)
        ])
    );
    let ru = docs
        .iter()
        .find(|d| d.metadata.url.as_deref() == Some("http://01spb.ru/company/"))
        .expect("01spb.ru");
    assert!(ru
        .text
        .contains("О компании - Стратегия пожарной безопасности"));
    let zh = docs
        .iter()
        .find(|d| d.metadata.url.as_deref() == Some("http://037426.cn/"))
        .expect("037426.cn");
    assert!(zh.text.contains("<title>亚洲精品无码免费视频"));

    // WET conversion record: plain text.
    let d = &docs_of(&shared, "cc-whirlwind.warc.wet.gz")[0];
    assert!(!d.is_html);
    assert!(d.text.starts_with("Escopete - Biquipedia"));
    assert_eq!(
        d.metadata.url.as_deref(),
        Some("https://an.wikipedia.org/wiki/Escopete")
    );
}
