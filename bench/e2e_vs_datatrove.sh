#!/usr/bin/env bash
# The whole RefinedWeb pipeline, refinery against datatrove, end to end on
# real WARCs, one task and one worker each, interleaved.
#
#   bench/e2e_vs_datatrove.sh [PAIRS] [COPIES]     (defaults: 3 pairs, 30 copies)
#
# Input: the real WARC files of ../shared/data/web/warc except
# resiliparse-clueweb-quirk (EUC-JP pages that datatrove does not read as
# HTML), symlinked COPIES times (30: 74 MB, 1,620 documents).
#
# refinery: presets/refinedweb.toml without its [[dedup]] steps (the copies
# would all be deduplicated), `--tasks 1 --workers 1 --rejects`.
# datatrove 0.10.1, the same stages as a mirror: WarcReader → URLFilter →
# Trafilatura(favour_precision=True, deduplicate=False) → LanguageFilter(en,
# 0.65, lid.176.ftz from the same local file) → GopherRepetitionFilter →
# GopherQualityFilter → a port of our `refinedweb_lines` → JsonlWriter, one
# task, one worker, every filter with an exclusion writer (as our --rejects).
# Both write uncompressed JSONL (`--compression none`; datatrove's default is
# gzip).
#
# Prints, as medians over the pairs: wall seconds, user+sys CPU seconds,
# peak RSS, the ratios (datatrove / refinery), the seconds of each stage for
# both (from refinery's stats.json and datatrove's logs/stats.json), the
# overlap of the kept URLs, and each disagreement with the stage that
# dropped the page on the other side.
#
# The peer is installed into a venv by this script ($VENV, default
# ~/.cache/refinery/e2e-datatrove-venv; set PYTHON for the interpreter that
# makes it). Pitfalls handled there:
#   - trafilatura 1.x (datatrove pins trafilatura<2) with lxml 6 needs
#     `lxml_html_clean`; without it every page is reported as a *timeout*;
#   - datatrove's language filter wants `fasttext-numpy2-wheel`, not
#     `fasttext-wheel`;
#   - trafilatura's own `deduplicate=True` empties repeated pages: off;
#   - datatrove's per-page extraction timeout (1 s) drops pages as timeouts
#     when the machine is loaded: raised to $DT_TIMEOUT (default 30 s);
#   - datatrove's LanguageFilter downloads lid.176.bin: pointed at the local
#     lid.176.ftz instead; tldextract (URLFilter) would fetch the public
#     suffix list: its bundled snapshot is used;
#   - GopherRepetition/Quality tokenize words with spaCy (`spacy` package,
#     blank English pipeline, no model download); WarcReader needs `warcio`,
#     JsonlWriter `orjson`, WarcReader also `faust-cchardet` and
#     `python-magic` (libmagic).
set -euo pipefail
PAIRS=${1:-3}
COPIES=${2:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${REFINERY_SHARED:-$ROOT/../shared}
WORK=${WORK:-$(mktemp -d)}
VENV=${VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/refinery/e2e-datatrove-venv}
BIN=${REFINERY_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/refinery}
LID=$SHARED/data/models/lid/lid.176.ftz
WARC_DIR=$SHARED/data/web/warc
[ -d "$WARC_DIR" ] && [ -f "$LID" ] || { echo "skipping: $WARC_DIR or $LID not found"; exit 0; }
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build --release -q -p refinery-cli)

# 1. The peer, in its own venv.
PY=$VENV/bin/python
if ! "$PY" -c 'import datatrove, trafilatura, lxml_html_clean, fasttext, spacy, warcio, tldextract, orjson, cchardet, magic' 2>/dev/null; then
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/pip" install -q 'datatrove[processing]==0.10.1' lxml_html_clean fasttext-numpy2-wheel spacy warcio orjson faust-cchardet python-magic
fi
DT_VERSION=$("$PY" -c 'import datatrove, importlib.metadata as m; print(m.version("datatrove"))')
TR_VERSION=$("$PY" -c 'import trafilatura; print(trafilatura.__version__)')

# 2. The input: symlinks, COPIES times.
mkdir -p "$WORK/in"
if [ -z "$(ls "$WORK/in")" ]; then
  for c in $(seq -w 1 "$COPIES"); do
    for f in "$WARC_DIR"/*.warc.gz; do
      case $(basename "$f") in *clueweb-quirk*|*.wat.gz|*.wet.gz) continue ;; esac
      ln -s "$(realpath "$f")" "$WORK/in/$c-$(basename "$f")"
    done
  done
fi
MB=$(for f in "$WORK"/in/*; do gzip -dc "$f"; done | wc -c)

# 3. refinery's pipeline: the preset up to its first [[dedup]].
sed '/^\[\[dedup\]\]/,$d; /^# 7\. Fuzzy dedup/,$d' "$ROOT/presets/refinedweb.toml" > "$WORK/refinedweb-nodedup.toml"

# 4. datatrove's mirror.
cat > "$WORK/dt.py" <<'EOF'
import re, sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (GopherQualityFilter, GopherRepetitionFilter, LanguageFilter,
                                        URLFilter)
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.lid import FT176LID

inp, out, lid = sys.argv[1:4]


class LocalFT176(FT176LID):
    """lid.176 from a local file (datatrove would download lid.176.bin)."""

    @property
    def model(self):
        if self._model is None:
            from fasttext.FastText import _FastText
            self._model = _FastText(lid)
        return self._model


COUNTER_WORDS = ("likes like shares share comments comment retweets retweet reposts repost quotes quote "
                 "bookmarks bookmark upvotes upvote downvotes downvote downloads download views view "
                 "followers follower replies reply votes vote").split()
COUNTER = re.compile(r"^\W*\d[\d,.]*[KkMmBb]?\s+(" + "|".join(COUNTER_WORDS) + r")\W*$", re.I)


class RefinedWebLines(BaseFilter):
    """Port of refinery's `refinedweb_lines` (docs/filters.md): RefinedWeb's
    line-wise corrections; drops the document when > 5% of its words go."""

    name = "RefinedWeb lines"

    def filter(self, doc):
        out, total, removed = [], 0, 0
        for line in doc.text.split("\n"):
            s = line.strip()
            n = len(s.split())
            total += n
            if n == 0:
                out.append(line)
                continue
            upper = sum(c.isupper() for c in s) / len(s)
            numeric = all(c.isnumeric() or c.isspace() or c in ".,+-%/:" for c in s) and any(
                c.isnumeric() for c in s)
            if upper > 0.5 or numeric or COUNTER.match(s) or n < 2:
                removed += n
                continue
            if n <= 10:
                low = s.lower()
                if "items in cart" in low:
                    removed += n
                    continue
                t = s
                for suf in ("read more...", "read more…", "read more"):
                    if t.lower().endswith(suf):
                        t = t[: len(t) - len(suf)].strip()
                        break
                for pre in ("sign-in", "sign in"):
                    if t.lower().startswith(pre):
                        t = t[len(pre):].strip()
                        break
                if len(t) != len(s):
                    removed += n - len(t.split())
                    if t:
                        out.append(t)
                    continue
            out.append(line)
        if total and removed / total > 0.05:
            return False, "too_many_removed"
        doc.text = "\n".join(out)
        return True


def excl(name):
    return JsonlWriter(f"{out}/removed/{name}", compression=None)


url_filter = URLFilter(extra_domains=["wikipedia.org", "arxiv.org", "stackexchange.com", "stackoverflow.com",
                                      "github.com", "reddit.com"], exclusion_writer=excl("url"))
from tldextract import TLDExtract
url_filter.tldextractor = TLDExtract(suffix_list_urls=())  # offline: the bundled snapshot
lang = LanguageFilter(languages=["en"], language_threshold=0.65, exclusion_writer=excl("lang"))
lang.model = LocalFT176(["en"])
pipeline = [
    WarcReader(inp, glob_pattern="*.warc.gz"),
    url_filter,
    # timeout: datatrove's default is 1 s per page; on a loaded machine that
    # turns pages into timeouts (and restarts the extraction worker).
    Trafilatura(favour_precision=True, deduplicate=False, timeout=float(sys.argv[4])),
    lang,
    GopherRepetitionFilter(exclusion_writer=excl("gopher_rep")),
    GopherQualityFilter(exclusion_writer=excl("gopher_qual")),
    RefinedWebLines(exclusion_writer=excl("lines")),
    JsonlWriter(f"{out}/data", compression=None),
]
LocalPipelineExecutor(pipeline=pipeline, tasks=1, workers=1, logging_dir=f"{out}/logs").run()
EOF

# 5. Interleaved pairs. Each measurement: "wall maxrss_kb cpu_seconds".
measure() {
  local log=$1; shift
  /usr/bin/time -f "%e %M %U %S" -o "$WORK/time" "$@" > "$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
  awk '{print $1, $2, $3 + $4}' "$WORK/time"
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
: > "$WORK/ours.txt"; : > "$WORK/theirs.txt"
for p in $(seq "$PAIRS"); do
  rm -rf "$WORK/ours" "$WORK/dt"
  measure "$WORK/ours.log" "$BIN" run "$WORK/refinedweb-nodedup.toml" -i "$WORK/in" -o "$WORK/ours" \
    --langid-model "$LID" --tasks 1 --workers 1 --rejects --compression none >> "$WORK/ours.txt"
  measure "$WORK/dt.log" "$PY" "$WORK/dt.py" "$WORK/in" "$WORK/dt" "$LID" "${DT_TIMEOUT:-30}" >> "$WORK/theirs.txt"
  echo "pair $p: refinery $(tail -1 "$WORK/ours.txt")  datatrove $(tail -1 "$WORK/theirs.txt")  (wall s, RSS KB, CPU s)" >&2
done
col() { cut -d' ' -f"$2" "$WORK/$1.txt" | median; }

echo "== refinedweb end to end: $(ls "$WORK/in" | wc -l) WARC files, $((MB / 1000000)) MB uncompressed, $PAIRS interleaved pairs"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "datatrove $DT_VERSION, trafilatura $TR_VERSION; refinery $(git -C "$ROOT" rev-parse --short HEAD)"
for who in ours theirs; do
  printf "%-10s wall %7.2f s  cpu %7.2f s  peak RSS %7.1f MiB\n" "$([ $who = ours ] && echo refinery || echo datatrove)" \
    "$(col $who 1)" "$(col $who 3)" "$(echo "$(col $who 2) / 1024" | bc -l)"
done
printf "ratio datatrove/refinery: wall %.1fx, cpu %.1fx (one task, one worker each)\n" \
  "$(echo "$(col theirs 1) / $(col ours 1)" | bc -l)" "$(echo "$(col theirs 3) / $(col ours 3)" | bc -l)"

# 6. Per-stage seconds and the URL comparison (from the last pair's outputs).
"$PY" - "$WORK/ours" "$WORK/dt" <<'EOF'
import glob, json, os, sys
from collections import Counter
ours, dt = sys.argv[1:3]

print("\nper-stage seconds (last pair)")
st = json.load(open(os.path.join(ours, "stats.json")))
for s in st.get("stages", []):
    print(f"  refinery  {s.get('name', '?'):<22} {s.get('seconds', 0):8.2f} s  in {s.get('docs_in', '?')} out {s.get('docs_out', '?')}")
for s in json.load(open(os.path.join(dt, "logs", "stats.json"))):
    t = s.get("time_stats", {}).get("total", 0.0)
    print(f"  datatrove {s.get('name', '?'):<22} {t:8.2f} s  {json.dumps(s.get('stats', {}))[:90]}")


def read(pattern):
    for p in sorted(glob.glob(pattern, recursive=True)):
        with open(p, encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)


def url(d):
    m = d.get("metadata") or {}
    return m.get("url") or m.get("warc_target_uri") or d.get("url")


ours_kept = Counter(url(d) for d in read(os.path.join(ours, "data", "**", "*.jsonl")))
dt_kept = Counter(url(d) for d in read(os.path.join(dt, "data", "*.jsonl")))
ours_why = {url(d): (d.get("metadata") or {}).get("filter_reason") for d in
            read(os.path.join(ours, "rejects", "**", "*.jsonl"))}
dt_why = {}
for stage in ("url", "lang", "gopher_rep", "gopher_qual", "lines"):
    for d in read(os.path.join(dt, "removed", stage, "*.jsonl")):
        m = d.get("metadata") or {}
        dt_why[url(d)] = f"{stage}:{m.get('filter_reason', '')}".rstrip(":")
a, b = set(ours_kept), set(dt_kept)
both = a & b
print(f"\nkept URLs (unique): refinery {len(a)}, datatrove {len(b)}, both {len(both)}, "
      f"agreement |A∩B|/|A∪B| = {len(both) / max(len(a | b), 1):.1%}")
rows = Counter()
for u in a - b:
    rows[("kept by refinery only", dt_why.get(u, "datatrove: extraction empty / not read"))] += 1
for u in b - a:
    rows[("kept by datatrove only", ours_why.get(u, "refinery: not read"))] += 1
for (side, why), n in sorted(rows.items(), key=lambda x: -x[1]):
    print(f"  {side:<24} {n:4d}  dropped on the other side by: {why}")
EOF
echo "work dir: $WORK"
