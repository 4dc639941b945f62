#!/usr/bin/env bash
# int8 vs f32 for a GPT-2 pretrained by refinery: held-out perplexity (eval-lm), generation
# tokens/s (generate, greedy, KV cache) and the `compare` table.
#
#   bench/quantize_gpt.sh OUT_DIR
#
# 1. tinyshakespeare (../shared/data/lm) → byte-level BPE 2048 → token shards (one document
#    per speech), as docs/worked-example.sh does;
# 2. `pretrain` gpt-tiny (4 layers, d=256, 4 heads, context 128) for GPT_STEPS steps (default
#    300; the worked example's config), unless GPT_MODEL=DIR names a checkpoint to reuse;
# 3. `quantize` it (dynamic, per-token asymmetric activations, int8 embeddings and head);
# 4. `eval-lm` of f32 and int8 on the whole held-out split (5% of the documents, seed 0,
#    rows of 128 tokens);
# 5. `generate` greedy, 120 new tokens, no EOS stop, prompt "ROMEO:", f32 on burn, f32 on the
#    engine (`--engine`) and int8 (engine) interleaved, REPEATS runs each (default 5): median
#    tokens/s (generation only, KV cache) and CPU seconds (user + sys of the whole process,
#    loading included, from /usr/bin/time);
# 6. `compare` f32, engine:f32 and int8 on the first 64 rows of 128 tokens, 1 thread: size,
#    batch-1 latency, batch-8 rows/s, perplexity, and the decode speed in-process (greedy with
#    the KV cache to the full context, repeated for >= 1 s; steadier than step 5's short runs).
#
# REFINERY=BIN uses that binary (else `cargo build --release -p refinery-cli`); THREADS sets
# RAYON_NUM_THREADS for steps 4-5 (default 1). Writes OUT_DIR/results.json and prints a
# summary. Needs python3 (stdlib) for the JSON.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="${REFINERY_SHARED:-$ROOT/../shared}"
SHAKES="$SHARED/data/lm/tinyshakespeare.txt"
if [ ! -f "$SHAKES" ]; then
    echo "quantize_gpt: $SHAKES not found; put the shared data at $ROOT/../shared or set REFINERY_SHARED" >&2
    exit 1
fi
OUT="${1:?usage: bench/quantize_gpt.sh OUT_DIR}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
STEPS="${GPT_STEPS:-300}"
REPEATS="${REPEATS:-5}"
THREADS="${THREADS:-1}"
cd "$ROOT"
if [ -z "${REFINERY:-}" ]; then
    cargo build --release -p refinery-cli
fi
R="${REFINERY:-$ROOT/target/release/refinery}"
export RAYON_NUM_THREADS="$THREADS"

echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs; load: $(uptime | sed 's/.*load average: //')"

TOK="$OUT/shakespeare-bpe.json"
SHARDS="$OUT/shakespeare-tokens"
if [ ! -d "$SHARDS" ]; then
    "$R" tokenizer train --model bpe --vocab-size 2048 --format text --text-unit paragraph \
        "$SHAKES" -o "$TOK" -q
    "$R" tokenize --tokenizer "$TOK" --format text --text-unit paragraph \
        "$SHAKES" --output "$SHARDS" --overwrite -q
fi

if [ -n "${GPT_MODEL:-}" ]; then
    F32="$GPT_MODEL"
else
    F32="$OUT/gpt/checkpoint-$STEPS"
    if [ ! -d "$F32" ]; then
        cat > "$OUT/gpt.toml" <<TOML
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
total_steps = $STEPS
eval_every = $STEPS
eval_batches = 10
save_every = $STEPS
keep = 1
seed = 0
TOML
        RAYON_NUM_THREADS= "$R" pretrain --config "$OUT/gpt.toml" --data "$SHARDS" \
            --tokenizer "$TOK" --out "$OUT/gpt" --quiet
    fi
fi
INT8="$OUT/int8"
rm -rf "$INT8"
"$R" quantize --model "$F32" --out "$INT8" | tee "$OUT/quantize.txt"

echo "== eval-lm (held-out 5%, seq 128, $THREADS thread(s))"
for m in "$F32" "$INT8"; do
    "$R" eval-lm --model "$m" --data "$SHARDS" --seq-len 128 --validation-fraction 0.05 \
        --split-seed 0 --json > "$OUT/eval-$(basename "$m").json"
done

echo "== generate (greedy, 120 tokens, $REPEATS runs each, interleaved)"
: > "$OUT/generate.jsonl"
for i in $(seq "$REPEATS"); do
    for run in "f32|$F32|" "f32-engine|$F32|--engine" "int8|$INT8|"; do
        IFS='|' read -r label m flag <<<"$run"
        # shellcheck disable=SC2086
        /usr/bin/time -f '%U %S' -o "$OUT/time.txt" "$R" generate --model "$m" --prompt "ROMEO:" \
            --temperature 0 --max-new-tokens 120 --no-eos --json $flag > "$OUT/gen.json" 2>/dev/null
        python3 - "$label" "$OUT/gen.json" "$OUT/time.txt" >> "$OUT/generate.jsonl" <<'PY'
import json, sys
g = json.load(open(sys.argv[2]))
u, s = map(float, open(sys.argv[3]).read().split()[-2:])
print(json.dumps({"run": sys.argv[1], "tokens": g["tokens"], "tokens_per_second": g["tokens_per_second"],
                  "seconds": g["seconds"], "cpu_s": u + s}))
PY
    done
done

echo "== compare (first 64 rows of 128 tokens, 1 thread)"
"$R" compare "$F32" "engine:$F32" "$INT8" --data "$SHARDS" --seq-len 128 --batch-size 8 \
    --latency-n 64 --repeats 3 --threads 1 --json "$OUT/compare.json" | tee "$OUT/compare.txt"

python3 - "$OUT" "$F32" "$INT8" <<'PY'
import json, os, statistics, sys
out, f32, int8 = sys.argv[1:4]
ev = {k: json.load(open(os.path.join(out, f"eval-{os.path.basename(m)}.json"))) for k, m in [("f32", f32), ("int8", int8)]}
gens = [json.loads(l) for l in open(os.path.join(out, "generate.jsonl"))]
res = {"eval": {}, "generate": {}}
for k, m in [("f32", f32), ("int8", int8)]:
    e = ev[k]
    res["eval"][k] = {"perplexity": e["perplexity"], "loss": e["loss"], "lm_accuracy": e["metrics"].get("lm_accuracy"),
                      "tokens": e["tokens"], "batches": e["batches"]}
for k in ["f32", "f32-engine", "int8"]:
    g = [x for x in gens if x["run"] == k]
    res["generate"][k] = {"runs": len(g), "median_tokens_per_second": statistics.median(x["tokens_per_second"] for x in g),
                          "median_cpu_s": statistics.median(x["cpu_s"] for x in g), "tokens": g[0]["tokens"]}
assert res["generate"]["f32-engine"]["tokens"] == res["generate"]["f32"]["tokens"], "engine f32 != burn f32 tokens"
same = sum(a == b for a, b in zip(res["generate"]["f32"]["tokens"], res["generate"]["int8"]["tokens"]))
first_diff = next((i for i, (a, b) in enumerate(zip(res["generate"]["f32"]["tokens"], res["generate"]["int8"]["tokens"])) if a != b), None)
res["generate"]["same_tokens_as_f32"] = same
res["generate"]["first_differing_token"] = first_diff
res["files"] = {k: os.path.getsize(os.path.join(m, "model.safetensors")) for k, m in [("f32", f32), ("int8", int8)]}
json.dump(res, open(os.path.join(out, "results.json"), "w"), indent=2)
e, g = res["eval"], res["generate"]
print(f"perplexity: f32 {e['f32']['perplexity']:.3f}, int8 {e['int8']['perplexity']:.3f} "
      f"({100 * (e['int8']['perplexity'] / e['f32']['perplexity'] - 1):+.2f}%), {e['f32']['tokens']} tokens")
print(f"generate tokens/s (median of {g['f32']['runs']}): f32 burn {g['f32']['median_tokens_per_second']:.1f}, "
      f"f32 engine {g['f32-engine']['median_tokens_per_second']:.1f}, int8 {g['int8']['median_tokens_per_second']:.1f}; "
      f"process CPU s: {g['f32']['median_cpu_s']:.2f}, {g['f32-engine']['median_cpu_s']:.2f}, {g['int8']['median_cpu_s']:.2f}; "
      f"int8 greedy tokens equal to f32's (position by position): {same}/120 (first difference at {first_diff})")
print(f"model.safetensors: f32 {res['files']['f32'] / 1e6:.2f} MB, int8 {res['files']['int8'] / 1e6:.2f} MB")
rows = json.load(open(os.path.join(out, "compare.json")))
res["compare"] = rows
json.dump(res, open(os.path.join(out, "results.json"), "w"), indent=2)
print("compare decode tokens/s: " + ", ".join(f"{r['runner']} {r['decode_tokens_per_s']:.0f}" for r in rows))
PY
