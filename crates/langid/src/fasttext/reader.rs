//! A bounded little-endian reader: every count read from the file is checked
//! against the bytes that are left before anything is allocated.

use std::io::Read;

use super::FastTextError;

/// Reads a fastText model from `inner`, which holds exactly `remaining`
/// bytes. Every error names the file (`name`) and the field being read.
pub(crate) struct Reader<R> {
    inner: R,
    remaining: u64,
    name: String,
}

impl<R: Read> Reader<R> {
    pub(crate) fn new(inner: R, len: u64, name: String) -> Self {
        Reader {
            inner,
            remaining: len,
            name,
        }
    }

    /// A format error about `field`.
    pub(crate) fn error(&self, field: &str, message: impl Into<String>) -> FastTextError {
        FastTextError::Format {
            file: self.name.clone(),
            field: field.to_string(),
            message: message.into(),
        }
    }

    fn read_exact(&mut self, field: &str, buf: &mut [u8]) -> Result<(), FastTextError> {
        if buf.len() as u64 > self.remaining {
            return Err(self.error(field, "unexpected end of file (truncated model?)"));
        }
        self.inner
            .read_exact(buf)
            .map_err(|e| self.error(field, format!("read failed: {e}")))?;
        self.remaining -= buf.len() as u64;
        Ok(())
    }

    pub(crate) fn u8(&mut self, field: &str) -> Result<u8, FastTextError> {
        let mut b = [0u8; 1];
        self.read_exact(field, &mut b)?;
        Ok(b[0])
    }

    /// A C++ `bool`: one byte, 0 or 1.
    pub(crate) fn bool(&mut self, field: &str) -> Result<bool, FastTextError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.error(field, format!("= {v}: not a boolean (0 or 1)"))),
        }
    }

    pub(crate) fn i32(&mut self, field: &str) -> Result<i32, FastTextError> {
        let mut b = [0u8; 4];
        self.read_exact(field, &mut b)?;
        Ok(i32::from_le_bytes(b))
    }

    pub(crate) fn i64(&mut self, field: &str) -> Result<i64, FastTextError> {
        let mut b = [0u8; 8];
        self.read_exact(field, &mut b)?;
        Ok(i64::from_le_bytes(b))
    }

    pub(crate) fn f64(&mut self, field: &str) -> Result<f64, FastTextError> {
        let mut b = [0u8; 8];
        self.read_exact(field, &mut b)?;
        Ok(f64::from_le_bytes(b))
    }

    /// Checks that `value` items of at least `item_bytes` bytes each can
    /// still be in the file, and returns `value` as a `usize`.
    pub(crate) fn count(
        &self,
        field: &str,
        value: i64,
        item_bytes: u64,
    ) -> Result<usize, FastTextError> {
        if value < 0 {
            return Err(self.error(field, format!("= {value}: must not be negative")));
        }
        let fits = (value as u64)
            .checked_mul(item_bytes)
            .is_some_and(|bytes| bytes <= self.remaining);
        if !fits {
            return Err(self.error(
                field,
                format!(
                    "= {value} exceeds file size ({} bytes left)",
                    self.remaining
                ),
            ));
        }
        usize::try_from(value).map_err(|_| self.error(field, format!("= {value}: too large")))
    }

    /// Reads a NUL-terminated byte string (a dictionary word).
    pub(crate) fn cstring(&mut self, field: &str) -> Result<Vec<u8>, FastTextError> {
        let mut out = Vec::new();
        loop {
            let b = self.u8(field)?;
            if b == 0 {
                return Ok(out);
            }
            out.push(b);
        }
    }

    pub(crate) fn bytes(&mut self, field: &str, n: usize) -> Result<Vec<u8>, FastTextError> {
        self.count(field, n as i64, 1)?;
        let mut out = vec![0u8; n];
        self.read_exact(field, &mut out)?;
        Ok(out)
    }

    /// Reads `n` little-endian `f32`s, in chunks, after checking the size.
    pub(crate) fn f32s(&mut self, field: &str, n: usize) -> Result<Vec<f32>, FastTextError> {
        self.count(field, n as i64, 4)?;
        let mut out = Vec::with_capacity(n);
        let mut buf = vec![0u8; 4 * n.min(1 << 16)];
        while out.len() < n {
            let take = (n - out.len()).min(1 << 16);
            let chunk = &mut buf[..4 * take];
            self.read_exact(field, chunk)?;
            out.extend(
                chunk
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            );
        }
        Ok(out)
    }
}
