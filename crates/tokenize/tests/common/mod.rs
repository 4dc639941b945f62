#![allow(dead_code)]
use std::path::PathBuf;

/// `$REFINERY_SHARED`, else `<crate>/../../../shared`; `None` (with the
/// skip message) when absent.
pub fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("REFINERY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    if p.join("data").is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: ../shared not found");
        None
    }
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn texts() -> Vec<String> {
    std::fs::read_to_string(fixture("parity_texts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("parity_ids.json")).unwrap()).unwrap()
}

pub fn ids(v: &serde_json::Value, key: &str) -> Vec<Vec<u32>> {
    serde_json::from_value(v[key].clone()).unwrap()
}
