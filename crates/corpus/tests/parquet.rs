//! Parquet in and out: the reader on a pyarrow-written file with nested
//! columns (fixture and its script in `fixtures/parquet/`), the writer's
//! round trip and determinism, projection, corrupt row groups, and the
//! row-group split of one file over tasks.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use refinery_corpus::input::{discover, split_parquet};
use refinery_corpus::readers::parquet::{row_groups, rows, rows_with_columns};
use refinery_corpus::readers::{open, open_input, Format, ReaderOptions};
use refinery_corpus::writers::{read_shard, OutputFormat, ShardWriter, WriterOptions};
use refinery_corpus::{Document, Item};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/parquet")
        .join(name)
}

fn read(path: &Path, opts: &ReaderOptions) -> Vec<Item> {
    open(path, "src", opts, Arc::new(AtomicU64::new(0))).collect()
}

fn docs(n: usize) -> Vec<Document> {
    (0..n)
        .map(|i| {
            let mut d = Document::new(
                format!("doc-{i}"),
                format!("Document {i}: {}", "some words here ".repeat(i % 7 + 1)),
                format!("input-{}.warc.gz", i % 3),
            );
            d.metadata.url = Some(format!("https://example.com/{i}"));
            d.metadata.lang = Some("en".into());
            d.metadata.lang_score = Some((i % 64) as f64 / 64.0);
            if i % 4 == 0 {
                d.metadata.set("tags", serde_json::json!(["a", i]));
            }
            d
        })
        .collect()
}

/// Writes `docs` as Parquet shards into `dir`; returns the shard paths.
fn write(dir: &Path, docs: &[Document], opts: &WriterOptions) -> Vec<PathBuf> {
    let mut w = ShardWriter::new(dir, "00000", opts.clone()).unwrap();
    for d in docs {
        w.write(d).unwrap();
    }
    let st = w.finish().unwrap();
    assert_eq!(st.docs, docs.len() as u64);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len() as u64, st.shards);
    files
}

fn parquet_opts(row_group_bytes: u64, max_shard_bytes: u64) -> WriterOptions {
    WriterOptions {
        format: OutputFormat::Parquet,
        row_group_bytes,
        max_shard_bytes,
        ..WriterOptions::default()
    }
}

#[test]
fn pyarrow_file_with_nested_columns_reads_as_expected() {
    let path = fixture("nested.parquet");
    let expected: Vec<Value> = std::fs::read_to_string(fixture("nested.expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let items = read(&path, &ReaderOptions::default());
    assert_eq!(items.len(), expected.len(), "one item per row");
    for (item, exp) in items.iter().zip(&expected) {
        let row = exp["row"].as_u64().unwrap();
        match item {
            Item::Doc(d) => {
                let want_id = match &exp["id"] {
                    Value::Null => format!("src#{row}"),
                    v => v.to_string(),
                };
                assert_eq!(d.id, want_id);
                assert_eq!(Some(d.text.as_str()), exp["text"].as_str());
                assert_eq!(d.source, "src");
                let got = serde_json::to_value(&d.metadata).unwrap();
                assert_eq!(got, exp["metadata"], "row {row}");
            }
            Item::Failed(f) => {
                assert!(exp["text"].is_null(), "row {row}: {f:?}");
                assert_eq!(f.reason, "parquet:missing_text");
                assert!(f.detail.contains("row 3"), "{}", f.detail);
            }
            other => panic!("row {row}: unexpected {other:?}"),
        }
    }
    // Typed fields land in their slots.
    let Item::Doc(d) = &items[0] else { panic!() };
    assert_eq!(d.metadata.url.as_deref(), Some("https://a.example/1"));
    assert_eq!(d.metadata.lang_score, Some(0.93));
}

#[test]
fn rows_gives_every_column_as_json() {
    let path = fixture("nested.parquet");
    let all: Vec<_> = rows(&path).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0]["tags"], serde_json::json!(["x", "y"]));
    assert_eq!(all[0]["info"], serde_json::json!({"a": 1, "b": "one"}));
    assert_eq!(all[3]["text"], Value::Null);
    let keys: Vec<&str> = all[0].keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 11, "{keys:?}");
    // Projection: only the named columns are decoded.
    let two: Vec<_> = rows_with_columns(&path, Some(&["id", "text"]))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(two.len(), 5);
    assert!(two.iter().all(|r| r.len() == 2));
    assert_eq!(two[1]["id"], serde_json::json!(11));
    // A wrong column name is an error naming the file and the columns.
    let err = rows_with_columns(&path, Some(&["label"]))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("nested.parquet") && err.contains("\"label\"") && err.contains("tags"),
        "{err}"
    );
}

#[test]
fn metadata_fields_project_and_text_id_fields_are_chosen() {
    let path = fixture("nested.parquet");
    let opts = ReaderOptions {
        metadata_fields: Some(vec!["url".into(), "tags".into()]),
        ..ReaderOptions::default()
    };
    let items = read(&path, &opts);
    let Item::Doc(d) = &items[0] else { panic!() };
    let md = serde_json::to_value(&d.metadata).unwrap();
    assert_eq!(
        md,
        serde_json::json!({"url": "https://a.example/1", "tags": ["x", "y"]})
    );
    // The URL column as text and `day` as id.
    let opts = ReaderOptions {
        text_field: "url".into(),
        id_field: "day".into(),
        metadata_fields: Some(vec![]),
        ..ReaderOptions::default()
    };
    let items = read(&path, &opts);
    let Item::Doc(d) = &items[0] else { panic!() };
    assert_eq!(d.text, "https://a.example/1");
    assert_eq!(d.id, "src#0", "a date is not an id");
    assert_eq!(
        serde_json::to_value(&d.metadata).unwrap(),
        serde_json::json!({})
    );
    assert!(matches!(&items[1], Item::Failed(f) if f.reason == "parquet:missing_text"));
    // No such text column: one failure for the whole file, naming the columns.
    let opts = ReaderOptions {
        text_field: "content".into(),
        ..ReaderOptions::default()
    };
    let items = read(&path, &opts);
    assert_eq!(items.len(), 1);
    let Item::Failed(f) = &items[0] else { panic!() };
    assert_eq!(f.reason, "parquet:missing_text");
    assert!(
        f.detail.contains("\"content\"") && f.detail.contains("text, id, url"),
        "{}",
        f.detail
    );
}

#[test]
fn written_shards_round_trip_and_are_byte_identical() {
    let docs = docs(300);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let opts = parquet_opts(4 << 10, 20 << 10);
    let fa = write(a.path(), &docs, &opts);
    let fb = write(b.path(), &docs, &opts);
    assert!(fa.len() > 1, "{fa:?}");
    assert!(fa[0].to_string_lossy().ends_with("00000_00000.parquet"));
    for (x, y) in fa.iter().zip(&fb) {
        assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
    }
    // Several row groups per shard, bounded by row_group_bytes.
    let groups = row_groups(&fa[0]).unwrap();
    assert!(groups.len() > 2, "{groups:?}");
    // read_shard restores every field, source and metadata included.
    let back: Vec<Document> = fa.iter().flat_map(|f| read_shard(f).unwrap()).collect();
    assert_eq!(back.len(), docs.len());
    for (b, d) in back.iter().zip(&docs) {
        assert_eq!(b, d);
    }
    // The corpus reader sees the same documents (source = the shard).
    let mut n = 0;
    for f in &fa {
        for item in read(f, &ReaderOptions::default()) {
            let Item::Doc(d) = item else {
                panic!("{item:?}")
            };
            assert_eq!(d.id, docs[n].id);
            assert_eq!(d.text, docs[n].text);
            assert_eq!(d.metadata, docs[n].metadata);
            assert_eq!(d.source, "src");
            n += 1;
        }
    }
    assert_eq!(n, docs.len());
    // No temp files are left behind.
    assert!(std::fs::read_dir(a.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with('.')));
}

#[test]
fn gzip_and_uncompressed_parquet_shards_read_back() {
    use refinery_corpus::writers::Compression;
    let docs = docs(40);
    for c in [Compression::Gzip, Compression::None] {
        let dir = tempfile::tempdir().unwrap();
        let opts = WriterOptions {
            compression: c,
            ..parquet_opts(2 << 10, 1 << 20)
        };
        let files = write(dir.path(), &docs, &opts);
        let back: Vec<Document> = files.iter().flat_map(|f| read_shard(f).unwrap()).collect();
        assert_eq!(back, docs, "{c:?}");
    }
}

#[test]
fn a_corrupt_row_group_is_one_failure_and_the_rest_is_read() {
    let docs = docs(200);
    let dir = tempfile::tempdir().unwrap();
    let files = write(dir.path(), &docs, &parquet_opts(3 << 10, 1 << 30));
    assert_eq!(files.len(), 1);
    let path = &files[0];
    let groups = row_groups(path).unwrap();
    assert!(groups.len() >= 4, "{groups:?}");
    // Overwrite the start of row group 1 (its first page header) with junk.
    let mut bytes = std::fs::read(path).unwrap();
    let at = groups[1].offset as usize;
    for b in &mut bytes[at..at + 16] {
        *b = 0xff;
    }
    let bad = dir.path().join("bad.parquet");
    std::fs::write(&bad, &bytes).unwrap();
    let items = read(&bad, &ReaderOptions::default());
    let lost = groups[1].rows as usize;
    assert_eq!(
        items.len(),
        docs.len() - lost + 1,
        "one item per row, one for the bad group"
    );
    let failed: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            Item::Failed(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].reason, "parquet:bad_row_group");
    assert_eq!(failed[0].offset, groups[1].offset);
    let first = groups[0].rows;
    assert!(
        failed[0].detail.starts_with(&format!(
            "row group 1 (rows {first}..{}): 0 of {lost} rows read",
            first + lost as u64
        )),
        "{}",
        failed[0].detail
    );
    // Every other row is read, in order.
    let ids: Vec<&str> = items
        .iter()
        .filter_map(|i| match i {
            Item::Doc(d) => Some(d.id.as_str()),
            _ => None,
        })
        .collect();
    let want: Vec<&str> = docs
        .iter()
        .enumerate()
        .filter(|(i, _)| (*i as u64) < first || *i as u64 >= first + lost as u64)
        .map(|(_, d)| d.id.as_str())
        .collect();
    assert_eq!(ids, want);
}

#[test]
fn unreadable_files_are_one_failure() {
    let dir = tempfile::tempdir().unwrap();
    let files = write(dir.path(), &docs(20), &parquet_opts(1 << 20, 1 << 30));
    let bytes = std::fs::read(&files[0]).unwrap();
    // Truncated: the footer is gone.
    let cut = dir.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let items = read(&cut, &ReaderOptions::default());
    assert_eq!(items.len(), 1);
    assert!(
        matches!(&items[0], Item::Failed(f) if f.reason == "parquet:bad_footer"),
        "{items:?}"
    );
    // Not Parquet at all, but forced.
    let txt = dir.path().join("x.txt");
    std::fs::write(&txt, "hello\n").unwrap();
    let forced = ReaderOptions {
        format: Format::Parquet,
        ..ReaderOptions::default()
    };
    let items = read(&txt, &forced);
    assert!(
        matches!(&items[..], [Item::Failed(f)] if f.reason == "parquet:bad_footer"),
        "{items:?}"
    );
    // A Parquet file is detected by its magic, whatever its name.
    let renamed = dir.path().join("data.jsonl.gz");
    std::fs::copy(&files[0], &renamed).unwrap();
    assert_eq!(read(&renamed, &ReaderOptions::default()).len(), 20);
}

#[test]
fn split_parts_cover_the_file_exactly() {
    let docs = docs(400);
    let dir = tempfile::tempdir().unwrap();
    let files = write(dir.path(), &docs, &parquet_opts(2 << 10, 1 << 30));
    let path = &files[0];
    let groups = row_groups(path).unwrap();
    assert!(groups.len() >= 8, "{}", groups.len());
    let size = std::fs::metadata(path).unwrap().len();
    let whole: Vec<String> = read(path, &ReaderOptions::default())
        .into_iter()
        .map(|i| match i {
            Item::Doc(d) => d.id,
            other => panic!("{other:?}"),
        })
        .collect();
    let inputs = discover(std::slice::from_ref(path)).unwrap();
    // Parts of about three row groups' bytes.
    let part = groups[0].bytes * 3;
    let parts = split_parquet(inputs.clone(), part, false);
    assert!(parts.len() >= 3, "{parts:?}");
    assert_eq!(parts.iter().map(|p| p.size).sum::<u64>(), size);
    let mut next = 0;
    let mut ids = Vec::new();
    for p in &parts {
        let r = p.row_groups.clone().unwrap();
        assert_eq!(r.start, next, "parts are consecutive");
        next = r.end;
        for item in open_input(p, &ReaderOptions::default(), Arc::new(AtomicU64::new(0))) {
            let Item::Doc(d) = item else { panic!() };
            ids.push(d.id);
        }
    }
    assert_eq!(next, groups.len());
    assert_eq!(ids, whole, "the parts read exactly the whole file");
    // Without ids, the fallback ids are file-global row indexes.
    // Small files and part_bytes = 0 are not split.
    assert_eq!(split_parquet(inputs.clone(), 0, false), inputs);
    assert_eq!(split_parquet(inputs.clone(), size * 2, false), inputs);
}

#[test]
fn fallback_ids_do_not_depend_on_the_split() {
    let path = fixture("nested.parquet");
    let inputs = discover(std::slice::from_ref(&path)).unwrap();
    let parts = split_parquet(inputs, 1, false);
    assert_eq!(parts.len(), 2, "{parts:?}");
    let opts = ReaderOptions {
        id_field: "none".into(),
        ..ReaderOptions::default()
    };
    let ids: Vec<String> = parts
        .iter()
        .flat_map(|p| open_input(p, &opts, Arc::new(AtomicU64::new(0))))
        .filter_map(|i| match i {
            Item::Doc(d) => Some(d.id),
            _ => None,
        })
        .collect();
    let src = path.to_string_lossy();
    assert_eq!(
        ids,
        [0, 1, 2, 4].map(|i| format!("{src}#{i}")).to_vec(),
        "row 3 has a null text"
    );
}
