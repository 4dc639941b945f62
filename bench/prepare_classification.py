"""Writes the labelled files of the multi-task and prompt benchmarks as TSV (label, text):

  python bench/prepare_classification.py SHARED_DIR OUT_DIR

  sst2-train.tsv, sst2-dev.tsv   GLUE SST-2 as shipped (train 67,349; dev 872)
  mr.tsv                         MR polarity: rt-polarity.pos (1) and .neg (0), latin-1
  sms.tsv                        SMS spam collection (ham/spam)

Texts are written with tabs and newlines replaced by spaces; nothing else changes.
"""

import os
import sys

shared, out = sys.argv[1], sys.argv[2]
c = os.path.join(shared, "data", "classification")
os.makedirs(out, exist_ok=True)


def clean(t):
    return " ".join(t.replace("\t", " ").split())


def write(name, rows):
    with open(os.path.join(out, name), "w", encoding="utf-8") as f:
        f.write("label\ttext\n")
        for label, text in rows:
            if text:
                f.write(f"{label}\t{text}\n")


for split in ["train", "dev"]:
    rows = []
    with open(os.path.join(c, "sst2", f"{split}.tsv"), encoding="utf-8") as f:
        next(f)
        for line in f:
            label, text = line.rstrip("\n").split("\t", 1)
            rows.append((label, clean(text)))
    write(f"sst2-{split}.tsv", rows)

rows = []
for label, name in [("1", "rt-polarity.pos"), ("0", "rt-polarity.neg")]:
    with open(os.path.join(c, "mr-polarity", name), encoding="latin-1") as f:
        rows.extend((label, clean(line)) for line in f)
write("mr.tsv", rows)

rows = []
with open(os.path.join(c, "sms-spam", "SMSSpamCollection"), encoding="utf-8") as f:
    next(f)
    for line in f:
        label, text = line.rstrip("\n").split("\t", 1)
        rows.append((label, clean(text)))
write("sms.tsv", rows)
print(f"wrote {out}/sst2-train.tsv sst2-dev.tsv mr.tsv sms.tsv")
