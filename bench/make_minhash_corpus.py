#!/usr/bin/env python3
"""Builds the MinHash benchmark corpus (JSONL {"id", "text"}), deterministic.

    bench/make_minhash_corpus.py SHARED_DATA_DIR OUT.jsonl DOCS [SEED]

Sources (from ../shared/data; nothing is copied into the repo):
  - IMDb unsup (50k) and train (25k) reviews: English, ~1.2 KB each;
  - Chinese poetry (as many as needed, up to 355k): no spaces, so "words"
    are the clauses between punctuation marks (both tools split on them);
  - Common Crawl text extracted from WARC (dolma cc_text, ~700 docs).

About 1/6 of the documents are injected near-duplicates of a random base
document, with known edits: the id `dup-K-of-SRC-OP-RATE` names the source,
the edit kind and its rate. Word-level edits for space-separated text,
character-level edits for CJK text:
  sub  replace RATE of the words (chars) by another word of the same text;
  ins  insert a random word (char) after RATE of the words;
  del  delete RATE of the words (chars);
  mix  all three at RATE/3 each;
  para shuffle the lines (paragraphs) and apply `sub` at RATE/2.
RATE is uniform in [0, 0.15] (a fraction of identical copies is included).

The output is shuffled with SEED, so any prefix of N lines is a corpus of N
documents with the same mix: the scaling runs use prefixes.
"""
import gzip
import json
import os
import random
import sys


def read_jsonl_gz(path, limit=None):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                return
            yield json.loads(line)


def is_cjk(text):
    return text.count(" ") * 20 < len(text)


def edit(rng, text, op, rate):
    cjk = is_cjk(text)
    units = list(text) if cjk else text.split(" ")
    if op == "para":
        lines = text.split("\n")
        rng.shuffle(lines)
        text = "\n".join(lines)
        units = list(text) if cjk else text.split(" ")
        op, rate = "sub", rate / 2
    if op == "mix":
        for o in ("sub", "ins", "del"):
            units = apply(rng, units, o, rate / 3)
    else:
        units = apply(rng, units, op, rate)
    return "".join(units) if cjk else " ".join(units)


def apply(rng, units, op, rate):
    if not units:
        return units
    out = []
    for u in units:
        r = rng.random() < rate
        if op == "sub":
            out.append(rng.choice(units) if r else u)
        elif op == "ins":
            out.append(u)
            if r:
                out.append(rng.choice(units))
        elif op == "del":
            if not r:
                out.append(u)
    return out


def main():
    shared, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    rng = random.Random(seed)
    n_dups = n // 6
    n_base = n - n_dups
    base = []
    imdb = os.path.join(shared, "classification/imdb")
    for name, limit in (("imdb_unsup.jsonl.gz", 50000), ("imdb_train.jsonl.gz", 25000)):
        tag = name.split(".")[0]
        for i, d in enumerate(read_jsonl_gz(os.path.join(imdb, name), limit)):
            base.append((f"{tag}-{i}", d["text"]))
    cc = os.path.join(shared, "web/cc_text")
    for name in sorted(os.listdir(cc)):
        if name.endswith(".gz"):
            tag = name.split(".")[0][:24]
            for i, d in enumerate(read_jsonl_gz(os.path.join(cc, name))):
                if d.get("text"):
                    base.append((f"cc-{tag}-{i}", d["text"]))
    # All English sources (~76k), then poetry up to DOCS.
    english = base
    rng.shuffle(english)
    english = english[:n_base]
    n_poetry = max(0, n_base - len(english))
    poetry = []
    for i, d in enumerate(read_jsonl_gz(os.path.join(shared, "lm/chinese-poetry.jsonl.gz"))):
        if len(poetry) >= n_poetry:
            break
        if d.get("text"):
            poetry.append((f"poem-{i}", d["text"]))
    base = english + poetry
    out = list(base)
    ops = ("sub", "ins", "del", "mix", "para")
    for k in range(n_dups):
        src_id, text = rng.choice(base)
        op = rng.choice(ops)
        rate = 0.0 if rng.random() < 0.1 else rng.uniform(0, 0.15)
        out.append((f"dup-{k}-of-{src_id}-{op}-{rate:.3f}", edit(rng, text, op, rate)))
    rng.shuffle(out)
    with open(dst, "w", encoding="utf-8") as f:
        for i, t in out:
            f.write(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n")
    print(f"{dst}: {len(out)} docs ({len(english)} English, {len(poetry)} poems, {n_dups} near-dups)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
