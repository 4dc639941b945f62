#!/usr/bin/env bash
# Peak RSS and time of `refinery dedup minhash` against corpus size, with the
# default clusters budget and a tiny one (--max-memory-mb 1: external
# connected components). Each step runs as its own process (--step), so the
# peak RSS is per step.
#
#   bench/minhash_scaling.sh [SIZES...]     (default 25000 50000 100000 200000 400000)
#
# The corpora are prefixes of one bench/make_minhash_corpus.py output.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${REFINERY_SHARED:-$ROOT/../shared}
WORK=${WORK:-$(mktemp -d)}
BIN=${BIN:-$ROOT/target/release/refinery}
SIZES=${*:-25000 50000 100000 200000 400000}
[ -f "$SHARED/data/classification/imdb/imdb_unsup.jsonl.gz" ] || { echo "skipping: ../shared not found"; exit 0; }
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build --release -q -p refinery-cli)
MAX=$(echo $SIZES | tr ' ' '\n' | sort -n | tail -1)
[ -f "$WORK/all.jsonl" ] || python3 "$ROOT/bench/make_minhash_corpus.py" "$SHARED/data" "$WORK/all.jsonl" "$MAX"
printf "%8s %8s %6s | %-28s | %-28s | %-28s | %-28s | %s\n" docs MB budget "signatures s/MiB/cpu" "buckets s/MiB/cpu" "clusters s/MiB/cpu" "filter s/MiB/cpu" "clusters summary"
for n in $SIZES; do
  head -n "$n" "$WORK/all.jsonl" > "$WORK/in_$n.jsonl"
  mb=$(du -m "$WORK/in_$n.jsonl" | cut -f1)
  for budget in 1024 1; do
    out="$WORK/out_${n}_$budget"; rm -rf "$out"
    row=""
    for step in signatures buckets clusters filter; do
      nice -n 10 /usr/bin/time -f "%e %M %U %S" -o "$WORK/t" "$BIN" dedup minhash --input "$WORK/in_$n.jsonl" \
        --output "$out" --tasks 1 --workers 1 --max-memory-mb "$budget" --step "$step" > "$WORK/log" 2>&1 \
        || { cat "$WORK/log" >&2; exit 1; }
      row="$row$(awk '{printf "%7.2f %6.1f %7.2f", $1, $2 / 1024, $3 + $4}' "$WORK/t") | "
    done
    summ=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s.get('method'), 'rounds', s.get('rounds'), 'pairs', s['pair_records'], 'removed', s['removed'])" "$out/minhash/clusters/summary.json")
    printf "%8s %8s %6s | %s%s\n" "$n" "$mb" "$budget" "$row" "$summ"
  done
done
