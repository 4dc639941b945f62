#!/usr/bin/env bash
# MinHash dedup: refinery vs datatrove on the same documents and parameters
# (5-grams, 64-bit; PRESET=fineweb (default): 14 bands x 8 rows;
# PRESET=refinedweb: RefinedWeb's 9,000 hashes as 450 bands x 20 rows), one
# task, one worker each.
#
#   bench/minhash_vs_datatrove.sh [DOCS] [RUNS]
#   PRESET=refinedweb bench/minhash_vs_datatrove.sh 100000 1
#
# Input: bench/make_minhash_corpus.py DOCS (default 240000): IMDb unsup +
# train, dolma Common Crawl text, Chinese poetry, and 1/6 injected
# near-duplicates with known edits (seeded), written once as JSONL. Needs a
# python with `datatrove` (PYTHON=..., default python3; pip install datatrove
# tokenizers nltk orjson 'xxhash<3.5': datatrove 0.x passes str to
# xxh64_intdigest, which xxhash 3.5 refuses). Runs are interleaved and
# `nice -n 10`. Reports medians of RUNS runs (default 3) of wall time, CPU
# time (user+sys: fairer on a loaded machine), peak RSS (GNU time), the
# ratios, and bench/minhash_agreement.py: removed-set and cluster agreement.
set -euo pipefail
DOCS=${1:-240000}
RUNS=${2:-3}
PY=${PYTHON:-python3}
PRESET=${PRESET:-fineweb}
case $PRESET in
  fineweb) BANDS=14 ROWS=8 ;;
  refinedweb) BANDS=450 ROWS=20 ;;
  *) echo "PRESET must be fineweb or refinedweb" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${REFINERY_SHARED:-$ROOT/../shared}
WORK=${WORK:-$(mktemp -d)}
BIN=${REFINERY_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/refinery}
[ -f "$SHARED/data/classification/imdb/imdb_unsup.jsonl.gz" ] || { echo "skipping: ../shared not found"; exit 0; }
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build --release -q -p refinery-cli)
[ -f "$WORK/in.jsonl" ] || python3 "$ROOT/bench/make_minhash_corpus.py" "$SHARED/data" "$WORK/in.jsonl" "$DOCS"

cat > "$WORK/dt.py" <<'EOF'
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupSignature, MinhashDedupBuckets,
    MinhashDedupCluster, MinhashDedupFilter)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig
inp, out, bands, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
cfg = MinhashConfig(n_grams=5, num_buckets=bands, hashes_per_bucket=rows, hash_config=HashConfig(precision=64))
rd = lambda: JsonlReader(inp, glob_pattern="in.jsonl")  # default text/id keys
steps = [
    [rd(), MinhashDedupSignature(output_folder=f"{out}/sigs", config=cfg)],
    [MinhashDedupBuckets(input_folder=f"{out}/sigs", output_folder=f"{out}/buckets", config=cfg)],
    [MinhashDedupCluster(input_folder=f"{out}/buckets", output_folder=f"{out}/remove_ids", config=cfg,
                         save_cluster_id=True)],
    [rd(), MinhashDedupFilter(input_folder=f"{out}/remove_ids", load_cluster_ids=True,
                              exclusion_writer=JsonlWriter(f"{out}/removed", compression=None)),
     JsonlWriter(f"{out}/data", compression=None)],
]
for i, p in enumerate(steps):
    LocalPipelineExecutor(pipeline=p, tasks=bands if i == 1 else 1, workers=1, logging_dir=f"{out}/logs{i}").run()
EOF

measure() { # label, command...: prints "wall_seconds maxrss_kb cpu_seconds"
  shift
  nice -n 10 /usr/bin/time -f "%e %M %U %S" -o "$WORK/rss" "${@}" > "$WORK/log" 2>&1 || { cat "$WORK/log" >&2; exit 1; }
  awk '{print $1, $2, $3 + $4}' "$WORK/rss"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: > "$WORK/ours"; : > "$WORK/theirs"
for r in $(seq "$RUNS"); do
  rm -rf "$WORK/ours_out" "$WORK/dt_out"
  measure ours "$BIN" dedup minhash --input "$WORK/in.jsonl" --output "$WORK/ours_out" --preset "$PRESET" --tasks 1 --workers 1 --rejects >> "$WORK/ours"
  measure datatrove $PY "$WORK/dt.py" "$WORK" "$WORK/dt_out" "$BANDS" "$ROWS" >> "$WORK/theirs"
done
col() { cut -d' ' -f"$2" "$WORK/$1" | median; }
N=$(wc -l < "$WORK/in.jsonl")
echo "preset: $PRESET ($BANDS bands x $ROWS rows)  docs: $N  runs: $RUNS  (medians; one task, one worker; includes reading JSONL and writing output)"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); load average: $(cut -d' ' -f1-3 /proc/loadavg); datatrove $($PY -c 'import importlib.metadata as m; print(m.version("datatrove"))')"
for who in ours theirs; do
  printf "%-9s: wall %8.2f s (%7.0f docs/s)  cpu %8.2f s  peak RSS %6.1f MiB\n" "$who" "$(col $who 1)" \
    "$(echo "$N / $(col $who 1)" | bc -l)" "$(col $who 3)" "$(echo "$(col $who 2) / 1024" | bc -l)"
done
printf "ratio (datatrove / refinery): wall %.1fx, cpu %.1fx\n" \
  "$(echo "$(col theirs 1) / $(col ours 1)" | bc -l)" "$(echo "$(col theirs 3) / $(col ours 3)" | bc -l)"
python3 "$ROOT/bench/minhash_agreement.py" "$WORK/in.jsonl" "$WORK/ours_out" "$WORK/dt_out"
echo "work dir: $WORK"
