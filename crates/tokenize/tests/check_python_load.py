#!/usr/bin/env python3
"""Checks that tokenizers trained by `refinery tokenizer train` load in Python
`tokenizers.Tokenizer.from_file` and give the same ids as `refinery tokenizer encode`.

    pip install tokenizers
    cargo build --release -p refinery-cli
    python3 crates/tokenize/tests/check_python_load.py [target/release/refinery] [SHARED_DIR]
"""
import json
import os
import subprocess
import sys
import tempfile

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
refinery = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "refinery")
shared = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("REFINERY_SHARED", os.path.join(ROOT, "..", "shared"))
data = os.path.join(shared, "data")
texts = [json.loads(l) for l in open(os.path.join(HERE, "fixtures", "parity_texts.jsonl"), encoding="utf-8")]
# One text per stdin line: leave out texts with line breaks.
texts = [t for t in texts if not any(c in t for c in "\n\r\u2028\x0b\x0c\x1c\x1d\x1e\x85\u2029")]

inputs = [os.path.join(data, "lm", "bpe-fixtures", "corpus.en"), os.path.join(data, "lm", "chinese-poetry.jsonl.gz")]
runs = [
    ("bpe", ["--vocab-size", "2000"]),
    ("bpe", ["--vocab-size", "2000", "--cjk", "split", "--nfkc"]),
    ("wordpiece", ["--vocab-size", "6000", "--lowercase", "--strip-accents"]),
    ("unigram", ["--vocab-size", "8000", "--nfkc"]),
]
failed = 0
with tempfile.TemporaryDirectory() as tmp:
    for i, (model, extra) in enumerate(runs):
        out = os.path.join(tmp, f"{model}{i}.json")
        subprocess.run([refinery, "tokenizer", "train", "--model", model, *extra, "--max-docs", "3000",
                        "-q", *inputs, "-o", out], check=True)
        tok = Tokenizer.from_file(out)
        got = subprocess.run([refinery, "tokenizer", "encode", "-t", out], input="\n".join(texts) + "\n",
                             capture_output=True, text=True, check=True).stdout.splitlines()
        bad = 0
        for t, line in zip(texts, got):
            want = tok.encode(t, add_special_tokens=False).ids
            ids = [int(x) for x in line.split()]
            if ids != want:
                bad += 1
                print(f"  MISMATCH {model} {extra}: {t!r}\n    rust   {ids}\n    python {want}")
            if model == "bpe" and "--nfkc" not in extra and tok.decode(want, skip_special_tokens=False) != t:
                bad += 1
                print(f"  ROUND TRIP {model}: {t!r}")
        print(f"{model} {' '.join(extra)}: vocab {tok.get_vocab_size()}, {len(texts) - bad}/{len(texts)} identical")
        failed += bad
sys.exit(1 if failed else 0)
