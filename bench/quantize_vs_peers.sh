#!/usr/bin/env bash
# int8 against f32 and against the peers (issue 13): refinery's dynamic int8 engine, its f32
# engine and burn f32 against PyTorch f32/dynamic int8 and ONNX Runtime f32/dynamic int8, on one
# fine-tuned BERT classifier and the SST-2 dev set, interleaved round by round.
#
#   PYTHON=/path/to/venv/bin/python bench/quantize_vs_peers.sh [MODEL_DIR] [THREADS] [ROUNDS]
#
# MODEL_DIR: an f32 classifier (default: the distillation bench's MiniLM teacher,
# /tmp/refinery-distill-bench/teacher-8000/best); THREADS: e.g. "1 2" (default); ROUNDS: rounds
# of (refinery compare; bench/quantize_peers.py) per thread count (default 3). The protocol is
# the same on both sides (crates/compress/src/compare.rs, bench/quantize_peers.py). Prints one
# JSON line per measurement and a summary of medians over rounds with the ratios. Also checks
# that scripts/dequantize.py turns the int8 model into one transformers loads with the int8
# model's weights. Needs the venv of bench/quantize_peers_requirements.txt. REFINERY=path uses
# that binary instead of building target/release/refinery; OURS="DIR ..." and
# PEERS=engine,engine narrow the timed set (e.g. OURS=/tmp/refinery-quant-bench/int8
# PEERS=torch-int8,ort-int8 for the int8 rows only).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-/tmp/refinery-distill-bench/teacher-8000/best}
THREADS=${2:-"1 2"}
ROUNDS=${3:-3}
PY=${PYTHON:-python3}
WORK=${WORK:-/tmp/refinery-quant-bench}
SHARED=${REFINERY_SHARED:-../shared}
DEV=$SHARED/data/classification/sst2/dev.tsv
TRAIN=$SHARED/data/classification/sst2/train.tsv
mkdir -p "$WORK"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ -z "${REFINERY:-}" ]; then cargo build -q --release -p refinery-cli; fi
BIN=${REFINERY:-target/release/refinery}
echo "# $(lscpu | sed -n 's/^Model name: *//p'); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# torch $("$PY" -c 'import torch; print(torch.__version__)'), onnxruntime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)')"

rm -rf "$WORK/int8" "$WORK/int8-static" "$WORK/int8-log2" "$WORK/int8-f32emb" "$WORK/deq"
"$BIN" quantize --model "$MODEL" --out "$WORK/int8"
head -n 1025 "$TRAIN" >"$WORK/calib.tsv"
"$BIN" quantize --model "$MODEL" --out "$WORK/int8-static" --scheme static \
  --calibration "$WORK/calib.tsv" --calibration-rows 1024 --calibration-method percentile
"$BIN" quantize --model "$MODEL" --out "$WORK/int8-log2" --weights log2 >/dev/null
"$BIN" quantize --model "$MODEL" --out "$WORK/int8-f32emb" --f32-embeddings >/dev/null

# Accuracy of the other variants (their speed is int8's).
for v in int8-log2 int8-f32emb; do
  "$BIN" evaluate --model "$WORK/$v" --data "$DEV" --json |
    "$PY" -c "import json,sys; v=json.load(sys.stdin); print('# $v: accuracy %.4f macro-F1 %.4f' % (v['accuracy'], v['macro_f1']))"
done

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
for t in $THREADS; do
  for r in $(seq 1 "$ROUNDS"); do
    # shellcheck disable=SC2086
    "$BIN" compare ${OURS:-"$MODEL" "engine:$MODEL" "$WORK/int8" "$WORK/int8-static"} \
      --data "$DEV" --threads "$t" --json "$WORK/ours.json" >&2
    "$PY" - "$WORK/ours.json" "$r" >>"$RESULTS" <<'PY'
import json, sys
for row in json.load(open(sys.argv[1])):
    name = row["runner"] + ("" if "int8" not in row["runner"] else " " + row["model"].rsplit("/", 1)[-1])
    print(json.dumps({"side": "refinery", "round": int(sys.argv[2]), "engine": name,
        "threads": row["threads"], "latency_ms_median": row["latency_ms_median"],
        "throughput_sps": row["throughput_sps"], "accuracy": row["accuracy"],
        "macro_f1": row["macro_f1"], "size_bytes": row["size_bytes"],
        "peak_rss_mb": row["peak_rss_mb"]}))
PY
    "$PY" bench/quantize_peers.py --model "$MODEL" --data "$DEV" --threads "$t" \
      --engines "${PEERS:-torch-f32,torch-int8,ort-f32,ort-int8}" \
      --out "$WORK/peers-$t-$r.jsonl" >/dev/null
    "$PY" - "$WORK/peers-$t-$r.jsonl" "$r" >>"$RESULTS" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    row = json.loads(line)
    print(json.dumps({"side": "peer", "round": int(sys.argv[2]), "engine": row["engine"],
        "threads": row["threads"], "latency_ms_median": row["latency_ms_median"],
        "throughput_sps": row["throughput_sps"], "accuracy": row["accuracy"],
        "macro_f1": row["macro_f1"], "size_bytes": row["size_bytes"],
        "peak_rss_mb": row["peak_rss_mb"]}))
PY
  done
done
cat "$RESULTS"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" - "$RESULTS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = sorted({(r["threads"], r["engine"]) for r in rows})
summary = {}
print("| threads | engine | batch-1 ms | batch-32 rows/s | accuracy | macro-F1 | file MB | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|")
for t, e in keys:
    rs = [r for r in rows if r["threads"] == t and r["engine"] == e]
    lat = statistics.median(r["latency_ms_median"] for r in rs)
    thr = statistics.median(r["throughput_sps"] for r in rs)
    summary[(t, e)] = (lat, thr)
    print(f"| {t} | {e} | {lat:.2f} | {thr:.1f} | {rs[0]['accuracy']:.4f} | {rs[0]['macro_f1']:.4f} "
          f"| {rs[0]['size_bytes'] / 1e6:.1f} | {max(r['peak_rss_mb'] for r in rs):.0f} |")
print()
for t in sorted({t for t, _ in keys}):
    ours = summary.get((t, "engine-int8 (vnni) int8")) or next(
        (v for (tt, e), v in summary.items() if tt == t and e.startswith("engine-int8") and e.endswith(" int8")), None)
    if ours is None:
        continue
    for ref in ["burn-f32", "engine-f32", "torch-int8", "ort-int8", "torch-f32", "ort-f32"]:
        if (t, ref) in summary:
            lat, thr = summary[(t, ref)]
            print(f"threads {t}: int8 vs {ref}: batch-1 {lat / ours[0]:.2f}x faster, "
                  f"batch-32 {ours[1] / thr:.2f}x")
PY

# transformers loads the dequantized int8 model (the int8 weights in f32).
"$PY" scripts/dequantize.py "$WORK/int8" "$WORK/deq"
"$PY" - "$WORK/deq" "$WORK/int8" <<'PY'
import sys, numpy as np, torch
from safetensors.numpy import load_file
from transformers import AutoModelForSequenceClassification
m = AutoModelForSequenceClassification.from_pretrained(sys.argv[1])
q = load_file(sys.argv[2] + "/model.safetensors")
sd = m.state_dict()
worst = 0.0
for name, t in q.items():
    if t.dtype == np.int8:
        want = t.astype(np.float32) * q[name + "_scale"][:, None]
        worst = max(worst, float(np.abs(sd[name].numpy() - want).max()))
print(f"transformers loaded {sys.argv[1]}: max |w - q*scale| over int8 tensors {worst:.1e}")
assert worst == 0.0
PY
