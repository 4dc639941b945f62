#!/usr/bin/env bash
# MinHash dedup: refinery vs datatrove on the same documents and parameters
# (5-grams, 14 bands x 8 rows, 64-bit), one task, one worker each.
#
#   bench/minhash_vs_datatrove.sh [DOCS] [RUNS]
#
# Input: the first DOCS (default 50000) IMDb unsup reviews from ../shared, plus
# 10% injected near-duplicates (word-level edits at 0-10%, seeded), written
# once as JSONL. Needs a python with `datatrove` (PYTHON=..., default python3;
# pip install datatrove tokenizers nltk orjson 'xxhash<3.5': datatrove 0.x
# passes str to xxh64_intdigest, which xxhash 3.5 refuses). Reports medians of RUNS runs
# (default 3) of wall time, peak RSS (GNU time), the throughput ratio, and the
# agreement of the removed id sets (Jaccard of the two sets, and each side's
# share found by the other).
set -euo pipefail
DOCS=${1:-50000}
RUNS=${2:-3}
PY=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${REFINERY_SHARED:-$ROOT/../shared}
WORK=${WORK:-$(mktemp -d)}
BIN=$ROOT/target/release/refinery
[ -f "$SHARED/data/classification/imdb/imdb_unsup.jsonl.gz" ] || { echo "skipping: ../shared not found"; exit 0; }
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build --release -q -p refinery-cli)

$PY - "$SHARED/data/classification/imdb/imdb_unsup.jsonl.gz" "$WORK/in.jsonl" "$DOCS" <<'EOF'
import gzip, json, random, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(1)
docs = []
with gzip.open(src, "rt") as f:
    for i, line in enumerate(f):
        if i >= n: break
        docs.append(json.loads(line)["text"])
out = [(f"imdb-{i}", t) for i, t in enumerate(docs)]
for k in range(n // 10):
    words = rng.choice(docs).split()
    rate = rng.uniform(0, 0.10)
    w2 = [rng.choice(words) if rng.random() < rate else w for w in words]
    out.append((f"dup-{k}", " ".join(w2)))
rng.shuffle(out)
with open(dst, "w") as f:
    for i, t in out:
        f.write(json.dumps({"id": i, "text": t}) + "\n")
EOF

cat > "$WORK/dt.py" <<'EOF'
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupSignature, MinhashDedupBuckets,
    MinhashDedupCluster, MinhashDedupFilter)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig
inp, out = sys.argv[1], sys.argv[2]
cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8, hash_config=HashConfig(precision=64))
rd = lambda: JsonlReader(inp, glob_pattern="in.jsonl")
steps = [
    [rd(), MinhashDedupSignature(output_folder=f"{out}/sigs", config=cfg)],
    [MinhashDedupBuckets(input_folder=f"{out}/sigs", output_folder=f"{out}/buckets", config=cfg)],
    [MinhashDedupCluster(input_folder=f"{out}/buckets", output_folder=f"{out}/remove_ids", config=cfg)],
    [rd(), MinhashDedupFilter(input_folder=f"{out}/remove_ids", exclusion_writer=JsonlWriter(f"{out}/removed", compression=None)),
     JsonlWriter(f"{out}/data", compression=None)],
]
for i, p in enumerate(steps):
    LocalPipelineExecutor(pipeline=p, tasks=14 if i == 1 else 1, workers=1, logging_dir=f"{out}/logs{i}").run()
EOF

measure() { # label, command...: prints "seconds maxrss_kb"
  local t0 t1
  shift
  t0=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$WORK/rss" "${@}" > "$WORK/log" 2>&1 || { cat "$WORK/log" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$(echo "$t1 - $t0" | bc) $(cat "$WORK/rss")"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: > "$WORK/ours"; : > "$WORK/theirs"
for r in $(seq "$RUNS"); do
  rm -rf "$WORK/ours_out" "$WORK/dt_out"
  measure ours "$BIN" dedup minhash --input "$WORK/in.jsonl" --output "$WORK/ours_out" --tasks 1 --workers 1 --rejects >> "$WORK/ours"
  measure datatrove $PY "$WORK/dt.py" "$WORK" "$WORK/dt_out" >> "$WORK/theirs"
done
OS=$(cut -d' ' -f1 "$WORK/ours" | median); OM=$(cut -d' ' -f2 "$WORK/ours" | median)
TS=$(cut -d' ' -f1 "$WORK/theirs" | median); TM=$(cut -d' ' -f2 "$WORK/theirs" | median)
N=$(wc -l < "$WORK/in.jsonl")
echo "docs: $N  runs: $RUNS  (medians; wall time includes reading JSONL and writing output)"
printf "refinery : %8.2f s  %8.0f docs/s  peak RSS %6.1f MiB\n" "$OS" "$(echo "$N / $OS" | bc -l)" "$(echo "$OM / 1024" | bc -l)"
printf "datatrove: %8.2f s  %8.0f docs/s  peak RSS %6.1f MiB\n" "$TS" "$(echo "$N / $TS" | bc -l)" "$(echo "$TM / 1024" | bc -l)"
printf "throughput ratio (refinery / datatrove): %.1fx\n" "$(echo "$TS / $OS" | bc -l)"
$PY - "$WORK" <<'EOF'
import glob, gzip, json, subprocess, sys
w = sys.argv[1]
def ids(pattern):
    s = set()
    for f in glob.glob(pattern):
        if f.endswith(".zst"):
            text = subprocess.run(["zstd", "-dc", f], capture_output=True, check=True).stdout.decode()
        elif f.endswith(".gz"):
            text = gzip.open(f, "rt").read()
        else:
            text = open(f).read()
        s.update(json.loads(l)["id"] for l in text.split("\n") if l.strip())
    return s
ours = ids(f"{w}/ours_out/rejects/*")
theirs = ids(f"{w}/dt_out/removed/*")
inj = {i for i in ours | theirs if i.startswith("dup-")}
both = ours & theirs
print(f"removed: refinery {len(ours)}, datatrove {len(theirs)}, both {len(both)}, "
      f"set Jaccard {len(both) / max(1, len(ours | theirs)):.3f}")
EOF
echo "work dir: $WORK"
