#!/usr/bin/env bash
# Structured pruning of a fine-tuned SST-2 classifier: dev accuracy and speed against the
# fraction of attention heads removed (Michel et al. 2019), and FFN neurons.
#
#   bench/prune_heads_sst2.sh [MODEL_DIR] [FRACTIONS]
#
# MODEL_DIR (default /tmp/refinery-distill-bench/teacher-8000/best: all-MiniLM-L6-v2
# fine-tuned on SST-2 by bench/distill_sst2.sh); FRACTIONS of all heads (default
# "0.1 0.2 0.3 0.4 0.5 0.6").
#
# Heads, importance: `refinery prune --method heads --data train.tsv` (the first $SAMPLES
# rows of SST-2 train; rounds of 10% of the heads, the importance recomputed after each round).
# The fractions are chained: each run prunes the previous output further (its rounds of 10%
# start from the heads already pruned). Heads, magnitude: the same fractions ranked
# by weight norm (no data), for comparison. FFN: 25% and 50% of each layer's neurons by
# importance. Every model: `refinery evaluate --json` on SST-2 dev (872 sentences), no
# recovery fine-tuning. Then `refinery compare` on the unpruned model and a subset
# ($SPEED, default heads 0.2 0.4 0.6 and ffn 0.5) for batch-1 latency and batch-32
# throughput, burn f32 and int8 (`refinery quantize` of the same pruned model), at $THREADS.
# Last, recovery: `refinery finetune --preset sst2-minilm --epochs 1` of each model in $RECOVER
# (default heads-imp-0.4 heads-imp-0.6; empty to skip) on $RECOVER_TRAIN (default the 8,000
# training sentences bench/distill_sst2.sh fine-tuned the teacher on), evaluated the same way,
# with the unpruned model fine-tuned the same way as the control.
#
# Environment: REFINERY (default target/release/refinery), REFINERY_SHARED (default
# ../shared), WORK (default /tmp/refinery-heads-bench; outputs are replaced), SAMPLES (2048),
# THREADS (default "1"), STAGES (default "prune ffn speed recover"), PYTHON (python3, standard
# library only).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-/tmp/refinery-distill-bench/teacher-8000/best}
FRACTIONS=${2:-"0.1 0.2 0.3 0.4 0.5 0.6"}
BIN=${REFINERY:-target/release/refinery}
SHARED=${REFINERY_SHARED:-../shared}
TRAIN=$SHARED/data/classification/sst2/train.tsv
DEV=$SHARED/data/classification/sst2/dev.tsv
WORK=${WORK:-/tmp/refinery-heads-bench}
SAMPLES=${SAMPLES:-2048}
THREADS=${THREADS:-1}
SPEED=${SPEED:-"heads-imp-0.2 heads-imp-0.4 heads-imp-0.6 ffn-imp-0.5"}
RECOVER=${RECOVER-"heads-imp-0.4 heads-imp-0.6"}
RECOVER_TRAIN=${RECOVER_TRAIN:-/tmp/refinery-distill-bench/train-8000.tsv}
STAGES=${STAGES:-"prune ffn speed recover"} # later stages reuse $WORK from an earlier run
has() { [[ " $STAGES " == *" $1 "* ]]; }
PY=${PYTHON:-python3}

for f in "$BIN" "$TRAIN" "$DEV" "$MODEL/config.json" "$MODEL/model.safetensors"; do
    if [ ! -e "$f" ]; then
        echo "prune_heads_sst2.sh: $f is missing" >&2
        exit 1
    fi
done
if has prune; then rm -rf "$WORK"; fi
mkdir -p "$WORK"
{
    echo "model: $MODEL"
    echo "binary: $BIN ($("$BIN" --version))"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
} >&2

RESULTS=$WORK/results.jsonl
if has prune; then : >"$RESULTS"; fi
record() { # NAME DIR SECONDS
    "$BIN" evaluate --model "$2" --data "$DEV" --json >"$WORK/$1.eval.json"
    "$PY" - "$1" "$2" "$WORK/$1.eval.json" "$3" >>"$RESULTS" <<'EOF'
import json, os, sys
name, d, ev, secs = sys.argv[1:5]
e = json.load(open(ev))
c = json.load(open(os.path.join(d, "config.json")))
heads = c["num_hidden_layers"] * c["num_attention_heads"] - sum(len(v) for v in c.get("pruned_heads", {}).values())
print(json.dumps({"name": name, "heads": heads, "ffn": c["intermediate_size"],
                  "accuracy": e["accuracy"], "macro_f1": e["macro_f1"], "n": e["n"],
                  "mb": os.path.getsize(os.path.join(d, "model.safetensors")) / 1e6,
                  "prune_s": float(secs)}))
EOF
    tail -n 1 "$RESULTS" >&2
}
timed_prune() { # NAME ARGS...
    local name=$1 t0
    shift
    t0=$(date +%s)
    "$BIN" prune "$@" --out "$WORK/$name" >"$WORK/$name.prune.txt"
    echo $(($(date +%s) - t0))
}

if has prune; then
record base "$MODEL" 0
prev=$MODEL
for f in $FRACTIONS; do
    s=$(timed_prune "heads-imp-$f" --model "$prev" --method heads --sparsity "$f" \
        --data "$TRAIN" --samples "$SAMPLES")
    record "heads-imp-$f" "$WORK/heads-imp-$f" "$s"
    prev=$WORK/heads-imp-$f
    s=$(timed_prune "heads-mag-$f" --model "$MODEL" --method heads --sparsity "$f")
    record "heads-mag-$f" "$WORK/heads-mag-$f" "$s"
done
fi
if has ffn; then
for f in 0.25 0.5; do
    s=$(timed_prune "ffn-imp-$f" --model "$MODEL" --method ffn --sparsity "$f" \
        --data "$TRAIN" --samples "$SAMPLES")
    record "ffn-imp-$f" "$WORK/ffn-imp-$f" "$s"
done
fi

# Speed: burn f32 and int8 of the same models, one process per model (refinery compare).
if has speed; then
models=("$MODEL")
for n in $SPEED; do models+=("$WORK/$n"); done
for m in "${models[@]}"; do
    q=$WORK/int8-$(basename "$m")
    "$BIN" quantize --model "$m" --out "$q" >/dev/null
    models+=("$q")
done
for t in $THREADS; do
    "$BIN" compare "${models[@]}" --data "$DEV" --threads "$t" --json "$WORK/compare-$t.json" |
        tee "$WORK/compare-$t.txt"
done
fi

# Recovery fine-tuning: one epoch from each pruned classifier, and from the unpruned one (the
# control: the teacher gains from an extra epoch too).
if has recover && [ -n "$RECOVER" ]; then
for n in base $RECOVER; do
    src=$WORK/$n
    [ "$n" = base ] && src=$MODEL
    t0=$(date +%s)
    "$BIN" finetune --preset sst2-minilm --model "$src" --train "$RECOVER_TRAIN" --dev "$DEV" \
        --epochs 1 --seed 42 --out "$WORK/$n-ft" --quiet --json >"$WORK/$n-ft.json"
    record "$n-ft" "$WORK/$n-ft/final" $(($(date +%s) - t0))
done
fi

"$PY" - "$RESULTS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print()
print(f"{'model':<16} {'heads':>5} {'ffn':>5} {'acc':>7} {'F1':>7} {'MB':>7} {'prune/ft s':>10}")
for r in rows:
    print(f"{r['name']:<16} {r['heads']:>5} {r['ffn']:>5} {r['accuracy']:>7.4f} {r['macro_f1']:>7.4f} "
          f"{r['mb']:>7.1f} {r['prune_s']:>10.1f}")
EOF
