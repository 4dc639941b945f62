//! A new checkpoint directory (`refinery quantize`, `refinery prune`): checked before any
//! work (absent or empty, not inside the source), built in a sibling `.NAME.TAG-partial` and
//! renamed into place when complete, so an interrupted run never leaves a half-written
//! output and a rerun starts clean.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::CompressError;

/// Fails unless `out` can receive a checkpoint made from `source`.
pub fn check(source: &Path, out: &Path) -> Result<(), CompressError> {
    check_empty(out)?;
    check_not_inside(source, out)
}

/// The partial directory of an output being built.
pub struct Staged {
    out: PathBuf,
    partial: PathBuf,
}

impl Staged {
    /// Creates (after removing a stale one) `.NAME.TAG-partial` next to `out`.
    pub fn create(out: &Path, tag: &str) -> Result<Staged, CompressError> {
        let dir_name = out
            .file_name()
            .ok_or_else(|| {
                CompressError::Invalid(format!("{}: not a directory name", out.display()))
            })?
            .to_string_lossy();
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| CompressError::io(&parent, e))?;
        let partial = parent.join(format!(".{dir_name}.{tag}-partial"));
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(|e| CompressError::io(&partial, e))?;
        }
        std::fs::create_dir(&partial).map_err(|e| CompressError::io(&partial, e))?;
        Ok(Staged {
            out: out.to_path_buf(),
            partial,
        })
    }

    /// Where to write.
    pub fn path(&self) -> &Path {
        &self.partial
    }

    /// Renames the finished directory to `out` (absent or empty, as [`check`] found it).
    pub fn publish(self) -> Result<(), CompressError> {
        if self.out.exists() {
            std::fs::remove_dir(&self.out).map_err(|e| CompressError::io(&self.out, e))?;
        }
        std::fs::rename(&self.partial, &self.out).map_err(|e| CompressError::io(&self.out, e))
    }
}

/// Fails unless `out` is absent or an empty directory.
fn check_empty(out: &Path) -> Result<(), CompressError> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                Err(CompressError::Invalid(format!(
                    "{}: the output directory exists and is not empty",
                    out.display()
                )))
            } else {
                Ok(())
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CompressError::io(out, e)),
    }
}

/// Fails when `out` would be inside `model` (the copy of the rest would include itself).
fn check_not_inside(model: &Path, out: &Path) -> Result<(), CompressError> {
    let model_abs = std::fs::canonicalize(model).map_err(|e| CompressError::io(model, e))?;
    let mut probe = out.to_path_buf();
    // The nearest existing ancestor of `out` (itself, if it exists).
    while !probe.exists() {
        match probe.parent() {
            Some(p) if !p.as_os_str().is_empty() => probe = p.to_path_buf(),
            _ => probe = PathBuf::from("."),
        }
    }
    let probe_abs = std::fs::canonicalize(&probe).map_err(|e| CompressError::io(&probe, e))?;
    if probe_abs.starts_with(&model_abs) {
        return Err(CompressError::Invalid(format!(
            "{}: the output directory cannot be inside the model directory {}",
            out.display(),
            model.display()
        )));
    }
    Ok(())
}

/// Copies the files of `from` into `to` (recursively), except the names in `skip`.
pub fn copy_rest(from: &Path, to: &Path, skip: &[&str]) -> Result<(), CompressError> {
    let entries = std::fs::read_dir(from).map_err(|e| CompressError::io(from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CompressError::io(from, e))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| skip.contains(&n)) {
            continue;
        }
        let src = entry.path();
        let dst = to.join(&name);
        if src.is_dir() {
            std::fs::create_dir_all(&dst).map_err(|e| CompressError::io(&dst, e))?;
            copy_rest(&src, &dst, &[])?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| CompressError::io(&src, e))?;
        }
    }
    Ok(())
}

/// Writes `value` as pretty JSON plus a newline.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), CompressError> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| CompressError::checkpoint(path, e.to_string()))?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| CompressError::io(path, e))
}
