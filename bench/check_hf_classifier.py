"""transformers loads a refinery classifier checkpoint with refinery's probabilities.

    python bench/check_hf_classifier.py MODEL_DIR TEXTS.txt OURS.jsonl [MAX_LEN]

TEXTS.txt: one sentence per line; OURS.jsonl: `refinery classify --model MODEL_DIR` on the
same lines. Exits 1 unless every probability is within 1e-4 and every prediction is the same.
Used by bench/finetune_vs_hf.sh and bench/distill_sst2.sh.
"""
import json
import sys

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

model_dir, texts_path, ours_path = sys.argv[1:4]
max_len = int(sys.argv[4]) if len(sys.argv) > 4 else 64
model = AutoModelForSequenceClassification.from_pretrained(model_dir, attn_implementation="eager").eval()
tok = AutoTokenizer.from_pretrained(model_dir)
texts = [l.rstrip("\n") for l in open(texts_path)]
ours = [json.loads(l) for l in open(ours_path)]
labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
worst, same = 0.0, 0
with torch.no_grad():
    for i in range(0, len(texts), 64):
        enc = tok(texts[i:i + 64], truncation=True, max_length=max_len, padding=True, return_tensors="pt")
        p = torch.softmax(model(**enc).logits, -1)
        for j, row in enumerate(p):
            o = ours[i + j]["probs"]
            worst = max(worst, max(abs(float(row[k]) - o[labels[k]]) for k in range(len(labels))))
            same += labels[int(row.argmax())] == ours[i + j]["label"]
print(f"transformers vs refinery ({model_dir}) on {len(texts)} dev sentences: "
      f"max |Δ prob| = {worst:.2e}, identical predictions {same}/{len(texts)}")
sys.exit(0 if worst < 1e-4 and same == len(texts) else 1)
