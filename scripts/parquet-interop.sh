#!/usr/bin/env bash
# Parquet interop, both directions, against pyarrow, DuckDB and HF datasets from PyPI.
#
#   bash scripts/parquet-interop.sh            (from the repo root; exit 77 = skipped)
#
# Out: `refinery run --output-format parquet` on the embedded sample (2 tasks, with
#   --rejects). pyarrow, DuckDB and `datasets.load_dataset("parquet", data_files=...)`
#   read every shard: the schema is id, text, source, metadata (strings), the row count
#   equals stats.json's kept documents, and every document (id, text, source, metadata
#   parsed from its JSON string) equals the one the same run wrote as JSONL. DuckDB also
#   reads a metadata field with json_extract_string.
# In: pyarrow writes a FineWeb-shaped file (snappy, 7 row groups, a list column, a
#   struct column, a null text); `refinery run` reads it split over 3 tasks by row groups
#   (executor.parquet_split_bytes) and keeps every row but the null text (one failed
#   record), with ids, url, lang_score and the nested columns in metadata.
#
# Environment:
#   REFINERY_PARQUET_VENV  venv to create or reuse (default ${TMPDIR:-/tmp}/refinery-parquet-venv)
#   REFINERY_PARQUET_WORK  scratch dir (default ${TMPDIR:-/tmp}/refinery-parquet-work)
#
# The venv holds pyarrow, duckdb and datasets (about 470 MB; no torch). The install is
# the cost (about 1.5 min cold); the checks take seconds.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

PYARROW_VERSION=26.0.1
DUCKDB_VERSION=2.0.1
DATASETS_VERSION=5.2.0

VENV=${REFINERY_PARQUET_VENV:-${TMPDIR:-/tmp}/refinery-parquet-venv}
WORK=${REFINERY_PARQUET_WORK:-${TMPDIR:-/tmp}/refinery-parquet-work}
PY="$VENV/bin/python"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export HF_DATASETS_CACHE="$WORK/hf-cache"
t0=$(date +%s)

# --- 1. venv --------------------------------------------------------------------------------
pins_ok() {
  "$PY" - "$PYARROW_VERSION" "$DUCKDB_VERSION" "$DATASETS_VERSION" <<'PY' 2>/dev/null
import sys, pyarrow, duckdb, datasets
sys.exit(0 if (pyarrow.__version__, duckdb.__version__, datasets.__version__) == tuple(sys.argv[1:]) else 1)
PY
}
echo "== venv: $VENV"
if [ -x "$PY" ] && pins_ok; then
  echo "reusing venv (pyarrow $PYARROW_VERSION, duckdb $DUCKDB_VERSION, datasets $DATASETS_VERSION)"
else
  echo "installing pyarrow==$PYARROW_VERSION duckdb==$DUCKDB_VERSION datasets==$DATASETS_VERSION"
  { [ -x "$PY" ] || python3 -m venv "$VENV"; } &&
    "$PY" -m pip install -q --no-cache-dir "pyarrow==$PYARROW_VERSION" "duckdb==$DUCKDB_VERSION" \
      "datasets==$DATASETS_VERSION" &&
    pins_ok
  if [ $? -ne 0 ]; then
    echo "parquet-interop: could not set up the venv at $VENV (no PyPI access, no python3-venv or no space?)" >&2
    exit 77
  fi
fi
t_venv=$(($(date +%s) - t0))

# --- 2. refinery ----------------------------------------------------------------------------
echo "== building refinery"
cargo build -q -p refinery-cli || exit 1
BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/refinery"
rm -rf "$WORK"
mkdir -p "$WORK/in"
cp crates/cli/sample/sample.warc.gz crates/cli/sample/sample.jsonl "$WORK/in/"
run() { "$BIN" run --preset default -i "$WORK/in" --tasks 2 --rejects -q "$@" >/dev/null; }
run -o "$WORK/jsonl" || exit 1
run -o "$WORK/parquet" --output-format parquet || exit 1

# The "in" direction: pyarrow writes, refinery reads (split over 3 tasks).
"$PY" - "$WORK" <<'PY' || exit 1
import sys, pyarrow as pa, pyarrow.parquet as pq
work = sys.argv[1]
n = 700
text = [None if i == 123 else f"Row {i}: " + "a plain English sentence about rivers and bread. " * (2 + i % 5) for i in range(n)]
t = pa.table({
    "text": text,
    "id": [f"<urn:uuid:{i:08x}>" for i in range(n)],
    "url": [f"https://site{i % 17}.example/{i}" for i in range(n)],
    "dump": ["CC-MAIN-2024-10"] * n,
    "language_score": [0.5 + (i % 50) / 100 for i in range(n)],
    "tags": [[f"t{i % 3}", "x"] for i in range(n)],
    "info": [{"a": i, "b": "s"} for i in range(n)],
})
pq.write_table(t, f"{work}/fineweb-like.parquet", row_group_size=100)
# Split so that the 7 row groups make parts of about two row groups each.
md = pq.ParquetFile(f"{work}/fineweb-like.parquet").metadata
sizes = [sum(md.row_group(i).column(c).total_compressed_size for c in range(md.num_columns))
         for i in range(md.num_row_groups)]
open(f"{work}/split_bytes", "w").write(str(2 * max(sizes)))
PY
cat >"$WORK/in.toml" <<EOF
[input]
paths = ["$WORK/fineweb-like.parquet"]
[output]
path = "$WORK/from-pyarrow"
[executor]
tasks = 3
workers = 2
parquet_split_bytes = $(cat "$WORK/split_bytes")
EOF
"$BIN" run "$WORK/in.toml" -q >/dev/null || exit 1
t_run=$(($(date +%s) - t0 - t_venv))

# --- 3. checks ------------------------------------------------------------------------------
"$PY" - "$WORK" <<'PY'
import glob, json, os, sys
import datasets
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

work = sys.argv[1]
fails = []
def check(ok, msg):
    print(("PASS  " if ok else "FAIL  ") + msg)
    if not ok:
        fails.append(msg)

def jsonl_docs(d):
    """The documents of refinery's zstd JSONL shards in d, in shard order."""
    out = []
    for f in sorted(glob.glob(os.path.join(d, "*.jsonl.zst"))):
        with pa.input_stream(f, compression="zstd") as s:
            out += [json.loads(l) for l in s.read().decode().splitlines() if l]
    return out

for sub in ("data", "rejects"):
    files = sorted(glob.glob(os.path.join(work, "parquet", sub, "*.parquet")))
    check(len(files) > 0, f"{sub}: {len(files)} Parquet shards")
    stats = json.load(open(os.path.join(work, "parquet", "stats.json")))
    want_rows = stats["writer" if sub == "data" else "rejects"]["docs"]
    # pyarrow
    rows = []
    for f in files:
        t = pq.read_table(f)
        check([(fl.name, str(fl.type)) for fl in t.schema] == [(c, "string") for c in ("id", "text", "source", "metadata")],
              f"pyarrow {os.path.basename(f)}: schema id, text, source, metadata (string)")
        rows += t.to_pylist()
    check(len(rows) == want_rows, f"pyarrow {sub}: {len(rows)} rows == stats.json {want_rows}")
    ref = jsonl_docs(os.path.join(work, "jsonl", sub))
    got = [dict(r, metadata=json.loads(r["metadata"])) for r in rows]
    check(got == ref, f"pyarrow {sub}: every document equals the JSONL run's ({len(ref)})")
    # DuckDB
    glob_ = os.path.join(work, "parquet", sub, "*.parquet")
    n, ids = duckdb.sql(f"SELECT count(*), count(DISTINCT id) FROM read_parquet('{glob_}')").fetchall()[0]
    check(n == want_rows and ids == want_rows, f"duckdb {sub}: {n} rows, {ids} distinct ids")
    if sub == "data":
        langs = duckdb.sql(f"SELECT json_extract_string(metadata, '$.lang') AS l, count(*) FROM read_parquet('{glob_}') GROUP BY l ORDER BY l").fetchall()
        want = {}
        for d in ref:
            l = d["metadata"].get("lang")
            want[l] = want.get(l, 0) + 1
        check(dict(langs) == want, f"duckdb json_extract_string(metadata, '$.lang'): {dict(langs)}")
    # HF datasets
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    check(ds.num_rows == want_rows and ds.column_names == ["id", "text", "source", "metadata"],
          f"datasets.load_dataset('parquet'): {ds.num_rows} rows, columns {ds.column_names}")
    check([r["text"] for r in ds] == [d["text"] for d in ref], f"datasets {sub}: texts in order")

# In: refinery read pyarrow's file, split over tasks.
s = json.load(open(os.path.join(work, "from-pyarrow", "stats.json")))
src = os.path.join(work, "fineweb-like.parquet")
f = s["files"][src]
check(f["records"] == 700 and f["kept"] == 699 and f["failed"] == {"parquet:missing_text": 1},
      f"refinery read pyarrow's file: 700 records, 699 kept, 1 null text failed ({f['kept']}, {f['failed']})")
check(f["bytes"] == os.path.getsize(src), "per-file bytes == file size (parts add up)")
per_task = [json.load(open(p))["files"].get(src, {}).get("records", 0) for p in sorted(glob.glob(os.path.join(work, "from-pyarrow", "stats", "*.json")))]
check(len(per_task) == 3 and all(r > 0 for r in per_task), f"the file was spread over 3 tasks: {per_task}")
docs = jsonl_docs(os.path.join(work, "from-pyarrow", "data"))
by_id = {d["id"]: d for d in docs}
d = by_id.get("<urn:uuid:00000007>")
check(d is not None and d["metadata"]["url"] == "https://site7.example/7" and d["metadata"]["tags"] == ["t1", "x"]
      and d["metadata"]["info"] == {"a": 7, "b": "s"} and d["metadata"]["dump"] == "CC-MAIN-2024-10",
      f"ids and metadata (url, list, struct) carried over: {d and d['metadata']}")
print(f"parquet-interop: {len(fails)} failed")
sys.exit(1 if fails else 0)
PY
rc=$?
echo "time: venv ${t_venv}s, runs ${t_run}s, total $(($(date +%s) - t0))s"
exit $rc
