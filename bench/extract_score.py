#!/usr/bin/env python3
"""Scores Python trafilatura and refinery-extract on the trafilatura evaluation
set, on the same pages with the same snippet scoring, in one run.

    pip install trafilatura lxml_html_clean [resiliparse]
    cargo build --release -p refinery-extract --example score
    python3 bench/extract_score.py DIR [LIMIT] [--no-refinery] [--halves]
                                   [--resiliparse] [--dom-smoothie]

`--resiliparse` also scores Resiliparse's `extract_plain_text(html,
main_content=True)`; `--dom-smoothie` also scores the `dom_smoothie` crate
(crates.io's Rust Readability port, the `score` example with
EXTRACT_ENGINE=dom_smoothie). bench/extract_baselines.sh runs this with the
current trafilatura and with the 1.x that datatrove pins, in one go.

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


def timed(fn, pages, root):
    texts, elapsed = [], 0.0
    for file, _, _ in pages:
        with open(os.path.join(root, "eval", file), "rb") as f:
            html = f.read().decode("utf-8", errors="replace")
        t = time.perf_counter()
        text = fn(html) or ""
        elapsed += time.perf_counter() - t
        texts.append(text)
    return texts, elapsed


def refinery(root, limit, half=None, engine=None):
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
    if engine is not None:
        env["EXTRACT_ENGINE"] = engine
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
    rows = [(f"trafilatura {trafilatura.__version__}", p, r, f1, t_speed)]
    if "--resiliparse" in flags:
        from resiliparse.extract.html2text import extract_plain_text
        import resiliparse
        rtexts, relapsed = timed(lambda h: extract_plain_text(h, main_content=True), pages, root)
        s2 = score(rtexts, pages)
        ver = getattr(resiliparse, "__version__", "")
        rows.append((f"resiliparse {ver}".strip(), s2[4], s2[5], s2[6], len(pages) / max(relapsed, 1e-9)))
    if "--dom-smoothie" in flags:
        (dp, dr, df1, d_speed), _ = refinery(root, limit, engine="dom_smoothie")
        rows.append(("dom_smoothie (Rust)", dp, dr, df1, d_speed))
    if "--no-refinery" in flags:
        print()
        for name, rp_, rr_, rf_, sp in rows:
            print(f"{name:24} {rp_:9.4f} {rr_:7.4f} {rf_:7.4f} {sp:8.1f}")
        return
    (rp, rr, rf1, r_speed), out = refinery(root, limit)
    print()
    print("refinery-extract (target/release/examples/score)")
    print(out.rstrip())
    if "--halves" in flags:
        for half in ("even", "odd"):
            (hp, hr, hf1, _), _ = refinery(root, limit, half)
            print(f"  {half} half: precision {hp:.4f}  recall {hr:.4f}  F1 {hf1:.4f}")
    rows.append(("refinery-extract", rp, rr, rf1, r_speed))
    print()
    print(f"{'':24} {'precision':>9} {'recall':>7} {'F1':>7} {'pages/s':>8} {'refinery/x':>10}")
    for name, rp_, rr_, rf_, sp in rows:
        print(f"{name:24} {rp_:9.4f} {rr_:7.4f} {rf_:7.4f} {sp:8.1f} {r_speed / max(sp, 1e-9):9.1f}x")
    print(f"F1 difference (refinery - trafilatura): {rf1 - f1:+.4f}; speed ratio: {r_speed / max(t_speed, 1e-9):.1f}x")


if __name__ == "__main__":
    main()
