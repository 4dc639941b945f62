#!/usr/bin/env python3
"""Scores Python trafilatura on the trafilatura evaluation set, with the same
snippet scoring as `cargo run --release -p refinery-extract --example score`.

    pip install trafilatura
    python3 bench/extract_score.py DIR [LIMIT]

DIR holds evaldata.json and eval/*.html (the unpacked trafilatura-eval.tar.xz,
its tests/ folder or the folder above it). Per annotated page, each "with"
snippet found in the text is a true positive (else a false negative), each
"without" snippet found a false positive (else a true negative); precision,
recall and F1 are over the pooled counts. Pages are read as bytes and decoded
as UTF-8 with replacement, exactly like the Rust scorer; timing covers the
extraction call only, one thread.
"""
import json
import os
import sys
import time

import trafilatura


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: extract_score.py DIR [LIMIT]")
    root = sys.argv[1]
    if not os.path.exists(os.path.join(root, "evaldata.json")):
        root = os.path.join(root, "tests")
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else None
    with open(os.path.join(root, "evaldata.json"), encoding="utf-8") as f:
        data = json.load(f)
    pages = sorted(
        (v["file"], v.get("with", []), v.get("without", []))
        for v in data.values()
        if os.path.exists(os.path.join(root, "eval", v["file"]))
    )
    if limit:
        pages = pages[:limit]
    tp = fp = fn = tn = 0
    nbytes = 0
    elapsed = 0.0
    for file, with_, without in pages:
        with open(os.path.join(root, "eval", file), "rb") as f:
            html = f.read().decode("utf-8", errors="replace")
        nbytes += len(html.encode("utf-8"))
        t = time.perf_counter()
        text = trafilatura.extract(html) or ""
        elapsed += time.perf_counter() - t
        for s in with_:
            if s in text:
                tp += 1
            else:
                fn += 1
        for s in without:
            if s in text:
                fp += 1
            else:
                tn += 1
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    print(f"trafilatura {trafilatura.__version__}")
    print(f"pages {len(pages)}  tp {tp} fp {fp} fn {fn} tn {tn}")
    print(f"precision {p:.4f}  recall {r:.4f}  F1 {f1:.4f}")
    print(f"{len(pages) / max(elapsed, 1e-9):.1f} pages/s  {nbytes / 1e6 / max(elapsed, 1e-9):.1f} MB/s  ({elapsed:.2f} s extracting, 1 thread)")


if __name__ == "__main__":
    main()
