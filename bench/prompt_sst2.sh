#!/usr/bin/env bash
# Zero-shot, few-shot prompting and few-shot head fine-tuning on SST-2 dev, with a BERT and a
# GPT pretrained here on IMDb's unlabelled reviews, and with all-MiniLM-L6-v2.
#
#   bench/prompt_sst2.sh [SEEDS] [KS] [PRETRAIN_STEPS]     (defaults "1 2 3", "16 32 64", 3000)
#
# 1. Tokenizers (WordPiece for BERT, byte-level BPE for GPT) and token shards from
#    classification/imdb/imdb_unsup.jsonl.gz; bert-tiny (MLM + NSP) and a 4-layer GPT with a
#    512-token context pretrained for PRETRAIN_STEPS steps each (reruns resume).
# 2. For each seed (which k examples per label are drawn from SST-2 train) and k:
#    - BERT cloze zero-shot ("{text} It was [MASK]." with bad/good), cloze few-shot training
#      (PET), and head fine-tuning on the same k examples;
#    - GPT in-context: k demonstrations per label that fit its context, length-normalised;
#    - MiniLM embedding zero-shot ("a negative/positive movie review") and head fine-tuning.
# Prints one JSON line per result and a table of mean ± std over seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-"1 2 3"}
KS=${2:-"16 32 64"}
STEPS=${3:-3000}
WORK=${WORK:-/tmp/refinery-prompt-bench}
SHARED=${REFINERY_SHARED:-../shared}
mkdir -p "$WORK"
cargo build -q --release -p refinery-cli
BIN=$PWD/target/release/refinery
python3 bench/prepare_classification.py "$SHARED" "$WORK/data" >/dev/null
TRAIN=$WORK/data/sst2-train.tsv
DEV=$WORK/data/sst2-dev.tsv
IMDB=$SHARED/data/classification/imdb/imdb_unsup.jsonl.gz
MINILM=$(bash "$SHARED/tools/fetch-minilm.sh" "$WORK/minilm" | tail -n 1)
echo "# $(lscpu | sed -n 's/^Model name: *//p'); load $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. pretrain on IMDb (resumable) ---
[ -f "$WORK/wp.json" ] || "$BIN" tokenizer train --model wordpiece --vocab-size 8000 --lowercase "$IMDB" -o "$WORK/wp.json"
[ -f "$WORK/bpe.json" ] || "$BIN" tokenizer train --model bpe --vocab-size 8000 "$IMDB" -o "$WORK/bpe.json"
[ -d "$WORK/wp-tokens" ] || "$BIN" tokenize --tokenizer "$WORK/wp.json" "$IMDB" --output "$WORK/wp-tokens" --quiet
[ -d "$WORK/bpe-tokens" ] || "$BIN" tokenize --tokenizer "$WORK/bpe.json" "$IMDB" --output "$WORK/bpe-tokens" --quiet
t0=$(date +%s)
"$BIN" pretrain --preset bert-tiny --data "$WORK/wp-tokens" --tokenizer "$WORK/wp.json" \
  --out "$WORK/bert" --steps "$STEPS" --quiet
t1=$(date +%s)
cat >"$WORK/gpt.toml" <<TOML
[task]
kind = "gpt-clm"
[model]
dropout = 0.1
hf = { n_positions = 512 }
[data]
seq_len = 256
batch_size = 8
validation_fraction = 0.01
[optim]
lr = 6e-4
min_lr = 6e-5
warmup_steps = 100
[run]
total_steps = $STEPS
eval_every = 1000
save_every = 1000
keep = 1
TOML
"$BIN" pretrain --config "$WORK/gpt.toml" --data "$WORK/bpe-tokens" --tokenizer "$WORK/bpe.json" \
  --out "$WORK/gpt" --quiet
t2=$(date +%s)
echo "# pretraining: BERT $((t1 - t0)) s, GPT $((t2 - t1)) s for $STEPS steps each"
BERT=$WORK/bert/$(cat "$WORK/bert/latest")
GPT=$WORK/gpt/$(cat "$WORK/gpt/latest")

R=$WORK/results.jsonl
: >"$R"
emit() { # mode model k seed metrics.json
  python3 -c 'import json,sys; m=json.load(open(sys.argv[5])); m=m.get("final",{}).get("eval",{}).get("metrics",m); print(json.dumps({"mode":sys.argv[1],"model":sys.argv[2],"k":int(sys.argv[3]),"seed":int(sys.argv[4]),"accuracy":m["accuracy"],"macro_f1":m["macro_f1"]}))' "$@" >>"$R"
  tail -n 1 "$R"
}
LABELS_CLOZE=(--label 0=bad --label 1=good)
"$BIN" prompt --mode cloze --model "$BERT" --data "$DEV" "${LABELS_CLOZE[@]}" --json >"$WORK/m.json"
emit cloze-zero-shot bert 0 0 "$WORK/m.json"
"$BIN" prompt --mode embedding --model "$MINILM" --data "$DEV" \
  --label "0=a negative movie review" --label "1=a positive movie review" --json >"$WORK/m.json"
emit embedding-zero-shot minilm 0 0 "$WORK/m.json"
"$BIN" prompt --mode lm --model "$GPT" --data "$DEV" --template $'Review: {text}\nSentiment:' \
  --label "0= negative" --label "1= positive" --json >"$WORK/m.json"
emit lm-zero-shot gpt 0 0 "$WORK/m.json"
for seed in $SEEDS; do
  for k in $KS; do
    out=$WORK/cloze-$k-$seed
    rm -rf "$out"
    "$BIN" finetune --preset sst2-cloze --model "$BERT" --train "$TRAIN" --dev "$DEV" \
      --few-shot "$k" --seed "$seed" --out "$out" --quiet --json >"$WORK/m.json"
    emit cloze-few-shot bert "$k" "$seed" "$WORK/m.json"
    for m in bert minilm; do
      model=$BERT
      [ $m = minilm ] && model=$MINILM
      out=$WORK/head-$m-$k-$seed
      rm -rf "$out"
      "$BIN" finetune --preset classify --model "$model" --train "$TRAIN" --dev "$DEV" \
        --few-shot "$k" --seed "$seed" --epochs 30 --lr 5e-5 --batch-size 8 --max-len 64 \
        --final-eval-only --out "$out" --quiet --json >"$WORK/m.json"
      emit head-few-shot $m "$k" "$seed" "$WORK/m.json"
    done
    "$BIN" prompt --mode lm --model "$GPT" --data "$DEV" --template $'Review: {text}\nSentiment:' \
      --label "0= negative" --label "1= positive" --train "$TRAIN" --k "$k" --seed "$seed" \
      --json >"$WORK/m.json"
    emit lm-in-context gpt "$k" "$seed" "$WORK/m.json"
  done
done
python3 - "$R" <<'PY'
import json, statistics as st, sys
from collections import defaultdict
g = defaultdict(list)
for l in open(sys.argv[1]):
    r = json.loads(l)
    g[(r["mode"], r["model"], r["k"])].append(r["accuracy"])
print(f"{'mode':22} {'model':7} {'k':>3}  accuracy (mean ± std over seeds)")
for (mode, model, k), v in sorted(g.items(), key=lambda x: (x[0][2], x[0][0])):
    sd = st.stdev(v) if len(v) > 1 else 0.0
    print(f"{mode:22} {model:7} {k:>3}  {st.mean(v):.4f} ± {sd:.4f} (n={len(v)})")
PY
