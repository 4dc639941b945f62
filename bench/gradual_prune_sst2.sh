#!/usr/bin/env bash
# Magnitude pruning of a fine-tuned SST-2 classifier, three ways, accuracy against sparsity:
#
#   one-shot   `refinery prune` (no training after pruning)
#   recovery   one-shot, then fine-tuning with the one-shot masks held
#              ([prune] initial_sparsity = sparsity: pruned weights stay zero)
#   gradual    fine-tuning from the unpruned model with Zhu & Gupta's cubic schedule
#              ([prune] sparsity = S: 0 → S over the first 75% of the steps, masks every 10)
#
#   bench/gradual_prune_sst2.sh [MODEL_DIR] [SPARSITIES] [TRAIN_LIMIT] [EPOCHS] [SCOPE]
#
# MODEL_DIR (default /tmp/refinery-distill-bench/teacher-8000/best: all-MiniLM-L6-v2
# fine-tuned on the first 8,000 SST-2 sentences by bench/distill_sst2.sh); SPARSITIES (default
# "0.5 0.7 0.8 0.9"; 0 is always evaluated once); TRAIN_LIMIT (default 8000: the first N
# training sentences, the teacher's); EPOCHS (default 1); SCOPE (default layer: one global
# threshold removes MiniLM's small pooler first and collapses at 60%, see docs/pruning.md).
# The recovery and gradual runs use the sst2-minilm preset (lr 5e-5, batch 32, max length 64,
# seed 42) with the same data and steps; every model is evaluated with `refinery evaluate` on
# the SST-2 dev set (872 sentences); fine-tuned runs report best/ (picked at the final
# sparsity only). Prints one table and writes $WORK/results.jsonl.
#
# Environment: REFINERY (the binary, default target/release/refinery), REFINERY_SHARED
# (default ../shared), WORK (default /tmp/refinery-gradual-bench; outputs are replaced),
# PYTHON (default python3; the standard library reads the JSON).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-/tmp/refinery-distill-bench/teacher-8000/best}
SPARSITIES=${2:-"0.5 0.7 0.8 0.9"}
LIMIT=${3:-8000}
EPOCHS=${4:-1}
SCOPE=${5:-layer}
BIN=${REFINERY:-target/release/refinery}
SHARED=${REFINERY_SHARED:-../shared}
SST=$SHARED/data/classification/sst2
WORK=${WORK:-/tmp/refinery-gradual-bench}
PY=${PYTHON:-python3}

for f in "$BIN" "$SST/train.tsv" "$SST/dev.tsv" "$MODEL/config.json" "$MODEL/model.safetensors"; do
  if [ ! -e "$f" ]; then
    echo "gradual_prune_sst2.sh: $f is missing" >&2
    exit 1
  fi
done
rm -rf "$WORK"
mkdir -p "$WORK"
TRAIN=$WORK/train-$LIMIT.tsv
head -n $((LIMIT + 1)) "$SST/train.tsv" >"$TRAIN"
echo "model: $MODEL; train: $(($(wc -l <"$TRAIN") - 1)) sentences, $EPOCHS epoch(s); scope $SCOPE" >&2
echo "binary: $BIN ($("$BIN" --version))" >&2
# The preset's file (`finetune --print-config` cannot print a classify preset yet).
cp crates/train/presets/sst2-minilm.toml "$WORK/base.toml"

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
# evaluate NAME SPARSITY MODEL_DIR SECONDS: one JSON line in $RESULTS.
evaluate() {
  "$BIN" evaluate --model "$3" --data "$SST/dev.tsv" --json >"$WORK/$1.eval.json"
  "$PY" - "$1" "$2" "$3" "$4" "$WORK/$1.eval.json" >>"$RESULTS" <<'EOF'
import json, os, sys
name, s, model, secs, ev = sys.argv[1:]
e = json.load(open(ev))
report = os.path.join(model, "pruning.json")
zeros = None
if os.path.exists(report):
    t = json.load(open(report))["totals"]
    zeros = t["zeros"] / t["params"]
print(json.dumps({"method": name.split("-")[0], "sparsity": float(s), "measured": zeros,
                  "accuracy": e["accuracy"], "macro_f1": e["macro_f1"], "n": e["n"],
                  "train_s": float(secs)}))
EOF
  tail -n 1 "$RESULTS" >&2
}
# finetune NAME FROM_DIR PRUNE_TOML_LINES: fine-tunes with a [prune] section; prints seconds.
finetune() {
  { cat "$WORK/base.toml"; printf '\n[prune]\n%b' "$3"; } >"$WORK/$1.toml"
  local t0=$SECONDS
  "$BIN" finetune --config "$WORK/$1.toml" --model "$2" --train "$TRAIN" --dev "$SST/dev.tsv" \
    --epochs "$EPOCHS" --out "$WORK/$1" --quiet --json >"$WORK/$1.finetune.json"
  echo $((SECONDS - t0))
}

evaluate "unpruned-0" 0 "$MODEL" 0
for s in $SPARSITIES; do
  "$BIN" prune --model "$MODEL" --sparsity "$s" --scope "$SCOPE" --out "$WORK/oneshot-$s" >/dev/null
  evaluate "oneshot-$s" "$s" "$WORK/oneshot-$s" 0
  secs=$(finetune "recovery-$s" "$WORK/oneshot-$s" \
    "sparsity = $s\ninitial_sparsity = $s\nscope = \"$SCOPE\"\n")
  evaluate "recovery-$s" "$s" "$WORK/recovery-$s/best" "$secs"
  secs=$(finetune "gradual-$s" "$MODEL" "sparsity = $s\nscope = \"$SCOPE\"\n")
  evaluate "gradual-$s" "$s" "$WORK/gradual-$s/best" "$secs"
done

"$PY" - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'method':>9} {'sparsity':>8} {'measured':>8} {'accuracy':>8} {'macro-F1':>8} {'train s':>7}")
for r in rows:
    m = "" if r["measured"] is None else f"{r['measured']:.4f}"
    print(f"{r['method']:>9} {r['sparsity']:>8.2f} {m:>8} {r['accuracy']:>8.4f} "
          f"{r['macro_f1']:>8.4f} {r['train_s']:>7.0f}")
print(f"\nmeasured: zeros / weights of the pruned Linear tensors (pruning.json); dev rows: "
      f"{rows[0]['n']:.0f}; train s: wall seconds of the fine-tuning run.")
EOF
