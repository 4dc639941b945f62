#!/usr/bin/env python3
"""Tokenizer speed: refinery vs HF `tokenizers` (Python) and `tiktoken`, in one run.

    pip install tokenizers tiktoken
    cargo build --release -p refinery-cli
    python3 bench/tokenize_bench.py [--mb 20] [--runs 3] [--train-mb 10]

Input: the first MB of English IMDb reviews plus Chinese poetry from
../shared/data (90% / 10% by bytes), one document per line, written to a temp
dir. Reports medians of --runs and the ratios against each peer.
Encoding: GPT-2 (vocab.json + merges.txt) and cl100k_base, single thread
(RAYON_NUM_THREADS=1 / RAYON_RS_NUM_CPUS=1 / tiktoken num_threads=1) and all
cores. refinery is timed as `refinery tokenizer encode` over the file
(stdin -> ids on stdout, tokenizer loading subtracted), Python peers as
encode_batch / encode_ordinary_batch on the lines in memory.
Training: byte-level BPE with vocab 8k and 32k, `refinery tokenizer train`
vs `tokenizers` train_from_iterator, same settings (min_frequency 2).
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ap = argparse.ArgumentParser()
ap.add_argument("--mb", type=float, default=20)
ap.add_argument("--train-mb", type=float, default=10)
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--no-train", action="store_true", help="encoding throughput only")
ap.add_argument("--refinery", default=os.path.join(ROOT, "target", "release", "refinery"))
ap.add_argument("--shared", default=os.environ.get("REFINERY_SHARED", os.path.join(ROOT, "..", "shared")))
args = ap.parse_args()
data = os.path.join(args.shared, "data")
ncpu = os.cpu_count()


def lines_from(path, field, budget):
    out, n = [], 0
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            t = " ".join(json.loads(line)[field].split())
            if not t:
                continue
            out.append(t)
            n += len(t.encode())
            if n >= budget:
                break
    return out


def corpus(mb):
    b = int(mb * 1e6)
    en = lines_from(os.path.join(data, "classification", "imdb", "imdb_unsup.jsonl.gz"), "text", b * 0.9)
    zh = lines_from(os.path.join(data, "lm", "chinese-poetry.jsonl.gz"), "text", b * 0.1)
    return en + zh


def times(fn, runs):
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return ts


def median_time(fn, runs):
    return statistics.median(times(fn, runs))


def run_refinery(argv, stdin_path=None, threads=None):
    env = dict(os.environ)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    with open(stdin_path or os.devnull, "rb") as inp:
        subprocess.run([args.refinery, *argv], stdin=inp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)


tmp = tempfile.mkdtemp()
lines = corpus(args.mb)
text_path = os.path.join(tmp, "bench.txt")
with open(text_path, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
mb = os.path.getsize(text_path) / 1e6
print(f"input: {len(lines)} lines, {mb:.1f} MB ({ncpu} cores), median of {args.runs} runs\n")

# Python peers in child processes so the thread settings take effect.
PY_ENC = r'''
import sys, time, os
kind, threads, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(path, encoding="utf-8").read().split("\n")[:-1]
fx = os.path.join(sys.argv[4], "data")
if kind.startswith("hf"):
    from tokenizers import Tokenizer, pre_tokenizers, decoders
    from tokenizers.models import BPE
    tk = Tokenizer(BPE.from_file(os.path.join(fx, "lm/bpe-fixtures/gpt2_vocab.json"), os.path.join(fx, "lm/bpe-fixtures/gpt2_merges.txt")))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t = time.perf_counter(); tk.encode_batch_fast(lines, add_special_tokens=False) if hasattr(tk, "encode_batch_fast") else tk.encode_batch(lines, add_special_tokens=False)
else:
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    import tiktoken_ext.openai_public as oai, inspect
    pat = inspect.getsource(oai.cl100k_base).split('"pat_str": r' + '"""')[1].split('"""')[0]
    name = kind.split(":")[1]
    if name == "gpt2":
        import json
        from tokenizers.pre_tokenizers import ByteLevel
        enc_map = {v: k for k, v in enumerate(ByteLevel.alphabet())}
        pat = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
        b2u = {}
        bs = list(range(ord("!"), ord("~")+1))+list(range(ord("¡"), ord("¬")+1))+list(range(ord("®"), ord("ÿ")+1))
        cs = bs[:]; n = 0
        for b in range(256):
            if b not in bs: bs.append(b); cs.append(256+n); n += 1
        u2b = {chr(c): b for b, c in zip(bs, cs)}
        vocab = json.load(open(os.path.join(fx, "lm/bpe-fixtures/gpt2_vocab.json"), encoding="utf-8"))
        ranks = {bytes(u2b[c] for c in tok): i for tok, i in vocab.items() if tok != "<|endoftext|>"}
        enc = tiktoken.Encoding("gpt2", pat_str=pat, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256})
    else:
        enc = tiktoken.Encoding("cl100k_base", pat_str=pat, mergeable_ranks=load_tiktoken_bpe(os.path.join(fx, "models/tiktoken/cl100k_base.tiktoken")), special_tokens={})
    t = time.perf_counter(); enc.encode_ordinary_batch(lines, num_threads=threads)
print(time.perf_counter() - t)
'''


def py_encode(kind, threads):
    """(median, min) seconds."""
    env = dict(os.environ, RAYON_RS_NUM_CPUS=str(threads), RAYON_NUM_THREADS=str(threads),
               TOKENIZERS_PARALLELISM="true")
    ts = [float(subprocess.run([sys.executable, "-c", PY_ENC, kind, str(threads), text_path, args.shared],
                               capture_output=True, text=True, env=env, check=True).stdout) for _ in range(args.runs)]
    return statistics.median(ts), min(ts)


gpt2_dir = os.path.join(tmp, "gpt2")
os.makedirs(gpt2_dir)
for a, b in [("gpt2_vocab.json", "vocab.json"), ("gpt2_merges.txt", "merges.txt")]:
    os.symlink(os.path.join(data, "lm", "bpe-fixtures", a), os.path.join(gpt2_dir, b))
cl100k = os.path.join(data, "models", "tiktoken", "cl100k_base.tiktoken")

print("encoding throughput, MB/s (higher is better); median of the runs, then [best run]")
print(f"{'tokenizer':<8} {'threads':>7} {'refinery':>15} {'HF py':>15} {'tiktoken':>15} {'vs HF':>13} {'vs tiktoken':>13}")
nan = (float("nan"), float("nan"))
fmt = lambda p: f"{p[0]:.2f} [{p[1]:.2f}]"
for name, tok, hf_kind, tt_kind in [("gpt2", gpt2_dir, "hf", "tt:gpt2"), ("cl100k", cl100k, None, "tt:cl100k")]:
    for threads in [1, ncpu]:
        empty = times(lambda: run_refinery(["tokenizer", "encode", "-t", tok], None, threads), args.runs)
        full = times(lambda: run_refinery(["tokenizer", "encode", "-t", tok], text_path, threads), args.runs)
        # Start-up (loading the tokenizer) is measured with empty input and subtracted.
        r = (mb / max(statistics.median(full) - statistics.median(empty), 1e-9),
             mb / max(min(full) - min(empty), 1e-9))
        hf = tuple(mb / t for t in py_encode(hf_kind, threads)) if hf_kind else nan
        tt = tuple(mb / t for t in py_encode(tt_kind, threads))
        print(f"{name:<8} {threads:>7} {fmt(r):>15} {fmt(hf):>15} {fmt(tt):>15} "
              f"{fmt((r[0] / hf[0], r[1] / hf[1])):>13} {fmt((r[0] / tt[0], r[1] / tt[1])):>13}", flush=True)

if args.no_train:
    sys.exit(0)

# Training.
train_lines = corpus(args.train_mb)
train_path = os.path.join(tmp, "train.txt")
with open(train_path, "w", encoding="utf-8") as f:
    f.write("\n".join(train_lines) + "\n")
PY_TRAIN = r"""
import sys, time
from tokenizers import Tokenizer, models, trainers, pre_tokenizers, decoders
vocab, path = int(sys.argv[1]), sys.argv[2]
lines = open(path, encoding="utf-8").read().split("\n")[:-1]
t = time.perf_counter()
tk = Tokenizer(models.BPE())
tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tr = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=["<|endoftext|>"],
                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tk.train_from_iterator(lines, tr)
print(time.perf_counter() - t)
"""
tmb = os.path.getsize(train_path) / 1e6
print(f"\nBPE training on {tmb:.1f} MB, seconds (lower is better), {ncpu} threads")
print(f"{'vocab':>6} {'refinery':>9} {'HF py':>9} {'refinery/HF':>12}")
for vocab in [8000, 32000]:
    out = os.path.join(tmp, f"t{vocab}.json")
    r = median_time(lambda: run_refinery(["tokenizer", "train", "--model", "bpe", "--vocab-size", str(vocab),
                                          "--text-unit", "line", "-q", train_path, "-o", out]), args.runs)
    hf = statistics.median(float(subprocess.run([sys.executable, "-c", PY_TRAIN, str(vocab), train_path],
                                                capture_output=True, text=True, check=True).stdout)
                           for _ in range(args.runs))
    print(f"{vocab:>6} {r:>9.2f} {hf:>9.2f} {r / hf:>12.2f}")
