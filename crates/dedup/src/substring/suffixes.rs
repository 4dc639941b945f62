//! Step 2: per shard, the suffix array of its documents (each followed by a
//! separator of its own), keeping the suffixes with at least `min_len`
//! units left in their document.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::sync::atomic::AtomicBool;

use refinery_corpus::executor::mark_step_complete;

use super::format::{self, io, Kind, RecordWriter, HEADER_LEN};
use super::{cancelled, remove_with_tmp, sais, Plan, Result, SubstringJob, Unit, STEPS};

pub(super) fn shard_path(job: &SubstringJob, shard: usize) -> std::path::PathBuf {
    job.step_dir(STEPS[1]).join(format!("shard_{shard:05}.bin"))
}

/// The shard's text: documents' units, each document followed by its own
/// separator. Returns the symbols, the largest symbol and the separator
/// positions.
fn shard_text(job: &SubstringJob, plan: &Plan, shard: usize) -> Result<(Vec<u32>, u32, Vec<u32>)> {
    let s = plan.shards[shard];
    let width = job.unit_kind().record_len();
    let total = (s.g1 - s.g0) as usize;
    let mut raw: Vec<u8> = Vec::with_capacity(total * width);
    let mut lens: Vec<u64> = Vec::new();
    for f in s.first.0..=s.end.0.min(plan.bases.len().saturating_sub(2)) {
        let doc_lens = format::read_u64s(&job.docs_path(f), Kind::Docs)?;
        let from = if f == s.first.0 { s.first.1 } else { 0 };
        let to = if f == s.end.0 {
            s.end.1
        } else {
            doc_lens.len()
        };
        if from >= to {
            continue;
        }
        let skip: u64 = doc_lens[..from].iter().sum();
        let take: u64 = doc_lens[from..to].iter().sum();
        lens.extend_from_slice(&doc_lens[from..to]);
        let path = job.units_path(f);
        let (file, count) = format::open(&path, job.unit_kind())?;
        if skip + take > count {
            return Err(format::corrupt(
                &path,
                format!(
                    "{count} units, but the docs file says at least {}",
                    skip + take
                ),
            ));
        }
        let mut input = BufReader::new(file);
        input
            .seek(SeekFrom::Start(HEADER_LEN + skip * width as u64))
            .map_err(|e| io(&path, e))?;
        let at = raw.len();
        raw.resize(at + (take as usize) * width, 0);
        input.read_exact(&mut raw[at..]).map_err(|e| io(&path, e))?;
    }
    if raw.len() != total * width {
        return Err(format::corrupt(
            &job.docs_path(s.first.0),
            "document lengths changed since the plan was made",
        ));
    }
    // Symbols: bytes as they are, tokens as ranks of their hashes (ranks
    // keep the numeric order, which is the big-endian byte order the merge
    // compares). Document k is followed by the separator `alphabet + k`.
    let mut out: Vec<u32> = Vec::with_capacity(total + lens.len());
    let mut seps: Vec<u32> = Vec::with_capacity(lens.len());
    let alphabet = match job.config.unit {
        Unit::Bytes => {
            let mut at = 0usize;
            for (k, &len) in lens.iter().enumerate() {
                let len = len as usize;
                out.extend(raw[at..at + len].iter().map(|&b| b as u32));
                at += len;
                seps.push(out.len() as u32);
                out.push(256 + k as u32);
            }
            256
        }
        Unit::Tokens => {
            let hashes: Vec<u64> = raw
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    u64::from_be_bytes(b)
                })
                .collect();
            drop(raw);
            let mut distinct = hashes.clone();
            distinct.sort_unstable();
            distinct.dedup();
            let alphabet = distinct.len() as u32;
            let mut at = 0usize;
            for (k, &len) in lens.iter().enumerate() {
                let len = len as usize;
                out.extend(
                    hashes[at..at + len]
                        .iter()
                        .map(|h| distinct.partition_point(|x| x < h) as u32),
                );
                at += len;
                seps.push(out.len() as u32);
                out.push(alphabet + k as u32);
            }
            alphabet
        }
    };
    let upper = alphabet + lens.len().saturating_sub(1) as u32;
    Ok((out, upper, seps))
}

pub(super) fn run_task(
    job: &SubstringJob,
    plan: &Plan,
    shard: usize,
    cancel: &AtomicBool,
) -> Result<()> {
    let path = shard_path(job, shard);
    remove_with_tmp(&path)?;
    let (text, upper, seps) = shard_text(job, plan, shard)?;
    cancelled(cancel)?;
    let sa = sais::suffix_array(&text, upper);
    drop(text);
    cancelled(cancel)?;
    let min_len = job.config.min_len as u32;
    let mut w = RecordWriter::create(&path, Kind::Suffixes)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
    for &i in &sa {
        // Position i is in document k (k separators before it), or is
        // document k's separator when seps[k] == i.
        let k = seps.partition_point(|&e| e < i);
        let Some(&end) = seps.get(k) else { continue };
        if i == end || end - i < min_len {
            continue;
        }
        buf.extend_from_slice(&(i - k as u32).to_le_bytes());
        if buf.len() >= 1 << 16 {
            w.push(&buf)?;
            buf.clear();
        }
    }
    w.push(&buf)?;
    w.finish()?;
    Ok(mark_step_complete(&job.step_dir(STEPS[1]), shard)?)
}
