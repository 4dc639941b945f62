#!/usr/bin/env bash
# Parquet read and write speed: refinery-corpus against pyarrow, on the same file,
# interleaved in one run.
#
#   bench/parquet_speed.sh [COPIES] [RUNS]     (defaults: 2 copies of IMDb unsup = 100k rows, 5 runs)
#
# The file: FineWeb's columns (text, id, dump, url, date, file_path, language,
# language_score, token_count) over the 50,000 real reviews of
# ../shared/data/classification/imdb/imdb_unsup.jsonl.gz, COPIES times, written by pyarrow
# with snappy (what HF-hosted FineWeb files use) in row groups of 10,000 rows.
#
# Read, one thread each:
#   refinery  readers::open → Document (text, id, every other column as metadata)
#   pyarrow   ParquetFile.iter_batches(use_threads=False) → to_pylist() (rows as dicts)
#   pyarrow   read_table(use_threads=False) (columnar, no per-row objects)
# Write (zstd level 3, one thread): the same documents, held in memory first:
#   refinery  ShardWriter, format parquet (id, text, source, metadata as JSON)
#   pyarrow   write_table of a table with the same 4 columns, zstd level 3, no dictionary
#
# Each measurement is its own process; the tools alternate within every run. Reported:
# medians over RUNS of rows per CPU-second (user + sys of the process during the
# operation only: /proc/self/stat in Rust, time.process_time() in Python; the better
# measure on a loaded machine) and of rows per wall-second.
set -euo pipefail
cd "$(dirname "$0")/.."
COPIES=${1:-2}
RUNS=${2:-5}
SHARED=${REFINERY_SHARED:-../shared}
VENV=${REFINERY_PARQUET_VENV:-${TMPDIR:-/tmp}/refinery-parquet-venv}
PY="$VENV/bin/python"
WORK=${TMPDIR:-/tmp}/refinery-parquet-bench
IMDB="$SHARED/data/classification/imdb/imdb_unsup.jsonl.gz"
[ -f "$IMDB" ] || { echo "needs $IMDB" >&2; exit 1; }
[ -x "$PY" ] || { echo "needs the venv of scripts/parquet-interop.sh at $VENV (run it once)" >&2; exit 1; }

rm -rf "$WORK"; mkdir -p "$WORK"
cargo build --release -q -p refinery-corpus --example parquet_speed
BIN="${CARGO_TARGET_DIR:-target}/release/examples/parquet_speed"

"$PY" - "$IMDB" "$COPIES" "$WORK/in.parquet" <<'PY'
import gzip, json, sys
import pyarrow as pa, pyarrow.parquet as pq
rows = [json.loads(l)["text"] for l in gzip.open(sys.argv[1])] * int(sys.argv[2])
n = len(rows)
t = pa.table({
    "text": rows,
    "id": [f"<urn:uuid:{i:032x}>" for i in range(n)],
    "dump": ["CC-MAIN-2024-10"] * n,
    "url": [f"https://example{i % 997}.com/page/{i}" for i in range(n)],
    "date": ["2024-02-20T12:00:00Z"] * n,
    "file_path": [f"s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/{i % 100}.warc.gz" for i in range(n)],
    "language": ["en"] * n,
    "language_score": [0.9 + (i % 100) / 1000 for i in range(n)],
    "token_count": [len(r) // 4 for r in rows],
})
pq.write_table(t, sys.argv[3], row_group_size=10_000, compression="snappy")
print(f"input: {n} rows, {sum(map(len, rows)) / 1e6:.1f} MB of text, {len(pq.ParquetFile(sys.argv[3]).metadata.to_dict()['row_groups'])} row groups")
PY
ls -l "$WORK/in.parquet" | awk '{printf "file: %.1f MB\n", $5/1e6}'

cat >"$WORK/py.py" <<'PY'
import json, sys, time
import pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
pa.set_cpu_count(1); pa.set_io_thread_count(1)
op, path = sys.argv[1], sys.argv[2]
c = time.process_time()
if op == "read-dicts":
    t = time.perf_counter(); n = b = 0
    for batch in pq.ParquetFile(path).iter_batches(use_threads=False):
        for r in batch.to_pylist():
            n += 1; b += len(r["text"])
elif op == "read-table":
    t = time.perf_counter()
    tb = pq.read_table(path, use_threads=False)
    n = tb.num_rows
    b = pc.sum(pc.binary_length(tb.column("text"))).as_py()
elif op == "write":
    src = pq.read_table(path, use_threads=False)
    n = src.num_rows
    meta = [json.dumps({k: v for k, v in r.items() if k not in ("text", "id")}) for r in src.drop(["text"]).to_pylist()]
    tb = pa.table({"id": src.column("id"), "text": src.column("text"),
                   "source": pa.array([path] * n), "metadata": pa.array(meta)})
    b = pc.sum(pc.binary_length(tb.column("text"))).as_py()
    t = time.perf_counter(); c = time.process_time()
    pq.write_table(tb, sys.argv[3] + "/py.parquet", compression="zstd", compression_level=3,
                   use_dictionary=["source"], write_statistics=False, row_group_size=20_000)
s = time.perf_counter() - t
cpu = time.process_time() - c
print(f"{op} {n} {s:.4f} {n / s:.0f} {b / s / 1e6:.1f} {cpu:.2f}")
PY

measure() { # appends "LABEL rows wall_s rows/s MB/s cpu_s" to $WORK/results
  echo "$LABEL $("$@" | tail -n 1 | cut -d' ' -f2-)" >>"$WORK/results"
}
: >"$WORK/results"
for r in $(seq "$RUNS"); do
  LABEL="read refinery" measure "$BIN" read "$WORK/in.parquet"
  LABEL="read pyarrow-dicts" measure "$PY" "$WORK/py.py" read-dicts "$WORK/in.parquet"
  LABEL="read pyarrow-table" measure "$PY" "$WORK/py.py" read-table "$WORK/in.parquet"
  rm -rf "$WORK/w"; mkdir -p "$WORK/w"
  LABEL="write refinery" measure "$BIN" write "$WORK/in.parquet" "$WORK/w"
  LABEL="write pyarrow" measure "$PY" "$WORK/py.py" write "$WORK/in.parquet" "$WORK/w"
done
ls -l "$WORK"/w/*.parquet | awk '{printf "written: %s %.1f MB\n", $NF, $5/1e6}'
echo
echo "$(lscpu | sed -n 's/^Model name: *//p'); load $(cut -d' ' -f1-3 /proc/loadavg); pyarrow $("$PY" -c 'import pyarrow; print(pyarrow.__version__)')"
printf '%-22s %16s %16s %12s\n' "operation" "rows/CPU-s (med)" "rows/s wall (med)" "MB/CPU-s"
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for label in "read refinery" "read pyarrow-dicts" "read pyarrow-table" "write refinery" "write pyarrow"; do
  # Fields: label(2 words) rows wall_s rows/s MB/s cpu_s.
  cpu_rps=$(grep "^$label " "$WORK/results" | awk '{print $3 / $7}' | median)
  wall_rps=$(grep "^$label " "$WORK/results" | awk '{print $5}' | median)
  mb_cpu=$(grep "^$label " "$WORK/results" | awk '{print $6 * $4 / $7}' | median)
  printf '%-22s %16.0f %16.0f %12.1f\n' "$label" "$cpu_rps" "$wall_rps" "$mb_cpu"
done
