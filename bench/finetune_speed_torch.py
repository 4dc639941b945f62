"""PyTorch side of bench/finetune_speed.sh: the fine-tuning step and batched inference of a
BERT sequence classifier on fixed-shape batches, timed like refinery's.

  python bench/finetune_speed_torch.py train|classify --model DIR --data FILE --threads T \
      [--steps 30] [--max-len 64] [--batch 32]

train: AdamW (lr 5e-5, wd 0.01), linear schedule, clip 1.0, `steps` steps of `batch` rows
truncated to max_len (the inputs are long reviews, so every row has exactly max_len tokens);
prints the median seconds per step over steps 6.., examples/s, CPU seconds and peak RSS.
classify: softmax probabilities of every row, `batch` at a time, under torch.no_grad();
prints sentences/s (model load excluded) and peak RSS.
"""

import argparse
import csv
import json
import resource
import statistics
import time

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def rows(path, limit):
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(r)
        out = [(t, int(l)) for l, t in r]
    return out[:limit]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["train", "classify"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rows", type=int, default=2048)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(a.model)
    data = rows(a.data, a.rows)
    if a.mode == "train":
        model = AutoModelForSequenceClassification.from_pretrained(
            a.model, num_labels=2, attn_implementation="eager"
        )
        model.train()
        no_decay = ["bias", "LayerNorm.weight"]
        groups = [
            {"params": [p for n, p in model.named_parameters() if not any(x in n for x in no_decay)], "weight_decay": 0.01},
            {"params": [p for n, p in model.named_parameters() if any(x in n for x in no_decay)], "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=5e-5, betas=(0.9, 0.999), eps=1e-8)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / a.steps))
        times = []
        c0 = time.process_time()
        for step in range(a.steps):
            chunk = [data[(step * a.batch + i) % len(data)] for i in range(a.batch)]
            enc = tok([t for t, _ in chunk], truncation=True, max_length=a.max_len, padding=True, return_tensors="pt")
            labels = torch.tensor([l for _, l in chunk])
            t0 = time.perf_counter()
            out = model(**enc, labels=labels)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times[5:])
        print(json.dumps({"side": "pytorch", "mode": "train", "threads": a.threads, "seq": a.max_len,
                          "batch": a.batch, "s_per_step": med, "examples_per_s": a.batch / med,
                          "cpu_s": time.process_time() - c0, "steps": a.steps,
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                          "torch": torch.__version__}))
    else:
        model = AutoModelForSequenceClassification.from_pretrained(a.model, attn_implementation="eager").eval()
        texts = [t for t, _ in data]
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(texts), a.batch):
                enc = tok(texts[i:i + a.batch], truncation=True, max_length=a.max_len, padding=True, return_tensors="pt")
                torch.softmax(model(**enc).logits, -1)
        s = time.perf_counter() - t0
        print(json.dumps({"side": "pytorch", "mode": "classify", "threads": a.threads, "seq": a.max_len,
                          "batch": a.batch, "sentences_per_s": len(texts) / s, "rows": len(texts),
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
