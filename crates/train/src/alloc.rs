//! Allocator settings for training processes.
//!
//! burn allocates a fresh buffer for every activation and gradient. With glibc's defaults,
//! buffers above the (dynamic) mmap threshold are `mmap`ed and `munmap`ed on every step, so
//! the kernel faults and zeroes every page again: 12–19% of a CPU training step in `perf`
//! (docs/models.md "Speed"). Raising the mmap threshold to its maximum (32 MiB) and keeping
//! freed memory at the top of the heap lets the same pages be reused step after step.
//! Measured on the benchmark GPT (`crates/train/examples/train_speed.rs`, 1 thread): 820 →
//! 610 ms CPU per step, the same losses bit for bit.
//!
//! This is a process-wide setting, so the library never applies it by itself: binaries that
//! train or generate call [`tune_allocator_for_training`] once at start-up.

/// Sets glibc malloc's mmap threshold to 32 MiB, the trim threshold to 4 GiB and the top pad
/// to 256 MiB (the `mallopt` equivalents of
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=268435456`).
/// Returns whether every setting was accepted; a no-op returning `false` on other platforms.
pub fn tune_allocator_for_training() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes malloc's tuning parameters; it is thread-safe in glibc
        // and takes plain integers. Called before the training threads allocate.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
                && libc::mallopt(libc::M_TOP_PAD, 256 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_accepts_the_settings() {
        let ok = super::tune_allocator_for_training();
        assert_eq!(ok, cfg!(all(target_os = "linux", target_env = "gnu")));
        // Allocation still works after the change, above the new mmap threshold too.
        let big: Vec<u8> = std::iter::repeat_n(2u8, 40 << 20).collect();
        assert_eq!(big.len(), 40 << 20);
        assert_eq!(big[(40 << 20) - 1], 2);
    }
}
