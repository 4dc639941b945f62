//! Generation speed with and without the KV cache (greedy, batch 1, flex CPU backend).
//!
//! Model: `gpt-tiny` (4 layers, d=256, 4 heads) with vocab 8192 and n_positions 512, random
//! weights; prompt of 16 tokens; 128 and 256 new tokens; median of `REPS` runs.
//!
//! ```text
//! cargo run -p refinery-model --example generate_bench            # dev profile (deps at opt-level 2)
//! cargo run -p refinery-model --example generate_bench --release
//! ```
//! Also wrapped by `bench/generate_bench.sh`.

use std::time::Instant;

use burn::tensor::Device;
use refinery_model::generate::{generate_with, Decoding, SamplingConfig};
use refinery_model::GptConfig;

const REPS: usize = 3;

fn main() {
    let device = Device::flex();
    let mut config = GptConfig::tiny(8192);
    config.n_positions = 512;
    let model = match config.init(&device) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let prompt: Vec<u32> = (0..16).map(|i| (i * 131 + 7) % 8192).collect();
    println!("new_tokens  decoding  median_s  tokens/s  (runs: {REPS})");
    for new_tokens in [128usize, 256] {
        let sampling = SamplingConfig::greedy(new_tokens);
        let mut outputs = Vec::new();
        for decoding in [Decoding::Cached, Decoding::Full] {
            let mut times = Vec::new();
            for _ in 0..REPS {
                let start = Instant::now();
                let g = match generate_with(&model, &prompt, &sampling, decoding) {
                    Ok(g) => g,
                    Err(e) => {
                        eprintln!("error: {e}");
                        std::process::exit(1);
                    }
                };
                times.push(start.elapsed().as_secs_f64());
                assert_eq!(g.tokens.len(), new_tokens);
                outputs.push(g.tokens);
            }
            times.sort_by(f64::total_cmp);
            let median = times[REPS / 2];
            println!(
                "{new_tokens:>10}  {:>8}  {median:>8.3}  {:>8.1}",
                match decoding {
                    Decoding::Cached => "cache",
                    Decoding::Full => "full",
                },
                new_tokens as f64 / median
            );
        }
        // Both decodings must produce the same tokens.
        assert!(outputs.windows(2).all(|w| w[0] == w[1]));
    }
}
