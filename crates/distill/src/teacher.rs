//! The teacher's identity: a hash of its weights and config, so that a resumed run (and a
//! teacher cache) can tell that the teacher directory still holds the same model.

use std::io::Read;
use std::path::Path;

use xxhash_rust::xxh3::Xxh3;

use crate::error::DistillError;

/// The files a teacher checkpoint is identified by (HF layout).
pub const IDENTITY_FILES: [&str; 2] = ["config.json", "model.safetensors"];

/// XXH3-128 of the teacher's `config.json` and `model.safetensors` (each preceded by its
/// length), streamed.
pub fn teacher_hash(dir: &Path) -> Result<u128, DistillError> {
    let mut h = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    for name in IDENTITY_FILES {
        let path = dir.join(name);
        let mut f = std::fs::File::open(&path).map_err(|e| DistillError::io(&path, e))?;
        let len = f.metadata().map_err(|e| DistillError::io(&path, e))?.len();
        h.update(&len.to_le_bytes());
        loop {
            let n = f.read(&mut buf).map_err(|e| DistillError::io(&path, e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(h.digest128())
}

/// The hash as it is written in specs: `xxh3-128:` and 32 hex digits.
pub fn hash_string(hash: u128) -> String {
    format!("xxh3-128:{hash:032x}")
}

/// Parses [`hash_string`]'s form.
pub fn parse_hash(s: &str) -> Option<u128> {
    let hex = s.strip_prefix("xxh3-128:")?;
    (hex.len() == 32)
        .then(|| u128::from_str_radix(hex, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_changes_with_the_weights_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::write(dir.path().join("model.safetensors"), [1u8, 2, 3]).unwrap();
        let a = teacher_hash(dir.path()).unwrap();
        assert_eq!(parse_hash(&hash_string(a)), Some(a));
        std::fs::write(dir.path().join("model.safetensors"), [1u8, 2, 4]).unwrap();
        assert_ne!(teacher_hash(dir.path()).unwrap(), a);
        assert!(parse_hash("sha1:00").is_none());
        std::fs::remove_file(dir.path().join("config.json")).unwrap();
        let e = teacher_hash(dir.path()).unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
    }
}
