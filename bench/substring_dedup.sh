#!/usr/bin/env bash
# Exact-substring dedup throughput and peak RSS on IMDb unsup reviews.
#
#   bench/substring_dedup.sh [MB] [UNIT] [MIN_LEN] [SHARD_UNITS]
#
# Takes the first MB megabytes of text of ../shared/data/classification/
# imdb/imdb_unsup.jsonl.gz (50k reviews, ~65 MB), runs
# `refinery dedup substring` (1 task, 1 worker) once with one shard and
# once with SHARD_UNITS-unit shards, and prints wall time, MB/s, peak RSS
# (GNU time) and what was removed. Needs target/release/refinery.
set -euo pipefail
MB=${1:-50}
UNIT=${2:-bytes}
MIN_LEN=${3:-50}
SHARDS=${4:-16777216}
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
limit, n = int(mb * 1e6), 0
with gzip.open(src, "rt") as f, open(dst, "w") as o:
    for line in f:
        d = json.loads(line)
        o.write(json.dumps({"id": d.get("id", str(n)), "text": d["text"]}) + "\n")
        n += len(d["text"].encode())
        if n >= limit:
            break
print(f"input: {n/1e6:.1f} MB of text", file=sys.stderr)
PY
TEXT_MB=$(python3 -c "import json;print(sum(len(json.loads(l)['text'].encode()) for l in open('$WORK/in.jsonl'))/1e6)")
for shard in 2147483648 "$SHARDS"; do
  OUT=$WORK/out_$shard
  /usr/bin/time -f "%e s %M KiB" -o "$WORK/time" \
    "$BIN" dedup substring --input "$WORK/in.jsonl" --output "$OUT" \
    --unit "$UNIT" --min-len "$MIN_LEN" --shard-units "$shard" --json > "$WORK/report.json"
  read -r secs _ kib _ < "$WORK/time"
  python3 - "$WORK/report.json" "$secs" "$kib" "$TEXT_MB" "$shard" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); secs, kib, mb = float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = r["summary"]
steps = ", ".join(f'{x["name"]} {x["seconds"]:.1f}s' for x in r["steps"])
print(f"shard_units {sys.argv[5]}: {s['shards']} shard(s), {mb:.1f} MB in {secs:.1f} s = {mb/secs:.1f} MB/s, "
      f"peak RSS {kib/1024:.0f} MiB ({kib*1024/ (mb*1e6):.1f} B/byte); {steps}")
print(f"  {s['docs']} docs, {s['units']} units, {s['repeated_windows']} repeated windows, "
      f"{s['units_removed']} units removed ({100*s['units_removed']/max(1,s['units']):.2f}%) from {s['docs_touched']} docs; "
      f"dropped {r['stats']['dropped']}")
PY
done
