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
    /// Size on disk in bytes (compressed size for compressed files).
    pub size: u64,
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
    });
    Ok(())
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
