#!/usr/bin/env bash
# Reproduces docs/worked-example.md with the refinery CLI only:
#   1. tinyshakespeare -> byte-level BPE -> token shards -> tiny GPT -> eval-lm -> generate
#   2. IMDB unsup reviews -> WordPiece -> token shards -> bert-tiny (MLM + NSP) -> eval-lm
# Usage (from anywhere):  docs/worked-example.sh [OUT_DIR]   (default: worked-example-out)
# Data: ../shared next to the repository, or $REFINERY_SHARED. Nothing is downloaded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${REFINERY_SHARED:-$ROOT/../shared}"
SHAKES="$SHARED/data/lm/tinyshakespeare.txt"
IMDB="$SHARED/data/classification/imdb/imdb_unsup.jsonl.gz"
for f in "$SHAKES" "$IMDB"; do
    if [ ! -f "$f" ]; then
        echo "worked-example: $f not found; put the shared data at $ROOT/../shared or set REFINERY_SHARED" >&2
        exit 1
    fi
done
OUT="${1:-worked-example-out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

cd "$ROOT"
# REFINERY=path/to/refinery skips the build.
if [ -z "${REFINERY:-}" ]; then
    cargo build --release -p refinery-cli
fi
R="${REFINERY:-$ROOT/target/release/refinery}"
t() { local s=$SECONDS; "$@"; echo "  ($((SECONDS - s)) s: ${*:1:2})" >&2; }

echo "== 1. tiny GPT on tinyshakespeare =="
# One document per paragraph (a speech): --format text --text-unit paragraph; no JSONL needed.
t "$R" tokenizer train --model bpe --vocab-size 2048 --format text --text-unit paragraph \
    "$SHAKES" -o "$OUT/shakespeare-bpe.json" -q
t "$R" tokenize --tokenizer "$OUT/shakespeare-bpe.json" --format text --text-unit paragraph \
    "$SHAKES" --output "$OUT/shakespeare-tokens" --overwrite -q
"$R" tokens inspect "$OUT/shakespeare-tokens" | head -n 12

cat > "$OUT/gpt.toml" <<'TOML'
# gpt-tiny (4 layers, d=256, 4 heads, context 128) with batch 8 x 128 tokens; 5% of the
# speeches held out.
[task]
kind = "gpt-clm"

[model]
size = "tiny"
dropout = 0.0

[data]
seq_len = 128
batch_size = 8
mode = "packed"
validation_fraction = 0.05

[optim]
lr = 1e-3
min_lr = 1e-4
warmup_steps = 30
decay = "cosine"
weight_decay = 0.1
grad_clip = 1.0

[run]
total_steps = GPT_STEPS
eval_every = 50
eval_batches = 10
save_every = 100
keep = 2
seed = 0
TOML
sed -i "s/GPT_STEPS/${GPT_STEPS:-300}/" "$OUT/gpt.toml"
rm -rf "$OUT/gpt"   # a directory with checkpoints would be resumed
t "$R" pretrain --config "$OUT/gpt.toml" --data "$OUT/shakespeare-tokens" \
    --tokenizer "$OUT/shakespeare-bpe.json" --out "$OUT/gpt"
GPT_CKPT="$OUT/gpt/$(cat "$OUT/gpt/latest")"
t "$R" eval-lm --model "$GPT_CKPT" --data "$OUT/shakespeare-tokens" --seq-len 128 \
    --validation-fraction 0.05 --split-seed 0
for seed in 0 1; do
    t "$R" generate --model "$GPT_CKPT" --prompt "ROMEO:" --max-new-tokens 120 \
        --temperature 0.8 --top-k 50 --top-p 0.95 --seed "$seed"
done

echo "== 2. bert-tiny (MLM + NSP) on IMDB unsup =="
t "$R" tokenizer train --model wordpiece --vocab-size 8000 --lowercase --max-docs 20000 \
    "$IMDB" -o "$OUT/imdb-wordpiece.json" -q
t "$R" tokenize --tokenizer "$OUT/imdb-wordpiece.json" "$IMDB" \
    --output "$OUT/imdb-tokens" --overwrite -q
"$R" tokens inspect "$OUT/imdb-tokens" | head -n 12
# NSP segments end after a sentence: the ids of "." "!" "?" in this tokenizer.
BOUNDARY=$(printf '.\n!\n?\n' | "$R" tokenizer encode --tokenizer "$OUT/imdb-wordpiece.json" | paste -sd, -)
cat > "$OUT/bert.toml" <<TOML
# bert-tiny (2 layers, hidden 128, 2 heads, intermediate 512), MLM 15% + NSP, 16 x 128 tokens.
[task]
kind = "bert-mlm-nsp"
mlm_probability = 0.15
nsp = true

[model]
size = "tiny"
dropout = 0.1

[data]
seq_len = 128
batch_size = 16
validation_fraction = 0.01

[data.nsp]
boundary_ids = [$BOUNDARY]
max_segment_tokens = 62

[optim]
lr = 1e-3
min_lr = 1e-4
warmup_steps = 30
decay = "linear"
weight_decay = 0.01
beta1 = 0.9
beta2 = 0.999
grad_clip = 1.0

[run]
total_steps = ${BERT_STEPS:-300}
eval_every = 50
eval_batches = 10
save_every = 100
keep = 2
seed = 0
TOML
rm -rf "$OUT/bert"
t "$R" pretrain --config "$OUT/bert.toml" --data "$OUT/imdb-tokens" \
    --tokenizer "$OUT/imdb-wordpiece.json" --out "$OUT/bert"
BERT_CKPT="$OUT/bert/$(cat "$OUT/bert/latest")"
t "$R" eval-lm --model "$BERT_CKPT" --data "$OUT/imdb-tokens" --seq-len 128 --batch-size 16 \
    --validation-fraction 0.01 --split-seed 0 --max-batches 20

echo "metrics: $OUT/gpt/metrics.jsonl $OUT/bert/metrics.jsonl"
