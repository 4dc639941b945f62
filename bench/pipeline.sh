#!/usr/bin/env bash
# Read + extract + write throughput of `refinery run` on the shared WARC files.
#
#   bench/pipeline.sh [TARGET_MB] [RUNS]      (defaults: 100 MB, 5 runs)
#
# Builds the release binary, makes an input directory of symlinks that repeat
# the real WARC files in ../shared/data/web/warc until about TARGET_MB of
# uncompressed WARC, and times RUNS runs of bench/pipeline-bench.toml (extract
# only, so every repeated page is really processed and written). Prints the
# median, min and max of docs/s and MB/s (uncompressed WARC bytes) for one
# worker and for all cores. Medians, because the machine is small and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_MB=${1:-100}
RUNS=${2:-5}
SHARED=${REFINERY_SHARED:-../shared}
WARC_DIR="$SHARED/data/web/warc"
[ -d "$WARC_DIR" ] || { echo "needs $WARC_DIR" >&2; exit 1; }

cargo build --release -q -p refinery-cli
BIN=target/release/refinery
WORK=bench/out
rm -rf "$WORK"; mkdir -p "$WORK/input"

# Real crawl files only (the warcio edge cases are tiny and mostly broken).
FILES=("$WARC_DIR"/*.warc.gz)
declare -A RAW
for f in "${FILES[@]}"; do RAW[$f]=$(gzip -dc "$f" | wc -c); done
total=0; copy=0
while [ "$total" -lt $((TARGET_MB * 1000000)) ]; do
  for f in "${FILES[@]}"; do
    ln -s "$(realpath "$f")" "$WORK/input/$(printf '%04d' $copy)-$(basename "$f")"
    total=$((total + RAW[$f]))
  done
  copy=$((copy + 1))
done
nfiles=$(ls "$WORK/input" | wc -l)
echo "input: $nfiles files, $((total / 1000000)) MB uncompressed WARC ($copy copies of ${#FILES[@]} files)"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for workers in 1 "$(nproc)"; do
  secs=()
  for r in $(seq "$RUNS"); do
    rm -rf "$WORK/run"
    s=$(date +%s.%N)
    "$BIN" run bench/pipeline-bench.toml -i "$WORK/input" -o "$WORK/run" \
      --tasks "$nfiles" --workers "$workers" -q --json > "$WORK/stats.json"
    e=$(date +%s.%N)
    secs+=("$(awk -v a="$s" -v b="$e" 'BEGIN{print b-a}')")
  done
  docs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["input_docs"])' "$WORK/stats.json")
  med=$(printf '%s\n' "${secs[@]}" | median)
  min=$(printf '%s\n' "${secs[@]}" | sort -g | head -1)
  max=$(printf '%s\n' "${secs[@]}" | sort -g | tail -1)
  printf 'workers=%s  runs=%s  median %.2fs (min %.2f, max %.2f)  %.0f records/s  %.1f MB/s\n' \
    "$workers" "$RUNS" "$med" "$min" "$max" \
    "$(awk -v d="$docs" -v m="$med" 'BEGIN{print d/m}')" "$(awk -v t="$total" -v m="$med" 'BEGIN{print t/1e6/m}')"
done
