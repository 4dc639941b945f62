#!/usr/bin/env bash
# Peak RSS and time of `refinery dedup minhash` against corpus size, with the
# default clusters budget and a tiny one (--max-memory-mb 1: external
# connected components). Each step runs as its own process (--step), so the
# peak RSS (GNU time's %M) is per step.
#
#   bench/minhash_scaling.sh [SIZES...]     (default 25000 50000 100000 200000 400000)
#
# Environment:
#   WORK     scratch directory (default: a new mktemp -d); kept afterwards
#   CORPUS   use prefixes of this bench/make_minhash_corpus.py output (at
#            least max(SIZES) lines) instead of one generated corpus per size
#   BUDGETS  clusters budgets in MiB (default "1024 1")
#   BIN      the refinery binary (default target/release/refinery)
#   SKIP_BUILD=1  do not run cargo build
#
# Each size is its own bench/make_minhash_corpus.py output (seed 1), so 1/6 of
# the documents are near-duplicates of a document of the same corpus at every
# size. (A prefix of a larger corpus would not do: the sources of most of its
# near-duplicates lie outside the prefix, so its duplicate rate grows with the
# prefix.) The generator takes the ~76k English documents first and fills up
# with Chinese poetry, so the larger corpora are mostly poetry.
#
# The budget only changes the clusters step (it is not part of params.json),
# so signatures and buckets run once per size, into the first budget's output;
# that minhash/ directory (with its completion markers) is copied for the
# other budgets before their clusters step. Their peak RSS is therefore
# reported once per size.
#
# For each budget after the first, the script checks that the removal files
# (clusters/remove_*.bin: removed doc, cluster, kept key and kept id) and the
# filtered output shards are byte-identical to the first budget's.
#
# Columns: s = wall seconds, MiB = peak RSS, cpu = user + sys seconds.
# A TSV of all the numbers goes to $WORK/results.tsv.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${REFINERY_SHARED:-$ROOT/../shared}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$WORK"
BIN=${BIN:-$ROOT/target/release/refinery}
SIZES=${*:-25000 50000 100000 200000 400000}
BUDGETS=${BUDGETS:-1024 1}
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build --release -q -p refinery-cli)
MAX=$(echo $SIZES | tr ' ' '\n' | sort -n | tail -1)
if [ -n "${CORPUS:-}" ]; then
  [ "$(wc -l < "$CORPUS")" -ge "$MAX" ] || { echo "$CORPUS has fewer than $MAX lines" >&2; exit 1; }
else
  [ -f "$SHARED/data/classification/imdb/imdb_unsup.jsonl.gz" ] || { echo "skipping: ../shared not found"; exit 0; }
fi
echo "binary: $BIN; corpus: ${CORPUS:-generated per size}; work: $WORK" >&2

# step_time OUT BUDGET STEP INPUT -> prints "wall rss_mib cpu" of one step.
step_time() {
  local out=$1 budget=$2 step=$3 input=$4
  nice -n 10 /usr/bin/time -f "%e %M %U %S" -o "$WORK/t" "$BIN" dedup minhash --input "$input" \
    --output "$out" --tasks 1 --workers 1 --max-memory-mb "$budget" --step "$step" > "$WORK/log" 2>&1 \
    || { cat "$WORK/log" >&2; exit 1; }
  awk '{printf "%.2f %.1f %.2f", $1, $2 / 1024, $3 + $4}' "$WORK/t"
}

fmt() { awk '{printf "%7.2f %6.1f %7.2f", $1, $2, $3}' <<< "$1"; }

printf "docs\tMB\tbudget_mib\tstep\twall_s\tpeak_rss_mib\tcpu_s\n" > "$WORK/results.tsv"
printf "%7s %5s %6s | %-22s | %-22s | %-22s | %-22s | %6s %7s %7s | %s\n" docs MB budget \
  "signatures s/MiB/cpu" "buckets s/MiB/cpu" "clusters s/MiB/cpu" "filter s/MiB/cpu" \
  "maxMiB" "cpu" "wall" "clusters summary; same output as first budget"
for n in $SIZES; do
  in="$WORK/in_$n.jsonl"
  if [ -n "${CORPUS:-}" ]; then
    head -n "$n" "$CORPUS" > "$in"
  elif [ ! -f "$in" ]; then
    python3 "$ROOT/bench/make_minhash_corpus.py" "$SHARED/data" "$in" "$n" 2> "$WORK/gen_$n.log"
  fi
  mb=$(du -mL "$in" | cut -f1)
  first=""
  for budget in $BUDGETS; do
    out="$WORK/out_${n}_$budget"; rm -rf "$out"
    declare -A res=()
    if [ -z "$first" ]; then
      for step in signatures buckets; do res[$step]=$(step_time "$out" "$budget" "$step" "$in"); done
      shared_sig=${res[signatures]}; shared_buck=${res[buckets]}
    else
      mkdir -p "$out/minhash"
      cp -a "$first/minhash/params.json" "$first/minhash/signatures" "$first/minhash/buckets" "$out/minhash/"
      res[signatures]=$shared_sig; res[buckets]=$shared_buck
    fi
    for step in clusters filter; do res[$step]=$(step_time "$out" "$budget" "$step" "$in"); done
    row=""; maxrss=0; cpu=0; wall=0
    for step in signatures buckets clusters filter; do
      read -r w r c <<< "${res[$step]}"
      printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$n" "$mb" "$budget" "$step" "$w" "$r" "$c" >> "$WORK/results.tsv"
      if [ -n "$first" ] && [ "$step" = signatures -o "$step" = buckets ]; then
        row="$row$(printf '%-22s' '  (same run as above)') | "
      else
        row="$row$(fmt "${res[$step]}") | "
      fi
      maxrss=$(awk -v a="$maxrss" -v b="$r" 'BEGIN{print (b > a) ? b : a}')
      cpu=$(awk -v a="$cpu" -v b="$c" 'BEGIN{print a + b}')
      wall=$(awk -v a="$wall" -v b="$w" 'BEGIN{print a + b}')
    done
    summ=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s.get('method'), 'rounds', s.get('rounds'), 'pairs', s['pair_records'], 'in-pairs', s['docs_in_pairs'], 'removed', s['removed'])" "$out/minhash/clusters/summary.json")
    if [ -z "$first" ]; then
      same="-"
    else
      same=yes
      for f in "$first"/minhash/clusters/remove_*.bin "$first"/data/*; do
        rel=${f#"$first"/}
        cmp -s "$f" "$out/$rel" || { same="NO ($rel differs)"; break; }
      done
      [ "$(cd "$first" && ls minhash/clusters/remove_*.bin data | md5sum)" = "$(cd "$out" && ls minhash/clusters/remove_*.bin data | md5sum)" ] \
        || same="NO (file lists differ)"
    fi
    printf "%7s %5s %6s | %s%6.1f %7.2f %7.2f | %s; same: %s\n" "$n" "$mb" "$budget" "$row" "$maxrss" "$cpu" "$wall" "$summ" "$same"
    [ -n "$first" ] || first=$out
    unset res
  done
done
