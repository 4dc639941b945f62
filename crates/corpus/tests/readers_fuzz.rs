//! Robustness ("fuzz-lite") test of the readers on corrupted real files.
//!
//! The shared WARC/ARC files (`../shared`, see `readers_shared.rs`) are
//! corrupted deterministically (xorshift PRNG, fixed seed): truncated at
//! many offsets (plain and compressed), bytes flipped, garbage inserted.
//! Every variant is written to a temp dir and read through `readers::open`
//! (auto-detected, and forced to the other formats). Checked:
//!
//! * no panic; the zstd-recompressed file (named `.warc.gz`) reads the same;
//! * every item is well formed: offsets never go backwards and stay inside
//!   the decompressed data, reasons come from the documented low-cardinality
//!   set, details are bounded, documents have an id and the given source;
//! * truncating uncompressed data at byte `t` keeps exactly the original
//!   items of the records that end before `t`, then at most one more item
//!   (the cut record); truncating compressed data keeps an exact prefix of
//!   the original items, then at most one failure.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use refinery_corpus::readers::{open, Format, ReaderOptions, TextUnit};
use refinery_corpus::Item;

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

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Comparable summary of an item.
#[derive(Debug, PartialEq, Eq, Clone)]
enum Summary {
    Doc {
        id: String,
        text_len: usize,
        hash: u64,
    },
    Dropped {
        reason: String,
        offset: u64,
    },
    Failed {
        reason: String,
        offset: u64,
    },
}

fn hash(s: &str) -> u64 {
    // FNV-1a: enough to compare texts.
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

const REASON_PREFIXES: &[&str] = &[
    "warc:",
    "arc:",
    "http:",
    "decompress:",
    "io:",
    "jsonl:",
    "text:",
    "html:",
    "parquet:",
    // A file whose head looks binary (e.g. a Parquet file whose magic was hit) in auto mode.
    "read:",
];

/// Reads a file and checks the per-item invariants; returns the summaries
/// and the offsets of non-document items.
fn read_checked(
    path: &Path,
    opts: &ReaderOptions,
    data_len: u64,
    label: &str,
) -> Vec<(Summary, Option<u64>)> {
    let mut out = Vec::new();
    let mut last = 0u64;
    for item in open(path, "fuzz-source", opts, Arc::new(AtomicU64::new(0))) {
        let (summary, offset) = match item {
            Item::Doc(d) => {
                assert!(!d.id.is_empty(), "{label}: empty id");
                assert_eq!(d.source, "fuzz-source", "{label}");
                (
                    Summary::Doc {
                        id: d.id.clone(),
                        text_len: d.text.len(),
                        hash: hash(&d.text),
                    },
                    None,
                )
            }
            Item::Dropped { reason, offset } => {
                check_reason(&reason, label);
                (
                    Summary::Dropped {
                        reason: reason.to_string(),
                        offset,
                    },
                    Some(offset),
                )
            }
            Item::Failed(f) => {
                check_reason(&f.reason, label);
                assert!(
                    f.detail.chars().count() <= 260,
                    "{label}: detail too long: {}",
                    f.detail.len()
                );
                (
                    Summary::Failed {
                        reason: f.reason.to_string(),
                        offset: f.offset,
                    },
                    Some(f.offset),
                )
            }
            Item::Warning(w) => {
                // Not a record (stray bytes skipped): only the reason is checked.
                check_reason(&w.reason, label);
                continue;
            }
        };
        if let Some(o) = offset {
            assert!(o >= last, "{label}: offset {o} after {last}");
            assert!(
                o <= data_len,
                "{label}: offset {o} beyond the data ({data_len})"
            );
            last = o;
        }
        out.push((summary, offset));
    }
    out
}

/// All items but the last are the original's; the last may differ (the
/// record that was cut, or the stream failure).
fn assert_prefix(got: &[(Summary, Option<u64>)], original: &[(Summary, Option<u64>)], label: &str) {
    let n = got.len().saturating_sub(1);
    for (i, item) in got.iter().take(n).enumerate() {
        assert_eq!(
            Some(&item.0),
            original.get(i).map(|o| &o.0),
            "{label}: item {i} differs"
        );
    }
}

fn check_reason(reason: &str, label: &str) {
    assert!(
        REASON_PREFIXES.iter().any(|p| reason.starts_with(p))
            && reason.len() < 32
            && !reason.contains(' '),
        "{label}: unexpected reason {reason:?}"
    );
}

fn gunzip_all(raw: &[u8]) -> Vec<u8> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw)
            .read_to_end(&mut out)
            .expect("shared file decompresses");
        out
    } else {
        raw.to_vec()
    }
}

#[test]
fn corrupted_shared_files_never_panic_and_stay_accounted() {
    let Some(shared) = shared_dir() else { return };
    let root = shared.join("data/web/warc");
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [root.clone(), root.join("warcio-test-data")] {
        for e in std::fs::read_dir(&dir).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_file() {
                files.push(p);
            }
        }
    }
    files.sort();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let auto = ReaderOptions::default();
    let small = ReaderOptions {
        max_record_bytes: 4096,
        ..ReaderOptions::default()
    };
    let mut variants = 0usize;
    let mut budget_bytes = 0u64;

    for (fi, file) in files.iter().enumerate() {
        let raw = std::fs::read(file).expect("read shared file");
        let plain = gunzip_all(&raw);
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let plain_path = tmp.path().join(format!("{fi}-orig"));
        std::fs::write(&plain_path, &plain).expect("write");
        let original = read_checked(&plain_path, &auto, plain.len() as u64, &name);
        let original_raw = read_checked(file, &auto, plain.len() as u64, &name);
        assert_eq!(
            original.iter().map(|s| &s.0).collect::<Vec<_>>(),
            original_raw.iter().map(|s| &s.0).collect::<Vec<_>>(),
            "{name}: compressed and plain reads differ"
        );

        // The same data as zstd, under a misleading name: identical items.
        let zpath = tmp.path().join(format!("{fi}-zstd.warc.gz"));
        std::fs::write(&zpath, zstd::encode_all(plain.as_slice(), 3).expect("zstd"))
            .expect("write");
        let via_zstd = read_checked(&zpath, &auto, plain.len() as u64, &name);
        assert_eq!(
            original.iter().map(|s| &s.0).collect::<Vec<_>>(),
            via_zstd.iter().map(|s| &s.0).collect::<Vec<_>>(),
            "{name}: zstd read differs"
        );

        // Fewer variants for the big files keep the test fast in debug.
        let big = plain.len() > 100_000;
        let (n_trunc, n_flip, n_insert, n_ztrunc) = if big {
            (16, 10, 6, 8)
        } else {
            (60, 40, 20, 16)
        };

        // 1. Truncations of the uncompressed data: exact prefix property.
        for k in 0..n_trunc {
            let t = if k < n_trunc / 2 {
                // Evenly spread, plus random ones.
                plain.len() * (k + 1) / (n_trunc / 2 + 1)
            } else {
                rng.below(plain.len() + 1)
            };
            let label = format!("{name} truncated at {t}");
            let path = tmp.path().join(format!("{fi}-t{k}"));
            std::fs::write(&path, &plain[..t]).expect("write");
            let got = read_checked(&path, &auto, t as u64, &label);
            // Original items whose record certainly ends before t: those
            // followed by an item (with an offset) that starts at or before
            // t. Documents carry no offset, so this is a lower bound.
            let mut complete = 0;
            for i in 0..original.len() {
                match original[i + 1..].iter().find_map(|(_, o)| *o) {
                    Some(s) if s <= t as u64 => complete = i + 1,
                    _ => break,
                }
            }
            assert!(
                got.len() >= complete,
                "{label}: {} items, at least {complete} complete records",
                got.len()
            );
            assert!(
                got.len() <= original.len(),
                "{label}: more items than the whole file"
            );
            assert_prefix(&got, &original, &label);
            variants += 1;
            budget_bytes += t as u64;
        }

        // 2. Truncations of the compressed file: exact prefix, then at most
        //    one failure.
        if raw.starts_with(&[0x1f, 0x8b]) {
            for k in 0..n_ztrunc {
                let t = 2 + rng.below(raw.len() - 2);
                let label = format!("{name} compressed, truncated at {t}");
                let path = tmp.path().join(format!("{fi}-z{k}"));
                std::fs::write(&path, &raw[..t]).expect("write");
                let got = read_checked(&path, &auto, plain.len() as u64, &label);
                assert!(
                    got.len() <= original.len() + 1,
                    "{label}: {} items",
                    got.len()
                );
                assert_prefix(&got, &original, &label);
                variants += 1;
                budget_bytes += plain.len() as u64;
            }
        }

        // 3. Byte flips (plain and compressed) and 4. inserted garbage:
        //    invariants only, read auto-detected, with a small record limit,
        //    and forced to every format.
        let forced = [
            ReaderOptions {
                format: Format::Warc,
                ..small.clone()
            },
            ReaderOptions {
                format: Format::Arc,
                ..ReaderOptions::default()
            },
            ReaderOptions {
                format: Format::Jsonl,
                ..ReaderOptions::default()
            },
            ReaderOptions {
                format: Format::Html,
                ..ReaderOptions::default()
            },
            ReaderOptions {
                format: Format::Text,
                text_unit: TextUnit::Paragraph,
                ..small.clone()
            },
            ReaderOptions {
                format: Format::Text,
                text_unit: TextUnit::Line,
                ..ReaderOptions::default()
            },
        ];
        for k in 0..(n_flip + n_insert) {
            let compressed = k % 3 == 2 && raw.starts_with(&[0x1f, 0x8b]);
            let mut data = if compressed {
                raw.clone()
            } else {
                plain.clone()
            };
            if data.is_empty() {
                continue;
            }
            let what = if k < n_flip {
                let flips = 1 + rng.below(8);
                for _ in 0..flips {
                    let at = rng.below(data.len());
                    data[at] ^= 1 << rng.below(8);
                }
                format!("{flips} bytes flipped")
            } else {
                let at = rng.below(data.len());
                let len = 1 + rng.below(300);
                let garbage: Vec<u8> = (0..len)
                    .map(|_| match rng.below(4) {
                        0 => b'\n',
                        1 => b"WARC/1.0\r\nContent-Length: 99999\r\n"[rng.below(32)],
                        _ => rng.next() as u8,
                    })
                    .collect();
                data.splice(at..at, garbage);
                format!("{len} garbage bytes inserted at {at}")
            };
            let label = format!(
                "{name} ({}), {what}",
                if compressed { "compressed" } else { "plain" }
            );
            let path = tmp.path().join(format!("{fi}-c{k}"));
            std::fs::write(&path, &data).expect("write");
            let bound = (plain.len() + data.len()) as u64 * 2;
            let opts = if k % 2 == 0 { &auto } else { &small };
            let got = read_checked(&path, opts, bound, &label);
            // Corruption can split records or lose them, but a reader never
            // produces more items than there are lines in the data.
            let lines = memchr::memchr_iter(b'\n', &plain).count() + 2 + data.len() / 2;
            assert!(got.len() <= lines, "{label}: {} items", got.len());
            if !big || k < 6 {
                let f = &forced[k % forced.len()];
                read_checked(&path, f, bound, &format!("{label}, forced {:?}", f.format));
            }
            variants += 1;
            budget_bytes += data.len() as u64;
        }
    }
    eprintln!(
        "fuzz-lite: {variants} variants, {} MB read",
        budget_bytes >> 20
    );
    assert!(variants > 500, "too few variants: {variants}");
}

/// Parquet files, corrupted: our own shards (zstd, several row groups) and
/// the pyarrow fixture (snappy, nested columns), truncated, with bytes
/// flipped and garbage inserted, read auto-detected and forced. Checked: no
/// panic leaves the reader; every item is well formed (documented reasons,
/// bounded details, offsets inside the file); at most one item per row plus
/// one per row group (a bad row group is one failure); truncating the footer
/// away fails the file once. Panics inside the `parquet` crate are caught by
/// the reader and become `parquet:bad_row_group` failures: they are counted
/// and printed, not hidden.
#[test]
fn corrupted_parquet_files_never_panic_and_stay_accounted() {
    use refinery_corpus::readers::parquet::row_groups;
    use refinery_corpus::writers::{OutputFormat, ShardWriter, WriterOptions};
    use refinery_corpus::Document;

    let tmp = tempfile::tempdir().expect("tempdir");
    // 1. A shard of ours: 300 documents in several row groups.
    let opts = WriterOptions {
        format: OutputFormat::Parquet,
        row_group_bytes: 6 << 10,
        ..WriterOptions::default()
    };
    let mut w = ShardWriter::new(tmp.path().join("ours"), "00000", opts).expect("writer");
    for i in 0..300 {
        let mut d = Document::new(format!("d{i}"), format!("row {i} ").repeat(1 + i % 13), "s");
        d.metadata.set("n", i);
        w.write(&d).expect("write");
    }
    w.finish().expect("finish");
    let ours = tmp.path().join("ours/00000_00000.parquet");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parquet/nested.parquet");

    // Count the panics the reader catches (the default hook stays quiet).
    let caught = Arc::new(AtomicU64::new(0));
    let counter = caught.clone();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }));

    let mut rng = XorShift(0x5DEE_CE66_D1CE_4E5B);
    let mut variants = 0usize;
    let mut outcomes = std::collections::BTreeMap::new();
    let auto = ReaderOptions::default();
    let forced = ReaderOptions {
        format: Format::Parquet,
        ..ReaderOptions::default()
    };
    for (fi, file) in [ours, fixture].iter().enumerate() {
        let raw = std::fs::read(file).expect("read");
        let groups = row_groups(file).expect("row groups");
        let rows: u64 = groups.iter().map(|g| g.rows).sum();
        let bound = (rows + groups.len() as u64) as usize;
        let original = read_checked(file, &auto, raw.len() as u64, "parquet original");
        assert_eq!(original.len() as u64, rows, "one item per row");
        for k in 0..120 {
            let mut data = raw.clone();
            let what = match k % 3 {
                0 => {
                    let t = rng.below(data.len());
                    data.truncate(t);
                    format!("truncated at {t}")
                }
                1 => {
                    let flips = 1 + rng.below(6);
                    for _ in 0..flips {
                        let at = rng.below(data.len());
                        data[at] ^= 1 << rng.below(8);
                    }
                    format!("{flips} bytes flipped")
                }
                _ => {
                    let at = rng.below(data.len());
                    let len = 1 + rng.below(64);
                    let garbage: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                    data.splice(at..at, garbage);
                    format!("{len} garbage bytes inserted at {at}")
                }
            };
            let label = format!("parquet {fi}: {what}");
            let path = tmp.path().join(format!("p{fi}-{k}"));
            std::fs::write(&path, &data).expect("write");
            let opts = if k % 2 == 0 { &auto } else { &forced };
            let got = read_checked(&path, opts, data.len() as u64, &label);
            for (item, _) in &got {
                let key = match item {
                    Summary::Doc { .. } => "doc".to_string(),
                    Summary::Dropped { reason, .. } | Summary::Failed { reason, .. } => {
                        reason.clone()
                    }
                };
                *outcomes.entry(key).or_insert(0u64) += 1;
            }
            // A lying footer may claim other row counts, but never more
            // items than rows + row groups it declares; a lost footer is one
            // failure.
            if data.len() < raw.len() && !data.ends_with(b"PAR1") {
                assert!(got.len() <= 1, "{label}: {} items", got.len());
            } else if data.len() == raw.len() || k % 3 == 2 {
                // Same layout: the footer (if it still parses) declares the
                // same rows; allow the flipped counts some slack.
                assert!(
                    got.len() <= bound.max(1) * 4 + 16,
                    "{label}: {} items",
                    got.len()
                );
            }
            variants += 1;
        }
    }
    std::panic::set_hook(prev);
    eprintln!(
        "fuzz-lite parquet: {variants} variants, items {outcomes:?}, {} decoder panics caught by the reader",
        caught.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(variants >= 240);
    // The corruptions reach the row groups, not only the footer.
    assert!(
        outcomes
            .get("parquet:bad_row_group")
            .is_some_and(|&n| n > 0),
        "{outcomes:?}"
    );
    assert!(
        outcomes.get("parquet:bad_footer").is_some_and(|&n| n > 0),
        "{outcomes:?}"
    );
}
