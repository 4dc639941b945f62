#!/usr/bin/env bash
# Fine-tuning all-MiniLM-L6-v2 on SST-2: refinery against HF Trainer, same recipe, same seeds.
#
#   PYTHON=/path/to/venv/bin/python bench/finetune_vs_hf.sh [SEEDS] [TRAIN_LIMIT] [THREADS]
#
# SEEDS (default "1 2 3"); TRAIN_LIMIT: the first N training sentences (default: all 67,349);
# THREADS: torch/rayon threads for both sides (default: all cores). The two sides run
# interleaved (seed by seed). The recipe is refinery's `sst2-minilm` preset and
# bench/finetune_hf.py: AdamW 5e-5, wd 0.01 (no decay on bias/LayerNorm), linear decay after
# 6% warmup, batch 32, 1 epoch, max length 64, length-grouped dynamic padding, clip 1.0.
#
# Prints one JSON line per run and a summary: dev accuracy mean ± std per side, the
# difference, train examples/s and peak RSS; then checks that transformers loads refinery's
# best model with matching probabilities and identical predictions on the dev set.
# Needs: a venv with torch, transformers, accelerate (PYTHON), ../shared (SST-2 and the
# MiniLM fetch tool). Writes under ${WORK:-/tmp/refinery-ft-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-"1 2 3"}
LIMIT=${2:-}
THREADS=${3:-$(nproc)}
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/refinery-ft-bench}
SHARED=${REFINERY_SHARED:-../shared}
SST=$SHARED/data/classification/sst2
mkdir -p "$WORK"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS

MINILM=$(PATH="$(dirname "$PY"):$PATH" bash "$SHARED/tools/fetch-minilm.sh" "$WORK/minilm" | tail -n 1)
TRAIN=$SST/train.tsv
if [ -n "$LIMIT" ]; then
  TRAIN=$WORK/train-$LIMIT.tsv
  head -n $((LIMIT + 1)) "$SST/train.tsv" >"$TRAIN"
fi
cargo build -q --release -p refinery-cli
BIN=target/release/refinery
echo "# $(lscpu | sed -n 's/^Model name: *//p'); load $(cut -d' ' -f1-3 /proc/loadavg); threads $THREADS"
echo "# torch $("$PY" -c 'import torch; print(torch.__version__)'), transformers $("$PY" -c 'import transformers; print(transformers.__version__)')"

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
for seed in $SEEDS; do
  out=$WORK/refinery-s$seed
  rm -rf "$out"
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$BIN" finetune --preset sst2-minilm \
    --model "$MINILM" --train "$TRAIN" --dev "$SST/dev.tsv" --out "$out" --seed "$seed" --json \
    >"$WORK/ours.json"
  read -r wall user sys rss <"$WORK/time"
  "$PY" - "$WORK/ours.json" "$seed" "$wall" "$user" "$sys" "$rss" "$TRAIN" >>"$RESULTS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n = sum(1 for _ in open(sys.argv[7])) - 1
wall = float(sys.argv[3])
final = r["final"]["eval"]["metrics"]
best = r["best"]["eval"]["metrics"]
# The comparison uses the final model (HF Trainer keeps the last one); best is reported too.
print(json.dumps({"side": "refinery", "seed": int(sys.argv[2]), "train_examples": n,
    "steps": r["final_step"], "accuracy": final["accuracy"], "best_accuracy": best["accuracy"],
    "train_s": wall,
    "train_cpu_s": float(sys.argv[4]) + float(sys.argv[5]), "examples_per_s": n / wall,
    "peak_rss_mb": int(sys.argv[6]) / 1024}))
PY
  tail -n 1 "$RESULTS"
  "$PY" bench/finetune_hf.py --model "$MINILM" --train "$TRAIN" --dev "$SST/dev.tsv" \
    --out "$WORK/hf-s$seed" --seed "$seed" --threads "$THREADS" ${LIMIT:+--limit "$LIMIT"} \
    2>/dev/null | tail -n 1 >>"$RESULTS"
  tail -n 1 "$RESULTS"
done

"$PY" - "$RESULTS" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for side in ["refinery", "hf"]:
    r = [x for x in rows if x["side"] == side]
    acc = [x["accuracy"] for x in r]
    sd = st.stdev(acc) if len(acc) > 1 else 0.0
    print(f"{side:9} accuracy {st.mean(acc):.4f} ± {sd:.4f} over {len(acc)} seeds; "
          f"{st.median([x['examples_per_s'] for x in r]):.1f} examples/s (median); "
          f"peak RSS {max(x['peak_rss_mb'] for x in r):.0f} MB")
ours = st.mean(x["accuracy"] for x in rows if x["side"] == "refinery")
hf = st.mean(x["accuracy"] for x in rows if x["side"] == "hf")
print(f"difference (refinery − HF): {100 * (ours - hf):+.2f} points")
PY

# transformers loads refinery's final model: same probabilities, same predictions.
seed=$(echo "$SEEDS" | awk '{print $1}')
best=$WORK/refinery-s$seed/final
tail -n +2 "$SST/dev.tsv" | cut -f2 >"$WORK/dev.txt"
"$BIN" classify --model "$best" <"$WORK/dev.txt" >"$WORK/ours_probs.jsonl"
"$PY" bench/check_hf_classifier.py "$best" "$WORK/dev.txt" "$WORK/ours_probs.jsonl" 64
