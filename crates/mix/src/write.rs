//! Passes 2 and 3: scatter every output copy into shuffle buckets on disk,
//! then sort each bucket in memory and write it as output shards.
//!
//! Every copy `(document, epoch)` gets a 64-bit order hash from the seed,
//! the source name, the document's position and the epoch. Bucket `k` of
//! `K` holds the hashes in `[k·2⁶⁴/K, (k+1)·2⁶⁴/K)`, and each bucket is
//! sorted by `(hash, source, file, ordinal, epoch)`, so reading the shards
//! in name order gives exactly the global sort by hash: a full seeded
//! shuffle, computed with one bucket in memory per worker.
//!
//! ```text
//! DIR/.mix-tmp/{task:03}/{bucket:05}.bin   pass 2 (deleted after pass 3)
//! DIR/data/{bucket:05}_{k:05}.jsonl.zst    pass 3: ShardWriter, one series per bucket
//! DIR/mix_stats.json                       written last
//! ```
//!
//! Scatter tasks only decide which bucket file a copy lands in; bucket
//! contents are sorted by a total order, so the shards are byte-identical
//! for any number of workers.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use refinery_corpus::writers::{write_atomic, ShardWriter};
use refinery_corpus::Document;

use crate::config::Mixture;
use crate::plan::Plan;
use crate::scan::{for_each_doc, order_hash, pool, selection_bin, units, DocPos, SourceScan};
use crate::stats::{MixStats, Written, STATS_FILE};
use crate::{MixError, Result};

pub const DATA_DIR: &str = "data";
pub const TMP_DIR: &str = ".mix-tmp";

/// The record header in a bucket file: hash, source, file, ordinal, epoch, length.
const HEADER: usize = 8 + 4 + 4 + 8 + 4 + 4;

type SortKey = (u64, u32, u32, u64, u32);

/// Runs passes 2 and 3 into `out` and writes `out/mix_stats.json`.
pub fn write(
    mix: &Mixture,
    scans: &[SourceScan],
    plan: &Plan,
    out: &Path,
    workers: usize,
    overwrite: bool,
) -> Result<MixStats> {
    let start = Instant::now();
    prepare_output(out, overwrite)?;
    let tmp = out.join(TMP_DIR);
    let data = out.join(DATA_DIR);
    std::fs::create_dir_all(&data).map_err(|e| MixError::io(&data, e))?;
    let units = units(scans);
    let tasks = workers.max(1).min(units.len()).max(1);
    let buckets = plan.buckets as usize;

    // Pass 2: scatter.
    let counts: Mutex<Vec<(u64, u64)>> = Mutex::new(vec![(0, 0); scans.len()]);
    pool(tasks, tasks, |t| {
        let dir = tmp.join(format!("{t:03}"));
        std::fs::create_dir_all(&dir).map_err(|e| MixError::io(&dir, e))?;
        let mut files: Vec<Option<BufWriter<File>>> = (0..buckets).map(|_| None).collect();
        let mut local = vec![(0u64, 0u64); scans.len()];
        let mut rec = Vec::with_capacity(64 << 10);
        for u in units.iter().skip(t).step_by(tasks) {
            let src = &mix.sources[u.source];
            let sp = &plan.sources[u.source];
            let file = &scans[u.source].files[u.file];
            let (_, _) = for_each_doc(file, &src.reader, |ordinal, mut doc| {
                let pos = DocPos {
                    source: u.source as u32,
                    file: u.file as u32,
                    ordinal,
                };
                let copies = sp.copies(selection_bin(mix.seed, &src.name, pos));
                if copies == 0 {
                    return Ok(());
                }
                let id = std::mem::take(&mut doc.id);
                doc.metadata.set("mix_source", src.name.as_str());
                for epoch in 1..=copies {
                    doc.id = if epoch == 1 {
                        id.clone()
                    } else {
                        format!("{id}#e{epoch}")
                    };
                    doc.metadata.set("mix_epoch", epoch);
                    let h = order_hash(mix.seed, &src.name, pos, epoch);
                    let b = ((h as u128 * buckets as u128) >> 64) as usize;
                    rec.clear();
                    rec.extend_from_slice(&h.to_le_bytes());
                    rec.extend_from_slice(&pos.source.to_le_bytes());
                    rec.extend_from_slice(&pos.file.to_le_bytes());
                    rec.extend_from_slice(&pos.ordinal.to_le_bytes());
                    rec.extend_from_slice(&epoch.to_le_bytes());
                    rec.extend_from_slice(&[0; 4]);
                    serde_json::to_writer(&mut rec, &doc).map_err(|e| MixError::Output {
                        path: file.path.clone(),
                        message: format!("cannot serialize document {}: {e}", doc.id),
                    })?;
                    let len = (rec.len() - HEADER) as u32;
                    rec[HEADER - 4..HEADER].copy_from_slice(&len.to_le_bytes());
                    let path = || dir.join(format!("{b:05}.bin"));
                    let w = match &mut files[b] {
                        Some(w) => w,
                        slot => {
                            let f = File::create(path()).map_err(|e| MixError::io(path(), e))?;
                            slot.insert(BufWriter::with_capacity(32 << 10, f))
                        }
                    };
                    w.write_all(&rec).map_err(|e| MixError::io(path(), e))?;
                    local[u.source].0 += 1;
                    local[u.source].1 += doc.text.len() as u64;
                }
                Ok(())
            })?;
        }
        for (b, f) in files.into_iter().enumerate() {
            if let Some(mut w) = f {
                let p = dir.join(format!("{b:05}.bin"));
                w.flush().map_err(|e| MixError::io(&p, e))?;
            }
        }
        if let Ok(mut c) = counts.lock() {
            for (a, l) in c.iter_mut().zip(&local) {
                a.0 += l.0;
                a.1 += l.1;
            }
        }
        Ok(())
    })?;
    let counts = counts.into_inner().unwrap_or_default();
    for ((s, p), (docs, bytes)) in mix.sources.iter().zip(&plan.sources).zip(&counts) {
        if (*docs, *bytes) != (p.docs, p.bytes) {
            return Err(MixError::Mismatch {
                source_name: s.name.clone(),
                message: format!(
                    "planned {} documents / {} bytes but wrote {docs} / {bytes}: did the input change during the run?",
                    p.docs, p.bytes
                ),
            });
        }
    }

    // Pass 3: sort each bucket and write it.
    let written: Mutex<Written> = Mutex::new(Written {
        buckets: plan.buckets,
        ..Written::default()
    });
    let docs_written = std::sync::atomic::AtomicU64::new(0);
    pool(buckets, workers, |b| {
        let mut arenas = Vec::new();
        let mut entries: Vec<(SortKey, usize, usize, usize)> = Vec::new();
        for t in 0..tasks {
            let p = tmp.join(format!("{t:03}")).join(format!("{b:05}.bin"));
            let mut buf = Vec::new();
            match File::open(&p) {
                Ok(mut f) => f.read_to_end(&mut buf).map_err(|e| MixError::io(&p, e))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(MixError::io(&p, e)),
            };
            parse_records(&buf, arenas.len(), &mut entries).map_err(|m| MixError::Output {
                path: p.clone(),
                message: m,
            })?;
            arenas.push(buf);
        }
        entries.sort_unstable_by_key(|e| e.0);
        let mut w = ShardWriter::new(&data, format!("{b:05}"), mix.writer.clone())?;
        for (_, a, start, len) in &entries {
            let doc: Document =
                serde_json::from_slice(&arenas[*a][*start..start + len]).map_err(|e| {
                    MixError::Output {
                        path: tmp.clone(),
                        message: format!("bucket {b}: bad record: {e}"),
                    }
                })?;
            w.write(&doc)?;
        }
        let ws = w.finish()?;
        docs_written.fetch_add(ws.docs, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut wr) = written.lock() {
            wr.shards += ws.shards;
            wr.jsonl_bytes += ws.bytes;
        }
        for t in 0..tasks {
            let p = tmp.join(format!("{t:03}")).join(format!("{b:05}.bin"));
            let _ = std::fs::remove_file(p);
        }
        Ok(())
    })?;
    let planned: u64 = plan.sources.iter().map(|p| p.docs).sum();
    let wrote = docs_written.into_inner();
    if wrote != planned {
        return Err(MixError::Output {
            path: data,
            message: format!("planned {planned} documents but the shards hold {wrote}"),
        });
    }
    std::fs::remove_dir_all(&tmp).map_err(|e| MixError::io(&tmp, e))?;
    let mut stats = MixStats::new(mix, scans, plan);
    stats.dry_run = false;
    let mut w = written.into_inner().unwrap_or_default();
    w.seconds = (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    stats.written = Some(w);
    let path = out.join(STATS_FILE);
    let json = serde_json::to_vec_pretty(&stats).map_err(|e| MixError::Output {
        path: path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&path, &json)?;
    Ok(stats)
}

fn parse_records(
    buf: &[u8],
    arena: usize,
    out: &mut Vec<(SortKey, usize, usize, usize)>,
) -> std::result::Result<(), String> {
    let u32_at = |i: usize| u32::from_le_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&buf[i..i + 8]);
        u64::from_le_bytes(a)
    };
    let mut i = 0;
    while i < buf.len() {
        if i + HEADER > buf.len() {
            return Err(format!("truncated record header at byte {i}"));
        }
        let key = (
            u64_at(i),
            u32_at(i + 8),
            u32_at(i + 12),
            u64_at(i + 16),
            u32_at(i + 24),
        );
        let len = u32_at(i + 28) as usize;
        let start = i + HEADER;
        if start + len > buf.len() {
            return Err(format!("truncated record at byte {i}"));
        }
        out.push((key, arena, start, len));
        i = start + len;
    }
    Ok(())
}

/// Refuses to write over an earlier mix unless `overwrite`; always clears a
/// stale temp directory left by a killed run.
fn prepare_output(out: &Path, overwrite: bool) -> Result<()> {
    let data = out.join(DATA_DIR);
    let stats = out.join(STATS_FILE);
    let non_empty = |p: &PathBuf| std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_some());
    if non_empty(&data) || stats.exists() {
        if !overwrite {
            return Err(MixError::Output {
                path: out.to_path_buf(),
                message: "already holds data/ or mix_stats.json; pass --overwrite to replace them"
                    .into(),
            });
        }
        if data.exists() {
            std::fs::remove_dir_all(&data).map_err(|e| MixError::io(&data, e))?;
        }
        if stats.exists() {
            std::fs::remove_file(&stats).map_err(|e| MixError::io(&stats, e))?;
        }
    }
    let tmp = out.join(TMP_DIR);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| MixError::io(&tmp, e))?;
    }
    Ok(())
}
