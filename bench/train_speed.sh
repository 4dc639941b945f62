#!/usr/bin/env bash
# Training speed of the benchmark GPT (4 layers, d=256, 4 heads, ctx 128, vocab 4096, batch 16,
# AdamW, f32) in refinery (burn flex) against PyTorch on the same machine, in one run.
#
#   bench/train_speed.sh [RUNS=5] [STEPS=8]
#
# Builds crates/train/examples/train_speed.rs in release, then, for each thread count in
# THREADS (default "1 2"), runs every variant RUNS times, interleaved (variant order rotates
# every round, so machine noise hits all of them alike). Each run times STEPS optimizer steps
# after 3 warm-up steps and reports the median step; the summary is the median over runs and
# the ratio to PyTorch at the same thread count. Thread count = RAYON_NUM_THREADS (burn flex)
# = OMP_NUM_THREADS = MKL_NUM_THREADS (torch).
#
# Variants:
#   refinery-flex      default build (runs on any x86-64: gemm picks its AVX-512 kernels at run
#                      time; glibc malloc tuned as the `refinery` binary does, see
#                      crates/train/src/alloc.rs)
#   refinery-flex-v4   X86V4=1: the same with an explicit --features x86-v4 build in
#                      $X86V4_TARGET_DIR (default target/x86-v4); redundant now that the
#                      feature is on by default, kept for A/B builds
#   refinery-flex-bf16 default build, --precision bf16 (only with BF16=1; torch-bf16 too)
#   refinery-tch       --features tch, libtorch from the PyPI torch wheel (only with TCH=1;
#                      see docs/models.md "Backends and precision" for why it is off)
#   torch              bench/train_speed_torch.py, same model and step
#   EXTRA="label=/path/to/train_speed ..."  more binaries (A/B of a local change, built elsewhere)
#
# PyTorch: $PYTHON if set, else /tmp/refinery-bench-venv (created; `pip install torch` from PyPI).
# Results: every RESULT line is appended to $LOG (default bench/train_speed.log).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-5}
STEPS=${2:-8}
THREADS=${THREADS:-"1 2"}
LOG=${LOG:-bench/train_speed.log}
TARGET=${CARGO_TARGET_DIR:-target}

if [ -z "${PYTHON:-}" ]; then
  venv=/tmp/refinery-bench-venv
  if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet torch
  fi
  PYTHON=$venv/bin/python
fi

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -p refinery-train --example train_speed
fi
declare -A CMD
CMD[refinery-flex]="$TARGET/release/examples/train_speed"
CMD[torch]="$PYTHON bench/train_speed_torch.py"
variants=(refinery-flex torch)

if [ "${X86V4:-0}" != 0 ] && grep -qw avx512f /proc/cpuinfo; then
  v4_target=${X86V4_TARGET_DIR:-target/x86-v4}
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    CARGO_TARGET_DIR=$v4_target cargo build --release -p refinery-train --example train_speed --features x86-v4
  fi
  CMD[refinery-flex-v4]="$v4_target/release/examples/train_speed"
  variants+=(refinery-flex-v4)
fi
if [ "${BF16:-0}" = 1 ]; then
  CMD[refinery-flex-bf16]="$TARGET/release/examples/train_speed --precision bf16"
  CMD[torch-bf16]="$PYTHON bench/train_speed_torch.py --dtype bf16"
  variants+=(refinery-flex-bf16 torch-bf16)
fi
if [ "${TCH:-0}" = 1 ]; then
  tch_target=${TCH_TARGET_DIR:-target/tch}
  torch_lib=$("$PYTHON" -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
  VIRTUAL_ENV=$(dirname "$(dirname "$PYTHON")") PATH="$(dirname "$PYTHON"):$PATH" \
    LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1 CARGO_TARGET_DIR=$tch_target \
    cargo build --release -p refinery-train --example train_speed --features tch
  CMD[refinery-tch]="env LD_LIBRARY_PATH=$torch_lib $tch_target/release/examples/train_speed --device tch"
  variants+=(refinery-tch)
fi

for kv in ${EXTRA:-}; do
  CMD[${kv%%=*}]=${kv#*=}
  variants+=("${kv%%=*}")
done

echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) runs=$RUNS steps=$STEPS threads=[$THREADS]" | tee -a "$LOG"
results=$(mktemp)
n=${#variants[@]}
for t in $THREADS; do
  export RAYON_NUM_THREADS=$t OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t
  for r in $(seq 1 "$RUNS"); do
    echo "# threads=$t round $r load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
    for i in $(seq 0 $((n - 1))); do
      v=${variants[$(((i + r) % n))]}
      # shellcheck disable=SC2086 # CMD holds a command line
      line=$(${CMD[$v]} --steps "$STEPS" --label "$v" | grep '^RESULT')
      echo "$line threads_set=$t" | tee -a "$LOG" >>"$results"
    done
  done
done

"$PYTHON" - "$results" <<'EOF'
import re, statistics, sys
rows, cpu = {}, {}
for line in open(sys.argv[1]):
    f = dict(kv.split("=", 1) for kv in line.split()[2:] if "=" in kv)
    key = (int(f["threads_set"]), line.split()[1])
    rows.setdefault(key, []).append(float(f["train_tok_s"]))
    if f.get("cpu_step_ms", "na") != "na":
        cpu.setdefault(key, []).append(float(f["cpu_step_ms"]))
# Wall-clock tok/s (what a user sees) and CPU ms per step (less sensitive to machine load; for
# 1 thread, tok/s at full speed = B*T / cpu time). Ratios: refinery over torch, >1 = faster.
print("\nthreads  variant              wall tok/s (median; runs)          vs torch   cpu ms/step  vs torch")
for (t, v) in sorted(rows):
    med = statistics.median(rows[(t, v)])
    ref_name = "torch-bf16" if v.endswith("bf16") else "torch"
    ref = rows.get((t, ref_name))
    ratio = f"{med / statistics.median(ref):.2f}x" if ref else ""
    runs = " ".join(f"{x:.0f}" for x in rows[(t, v)])
    c, cref = cpu.get((t, v)), cpu.get((t, ref_name))
    cmed = f"{statistics.median(c):.0f}" if c else "na"
    cratio = f"{statistics.median(cref) / statistics.median(c):.2f}x" if c and cref else ""
    print(f"{t:>7}  {v:<20} {med:>6.0f} ({runs})  {ratio:>8}   {cmed:>10}  {cratio:>8}")
EOF
rm -f "$results"
