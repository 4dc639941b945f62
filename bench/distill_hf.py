"""The PyTorch reference of bench/distill_sst2.sh: soft-label distillation of a fine-tuned BERT
classifier (the teacher) into a student made of chosen teacher layers, with the same recipe as
refinery's `sst2-minilm-3l` preset restricted to the soft loss. Prints one JSON line (dev
accuracy of the final student, timing).

  python bench/distill_hf.py --teacher runs/sst2/final --train train.tsv --dev dev.tsv \
      --seed 1 [--layers 0,2,4] [--alpha 0.5] [--temperature 2] [--epochs 2] [--lr 1e-4] \
      [--limit N] [--threads T] [--max-steps N] [--save DIR]

Recipe (both sides):
  student  = the teacher's embeddings, encoder layers --layers (DistilBERT-style init), pooler
             and classification head; dropout as in the teacher's config (train mode)
  teacher  = frozen, eval mode, no gradients
  loss     = alpha * CE(y, s) + (1 - alpha) * T^2 * KL(softmax(t/T) || softmax(s/T))
             (kl_div(log_softmax(s/T), softmax(t/T), reduction="batchmean"))
  AdamW lr 1e-4 (betas 0.9/0.999, eps 1e-8), weight decay 0.01 except biases and LayerNorm,
  linear decay after 6% warmup, batch 32, max length 64, gradient clipping 1.0, f32, CPU;
  batches: a seeded shuffle, sorted by length inside pools of 50 batches, the batches shuffled
  (refinery's length bucketing), padded to their longest row.
"""

import argparse
import copy
import csv
import json
import random
import resource
import time

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def read_tsv(path, limit=None):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, body = rows[0], rows[1:]
    li = [h.lower() for h in header].index("label")
    ti = 1 - li
    data = [(r[ti], int(r[li])) for r in body if len(r) == 2 and r[ti].strip()]
    return data[:limit] if limit else data


def batches(enc, labels, batch, seed, epoch):
    """refinery's ClassSource order: shuffle, sort pools of 50 batches by length, shuffle."""
    rng = random.Random(seed * 1000003 + epoch)
    idx = list(range(len(labels)))
    rng.shuffle(idx)
    out = []
    pool = batch * 50
    for i in range(0, len(idx), pool):
        chunk = sorted(idx[i:i + pool], key=lambda j: len(enc[j]))
        out.extend(chunk[k:k + batch] for k in range(0, len(chunk), batch))
    rng.shuffle(out)
    return out


def collate(enc, labels, rows, pad_id):
    t = max(len(enc[j]) for j in rows)
    ids = torch.full((len(rows), t), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), t), dtype=torch.long)
    for r, j in enumerate(rows):
        ids[r, : len(enc[j])] = torch.tensor(enc[j])
        mask[r, : len(enc[j])] = 1
    y = torch.tensor([labels[j] for j in rows])
    return ids, mask, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--layers", default="0,2,4")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--temperature", type=float, default=2.0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--max-steps", type=int, default=None, help="stop early (speed runs)")
    ap.add_argument("--no-kd", action="store_true", help="the same student, hard loss only")
    ap.add_argument("--save", default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    tok = AutoTokenizer.from_pretrained(a.teacher)
    teacher = AutoModelForSequenceClassification.from_pretrained(
        a.teacher, attn_implementation="eager"
    ).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    layers = [int(x) for x in a.layers.split(",")]
    student = copy.deepcopy(teacher)
    student.bert.encoder.layer = torch.nn.ModuleList(
        [copy.deepcopy(teacher.bert.encoder.layer[i]) for i in layers]
    )
    student.config.num_hidden_layers = len(layers)
    for p in student.parameters():
        p.requires_grad_(True)
    student.train()

    train = read_tsv(a.train, a.limit)
    dev = read_tsv(a.dev)
    enc_train = tok([t for t, _ in train], truncation=True, max_length=64)["input_ids"]
    y_train = [l for _, l in train]
    enc_dev = tok([t for t, _ in dev], truncation=True, max_length=64)["input_ids"]
    y_dev = [l for _, l in dev]

    decay, no_decay = [], []
    for n, p in student.named_parameters():
        (no_decay if ("bias" in n or "LayerNorm" in n) else decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr,
        betas=(0.9, 0.999),
        eps=1e-8,
    )
    per_epoch = (len(train) + 31) // 32
    total = per_epoch * a.epochs
    warmup = int(-(-0.06 * total // 1))  # ceil, as refinery's warmup_ratio
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup)),
    )
    temp = a.temperature
    steps = 0
    t0, c0 = time.time(), time.process_time()
    for epoch in range(a.epochs):
        for rows in batches(enc_train, y_train, 32, a.seed, epoch):
            ids, mask, y = collate(enc_train, y_train, rows, tok.pad_token_id)
            s = student(input_ids=ids, attention_mask=mask).logits
            ce = F.cross_entropy(s, y)
            if a.no_kd:
                loss = ce
            else:
                with torch.no_grad():
                    t = teacher(input_ids=ids, attention_mask=mask).logits
                kl = F.kl_div(
                    F.log_softmax(s / temp, -1), F.softmax(t / temp, -1), reduction="batchmean"
                )
                loss = a.alpha * ce + (1 - a.alpha) * temp * temp * kl
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            opt.step()
            sched.step()
            steps += 1
            if a.max_steps and steps >= a.max_steps:
                break
        if a.max_steps and steps >= a.max_steps:
            break
    train_s, train_cpu = time.time() - t0, time.process_time() - c0
    student.eval()
    correct = 0
    with torch.no_grad():
        order = sorted(range(len(y_dev)), key=lambda j: len(enc_dev[j]))
        for i in range(0, len(order), 64):
            rows = order[i:i + 64]
            ids, mask, y = collate(enc_dev, y_dev, rows, tok.pad_token_id)
            correct += int((student(input_ids=ids, attention_mask=mask).logits.argmax(-1) == y).sum())
    if a.save:
        student.save_pretrained(a.save)
        tok.save_pretrained(a.save)
    print(
        json.dumps(
            {
                "side": "torch",
                "kd": not a.no_kd,
                "seed": a.seed,
                "train_examples": len(train),
                "steps": steps,
                "accuracy": correct / len(y_dev),
                "train_s": train_s,
                "train_cpu_s": train_cpu,
                "steps_per_s": steps / train_s,
                "steps_per_cpu_s": steps / train_cpu,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
