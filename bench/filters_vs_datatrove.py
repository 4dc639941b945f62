"""Single-core docs/s of datatrove's Gopher repetition, Gopher quality, C4 and
FineWeb quality filters against refinery's, on the same documents, in one run.

    python3 -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install datatrove spacy regex
    /tmp/dtvenv/bin/python bench/filters_vs_datatrove.py [../shared] [runs=3]

Documents: every ../shared/data/web/cc_text document and every 10th IMDb
unsup review (5,727 docs). Each side runs each filter over all documents
`runs` times; the table reports medians and the ratio refinery/datatrove.
Both sides run on one core (datatrove in this process, refinery's
`bench_filters` example single-threaded).
"""

import glob
import gzip
import json
import os
import statistics
import subprocess
import sys
import time

from datatrove.data import Document
from datatrove.pipeline.filters import C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def texts(shared):
    out = []
    for p in sorted(glob.glob(os.path.join(shared, "data/web/cc_text/*"))):
        with gzip.open(p, "rt") as f:
            out += [json.loads(line)["text"] for line in f]
    with gzip.open(os.path.join(shared, "data/classification/imdb/imdb_unsup.jsonl.gz"), "rt") as f:
        out += [json.loads(line)["text"] for i, line in enumerate(f) if i % 10 == 0]
    return out


def main():
    shared = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "../shared")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    docs = texts(shared)
    filters = {
        "gopher_repetition": GopherRepetitionFilter(),
        "gopher_quality": GopherQualityFilter(),
        "c4": C4QualityFilter(),
        "fineweb_quality": FineWebQualityFilter(),
    }
    # Warm up spaCy (model load) outside the timings.
    filters["gopher_quality"].filter(Document(text="warm up the tokenizer.", id="0"))
    py = {}
    for name, f in filters.items():
        rates = []
        for _ in range(runs):
            batch = [Document(text=t, id=str(i)) for i, t in enumerate(docs)]
            t0 = time.perf_counter()
            for d in batch:
                f.filter(d)
            rates.append(len(batch) / (time.perf_counter() - t0))
        py[name] = statistics.median(rates)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "refinery-filters", "--example", "bench_filters"], cwd=ROOT, check=True)
    out = subprocess.run(
        [os.path.join(ROOT, "target/release/examples/bench_filters"), shared, str(max(runs, 3))],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    rs = json.loads(out)
    print(f"{len(docs)} docs, median of {runs} runs, single core")
    print(f"{'filter':<20}{'datatrove docs/s':>18}{'refinery docs/s':>18}{'ratio':>9}")
    for name in filters:
        print(f"{name:<20}{py[name]:>18.0f}{rs[name]:>18.0f}{rs[name] / py[name]:>8.1f}x")
    tp = len(filters) / sum(1 / py[n] for n in filters)
    tr = len(filters) / sum(1 / rs[n] for n in filters)
    print(f"{'all four (harmonic)':<20}{tp:>18.0f}{tr:>18.0f}{tr / tp:>8.1f}x")


if __name__ == "__main__":
    main()
