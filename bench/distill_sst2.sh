#!/usr/bin/env bash
# SST-2 distillation: all-MiniLM-L6-v2 fine-tuned on SST-2 (the teacher, 6 layers) into a
# 3-layer student (teacher blocks 0, 2, 4), several seeds; refinery against a PyTorch
# reference (bench/distill_hf.py) for the soft-label case.
#
#   PYTHON=/path/to/venv/bin/python bench/distill_sst2.sh [SEEDS] [TRAIN_LIMIT] [THREADS] [VARIANTS]
#
# SEEDS (default "1 2 3"); TRAIN_LIMIT: the first N training sentences for the teacher and the
# students (default: all 67,349); THREADS: torch/rayon threads (default: all cores);
# VARIANTS (default "kd nokd soft torch"), any of:
#   kd        refinery, preset sst2-minilm-3l (soft labels + hidden states): the retention bar
#   nokd      refinery, the same student without the teacher (bench/distill/nokd.toml)
#   soft      refinery, soft labels only (bench/distill/soft.toml)
#   torch     PyTorch, soft labels only, same teacher, init and recipe (bench/distill_hf.py)
#   att       refinery, soft + attention (bench/distill/soft-attention.toml)
#   hid       refinery, soft + attention + hidden/embedding (bench/distill/soft-attention-hidden.toml)
#   prog      refinery, the same losses in two stages (bench/distill/progressive.toml)
#   ta        refinery, soft labels through a teacher assistant: 6 → 4 → 3 (soft.toml + assistants)
#
# The teacher is made once with `refinery finetune --preset sst2-minilm` (seed 42) on the same
# training sentences and reused. Prints one JSON line per run and a summary: dev accuracy mean
# ± std per variant (the final student, as the PyTorch side keeps its last), retention
# (student / teacher), KD − no-KD, refinery − PyTorch; then checks that transformers loads a
# distilled student with matching probabilities. Writes under ${WORK:-/tmp/refinery-distill-bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-"1 2 3"}
LIMIT=${2:-}
THREADS=${3:-$(nproc)}
VARIANTS=${4:-"kd nokd soft torch"}
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/refinery-distill-bench}
SHARED=${REFINERY_SHARED:-../shared}
SST=$SHARED/data/classification/sst2
BIN=${REFINERY:-target/release/refinery}
mkdir -p "$WORK"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS

MINILM=$(PATH="$(dirname "$PY"):$PATH" bash "$SHARED/tools/fetch-minilm.sh" "$WORK/minilm" | tail -n 1)
TRAIN=$SST/train.tsv
if [ -n "$LIMIT" ]; then
  TRAIN=$WORK/train-$LIMIT.tsv
  head -n $((LIMIT + 1)) "$SST/train.tsv" >"$TRAIN"
fi
N=$(($(wc -l <"$TRAIN") - 1))
STEPS=$(((N + 31) / 32))
if [ -z "${REFINERY:-}" ]; then cargo build -q --release -p refinery-cli; fi
echo "# $(lscpu | sed -n 's/^Model name: *//p'); load $(cut -d' ' -f1-3 /proc/loadavg); threads $THREADS; $N training sentences, $STEPS steps/epoch"
echo "# torch $("$PY" -c 'import torch; print(torch.__version__)'), transformers $("$PY" -c 'import transformers; print(transformers.__version__)')"

TEACHER_RUN=$WORK/teacher-$N
if [ ! -d "$TEACHER_RUN/final" ]; then
  "$BIN" finetune --preset sst2-minilm --model "$MINILM" --train "$TRAIN" --dev "$SST/dev.tsv" \
    --out "$TEACHER_RUN" --seed 42 --quiet --json >"$WORK/teacher.json"
fi
TEACHER=$TEACHER_RUN/final
TEACHER_ACC=$("$BIN" evaluate --model "$TEACHER" --data "$SST/dev.tsv" --json |
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["accuracy"])')
echo "{\"side\": \"teacher\", \"accuracy\": $TEACHER_ACC, \"dir\": \"$TEACHER\"}"

sed "s/STEPS_HALF/$((STEPS / 2))/" bench/distill/progressive.toml >"$WORK/progressive.toml"
RESULTS=$WORK/results-$N.jsonl
touch "$RESULTS"

# One refinery run: variant, seed, config flags...
ours() {
  local variant=$1 seed=$2
  shift 2
  local out=$WORK/$variant-$N-s$seed
  rm -rf "$out"
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$BIN" distill --teacher "$TEACHER" \
    --train "$TRAIN" --dev "$SST/dev.tsv" --out "$out" --seed "$seed" --quiet --json \
    --no-report "$@" >"$WORK/ours.json"
  read -r wall user sys rss <"$WORK/time"
  "$PY" - "$WORK/ours.json" "$variant" "$seed" "$wall" "$user" "$sys" "$rss" "$N" >>"$RESULTS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
last = r["runs"][-1]["eval"]["metrics"]
steps = sum(x["final_step"] for x in r["runs"])
wall, cpu = float(sys.argv[4]), float(sys.argv[5]) + float(sys.argv[6])
print(json.dumps({"side": "refinery", "variant": sys.argv[2], "seed": int(sys.argv[3]),
    "train_examples": int(sys.argv[8]), "steps": steps, "accuracy": last["accuracy"],
    "macro_f1": last["macro_f1"], "train_s": wall, "train_cpu_s": cpu,
    "steps_per_s": steps / wall, "steps_per_cpu_s": steps / cpu,
    "peak_rss_mb": int(sys.argv[7]) / 1024}))
PY
  tail -n 1 "$RESULTS"
}

for seed in $SEEDS; do
  for v in $VARIANTS; do
    case $v in
      kd) ours kd "$seed" --preset sst2-minilm-3l ;;
      nokd) ours nokd "$seed" --config bench/distill/nokd.toml ;;
      soft) ours soft "$seed" --config bench/distill/soft.toml ;;
      att) ours att "$seed" --config bench/distill/soft-attention.toml ;;
      hid) ours hid "$seed" --config bench/distill/soft-attention-hidden.toml ;;
      prog) ours prog "$seed" --config "$WORK/progressive.toml" ;;
      ta)
        sed 's/^layers = 3$/layers = 3\nassistants = [4]/' bench/distill/soft.toml >"$WORK/ta.toml"
        ours ta "$seed" --config "$WORK/ta.toml"
        ;;
      torch)
        "$PY" bench/distill_hf.py --teacher "$TEACHER" --train "$TRAIN" --dev "$SST/dev.tsv" \
          --seed "$seed" --threads "$THREADS" --epochs 1 2>/dev/null | tail -n 1 |
          "$PY" -c 'import json,sys; r=json.loads(sys.stdin.read()); r["variant"]="soft"; print(json.dumps(r))' \
          >>"$RESULTS"
        tail -n 1 "$RESULTS"
        ;;
      *) echo "unknown variant $v" >&2; exit 2 ;;
    esac
  done
done

"$PY" - "$RESULTS" "$TEACHER_ACC" "$N" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r.get("train_examples") == int(sys.argv[3])]
teacher = float(sys.argv[2])
print(f"teacher dev accuracy {teacher:.4f}")
groups = {}
for r in rows:
    groups.setdefault((r["side"], r["variant"]), []).append(r)
mean = {}
for (side, var), rs in sorted(groups.items()):
    acc = [r["accuracy"] for r in rs]
    sd = st.stdev(acc) if len(acc) > 1 else 0.0
    mean[(side, var)] = st.mean(acc)
    print(f"{side:8} {var:5} accuracy {st.mean(acc):.4f} ± {sd:.4f} over {len(acc)} seeds "
          f"(retention {100 * st.mean(acc) / teacher:.1f}%); "
          f"{st.median(r['steps_per_cpu_s'] for r in rs):.3f} steps per CPU-s, "
          f"{st.median(r['steps_per_s'] for r in rs):.3f} steps/s wall (medians)")
if ("refinery", "kd") in mean and ("refinery", "nokd") in mean:
    print(f"KD − no-KD: {100 * (mean[('refinery', 'kd')] - mean[('refinery', 'nokd')]):+.2f} points")
if ("refinery", "soft") in mean and ("torch", "soft") in mean:
    print(f"soft labels, refinery − PyTorch: "
          f"{100 * (mean[('refinery', 'soft')] - mean[('torch', 'soft')]):+.2f} points")
PY

# transformers loads a distilled student (plain HF checkpoint) with matching probabilities.
first=$(echo "$SEEDS" | awk '{print $1}')
for v in kd soft nokd; do
  student=$WORK/$v-$N-s$first/final
  [ -d "$student" ] || continue
  tail -n +2 "$SST/dev.tsv" | cut -f2 >"$WORK/dev.txt"
  "$BIN" classify --model "$student" <"$WORK/dev.txt" >"$WORK/student_probs.jsonl"
  "$PY" bench/check_hf_classifier.py "$student" "$WORK/dev.txt" "$WORK/student_probs.jsonl" 64
  break
done
