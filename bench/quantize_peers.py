"""The peers of `refinery quantize` (issue 13, "int8 vs the peers"): speed, accuracy, size and
peak RSS of one HF sequence classifier under PyTorch and ONNX Runtime, f32 and dynamic int8.

    /work/venvs/hf/bin/python bench/quantize_peers.py --model DIR --data DEV.tsv \
        [--engines torch-f32,torch-int8,ort-f32,ort-int8] [--threads N] [--max-len 64] \
        [--latency-n 200] [--repeats 3] [--out FILE.jsonl] [--onnx-dir DIR]

DIR is a BertForSequenceClassification directory (config.json, model.safetensors,
tokenizer.json), DEV.tsv a TSV with a header naming a `label` column and a text column
(`sentence`, `content` or `text`, or --text-col). Labels are mapped through config.json's
label2id. Nothing is downloaded (HF_HUB_OFFLINE=1).

Versions this was written and checked with (pip, in /work/venvs/hf; see
bench/quantize_peers_requirements.txt): torch 2.15.0, transformers 5.23.0, tokenizers 0.23.3,
onnxruntime 1.32.0, onnx 1.23.2, onnxscript 0.7.2, numpy 2.4.6.

Engines
  torch-f32   transformers, eager PyTorch (no torch.compile), float32, attention
              implementation "eager" (--attn sdpa to try the other one).
  torch-int8  torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8) of
              the same model: weights int8 per tensor (PyTorch's default dynamic qconfig),
              activations quantized per tensor at run time. Embeddings and LayerNorm stay f32.
              This is PyTorch's BERT dynamic-quantization recipe. (Measured here, per-channel
              weights via per_channel_dynamic_qconfig gave 0.8257 instead of 0.8222 accuracy and
              were not faster; not an option of this script.)
  ort-f32     ONNX Runtime on the model exported once to ONNX (opset 17, TorchScript
              exporter, dynamic batch and sequence axes).
  ort-int8    onnxruntime.quantization.quantize_dynamic of that exported graph, see
              ORT_QUANT below for the settings and why.
  Both ORT engines run with graph_optimization_level ORT_ENABLE_ALL on the CPU provider, which
  fuses at load time (for ort-int8: 20 DynamicQuantizeMatMul + 18 MatMulIntegerToFloat,
  SkipLayerNormalization, Gelu; checked with optimized_model_filepath).

Protocol (the Rust side of the comparison, `refinery compare` in issue 13, is to use the same)
  0. Tokenize every dev sentence up front with the `tokenizers` library on the model's
     tokenizer.json: its post-processor adds [CLS] ... [SEP], truncation to --max-len tokens
     (special tokens included), no padding at tokenization. token_type_ids are all zero,
     attention_mask is 1 on real tokens and 0 on padding; padding is on the right with the
     tokenizer's pad id. All model inputs (tensors / arrays) are built before any timing.
  1. Warm-up (untimed): the first 32 dev sentences, once each alone (batch 1), then once as
     one batch of 32.
  2. Latency at batch 1: each of the first --latency-n dev sentences alone (no padding), in
     file order; time.perf_counter() around the forward call only. Report the median (the
     mean of the two middle values for an even count) and the p90, nearest rank:
     sorted[ceil(0.9 * n) - 1], both in milliseconds per sentence.
  3. Throughput at batch 32: the whole dev set in file order, in chunks of 32 (the last one
     shorter), each chunk right-padded to its longest row; the time of a pass is the sum of the
     forward times of its chunks; --repeats passes; report the median over passes of
     sentences / pass time, in sentences per second.
  4. Accuracy and macro-F1 (mean over the classes of config.json of the per-class F1; a class
     with no predicted and no gold rows counts F1 = 0) of argmax(logits) from the first
     batch-32 pass, against the dev labels, on all n dev rows.
  5. Size: bytes on disk of what the engine runs: model.safetensors for torch-f32; for
     torch-int8 the size of torch.save(quantized.state_dict()) written to a temporary file
     (a pickle, only written to measure it, then deleted; its embeddings stay f32); the .onnx
     file for ort-f32 and for ort-int8 (each a single file, no external data).
  6. Peak RSS: each engine runs in its own process (this script re-invoking itself with a
     hidden flag); at the end it reads VmHWM from /proc/self/status. Reported in MiB
     (kB / 1024). The ONNX export and quantization happen beforehand in the parent,
     so the ORT processes import neither torch nor transformers. The torch-int8 process does
     load the f32 model before quantizing it, as quantize_dynamic requires, so its peak
     includes that f32 copy.
  CPU time: the same intervals are also measured with time.process_time() (user + sys CPU
  time of all the process's threads) and reported as latency_cpu_ms_median and
  throughput_cpu_sps (sentences per CPU second). At 1 thread this is robust to other load on
  the machine; at more threads it counts spin-waiting of the thread pools too.
  Threads: --threads N sets torch.set_num_threads(N) and torch.set_num_interop_threads(1);
  for ORT, SessionOptions intra_op_num_threads=N, inter_op_num_threads=1, ORT_SEQUENTIAL.

Output: one JSON line per engine on stdout (appended to --out too, when given) with keys
engine, threads, latency_ms_median, latency_ms_p90, throughput_sps, accuracy, macro_f1, n,
size_bytes, peak_rss_mb, latency_cpu_ms_median, throughput_cpu_sps, versions (torch,
onnxruntime, transformers), cpu (lscpu model name), loadavg (/proc/loadavg 1, 5, 15 min at the
end of the engine's run), and settings (max_len, latency_n, repeats, batch, and the engine's
own settings). Engines run one after another in
the order given; run the script again (or interleave calls with the Rust side) to repeat.
"""
import argparse
import hashlib
import importlib.metadata
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

ENGINES = ("torch-f32", "torch-int8", "ort-f32", "ort-int8")
BATCH = 32
WARMUP = 32
OPSET = 17

# ONNX Runtime dynamic quantization settings (what ort-int8 runs).
# - weight_type QInt8: signed int8 weights, ORT's default. Dynamic quantization's activations
#   are uint8 (per tensor, at run time, DynamicQuantizeLinear), so the products are u8 x s8,
#   the combination ORT's x86-64 kernels (vpmaddubsw, VNNI vpdpbusd) take natively.
# - per_channel True: one scale per output column, the scheme of refinery's int8 (issue 13).
#   Measured here (SST-2 dev, MiniLM-L6 teacher, 1 thread, a loaded 2-core machine, two
#   interleaved runs): accuracy 0.8360 = f32 with per-channel, 0.8222 per-tensor, at the same
#   speed within noise.
# - reduce_range False: 7-bit weights "may improve the accuracy ... on non-VNNI machine"
#   (quantize_dynamic's docstring: u8 x s8 pairs saturate in vpmaddubsw); the bench machine
#   (AMD EPYC, avx512_vnni) has VNNI, and 8 bits are the more accurate otherwise.
# - ORT's default op types and MatMulConstBOnly=True: the 38 weight MatMuls (6 layers x 6,
#   pooler, classifier) become MatMulInteger, the three embedding tables become uint8 (one
#   scale per table) Gather + DequantizeLinear; Q.K^T and P.V, LayerNorm, softmax and GELU
#   stay f32.
# - The graph as exported, not first fused by onnxruntime.transformers.optimizer (which turns
#   attention into QAttention and the embeddings into QEmbedLayerNormalization): measured here
#   the fused int8 graph was slower (92-116 vs 120-186 sentences/s at batch 32) and less
#   accurate (0.8303 vs 0.8360); f32 fused and unfused ran at the same speed.
ORT_QUANT = {"weight_type": "QInt8", "per_channel": True, "reduce_range": False}


def versions():
    out = {}
    for name in ("torch", "onnxruntime", "transformers"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model():
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in text.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return None


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def read_dev(path, text_col, label2id):
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if "label" not in header:
            sys.exit(f"{path}: header {header} has no `label` column")
        cands = [text_col] if text_col else ["sentence", "content", "text"]
        tcol = next((c for c in cands if c in header), None)
        if tcol is None:
            sys.exit(f"{path}: header {header} has none of the text columns {cands}")
        li, ti = header.index("label"), header.index(tcol)
        texts, labels = [], []
        for lineno, line in enumerate(f, start=2):
            row = line.rstrip("\n").split("\t")
            if len(row) != len(header):
                sys.exit(f"{path}:{lineno}: {len(row)} fields, header has {len(header)}")
            if row[li] not in label2id:
                sys.exit(f"{path}:{lineno}: label {row[li]!r} not in config label2id {label2id}")
            texts.append(row[ti])
            labels.append(label2id[row[li]])
    if not texts:
        sys.exit(f"{path}: no rows")
    return texts, labels


def load_label2id(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    label2id = {str(k): int(v) for k, v in cfg.get("label2id", {}).items()}
    if not label2id:
        sys.exit(f"{model_dir}/config.json: no label2id")
    return label2id, cfg


def tokenize(model_dir, texts, max_len):
    """Token ids per sentence ([CLS] ... [SEP], truncated to max_len) and the pad id."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    pad_id = tok.padding["pad_id"] if tok.padding else tok.token_to_id("[PAD]")
    if pad_id is None:
        sys.exit(f"{model_dir}/tokenizer.json: no padding config and no [PAD] token")
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    encs = tok.encode_batch(texts, add_special_tokens=True)
    return [e.ids for e in encs], pad_id


def pad_batch(rows, pad_id):
    """int64 (ids, mask, types) arrays, right-padded to the longest row."""
    import numpy as np

    width = max(len(r) for r in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask, np.zeros_like(ids)


def macro_f1(pred, gold, n_classes):
    f1s = []
    for c in range(n_classes):
        tp = sum(p == c and g == c for p, g in zip(pred, gold))
        fp = sum(p == c and g != c for p, g in zip(pred, gold))
        fn = sum(p != c and g == c for p, g in zip(pred, gold))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(f1s) / n_classes


def p90(xs):
    s = sorted(xs)
    return s[math.ceil(0.9 * len(s)) - 1]


# ---------------------------------------------------------------- preparing the ONNX files


def onnx_paths(args):
    """Cache directory for the exported and quantized ONNX files, keyed by the model file,
    the versions and the settings, so that a rerun does not export again."""
    st = os.stat(os.path.join(args.model, "model.safetensors"))
    key = json.dumps([os.path.abspath(args.model), st.st_size, st.st_mtime_ns, versions(),
                      OPSET, ORT_QUANT], sort_keys=True)
    d = args.onnx_dir or os.path.join(
        tempfile.gettempdir(), "quantize_peers-" + hashlib.sha1(key.encode()).hexdigest()[:12])
    return {"dir": d, "ort-f32": os.path.join(d, "model.onnx"),
            "ort-int8": os.path.join(d, "model-int8.onnx")}


def prepare_onnx(args, check_batches):
    """Export once (checked: ORT f32 logits within 1e-4 of PyTorch's on check_batches), then
    quantize."""
    paths = onnx_paths(args)
    if all(os.path.exists(paths[k]) for k in ("ort-f32", "ort-int8")):
        print(f"[quantize_peers] reusing ONNX files in {paths['dir']}", file=sys.stderr)
        return paths
    os.makedirs(paths["dir"], exist_ok=True)
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, attn_implementation="eager").eval()

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).logits

    # An example with padding, so that no all-ones shortcut of the mask can be traced in (with
    # transformers 5.23 an all-ones example gives the same graph; the check below covers it).
    ids = torch.full((2, 16), 1000, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    names = ["input_ids", "attention_mask", "token_type_ids"]
    # The TorchScript exporter (dynamo=False; deprecated since torch 2.9, working in 2.15). The
    # dynamo exporter's graph, quantized the same way, ran at the same speed within noise here,
    # with accuracy 0.8349 instead of 0.8360.
    tmp = paths["ort-f32"] + ".tmp"
    # .eval() on the wrapper too: the exporter restores the wrapper's mode afterwards, and a
    # fresh Module is in training mode, which would switch dropout on in `model`.
    torch.onnx.export(Logits(model).eval(), (ids, mask, torch.zeros_like(ids)),
                      tmp, input_names=names, output_names=["logits"],
                      dynamic_axes={n: {0: "batch", 1: "seq"} for n in names},
                      opset_version=OPSET, dynamo=False)
    import onnxruntime as ort

    sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch in check_batches:
        with torch.inference_mode():
            want = model(**{k: torch.from_numpy(v) for k, v in zip(names, batch)}).logits.numpy()
        got = sess.run(["logits"], dict(zip(names, batch)))[0]
        worst = max(worst, float(abs(got - want).max()))
    print(f"[quantize_peers] ONNX export: max |logit ORT - PyTorch| = {worst:.2e} on "
          f"{len(check_batches)} batches", file=sys.stderr)
    if worst > 1e-4:
        sys.exit(f"ONNX export differs from PyTorch by {worst:.2e} > 1e-4 ({tmp})")
    os.replace(tmp, paths["ort-f32"])
    tmp = paths["ort-int8"] + ".tmp"
    quantize_dynamic(paths["ort-f32"], tmp,
                     weight_type=getattr(QuantType, ORT_QUANT["weight_type"]),
                     per_channel=ORT_QUANT["per_channel"],
                     reduce_range=ORT_QUANT["reduce_range"])
    os.replace(tmp, paths["ort-int8"])
    return paths


# ---------------------------------------------------------------- one engine (child process)


def make_torch(args, engine):
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, attn_implementation=args.attn, dtype=torch.float32).eval()
    settings = {"attn_implementation": args.attn}
    if engine == "torch-int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        settings["quantize_dynamic"] = {"modules": ["Linear"], "dtype": "qint8",
                                        "engine": torch.backends.quantized.engine}
        # A pickle, written only to measure the size of the quantized weights, then deleted.
        with tempfile.NamedTemporaryFile(suffix=".pt") as f:
            torch.save(model.state_dict(), f.name)
            size = os.path.getsize(f.name)
    else:
        size = os.path.getsize(os.path.join(args.model, "model.safetensors"))

    def to_inputs(batch):
        ids, mask, types = batch
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                "token_type_ids": torch.from_numpy(types)}

    def forward(inputs):
        return model(**inputs).logits

    def to_numpy(logits):
        return logits.numpy()

    return to_inputs, forward, to_numpy, size, settings, torch.inference_mode()


def make_ort(args, engine):
    import contextlib

    import onnxruntime as ort

    path = onnx_paths(args)[engine]
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    input_names = {i.name for i in sess.get_inputs()}
    settings = {"graph": "exported", "opset": OPSET}
    if engine == "ort-int8":
        settings["quantize_dynamic"] = ORT_QUANT

    def to_inputs(batch):
        ids, mask, types = batch
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {k: v for k, v in feed.items() if k in input_names}

    def forward(inputs):
        return sess.run(["logits"], inputs)[0]

    def to_numpy(logits):
        return logits

    return to_inputs, forward, to_numpy, os.path.getsize(path), settings, contextlib.nullcontext()


def run_engine(args, engine):
    label2id, _ = load_label2id(args.model)
    texts, gold = read_dev(args.data, args.text_col, label2id)
    rows, pad_id = tokenize(args.model, texts, args.max_len)
    make = make_torch if engine.startswith("torch") else make_ort
    to_inputs, forward, to_numpy, size, settings, ctx = make(args, engine)

    # Step 0: every input built before any timing.
    singles = [to_inputs(pad_batch([r], pad_id)) for r in rows[: max(args.latency_n, WARMUP)]]
    chunks = [to_inputs(pad_batch(rows[i: i + BATCH], pad_id)) for i in range(0, len(rows), BATCH)]
    warm_batch = to_inputs(pad_batch(rows[:WARMUP], pad_id))

    with ctx:
        # 1. Warm-up.
        for x in singles[:WARMUP]:
            forward(x)
        forward(warm_batch)
        # 2. Latency at batch 1.
        lat, lat_cpu = [], []
        for x in singles[: args.latency_n]:
            c0, t0 = time.process_time(), time.perf_counter()
            forward(x)
            t1, c1 = time.perf_counter(), time.process_time()
            lat.append((t1 - t0) * 1e3)
            lat_cpu.append((c1 - c0) * 1e3)
        # 3. Throughput at batch 32 (4. keeps the first pass's logits).
        rates, cpu_rates, first = [], [], None
        for _ in range(args.repeats):
            total, cpu, outs = 0.0, 0.0, []
            for x in chunks:
                c0, t0 = time.process_time(), time.perf_counter()
                y = forward(x)
                t1, c1 = time.perf_counter(), time.process_time()
                total += t1 - t0
                cpu += c1 - c0
                outs.append(y)
            rates.append(len(rows) / total)
            cpu_rates.append(len(rows) / cpu)
            if first is None:
                first = outs
    # 4. Accuracy and macro-F1.
    pred = [int(i) for y in first for i in to_numpy(y).argmax(-1)]
    n_classes = len(label2id)
    acc = sum(p == g for p, g in zip(pred, gold)) / len(gold)
    settings.update({"max_len": args.max_len, "latency_n": len(lat), "repeats": args.repeats,
                     "batch": BATCH})
    return {
        "engine": engine, "threads": args.threads,
        "latency_ms_median": statistics.median(lat), "latency_ms_p90": p90(lat),
        "throughput_sps": statistics.median(rates),
        "latency_cpu_ms_median": statistics.median(lat_cpu),
        "throughput_cpu_sps": statistics.median(cpu_rates),
        "accuracy": acc, "macro_f1": macro_f1(pred, gold, n_classes), "n": len(gold),
        "size_bytes": size,
        # 6. Peak RSS of this process.
        "peak_rss_mb": peak_rss_mib(),
        "versions": versions(), "cpu": cpu_model(), "loadavg": loadavg(), "settings": settings,
    }


# ---------------------------------------------------------------- parent


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="HF BertForSequenceClassification directory")
    ap.add_argument("--data", required=True, help="dev TSV with a header")
    ap.add_argument("--text-col", default=None, help="text column (default: sentence|content|text)")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--latency-n", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--attn", choices=["eager", "sdpa"], default="eager",
                    help="transformers attention implementation of the torch engines")
    ap.add_argument("--onnx-dir", default=None,
                    help="where the ONNX files go (default: a cache dir under the temp dir)")
    ap.add_argument("--out", default=None, help="also append the JSON lines to this file")
    ap.add_argument("--_child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.threads < 1 or args.max_len < 3 or args.latency_n < 1 or args.repeats < 1:
        sys.exit("--threads, --latency-n and --repeats must be >= 1, --max-len >= 3")
    if args._child:
        print(json.dumps(run_engine(args, args._child)), flush=True)
        return

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in engines if e not in ENGINES]
    if bad or not engines:
        sys.exit(f"--engines: unknown {bad}; choose from {','.join(ENGINES)}")
    label2id, _ = load_label2id(args.model)
    texts, _ = read_dev(args.data, args.text_col, label2id)  # bad data fails before any export
    if any(e.startswith("ort") for e in engines):
        rows, pad_id = tokenize(args.model, texts[:WARMUP], args.max_len)
        prepare_onnx(args, [pad_batch(rows, pad_id), pad_batch(rows[:1], pad_id)])

    child_args = sys.argv[1:]
    for engine in engines:
        cmd = [sys.executable, os.path.abspath(__file__), *child_args, "--_child", engine]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit(f"engine {engine} failed (exit {proc.returncode})")
        line = proc.stdout.strip().splitlines()[-1]
        json.loads(line)  # a malformed line fails here, not in whoever reads --out
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
