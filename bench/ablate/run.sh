#!/usr/bin/env bash
# The worked ablation of docs/ablate.md, from the repository root:
#   bash bench/ablate/run.sh
# 1. writes two eval sets from ../shared (never in the training input):
#    WikiText-2 validation (first 600 lines) and 300 reviews of IMDb *unsup* (the input has
#    IMDb *train*; the overlap check reports what they share);
# 2. runs `refinery ablate bench/ablate/experiment.toml` (rerun to continue after a kill);
# 3. writes the HTML report. SKIP_BUILD=1 uses an existing target/release/refinery.
set -euo pipefail
SHARED=${SHARED:-../shared/data}
[ -f "$SHARED/classification/imdb/imdb_unsup.jsonl.gz" ] || {
    echo "skip: $SHARED (the shared data) is not here" >&2; exit 0; }
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p refinery-cli
EVAL=bench/out/ablate-eval
mkdir -p "$EVAL"
head -n 600 "$SHARED/lm/wikitext-2/valid.txt" > "$EVAL/wikitext.txt"
python3 - "$SHARED/classification/imdb/imdb_unsup.jsonl.gz" "$EVAL/imdb-unsup.txt" <<'PY'
import gzip, json, sys
with gzip.open(sys.argv[1], "rt", encoding="utf-8") as f, open(sys.argv[2], "w", encoding="utf-8") as out:
    for i, line in enumerate(f):
        if i == 300:
            break
        out.write(json.loads(line)["text"].replace("<br />", "\n") + "\n\n")
PY
/usr/bin/time -v target/release/refinery ablate bench/ablate/experiment.toml 2> >(tee bench/out/ablate-time.txt >&2)
target/release/refinery report bench/out/ablate -o bench/out/ablate.html
