//! One writer per output directory: an OS file lock, taken at the entry of
//! every job that writes a directory (`run`, the dedup steps, `tokenize`,
//! `mix`, `pretrain`, …) with one line:
//!
//! ```no_run
//! # fn main() -> refinery_corpus::Result<()> {
//! let _lock = refinery_corpus::lock::lock_output(std::path::Path::new("out"), None)?;
//! // … write into out/ …
//! # Ok(()) }
//! ```
//!
//! * A whole-run invocation (`rank = None`) holds an exclusive lock on
//!   `DIR/.refinery-lock`.
//! * A single rank (`rank = Some(i)`, `--task i` of a Slurm array or an
//!   Indexed Job) holds a *shared* lock on `DIR/.refinery-lock` and an
//!   exclusive one on `DIR/.refinery-locks/rank-{i:05}`: ranks never block
//!   each other, but the same rank twice, or a rank beside a whole-run
//!   invocation, is refused.
//!
//! The lock is `flock(2)` (std's [`File::try_lock`]): the kernel releases it
//! when the holder exits, however it exits (kill -9 included), so a stale
//! lock never needs cleaning up. The holder writes its PID, host, start time
//! and command line into its lock file, and a refused process names them.
//! On a filesystem without file locks, `REFINERY_NO_LOCK=1` runs unlocked.
//!
//! Lock files are hidden (`.`-prefixed): input discovery and shard readers
//! skip them, and [`OutputLock::clear`] (the `--overwrite` of a job) keeps
//! them while it empties the directory.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{CorpusError, Result};

/// The directory-wide lock file.
pub const LOCK_FILE: &str = ".refinery-lock";
/// The directory of per-rank lock files.
pub const RANK_LOCK_DIR: &str = ".refinery-locks";
/// Set (to anything but `0` or empty) to run without locks, on filesystems
/// that do not support them.
pub const NO_LOCK_ENV: &str = "REFINERY_NO_LOCK";

/// Who holds a lock, as written into its lock file (one JSON line).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    /// Seconds since the Unix epoch.
    pub started: u64,
    /// `run` (the whole directory) or `rank N`.
    pub scope: String,
    pub command: String,
}

impl Holder {
    fn me(scope: String) -> Holder {
        let command: String = std::env::args().collect::<Vec<_>>().join(" ");
        let command = match command.char_indices().nth(300) {
            Some((i, _)) => format!("{}…", &command[..i]),
            None => command,
        };
        Holder {
            pid: std::process::id(),
            host: hostname(),
            started: now(),
            scope,
            command,
        }
    }

    fn describe(&self) -> String {
        let ago = now().saturating_sub(self.started);
        format!(
            "pid {} on host {} ({}, started {ago} s ago: `{}`)",
            self.pid, self.host, self.scope, self.command
        )
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The host name (Linux: the kernel's; else `$HOSTNAME`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// A held output-directory lock; released when dropped (or when the process
/// dies).
#[derive(Debug)]
pub struct OutputLock {
    dir: PathBuf,
    /// The rank locked, `None` for the whole directory.
    rank: Option<usize>,
    /// The open, locked files (closing them releases the locks).
    _files: Vec<File>,
}

fn rank_name(rank: usize) -> String {
    format!("rank-{rank:05}")
}

fn open_lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| CorpusError::io(path, e))
}

fn no_lock() -> bool {
    std::env::var_os(NO_LOCK_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

fn lock_error(path: &Path, e: std::io::Error) -> CorpusError {
    CorpusError::Output {
        path: path.to_path_buf(),
        message: format!(
            "cannot take the writer lock {}: {e}; on a filesystem without file locks set \
             {NO_LOCK_ENV}=1 (and never start two writers on one directory)",
            path.display()
        ),
    }
}

fn busy(dir: &Path, holders: &[Holder]) -> CorpusError {
    let who = if holders.is_empty() {
        "another refinery process (it has not written its name yet)".to_string()
    } else {
        holders
            .iter()
            .map(Holder::describe)
            .collect::<Vec<_>>()
            .join("; ")
    };
    CorpusError::Busy {
        path: dir.to_path_buf(),
        holder: who,
    }
}

fn read_holder(path: &Path) -> Option<Holder> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(text.trim()).ok()
}

fn write_holder(file: &mut File, path: &Path, holder: &Holder) -> Result<()> {
    let mut line = serde_json::to_vec(holder).map_err(|e| CorpusError::Json {
        path: path.to_path_buf(),
        source: e,
    })?;
    line.push(b'\n');
    file.set_len(0)
        .and_then(|()| file.write_all(&line))
        .and_then(|()| file.flush())
        .map_err(|e| CorpusError::io(path, e))
}

/// The rank locks of `dir` that some process holds now, with their holders.
fn held_ranks(dir: &Path) -> Vec<Holder> {
    let Ok(entries) = std::fs::read_dir(dir.join(RANK_LOCK_DIR)) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    names
        .into_iter()
        .filter(|p| {
            File::open(p).is_ok_and(|f| matches!(f.try_lock(), Err(TryLockError::WouldBlock)))
        })
        .filter_map(|p| read_holder(&p))
        .collect()
}

/// Takes the writer lock of `dir` (created if missing): the whole directory
/// for `rank = None`, one rank of it for `Some(i)` (see the module docs).
/// A lock held elsewhere is an error naming the holder's PID and host.
pub fn lock_output(dir: &Path, rank: Option<usize>) -> Result<OutputLock> {
    std::fs::create_dir_all(dir).map_err(|e| CorpusError::io(dir, e))?;
    if no_lock() {
        return Ok(OutputLock {
            dir: dir.to_path_buf(),
            rank,
            _files: Vec::new(),
        });
    }
    let main_path = dir.join(LOCK_FILE);
    let mut main = open_lock_file(&main_path)?;
    match rank {
        None => {
            match main.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    // Held exclusively (its holder wrote the file), or shared by ranks.
                    let probe = open_lock_file(&main_path)?;
                    let holders = match probe.try_lock_shared() {
                        Ok(()) => held_ranks(dir),
                        Err(_) => read_holder(&main_path).into_iter().collect(),
                    };
                    return Err(busy(dir, &holders));
                }
                Err(TryLockError::Error(e)) => return Err(lock_error(&main_path, e)),
            }
            write_holder(&mut main, &main_path, &Holder::me("run".into()))?;
            Ok(OutputLock {
                dir: dir.to_path_buf(),
                rank,
                _files: vec![main],
            })
        }
        Some(r) => {
            match main.try_lock_shared() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(busy(
                        dir,
                        &read_holder(&main_path).into_iter().collect::<Vec<_>>(),
                    ))
                }
                Err(TryLockError::Error(e)) => return Err(lock_error(&main_path, e)),
            }
            let ranks = dir.join(RANK_LOCK_DIR);
            std::fs::create_dir_all(&ranks).map_err(|e| CorpusError::io(&ranks, e))?;
            let path = ranks.join(rank_name(r));
            let mut file = open_lock_file(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(busy(
                        dir,
                        &read_holder(&path).into_iter().collect::<Vec<_>>(),
                    ))
                }
                Err(TryLockError::Error(e)) => return Err(lock_error(&path, e)),
            }
            write_holder(&mut file, &path, &Holder::me(format!("rank {r}")))?;
            Ok(OutputLock {
                dir: dir.to_path_buf(),
                rank,
                _files: vec![main, file],
            })
        }
    }
}

/// True for the names of the lock files and their directory.
pub fn is_lock_entry(name: &str) -> bool {
    name == LOCK_FILE || name == RANK_LOCK_DIR
}

impl OutputLock {
    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True when the directory holds nothing but the lock files.
    pub fn is_empty(&self) -> Result<bool> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| CorpusError::io(&self.dir, e))?;
        for e in entries {
            let e = e.map_err(|e| CorpusError::io(&self.dir, e))?;
            if !is_lock_entry(&e.file_name().to_string_lossy()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Empties the directory for `--overwrite`, keeping the lock files.
    /// Checks first that every directory in the tree is writable, so a
    /// directory that cannot be emptied is left untouched (not half deleted).
    /// Refused under a rank lock: other ranks may be writing.
    pub fn clear(&self) -> Result<()> {
        if let Some(r) = self.rank {
            return Err(CorpusError::Output {
                path: self.dir.clone(),
                message: format!(
                    "cannot be emptied by rank {r} alone (other ranks may be writing it): \
                     overwrite without --task"
                ),
            });
        }
        let mut dirs = vec![self.dir.clone()];
        collect_dirs(&self.dir, &mut dirs)?;
        for d in &dirs {
            check_writable(d)?;
        }
        let entries = std::fs::read_dir(&self.dir).map_err(|e| CorpusError::io(&self.dir, e))?;
        for e in entries {
            let e = e.map_err(|e| CorpusError::io(&self.dir, e))?;
            if is_lock_entry(&e.file_name().to_string_lossy()) {
                continue;
            }
            let p = e.path();
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            let r = if is_dir {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(|e| CorpusError::io(&p, e))?;
        }
        Ok(())
    }
}

/// Every directory below `dir` (symlinks are not followed).
fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| CorpusError::io(dir, e))?;
    for e in entries {
        let e = e.map_err(|e| CorpusError::io(dir, e))?;
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let p = e.path();
            out.push(p.clone());
            collect_dirs(&p, out)?;
        }
    }
    Ok(())
}

/// Creates and removes a probe file: the capability that deleting entries
/// needs (permission bits alone do not tell, e.g. for root or `chattr +i`).
fn check_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".refinery-write-probe-{}", std::process::id()));
    let r = File::create(&probe).and_then(|f| {
        drop(f);
        std::fs::remove_file(&probe)
    });
    r.map_err(|e| CorpusError::Output {
        path: dir.to_path_buf(),
        message: format!("cannot be emptied ({e}); nothing was deleted"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_whole_run_lock_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_output(dir.path(), None).unwrap();
        let err = lock_output(dir.path(), None).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())) && err.contains("host "),
            "{err}"
        );
        // Ranks are refused beside a whole-run holder too.
        assert!(lock_output(dir.path(), Some(0)).is_err());
        drop(held);
        lock_output(dir.path(), None).unwrap();
    }

    #[test]
    fn ranks_do_not_block_each_other_but_block_the_same_rank_and_a_whole_run() {
        let dir = tempfile::tempdir().unwrap();
        let r0 = lock_output(dir.path(), Some(0)).unwrap();
        let r1 = lock_output(dir.path(), Some(1)).unwrap();
        let err = lock_output(dir.path(), Some(1)).unwrap_err().to_string();
        assert!(err.contains("rank 1"), "{err}");
        let err = lock_output(dir.path(), None).unwrap_err().to_string();
        assert!(err.contains("rank 0") && err.contains("rank 1"), "{err}");
        drop((r0, r1));
        lock_output(dir.path(), None).unwrap();
    }

    #[test]
    fn clear_keeps_the_lock_and_empties_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let lock = lock_output(dir.path(), None).unwrap();
        std::fs::create_dir_all(dir.path().join("data/sub")).unwrap();
        std::fs::write(dir.path().join("data/sub/x"), "x").unwrap();
        std::fs::write(dir.path().join("stats.json"), "{}").unwrap();
        assert!(!lock.is_empty().unwrap());
        lock.clear().unwrap();
        assert!(lock.is_empty().unwrap());
        drop(lock);
        let rank = lock_output(dir.path(), Some(2)).unwrap();
        assert!(rank.clear().unwrap_err().to_string().contains("rank 2"));
        drop(rank);
        let lock = lock_output(dir.path(), None).unwrap();
        lock.clear().unwrap();
        assert!(dir.path().join(LOCK_FILE).exists());
        // Still held after clearing.
        assert!(lock_output(dir.path(), None).is_err());
    }
}
