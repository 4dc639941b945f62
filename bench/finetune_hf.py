"""The HF side of bench/finetune_vs_hf.sh: fine-tune a BERT checkpoint on SST-2-style TSV with
transformers' Trainer, with the hyperparameters of refinery's `sst2-minilm` preset, and
report dev accuracy and timing as one JSON line.

  python bench/finetune_hf.py --model MiniLM/ --train train.tsv --dev dev.tsv --seed 1 \
      --out /tmp/hf-run [--limit N] [--threads T]

Recipe (both sides): AutoModelForSequenceClassification (BERT pooler -> dropout -> linear),
AdamW lr 5e-5 (betas 0.9/0.999, eps 1e-8), weight decay 0.01 except biases and LayerNorm,
linear decay after 6% warmup, batch 32, 1 epoch, max length 64, dynamic padding with
length-grouped batches (train_sampling_strategy="group_by_length"), gradient clipping 1.0, f32, CPU, eval on dev.
"""

import argparse
import csv
import json
import os
import resource
import time

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)


def read_tsv(path, limit=None):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, body = rows[0], rows[1:]
    li = [h.lower() for h in header].index("label")
    ti = 1 - li
    data = [(r[ti], int(r[li])) for r in body if len(r) == 2 and r[ti].strip()]
    return data[:limit] if limit else data


class Rows(torch.utils.data.Dataset):
    def __init__(self, enc, labels):
        self.enc, self.labels = enc, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        item = {k: v[i] for k, v in self.enc.items()}
        item["labels"] = self.labels[i]
        return item


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--epochs", type=float, default=1.0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.model)
    train = read_tsv(a.train, a.limit)
    dev = read_tsv(a.dev)
    enc = lambda rows: tok([t for t, _ in rows], truncation=True, max_length=64)
    train_ds = Rows(enc(train), [l for _, l in train])
    dev_ds = Rows(enc(dev), [l for _, l in dev])
    model = AutoModelForSequenceClassification.from_pretrained(
        a.model,
        num_labels=2,
        id2label={0: "0", 1: "1"},
        label2id={"0": 0, "1": 1},
        attn_implementation="eager",
    )
    args = TrainingArguments(
        output_dir=a.out,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=64,
        learning_rate=5e-5,
        weight_decay=0.01,
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        max_grad_norm=1.0,
        num_train_epochs=a.epochs,
        lr_scheduler_type="linear",
        # transformers 5: a float warmup_steps in [0, 1) is a ratio (warmup_ratio is gone);
        # length-grouped batches are a train_sampling_strategy.
        warmup_steps=0.06,
        train_sampling_strategy="group_by_length",
        seed=a.seed,
        data_seed=a.seed,
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        data_collator=DataCollatorWithPadding(tok),
    )
    t0 = time.time()
    c0 = time.process_time()
    trainer.train()
    train_s = time.time() - t0
    train_cpu = time.process_time() - c0
    pred = trainer.predict(dev_ds)
    acc = float((np.argmax(pred.predictions, -1) == np.array(pred.label_ids)).mean())
    print(
        json.dumps(
            {
                "side": "hf",
                "seed": a.seed,
                "train_examples": len(train),
                "steps": trainer.state.global_step,
                "accuracy": acc,
                "train_s": train_s,
                "train_cpu_s": train_cpu,
                "examples_per_s": len(train) * a.epochs / train_s,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
