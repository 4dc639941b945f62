#!/usr/bin/env bash
# Tokens/s of `refinery_model::generate` with and without the KV cache, 128 and 256 new
# tokens (gpt-tiny, vocab 8192, greedy, batch 1, flex CPU). Medians of 3 runs.
# Usage: bench/generate_bench.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q -p refinery-model --example generate_bench "$@"
