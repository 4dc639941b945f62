//! File helpers shared by the multi-step dedup jobs (MinHash, substring,
//! exact/URL/line): cleaning up after an unfinished task, and cancellation.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use refinery_corpus::CorpusError;

/// Removes `dir` and everything in it; a missing `dir` is fine.
pub(crate) fn remove_dir_if_exists(dir: &Path) -> Result<(), CorpusError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CorpusError::io(dir, e)),
    }
}

/// Removes the files in `dir` whose name (or hidden temp name) starts with
/// `prefix`; a missing `dir` is fine.
pub(crate) fn remove_prefixed(dir: &Path, prefix: &str) -> Result<(), CorpusError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CorpusError::io(dir, e)),
    };
    let hidden = format!(".{prefix}");
    for entry in entries {
        let entry = entry.map_err(|e| CorpusError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) || name.starts_with(&hidden) {
            let p = entry.path();
            std::fs::remove_file(&p).map_err(|e| CorpusError::io(&p, e))?;
        }
    }
    Ok(())
}

/// `Err(Cancelled)` once `cancel` is set.
pub(crate) fn cancelled(cancel: &AtomicBool) -> Result<(), CorpusError> {
    if cancel.load(Ordering::Relaxed) {
        Err(CorpusError::Cancelled)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_prefixed_files_and_tolerates_missing_dirs() {
        let d = tempfile::tempdir().unwrap();
        for f in ["00001_a.bin", ".00001_a.bin.tmp", "00002_a.bin"] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        remove_prefixed(d.path(), "00001_").unwrap();
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["00002_a.bin"]);
        remove_prefixed(&d.path().join("missing"), "x").unwrap();
        remove_dir_if_exists(&d.path().join("missing")).unwrap();
        remove_dir_if_exists(d.path()).unwrap();
        assert!(!d.path().exists());
        let c = AtomicBool::new(true);
        assert!(matches!(cancelled(&c), Err(CorpusError::Cancelled)));
    }
}
