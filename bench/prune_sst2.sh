#!/usr/bin/env bash
# One-shot magnitude pruning of a fine-tuned SST-2 classifier: accuracy against sparsity.
#
#   bench/prune_sst2.sh [MODEL_DIR] [SPARSITIES] [SCOPES]
#
# MODEL_DIR (default /tmp/refinery-distill-bench/teacher-8000/best: all-MiniLM-L6-v2
# fine-tuned on SST-2, e.g. by bench/distill_sst2.sh); SPARSITIES (default "0 0.1 … 0.9");
# SCOPES (default "global layer"). For each pair: `refinery prune --method magnitude --sparse`
# (the classifier head stays dense), then `refinery evaluate --json` on the SST-2 dev set.
# Prints one table: sparsity, scope, dev accuracy and macro-F1, and the storage of the pruned
# Linear weights (dense f32 MB against model.sparse MB) and of the whole checkpoint with those
# weights stored sparse. No fine-tuning after pruning (one-shot; no recovery).
#
# Then, when $PYTHON has transformers, checks that transformers loads the most pruned
# checkpoint (layer scope if run) with refinery's probabilities on the dev sentences
# (bench/check_hf_classifier.py).
#
# Environment: REFINERY (the binary, default target/release/refinery), REFINERY_SHARED
# (default ../shared), WORK (default /tmp/refinery-prune-bench; outputs are replaced),
# PYTHON (default python3; the standard library reads the JSON, transformers is optional).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-/tmp/refinery-distill-bench/teacher-8000/best}
SPARSITIES=${2:-"0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9"}
SCOPES=${3:-"global layer"}
BIN=${REFINERY:-target/release/refinery}
SHARED=${REFINERY_SHARED:-../shared}
DEV=$SHARED/data/classification/sst2/dev.tsv
WORK=${WORK:-/tmp/refinery-prune-bench}
PY=${PYTHON:-python3}

for f in "$BIN" "$DEV" "$MODEL/config.json" "$MODEL/model.safetensors"; do
    if [ ! -e "$f" ]; then
        echo "prune_sst2.sh: $f is missing" >&2
        exit 1
    fi
done
rm -rf "$WORK"
mkdir -p "$WORK"
echo "model: $MODEL" >&2
echo "binary: $BIN ($("$BIN" --version))" >&2

RESULTS=$WORK/results.jsonl
: > "$RESULTS"
for scope in $SCOPES; do
    for s in $SPARSITIES; do
        out=$WORK/$scope-$s
        "$BIN" prune --model "$MODEL" --method magnitude --sparsity "$s" --scope "$scope" \
            --sparse --out "$out" > "$WORK/$scope-$s.prune.txt"
        "$BIN" evaluate --model "$out" --data "$DEV" --json > "$WORK/$scope-$s.eval.json"
        "$PY" - "$out/pruning.json" "$WORK/$scope-$s.eval.json" >> "$RESULTS" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
e = json.load(open(sys.argv[2]))
st = p["storage"]
print(json.dumps({
    "sparsity": p["sparsity"], "scope": p["scope"],
    "zeros": p["totals"]["zeros"], "pruned_params": p["totals"]["params"],
    "model_params": p["totals"]["model_params"],
    "accuracy": e["accuracy"], "macro_f1": e["macro_f1"], "n": e["n"],
    "dense_bytes": st["dense_bytes"], "sparse_bytes": st["sparse_bytes"],
    "safetensors_bytes": st["safetensors_bytes"],
}))
EOF
        tail -n 1 "$RESULTS" >&2
    done
done

"$PY" - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mb = lambda b: b / 1e6
print(f"{'sparsity':>8} {'scope':>6} {'accuracy':>8} {'macro-F1':>8} "
      f"{'dense MB':>8} {'sparse MB':>9} {'ckpt MB':>8} {'ckpt sparse MB':>14}")
for r in rows:
    rest = r["safetensors_bytes"] - r["dense_bytes"]
    print(f"{r['sparsity']:>8.1f} {r['scope']:>6} {r['accuracy']:>8.4f} {r['macro_f1']:>8.4f} "
          f"{mb(r['dense_bytes']):>8.2f} {mb(r['sparse_bytes']):>9.2f} "
          f"{mb(r['safetensors_bytes']):>8.2f} {mb(rest + r['sparse_bytes']):>14.2f}")
n = rows[0]
print(f"\npruned: {n['pruned_params']:,} Linear weights of {n['model_params']:,} parameters; "
      f"dev rows: {n['n']:.0f}. dense/sparse MB: the pruned Linear weights as f32 and as "
      f"model.sparse; ckpt MB: model.safetensors (dense, zeros included); ckpt sparse MB: "
      f"the same checkpoint with the pruned weights stored as model.sparse.")
EOF

# The most pruned checkpoint, per-layer scope first (global ones collapse to a constant
# output at high sparsity, which would make the comparison weak).
last=""
for scope in global layer; do
    for s in $SPARSITIES; do
        if [ -d "$WORK/$scope-$s" ]; then last=$WORK/$scope-$s; fi
    done
done
if [ -n "$last" ] && "$PY" -c "import transformers" 2>/dev/null; then
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    tail -n +2 "$DEV" | cut -f2 > "$WORK/dev.txt"
    "$BIN" classify --model "$last" < "$WORK/dev.txt" > "$WORK/probs.jsonl"
    echo "transformers on $last:"
    "$PY" bench/check_hf_classifier.py "$last" "$WORK/dev.txt" "$WORK/probs.jsonl" 64
else
    echo "(transformers check skipped: no output or no transformers in $PY)"
fi
