#!/usr/bin/env bash
# Multi-task against single-task fine-tuning of all-MiniLM-L6-v2 on SST-2, MR polarity and SMS
# spam: same seeds, same budget (the multi-task run takes as many steps as the three
# single-task runs together), same held-out splits (SST-2 dev; a stratified 10% of MR and of
# SMS with split seed 0).
#
#   bench/multitask.sh [SEEDS] [SST2_TRAIN_LIMIT]        (defaults "1 2 3", 8000)
#
# Prints, per task, dev accuracy and macro-F1 mean ± std for single-task and multi-task.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-"1 2 3"}
LIMIT=${2:-8000}
WORK=${WORK:-/tmp/refinery-multitask-bench}
SHARED=${REFINERY_SHARED:-../shared}
mkdir -p "$WORK"
python3 bench/prepare_classification.py "$SHARED" "$WORK/data" >/dev/null
head -n $((LIMIT + 1)) "$WORK/data/sst2-train.tsv" >"$WORK/data/sst2-small.tsv"
# SST-2 was built from the same Rotten Tomatoes snippets as MR (Pang & Lee 2005): 643 of the
# 872 SST-2 dev sentences are MR rows verbatim (765 inside one). Training on those rows would
# leak the SST-2 dev set into the multi-task model, so MR rows that contain a dev sentence (after
# lower-casing and keeping only letters and digits) are dropped from MR, for both modes.
python3 - "$WORK/data/sst2-dev.tsv" "$WORK/data/mr.tsv" <<'PY'
import csv, re, sys
norm = lambda s: re.sub(r"[^a-z0-9]+", " ", s.lower()).strip()
def read(p):
    with open(p, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[0], rows[1:]
h, dev = read(sys.argv[1])
hm, mr = read(sys.argv[2])
dev_texts = [norm(r[h.index("text")]) for r in dev]
keep = [r for r in mr if not any(d in norm(r[hm.index("text")]) for d in dev_texts)]
with open(sys.argv[2], "w") as f:
    f.writelines("\t".join(r) + "\n" for r in [hm] + keep)
print(f"# MR: {len(mr) - len(keep)} of {len(mr)} rows contain an SST-2 dev sentence: dropped")
PY
MINILM=$(bash "$SHARED/tools/fetch-minilm.sh" "$WORK/minilm" | tail -n 1)
cargo build -q --release -p refinery-cli
BIN=target/release/refinery
echo "# $(lscpu | sed -n 's/^Model name: *//p'); load $(cut -d' ' -f1-3 /proc/loadavg)"
COMMON=(--model "$MINILM" --lr 5e-5 --batch-size 32 --max-len 64 --validation-fraction 0.1 --quiet --json)
: >"$WORK/results.jsonl"
for seed in $SEEDS; do
  total=0
  for task in sst2 mr sms; do
    case $task in
      sst2) files=(--train "$WORK/data/sst2-small.tsv" --dev "$WORK/data/sst2-dev.tsv") ;;
      *) files=(--train "$WORK/data/$task.tsv") ;;
    esac
    out=$WORK/single-$task-s$seed
    rm -rf "$out"
    "$BIN" finetune --preset classify "${COMMON[@]}" "${files[@]}" --epochs 1 --seed "$seed" \
      --out "$out" >"$out.json"
    steps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["final_step"])' "$out.json")
    total=$((total + steps))
    python3 - "$out.json" "$task" "$seed" >>"$WORK/results.jsonl" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["final"]["eval"]["metrics"]
print(json.dumps({"mode": "single", "task": sys.argv[2], "seed": int(sys.argv[3]),
                  "accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}))
PY
  done
  out=$WORK/multi-s$seed
  rm -rf "$out"
  "$BIN" finetune --preset classify "${COMMON[@]}" --steps "$total" --seed "$seed" --out "$out" \
    --task "sst2=$WORK/data/sst2-small.tsv,$WORK/data/sst2-dev.tsv" \
    --task "mr=$WORK/data/mr.tsv" --task "sms=$WORK/data/sms.tsv" >"$out.json"
  python3 - "$out.json" "$seed" >>"$WORK/results.jsonl" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["final"]["eval"]["metrics"]
for t in ["sst2", "mr", "sms"]:
    print(json.dumps({"mode": "multi", "task": t, "seed": int(sys.argv[2]),
                      "accuracy": m[f"{t}/accuracy"], "macro_f1": m[f"{t}/macro_f1"]}))
PY
done
python3 - "$WORK/results.jsonl" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{'task':6} {'single acc':>16} {'multi acc':>16} {'single F1':>16} {'multi F1':>16}")
for t in ["sst2", "mr", "sms"]:
    cells = []
    for key in ["accuracy", "macro_f1"]:
        for mode in ["single", "multi"]:
            v = [r[key] for r in rows if r["task"] == t and r["mode"] == mode]
            sd = st.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{st.mean(v):.4f} ± {sd:.4f}")
    print(f"{t:6} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16} {cells[3]:>16}")
PY
