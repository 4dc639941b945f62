#!/usr/bin/env bash
# Fine-tuning and inference speed of all-MiniLM-L6-v2 as a classifier: refinery against
# PyTorch eager on the same model, batch and lengths, at 1 and 2 threads, interleaved.
#
#   PYTHON=/path/to/venv/bin/python bench/finetune_speed.sh [RUNS] [STEPS]   (defaults 3, 30)
#
# Inputs: IMDb training reviews (long: every row is truncated to exactly 64 tokens, so both
# sides see [32, 64] batches). Train: median seconds per optimizer step over steps 6..STEPS
# (refinery: from metrics.jsonl; PyTorch: around forward+backward+clip+AdamW, tokenisation
# outside). Classify: sentences/s over 2,048 reviews at batch 32 (refinery: `refinery classify`
# wall time minus the same command on one row, i.e. without model load). Memory: peak RSS of a
# fine-tuning run at batch 32, length 128. Prints each run as JSON and the median ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
STEPS=${2:-30}
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/refinery-ft-speed}
SHARED=${REFINERY_SHARED:-../shared}
mkdir -p "$WORK"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
MINILM=$(PATH="$(dirname "$PY"):$PATH" bash "$SHARED/tools/fetch-minilm.sh" "$WORK/minilm" | tail -n 1)
DATA=$WORK/imdb.tsv
if [ ! -f "$DATA" ]; then
  "$PY" - "$SHARED/data/classification/imdb/imdb_train.jsonl.gz" "$DATA" <<'PY'
import gzip, json, sys
with gzip.open(sys.argv[1], "rt", encoding="utf-8") as f, open(sys.argv[2], "w") as out:
    out.write("label\ttext\n")
    # IMDb train is sorted by label: every 6th review gives both labels.
    n = 0
    for i, line in enumerate(f):
        if i % 6:
            continue
        r = json.loads(line)
        out.write(f"{r['label']}\t{' '.join(r['text'].split())}\n")
        n += 1
        if n == 4096:
            break
PY
fi
cargo build -q --release -p refinery-cli
BIN=$PWD/target/release/refinery
echo "# $(lscpu | sed -n 's/^Model name: *//p'); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# torch $("$PY" -c 'import torch; print(torch.__version__)')"
R=$WORK/speed.jsonl
: >"$R"
ours_train() { # threads seq
  local out=$WORK/ours-$1-$2
  rm -rf "$out"
  RAYON_NUM_THREADS=$1 /usr/bin/time -f '%U %S %M' -o "$WORK/t" "$BIN" finetune --preset sst2-minilm \
    --model "$MINILM" --train "$DATA" --validation-fraction 0.05 --steps "$STEPS" --max-len "$2" \
    --final-eval-only --warmup-steps 0 --out "$out" --quiet --json >/dev/null
  read -r u s m <"$WORK/t"
  "$PY" - "$out/metrics.jsonl" "$1" "$2" "$u" "$s" "$m" >>"$R" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
# seconds per step: tokens / (tokens/s) of each step; steps 6.. as the PyTorch side.
per = [r["tokens"] / r["tokens_per_s"] for r in rows[5:] if "eval_loss" not in r]
med = statistics.median(per)
print(json.dumps({"side": "refinery", "mode": "train", "threads": int(sys.argv[2]), "seq": int(sys.argv[3]),
                  "batch": 32, "s_per_step": med, "examples_per_s": 32 / med,
                  "cpu_s": float(sys.argv[4]) + float(sys.argv[5]), "peak_rss_mb": int(sys.argv[6]) / 1024}))
PY
}
ours_classify() { # threads
  local best=$WORK/ours-1-64/final
  # awk, not `tail | head`: under pipefail a closed pipe (SIGPIPE) would end the script.
  awk -F'\t' 'NR > 1 && NR <= 2049 { print $2 }' "$DATA" >"$WORK/texts.txt"
  awk 'NR == 1' "$WORK/texts.txt" >"$WORK/one.txt"
  local t0 t1 t2
  t0=$(date +%s.%N)
  RAYON_NUM_THREADS=$1 "$BIN" classify --model "$best" --batch-size 32 <"$WORK/one.txt" >/dev/null
  t1=$(date +%s.%N)
  RAYON_NUM_THREADS=$1 "$BIN" classify --model "$best" --batch-size 32 <"$WORK/texts.txt" >/dev/null
  t2=$(date +%s.%N)
  python3 -c "import json,sys; s=($t2-$t1)-($t1-$t0); print(json.dumps({'side':'refinery','mode':'classify','threads':$1,'seq':64,'batch':32,'sentences_per_s':2048/s}))" >>"$R"
}
for run in $(seq "$RUNS"); do
  for th in 1 2; do
    ours_train "$th" 64; tail -n 1 "$R"
    "$PY" bench/finetune_speed_torch.py train --model "$MINILM" --data "$DATA" --threads "$th" --steps "$STEPS" 2>/dev/null >>"$R"; tail -n 1 "$R"
    ours_classify "$th"; tail -n 1 "$R"
    "$PY" bench/finetune_speed_torch.py classify --model "$MINILM" --data "$DATA" --threads "$th" 2>/dev/null >>"$R"; tail -n 1 "$R"
  done
done
# Peak RSS at batch 32, length 128 (one run each).
ours_train 2 128; tail -n 1 "$R"
"$PY" bench/finetune_speed_torch.py train --model "$MINILM" --data "$DATA" --threads 2 --steps 12 --max-len 128 2>/dev/null >>"$R"; tail -n 1 "$R"
"$PY" - "$R" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(side, mode, th, key, seq=64):
    v = [r[key] for r in rows if r["side"] == side and r["mode"] == mode and r["threads"] == th and r.get("seq", 64) == seq]
    return st.median(v) if v else float("nan")
for th in [1, 2]:
    a, b = med("refinery", "train", th, "examples_per_s"), med("pytorch", "train", th, "examples_per_s")
    c, d = med("refinery", "classify", th, "sentences_per_s"), med("pytorch", "classify", th, "sentences_per_s")
    print(f"{th} thread(s): fine-tune {a:.1f} vs {b:.1f} examples/s = {a / b:.2f}x; classify {c:.1f} vs {d:.1f} sentences/s = {c / d:.2f}x")
r = [x for x in rows if x["mode"] == "train" and x.get("seq") == 128]
for x in r:
    print(f"peak RSS, fine-tuning at batch 32, length 128: {x['side']} {x['peak_rss_mb']:.0f} MB")
PY
