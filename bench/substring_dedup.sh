#!/usr/bin/env bash
# Exact-substring dedup throughput and peak RSS on IMDb unsup reviews.
#
#   bench/substring_dedup.sh [MB] [UNIT] [MIN_LEN] [SHARD_UNITS] [MERGE_MB]
#
# Takes the first MB megabytes of text of ../shared/data/classification/
# imdb/imdb_{train,unsup}.jsonl.gz (75k reviews, ~100 MB), runs
# `refinery dedup substring` (1 task, 1 worker) once with one shard and
# once with SHARD_UNITS-unit shards (merge budget MERGE_MB MiB, default
# 1024), and prints wall time, MB/s, peak RSS (GNU time), the peak of the
# anonymous (heap) part of the RSS (polled every 50 ms from /proc; the rest
# is the page cache of mapped units files) and what was removed. Needs
# target/release/refinery. Run it under `nice -n 10` on a shared machine.
set -euo pipefail
MB=${1:-50}
UNIT=${2:-bytes}
MIN_LEN=${3:-50}
SHARDS=${4:-16777216}
MERGE_MB=${5:-1024}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${REFINERY_SHARED:-$ROOT/../shared}
BIN=${REFINERY_BIN:-$ROOT/target/release/refinery}
SRC=$SHARED/data/classification/imdb/imdb_unsup.jsonl.gz
[ -f "$SRC" ] || { echo "skipping: ../shared not found ($SRC)" >&2; exit 0; }
[ -x "$BIN" ] || { echo "build first: cargo build --release -p refinery-cli" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$SRC" "$WORK/in.jsonl" "$MB" <<'PY'
import gzip, json, sys
src, dst, mb = sys.argv[1], sys.argv[2], float(sys.argv[3])
limit, n, k = int(mb * 1e6), 0, 0
with open(dst, "w") as o:
    for path in (src.replace("unsup", "train"), src):
        try:
            f = gzip.open(path, "rt")
        except FileNotFoundError:
            continue
        for line in f:
            d = json.loads(line)
            o.write(json.dumps({"id": str(k), "text": d["text"]}) + "\n")
            n += len(d["text"].encode())
            k += 1
            if n >= limit:
                break
        if n >= limit:
            break
print(f"input: {n/1e6:.1f} MB of text", file=sys.stderr)
PY
TEXT_MB=$(python3 -c "import json;print(sum(len(json.loads(l)['text'].encode()) for l in open('$WORK/in.jsonl'))/1e6)")
for shard in 2147483648 "$SHARDS"; do
  OUT=$WORK/out_$shard
  /usr/bin/time -f "%e s %M KiB" -o "$WORK/time" \
    "$BIN" dedup substring --input "$WORK/in.jsonl" --output "$OUT" \
    --unit "$UNIT" --min-len "$MIN_LEN" --shard-units "$shard" \
    --merge-memory-mb "$MERGE_MB" --json > "$WORK/report.json" &
  TPID=$!
  ANON=0
  while kill -0 "$TPID" 2>/dev/null; do
    for c in $(pgrep -P "$TPID" || true); do
      a=$(awk '/^RssAnon/{print $2}' "/proc/$c/status" 2>/dev/null || echo 0)
      [ "${a:-0}" -gt "$ANON" ] && ANON=$a
    done
    sleep 0.05
  done
  wait "$TPID"
  read -r secs _ kib _ < "$WORK/time"
  python3 - "$WORK/report.json" "$secs" "$kib" "$TEXT_MB" "$shard" "$ANON" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); secs, kib, mb = float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
anon = int(sys.argv[6])
s = r["summary"]
steps = ", ".join(f'{x["name"]} {x["seconds"]:.1f}s' for x in r["steps"])
print(f"shard_units {sys.argv[5]}: {s['shards']} shard(s), {mb:.1f} MB in {secs:.1f} s = {mb/secs:.1f} MB/s, "
      f"peak RSS {kib/1024:.0f} MiB ({kib*1024/ (mb*1e6):.1f} B/byte), peak anon {anon/1024:.0f} MiB; "
      f"{s.get('spill_runs', 0)} spill runs; {steps}")
print(f"  {s['docs']} docs, {s['units']} units, {s['repeated_windows']} repeated windows, "
      f"{s['units_removed']} units removed ({100*s['units_removed']/max(1,s['units']):.2f}%) from {s['docs_touched']} docs; "
      f"dropped {r['stats']['dropped']}")
PY
done
