#!/usr/bin/env bash
# Extraction baselines on the dev set, one after the other in one go:
# refinery-extract, trafilatura (current), resiliparse, dom_smoothie (Rust,
# crates.io), then trafilatura 1.x as datatrove pins it.
#
#   bench/extract_baselines.sh            (venvs made on first use)
#
# $VENV_NEW: trafilatura (latest) + lxml_html_clean + resiliparse;
# $VENV_DT: datatrove[processing]==0.10.1 (trafilatura 1.x) + lxml_html_clean
# (without it trafilatura 1.x reports every page as a timeout under lxml 6).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${REFINERY_SHARED:-$ROOT/../shared}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/refinery
VENV_NEW=${VENV_NEW:-$CACHE/extract-venv}
VENV_DT=${VENV_DT:-$CACHE/e2e-datatrove-venv}
DEV=${DEV:-$(mktemp -d)}
[ -f "$SHARED/data/web/extraction-dev/trafilatura-eval.tar.xz" ] || { echo "skipping: dev set not found"; exit 0; }
[ -f "$DEV/tests/evaldata.json" ] || tar -xJf "$SHARED/data/web/extraction-dev/trafilatura-eval.tar.xz" -C "$DEV"
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build --release -q -p refinery-extract --example score)
export REFINERY_SCORE=${REFINERY_SCORE:-${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/score}
"$VENV_NEW/bin/python" -c 'import trafilatura, lxml_html_clean' 2>/dev/null || {
  python3 -m venv "$VENV_NEW"; "$VENV_NEW/bin/pip" install -q trafilatura lxml_html_clean resiliparse || true; }
"$VENV_DT/bin/python" -c 'import trafilatura, lxml_html_clean' 2>/dev/null || {
  python3 -m venv "$VENV_DT"; "$VENV_DT/bin/pip" install -q 'datatrove[processing]==0.10.1' lxml_html_clean; }
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
RES=$("$VENV_NEW/bin/python" -c 'import resiliparse' 2>/dev/null && echo --resiliparse || true)
"$VENV_NEW/bin/python" "$ROOT/bench/extract_score.py" "$DEV" $RES --dom-smoothie
echo
"$VENV_DT/bin/python" "$ROOT/bench/extract_score.py" "$DEV" --no-refinery
