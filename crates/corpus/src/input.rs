//! Input discovery: command-line paths → an ordered, de-duplicated file list.
//!
//! Directories are walked recursively; entries are sorted by name so the list
//! (and therefore the task → file assignment) is the same on every run.
//! Hidden files (`.name`) and refinery's own temp files are skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::{CorpusError, Result};

/// One input file, in its position in the run's file list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    /// The name stored in `Document::source` and used as the stats key.
    pub source: String,
    /// Size on disk in bytes (compressed size for compressed files); for a
    /// part of a split Parquet file, its share (see [`split_parquet`]).
    pub size: u64,
    /// A part of a Parquet file: only these row groups are read. `None`:
    /// the whole file.
    pub row_groups: Option<std::ops::Range<usize>>,
}

/// Expands `paths` into the run's file list.
///
/// Errors name the path that does not exist or cannot be listed.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<InputFile>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| CorpusError::Input {
            path: p.clone(),
            message: format!("cannot read input path: {e}"),
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(p, &mut files)?;
            files.sort();
            for f in files {
                push(&mut out, &mut seen, f)?;
            }
        } else {
            push(&mut out, &mut seen, p.clone())?;
        }
    }
    if out.is_empty() {
        return Err(CorpusError::Input {
            path: paths.first().cloned().unwrap_or_default(),
            message: "no input files found".into(),
        });
    }
    Ok(out)
}

fn push(out: &mut Vec<InputFile>, seen: &mut BTreeSet<PathBuf>, path: PathBuf) -> Result<()> {
    if !seen.insert(path.clone()) {
        return Ok(());
    }
    let size = std::fs::metadata(&path)
        .map_err(|e| CorpusError::io(&path, e))?
        .len();
    out.push(InputFile {
        source: path.to_string_lossy().into_owned(),
        path,
        size,
        row_groups: None,
    });
    Ok(())
}

/// Splits large Parquet files into parts of whole row groups, so that one
/// file can spread over several tasks.
///
/// A Parquet file (by its magic number, or any file when `forced`) whose
/// row groups hold more than `part_bytes` compressed bytes becomes
/// consecutive parts of at least `part_bytes` each (the last may be
/// smaller), in row-group order; other files stay whole. `part_bytes = 0`
/// never splits. The parts depend only on the file's footer, so every rank
/// of a run computes the same list.
///
/// The parts' sizes add up to the file size exactly: each part counts the
/// compressed bytes of its row groups, the first also what lies outside the
/// row groups (header, footer), so the per-file accounting of a run still
/// shows the file's size. A file whose footer cannot be read stays whole
/// (its reader then reports the failure).
pub fn split_parquet(files: Vec<InputFile>, part_bytes: u64, forced: bool) -> Vec<InputFile> {
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        if part_bytes == 0 || !(forced || starts_with_parquet_magic(&f.path)) {
            out.push(f);
            continue;
        }
        let Ok(groups) = crate::readers::parquet::row_groups(&f.path) else {
            out.push(f);
            continue;
        };
        let total: u64 = groups.iter().map(|g| g.bytes).sum();
        if groups.len() < 2 || total <= part_bytes {
            out.push(f);
            continue;
        }
        let mut ranges = Vec::new();
        let (mut start, mut acc) = (0usize, 0u64);
        for (i, g) in groups.iter().enumerate() {
            acc = acc.saturating_add(g.bytes);
            if acc >= part_bytes {
                ranges.push((start..i + 1, acc));
                start = i + 1;
                acc = 0;
            }
        }
        if start < groups.len() {
            ranges.push((start..groups.len(), acc));
        }
        if ranges.len() < 2 {
            out.push(f);
            continue;
        }
        // Sizes: row-group bytes, the remainder to the first part, never
        // more than the file holds (a footer may lie).
        let mut left = f.size;
        let mut sizes: Vec<u64> = ranges
            .iter()
            .map(|(_, b)| {
                let s = (*b).min(left);
                left -= s;
                s
            })
            .collect();
        sizes[0] += left;
        for ((range, _), size) in ranges.into_iter().zip(sizes) {
            out.push(InputFile {
                path: f.path.clone(),
                source: f.source.clone(),
                size,
                row_groups: Some(range),
            });
        }
    }
    out
}

fn starts_with_parquet_magic(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| crate::readers::parquet::has_magic(&head))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| CorpusError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CorpusError::io(dir, e))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let ft = entry.file_type().map_err(|e| CorpusError::io(&path, e))?;
        if ft.is_dir() {
            walk(&path, out)?;
        } else if ft.is_file() || ft.is_symlink() && path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sorted_skips_hidden_and_dedups() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        for f in ["b.txt", "a.txt", ".hidden", "sub/c.txt"] {
            std::fs::write(d.join(f), "x").unwrap();
        }
        let files = discover(&[d.to_path_buf(), d.join("a.txt")]).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(d)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["a.txt", "b.txt", "sub/c.txt"]);
        assert_eq!(files[0].size, 1);
    }

    #[test]
    fn missing_path_is_named_in_the_error() {
        let err = discover(&[PathBuf::from("/no/such/refinery/input")]).unwrap_err();
        assert!(err.to_string().contains("/no/such/refinery/input"), "{err}");
    }
}
