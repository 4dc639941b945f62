//! A progress bar fed by the executor's atomic counters: bytes read against
//! the total input size (for the ETA), documents per second and MB/s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use refinery_corpus::executor::Progress;

/// Runs `work` while a bar tracks `progress`; the bar is hidden when `quiet`
/// or when stderr is not a terminal.
pub fn with_bar<T>(progress: &Progress, quiet: bool, work: impl FnOnce() -> T) -> T {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(5));
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template(
            "[{elapsed}] {bar:24.cyan/blue} {percent:>3}% {binary_bytes_per_sec:>11} ETA {eta:<4} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let done = AtomicBool::new(false);
    let start = Instant::now();
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                update(&bar, progress, start);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let r = work();
        done.store(true, Ordering::Relaxed);
        r
    });
    update(&bar, progress, start);
    bar.finish_and_clear();
    result
}

fn update(bar: &ProgressBar, p: &Progress, start: Instant) {
    let total = p.total_bytes.load(Ordering::Relaxed);
    if bar.length() != Some(total) {
        bar.set_length(total);
    }
    bar.set_position(p.bytes_read.load(Ordering::Relaxed).min(total));
    let records = p.records.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64().max(1e-3);
    bar.set_message(format!(
        "{records} docs {:.0}/s, {} kept, {}/{} tasks",
        records as f64 / secs,
        p.kept.load(Ordering::Relaxed),
        p.tasks_done.load(Ordering::Relaxed),
        p.tasks_total.load(Ordering::Relaxed),
    ));
}
