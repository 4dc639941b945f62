#!/usr/bin/env bash
# `refinery report` in a real browser: headless Chromium (Debian package) renders the
# reports of a corpus run, a model run and a comparison, takes screenshots, and the
# checks read the DOM back:
#
#   bash scripts/report-check.sh            (from the repo root; exit 77 = skipped)
#
# * no console errors (a negative control page with a console.error must be caught,
#   so the check itself is known to work);
# * the waterfall rows in the DOM equal the numbers recomputed here, in Python, from
#   the run's stats.json and dedup/*/stats.json (documents left % and characters left %
#   to 1e-3, document counts exactly);
# * every plot is present (an <svg data-plot> with marks, or a figure that says why it
#   is empty), including the confusion matrix and the per-class metrics of a
#   classification run and every eval_* key of metrics.jsonl;
# * the file is self-contained: no <script>, <link>, <img>, no src/href to anywhere,
#   no url(...) in styles, under 500 KB; Chromium runs with every network resolution
#   mapped to nothing.
#
# Chromium is installed with apt-get when absent (about 100 MB, once); if that fails the
# script exits 77. The corpus run is the embedded sample through the default preset plus
# a MinHash step (--rejects); the model run is `refinery pretrain` for 16 steps of
# gpt-tiny on its tokens (about 25 s in a debug build), plus a confusion.json in the
# documented format (the fine-tuning command that will write one is not there yet).
#
# Environment: REFINERY_REPORT_WORK (scratch dir, default ${TMPDIR:-/tmp}/refinery-report-check),
# REFINERY_CHROMIUM (the browser binary, default: chromium on PATH).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
WORK=${REFINERY_REPORT_WORK:-${TMPDIR:-/tmp}/refinery-report-check}
t0=$(date +%s)

# --- 1. Chromium -------------------------------------------------------------------------
CHROME=${REFINERY_CHROMIUM:-}
if [ -z "$CHROME" ]; then
  CHROME=$(command -v chromium || command -v chromium-browser || true)
fi
if [ -z "$CHROME" ]; then
  echo "== installing chromium (apt-get)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1; then
    echo "report-check: chromium could not be installed (no apt-get, no network or no root): skipped" >&2
    exit 77
  fi
  CHROME=$(command -v chromium || true)
  [ -n "$CHROME" ] || { echo "report-check: chromium not on PATH after install: skipped" >&2; exit 77; }
fi
echo "== browser: $("$CHROME" --version 2>/dev/null | head -n 1)"

rm -rf "$WORK"
mkdir -p "$WORK"

# --- 2. runs to report on ------------------------------------------------------------------
echo "== building refinery"
cargo build -q -p refinery-cli || exit 1
BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/refinery"

mkdir -p "$WORK/in"
cp crates/cli/sample/sample.warc.gz crates/cli/sample/sample.jsonl "$WORK/in/"
"$BIN" presets --show default >"$WORK/pipeline.toml"
cat >>"$WORK/pipeline.toml" <<'EOF'

[[dedup]]
type = "minhash"
preset = "fineweb"
EOF
echo "== corpus run: default preset + MinHash on the sample"
"$BIN" run "$WORK/pipeline.toml" -i "$WORK/in" -o "$WORK/corpus" --tasks 2 --rejects -q >/dev/null || exit 1
# A second corpus run (no dedup, one task) for the comparison.
"$BIN" run --preset default -i "$WORK/in" -o "$WORK/corpus-b" --tasks 1 -q >/dev/null || exit 1

echo "== model run: 16 steps of gpt-tiny, evaluated at steps 8 and 16"
# gpt-tiny with a short schedule: 4 warm-up steps, batches of 4, 10 % held out.
"$BIN" pretrain --preset gpt-tiny --print-config | sed -e 's/^warmup_steps = .*/warmup_steps = 4/' \
  -e 's/^total_steps = .*/total_steps = 16/' -e 's/^eval_every = .*/eval_every = 8/' \
  -e 's/^eval_batches = .*/eval_batches = 2/' -e 's/^save_every = .*/save_every = 16/' \
  -e 's/^validation_fraction = .*/validation_fraction = 0.1/' -e 's/^batch_size = .*/batch_size = 4/' \
  >"$WORK/train.toml"
"$BIN" tokenizer train --model bpe --vocab-size 300 "$WORK/corpus/data" -o "$WORK/tok.json" >/dev/null 2>&1 &&
  "$BIN" tokenize -t "$WORK/tok.json" "$WORK/corpus/data" -o "$WORK/tokens" -q >/dev/null 2>&1 &&
  "$BIN" pretrain --config "$WORK/train.toml" --data "$WORK/tokens" --tokenizer "$WORK/tok.json" \
    --out "$WORK/model" -q >/dev/null 2>&1
if [ ! -s "$WORK/model/metrics.jsonl" ]; then
  echo "report-check: FAILED: the pretrain run wrote no metrics.jsonl" >&2
  exit 1
fi
# The classification contract (docs/report.md): labels, matrix (rows gold), per_class optional.
cat >"$WORK/model/confusion.json" <<'EOF'
{"labels": ["negative", "positive", "neutral"],
 "matrix": [[50, 7, 3], [4, 61, 5], [6, 9, 25]]}
EOF

echo "== ablation: the sample through the default preset vs a stricter length filter, 2 seeds"
sed -n 1p crates/cli/sample/sample.jsonl | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["text"])' >"$WORK/eval.txt"
cat >"$WORK/ablate.toml" <<EOF
[base]
preset = "default"
input = ["$WORK/in"]
tasks = 1
[tokenizer]
vocab_size = 400
[train]
budget_tokens = 1024
batch_size = 4
seq_len = 32
hf = { n_layer = 1, n_embd = 32, n_head = 2, n_positions = 32 }
[[eval]]
name = "sample-doc"
path = "$WORK/eval.txt"
[[variants]]
name = "long-docs"
set = { "length_filter.min_chars" = 1500 }
EOF
rm -rf "$WORK/ablation"
"$BIN" ablate "$WORK/ablate.toml" --out "$WORK/ablation" -q >/dev/null || exit 1

echo "== rendering"
"$BIN" report "$WORK/corpus" -o "$WORK/corpus.html" || exit 1
"$BIN" report "$WORK/model" -o "$WORK/model.html" || exit 1
"$BIN" report "$WORK/corpus" "$WORK/corpus-b" -o "$WORK/compare.html" || exit 1
"$BIN" report "$WORK/ablation" -o "$WORK/ablation.html" || exit 1
cat >"$WORK/negative.html" <<'EOF'
<!DOCTYPE html><html><body><p>control</p><script>console.error("deliberate report-check error")</script></body></html>
EOF

# --- 3. headless Chromium: DOM, screenshot, console --------------------------------------
chrome() { # $1 = html, $2 = out prefix
  local profile
  profile=$(mktemp -d "$WORK/profile.XXXX")
  timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --host-resolver-rules="MAP * ~NOTFOUND" --user-data-dir="$profile" \
    --enable-logging=stderr --v=0 --virtual-time-budget=3000 \
    --dump-dom "file://$1" >"$2.dom" 2>"$2.log"
  local rc=$?
  timeout 60 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --host-resolver-rules="MAP * ~NOTFOUND" --user-data-dir="$profile" \
    --hide-scrollbars --window-size=1400,4200 --screenshot="$2.png" "file://$1" >/dev/null 2>>"$2.log"
  rm -rf "$profile"
  return $rc
}
FAILED=0
for page in corpus model compare ablation negative; do
  if ! chrome "$WORK/$page.html" "$WORK/$page"; then
    echo "report-check: FAILED: chromium could not render $page.html (see $WORK/$page.log)" >&2
    FAILED=1
  fi
done

# --- 4. checks ------------------------------------------------------------------------------
python3 - "$WORK" <<'PY' || FAILED=1
import glob, json, math, os, re, sys
from html.parser import HTMLParser

work = sys.argv[1]
fails = []
def check(ok, msg):
    print(("PASS  " if ok else "FAIL  ") + msg)
    if not ok:
        fails.append(msg)

class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elems = []   # (tag, attrs dict, run index)
        self.run = None
        self.stack = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "data-run" in a:
            self.run = int(a["data-run"])
        self.elems.append((tag, a, self.run))

def dom(page):
    d = Dom()
    d.feed(open(os.path.join(work, page + ".dom"), encoding="utf-8").read())
    return d.elems

def console_errors(page):
    log = open(os.path.join(work, page + ".log"), encoding="utf-8", errors="replace").read()
    return [l for l in log.splitlines() if ":CONSOLE" in l or "Uncaught" in l]

# The negative control proves the console check can fail.
check(any("deliberate report-check error" in l for l in console_errors("negative")),
      "negative control: a console.error is detected in the browser log")

def self_contained(page):
    html = open(os.path.join(work, page + ".html"), encoding="utf-8").read()
    check(len(html.encode()) < 500_000, f"{page}: {len(html.encode()) // 1024} KB < 500 KB")
    bad = [t for t, a, _ in dom(page) if t in ("script", "link", "img", "iframe", "object", "embed")]
    bad += [f"{t}[{k}]" for t, a, _ in dom(page) for k in ("src", "href", "xlink:href") if k in a]
    check(not bad, f"{page}: no scripts, links, images or src/href attributes ({bad[:5]})")
    styles = " ".join(re.findall(r"<style>(.*?)</style>", html, re.S)) + " ".join(
        a["style"] for _, a, _ in dom(page) if "style" in a)
    check(not re.search(r"url\s*\(|@import", styles), f"{page}: no url() or @import in styles")
    check(not console_errors(page), f"{page}: no console errors {console_errors(page)[:3]}")
    check(os.path.getsize(os.path.join(work, page + ".png")) > 10_000, f"{page}: screenshot taken")

def plots(elems, run=None):
    out = {}
    for t, a, r in elems:
        if "data-plot" in a and (run is None or r == run):
            out[a["data-plot"]] = (t, a)
    return out

def marks(elems, plot):
    # Marks (rect/path with data-value or data-series) after the plot's svg, before the next plot.
    inside, n = False, 0
    for t, a, _ in elems:
        if "data-plot" in a:
            inside = a["data-plot"] == plot
            continue
        if inside and t in ("rect", "path") and ("data-value" in a or "data-points" in a):
            n += 1
    return n

# --- corpus ---
self_contained("corpus")
el = dom("corpus")
stats = json.load(open(os.path.join(work, "corpus/stats.json")))
dedup = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(work, "corpus/dedup/*/stats.json")))]
names = [os.path.basename(os.path.dirname(p)) for p in sorted(glob.glob(os.path.join(work, "corpus/dedup/*/stats.json")))]
records = stats["input_docs"]
stages = stats["stages"]
base_chars = stages[0]["chars_in"]
want = [("read", stages[0]["docs_in"], 100.0 * stages[0]["docs_in"] / records, 100.0)]
for st in stages:
    want.append((st["name"], st["docs_out"], 100.0 * st["docs_out"] / records, 100.0 * st["chars_out"] / base_chars))
for n, d in zip(names, dedup):
    want.append(("dedup " + n, d["kept_docs"], 100.0 * d["kept_docs"] / records, 100.0 * d["writer"]["chars"] / base_chars))
rows = [a for t, a, _ in el if t == "tr" and "data-step" in a]
check([r["data-step"] for r in rows] == [w[0] for w in want],
      f"waterfall steps {[r['data-step'] for r in rows]} == stats.json {[w[0] for w in want]}")
for r, (step, docs, dpct, cpct) in zip(rows, want):
    check(int(r["data-docs"]) == docs, f"waterfall {step}: {r['data-docs']} documents == stats.json {docs}")
    check(abs(float(r["data-docs-left-pct"]) - dpct) < 1e-3,
          f"waterfall {step}: documents left {r['data-docs-left-pct']}% == {dpct:.4f}%")
    check(abs(float(r["data-chars-left-pct"]) - cpct) < 1e-3,
          f"waterfall {step}: characters left {r['data-chars-left-pct']}% == {cpct:.4f}%")
# The plotted bars carry the same numbers as the table.
bars = [(t, a) for t, a, _ in el if t == "rect" and a.get("data-series") == "documents left %"]
check([round(float(a["data-value"]), 3) for _, a in bars] == [round(w[2], 3) for w in want],
      "waterfall bars == table")
summary = [a for t, a, _ in el if t == "table" and a.get("data-table") == "summary"][0]
check(int(summary["data-input-docs"]) == records and int(summary["data-kept-docs"]) == stats["kept_docs"],
      "summary: input and kept documents == stats.json")
expected = ["waterfall", "drops", "lengths", "languages", "lang-score", "clusters",
            "domains-kept", "domains-removed", "failures", "throughput", "stage-lengths"]
p = plots(el)
for name in expected:
    ok = name in p and (p[name][0] == "svg" and marks(el, name) > 0 or "data-empty" in p[name][1])
    how = "empty: " + p[name][1].get("data-empty", "") if name in p and "data-empty" in p[name][1] else f"{marks(el, name)} marks"
    check(ok, f"corpus plot {name} present ({how})")
# This run has MinHash clusters, rejects with domains and languages: those must be drawn.
for name in ["clusters", "domains-kept", "domains-removed", "languages", "lang-score", "lengths"]:
    check(name in p and p[name][0] == "svg", f"corpus plot {name} has data")
figs = [a for t, a, _ in el if t == "figure"]
check(len([f for f in figs]) >= len(expected), "every plot is a figure")

# --- model ---
self_contained("model")
el = dom("model")
metrics = [json.loads(l) for l in open(os.path.join(work, "model/metrics.jsonl")) if l.strip()]
p = plots(el)
keys = sorted({k for m in metrics for k, v in m.items() if isinstance(v, (int, float))
               and k not in ("step", "loss", "lr", "eval_loss", "tokens", "total_tokens", "elapsed_s")})
for name in ["loss", "lr"] + ["metric-" + k for k in keys] + ["confusion", "per-class"]:
    check(name in p and p[name][0] == "svg" and marks(el, name) > 0, f"model plot {name} present ({marks(el, name)} marks)")
loss = [a for t, a, _ in el if t == "path" and a.get("data-series") == "training loss"]
check(loss and abs(float(loss[0]["data-last"]) - metrics[-1]["loss"]) < 1e-3 * max(1, abs(metrics[-1]["loss"])),
      f"loss curve ends at metrics.jsonl's last loss {metrics[-1]['loss']}")
check(loss and int(loss[0]["data-points"]) == len([m for m in metrics if "loss" in m]), "loss curve has every step")
cells = [a for t, a, _ in el if t == "rect" and "data-gold" in a]
m = [[50, 7, 3], [4, 61, 5], [6, 9, 25]]
labels = ["negative", "positive", "neutral"]
check(len(cells) == 9 and all(float(c["data-value"]) == m[labels.index(c["data-gold"])][labels.index(c["data-pred"])] for c in cells),
      "confusion cells == confusion.json")

# --- comparison ---
self_contained("compare")
el = dom("compare")
runs = [a for t, a, _ in el if t == "section" and "data-run" in a]
check(len(runs) == 2, "comparison: two runs side by side")
p = plots(el)
check("compare-docs" in p and "compare-chars" in p, "comparison: overlaid waterfalls")

# --- ablation ---
self_contained("ablation")
el = dom("ablation")
ab = json.load(open(os.path.join(work, "ablation/ablation.json")))
rows = [a for t, a, _ in el if t == "tr" and "data-variant" in a]
check([r["data-variant"] for r in rows] == [v["name"] for v in ab["variants"]],
      f"ablation table rows {[r['data-variant'] for r in rows]} == ablation.json's variants")
cells = [a for t, a, _ in el if t == "td" and "data-mean" in a]
want = [s for v in ab["variants"] for s in v["summary"]]
check(len(cells) == len(want) and all(abs(float(c["data-mean"]) - s["mean"]) < 1e-4 and
      abs(float(c["data-std"]) - s["std"]) < 1e-4 for c, s in zip(cells, want)),
      "ablation table: bits/byte mean and std == ablation.json")
p = plots(el)
for si in range(len(ab["eval_sets"])):
    check(f"ablation-bpb-{si}" in p and p[f"ablation-bpb-{si}"][0] == "svg", f"ablation plot ablation-bpb-{si} present")
bars = [a for t, a, _ in el if t == "g" and "data-std" in a]
check(len(bars) == len(ab["variants"]) * len(ab["eval_sets"]), f"ablation plots: {len(bars)} error bars, one per variant and set")
for v in ab["variants"]:
    for r in v["runs"]:
        for e in r["eval"]:
            bpb = e["nats"] / math.log(2) / e["bytes"]
            check(abs(bpb - e["bits_per_byte"]) < 1e-9 * bpb,
                  f"ablation {v['name']} seed {r['seed']}: bits/byte {e['bits_per_byte']:.6f} == nats / ln 2 / bytes")

print(f"report-check: {len(fails)} failed")
sys.exit(1 if fails else 0)
PY

echo "screenshots: $WORK/corpus.png $WORK/model.png $WORK/compare.png $WORK/ablation.png"
echo "report-check: total $(($(date +%s) - t0)) s"
exit $FAILED
