#!/usr/bin/env python3
"""Scores Python trafilatura and refinery-extract on the trafilatura evaluation
set, on the same pages with the same snippet scoring, in one run.

    pip install trafilatura lxml_html_clean
    cargo build --release -p refinery-extract --example score
    python3 bench/extract_score.py DIR [LIMIT] [--no-refinery] [--halves]

DIR holds evaldata.json and eval/*.html (the unpacked trafilatura-eval.tar.xz,
its tests/ folder or the folder above it). Per annotated page, each "with"
snippet found in the text is a true positive (else a false negative), each
"without" snippet found a false positive (else a true negative); precision,
recall and F1 are over the pooled counts. Pages are read as bytes and decoded
as UTF-8 with replacement, exactly like the Rust scorer; timing covers the
extraction call only, one thread.

refinery is scored by running `target/release/examples/score` (the
`score` example of crates/extract, same pages, same scoring; set
$REFINERY_SCORE to use another binary) right after trafilatura, and the
ratio of pages/s is printed. `--halves` also prints both on the even- and
odd-numbered pages (by sorted file name), a check against overfitting.
"""
import json
import os
import re
import subprocess
import sys
import time

import trafilatura


def score(texts, pages):
    tp = fp = fn = tn = 0
    for (file, with_, without), text in zip(pages, texts):
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
    return tp, fp, fn, tn, p, r, f1


def refinery(root, limit, half=None):
    here = os.path.dirname(os.path.abspath(__file__))
    binary = os.environ.get("REFINERY_SCORE") or os.path.join(
        here, "..", "target", "release", "examples", "score"
    )
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: cargo build --release -p refinery-extract --example score")
    args = [binary, root] + ([str(limit)] if limit else [])
    env = dict(os.environ)
    if half is not None:
        env["SCORE_HALF"] = half
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout
    m = re.search(r"precision ([\d.]+)\s+recall ([\d.]+)\s+F1 ([\d.]+)\n([\d.]+) pages/s", out)
    if not m:
        sys.exit(f"unexpected output of {binary}:\n{out}")
    return [float(x) for x in m.groups()], out


def main():
    argv = [a for a in sys.argv[1:] if not a.startswith("--")]
    flags = {a for a in sys.argv[1:] if a.startswith("--")}
    if not argv:
        sys.exit("usage: extract_score.py DIR [LIMIT] [--no-refinery] [--halves]")
    root = argv[0]
    if not os.path.exists(os.path.join(root, "evaldata.json")):
        root = os.path.join(root, "tests")
    limit = int(argv[1]) if len(argv) > 1 else None
    with open(os.path.join(root, "evaldata.json"), encoding="utf-8") as f:
        data = json.load(f)
    pages = sorted(
        (v["file"], v.get("with", []), v.get("without", []))
        for v in data.values()
        if os.path.exists(os.path.join(root, "eval", v["file"]))
    )
    if limit:
        pages = pages[:limit]
    texts = []
    nbytes = 0
    elapsed = 0.0
    for file, _, _ in pages:
        with open(os.path.join(root, "eval", file), "rb") as f:
            html = f.read().decode("utf-8", errors="replace")
        nbytes += len(html.encode("utf-8"))
        t = time.perf_counter()
        text = trafilatura.extract(html) or ""
        elapsed += time.perf_counter() - t
        texts.append(text)
    tp, fp, fn, tn, p, r, f1 = score(texts, pages)
    t_speed = len(pages) / max(elapsed, 1e-9)
    print(f"trafilatura {trafilatura.__version__}")
    print(f"pages {len(pages)}  tp {tp} fp {fp} fn {fn} tn {tn}")
    print(f"precision {p:.4f}  recall {r:.4f}  F1 {f1:.4f}")
    print(f"{t_speed:.1f} pages/s  {nbytes / 1e6 / max(elapsed, 1e-9):.1f} MB/s  ({elapsed:.2f} s extracting, 1 thread)")
    if "--halves" in flags:
        for name, rem in (("even", 0), ("odd", 1)):
            sel = [i for i in range(len(pages)) if i % 2 == rem]
            s = score([texts[i] for i in sel], [pages[i] for i in sel])
            print(f"  {name} half ({len(sel)} pages): precision {s[4]:.4f}  recall {s[5]:.4f}  F1 {s[6]:.4f}")
    if "--no-refinery" in flags:
        return
    (rp, rr, rf1, r_speed), out = refinery(root, limit)
    print()
    print("refinery-extract (target/release/examples/score)")
    print(out.rstrip())
    if "--halves" in flags:
        for half in ("even", "odd"):
            (hp, hr, hf1, _), _ = refinery(root, limit, half)
            print(f"  {half} half: precision {hp:.4f}  recall {hr:.4f}  F1 {hf1:.4f}")
    print()
    print(f"{'':12} {'precision':>9} {'recall':>7} {'F1':>7} {'pages/s':>8}")
    print(f"{'trafilatura':12} {p:9.4f} {r:7.4f} {f1:7.4f} {t_speed:8.1f}")
    print(f"{'refinery':12} {rp:9.4f} {rr:7.4f} {rf1:7.4f} {r_speed:8.1f}")
    print(f"F1 difference (refinery - trafilatura): {rf1 - f1:+.4f}; speed ratio: {r_speed / max(t_speed, 1e-9):.1f}x")


if __name__ == "__main__":
    main()
