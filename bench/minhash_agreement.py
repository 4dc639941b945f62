#!/usr/bin/env python3
"""Agreement of refinery's and datatrove's MinHash dedup on one corpus.

    bench/minhash_agreement.py CORPUS.jsonl OURS_DIR DATATROVE_DIR

OURS_DIR is a `refinery dedup minhash --rejects` output (rejects carry
metadata.minhash_cluster and minhash_kept_id); DATATROVE_DIR holds
datatrove's data/ and removed/ JSONL written with save_cluster_id /
load_cluster_ids (metadata.minhash_cluster_id, -1 for singletons).

Reports:
  - removed-set agreement (Jaccard of the removed id sets);
  - cluster agreement: the documents in non-singleton clusters, identical
    clusters, and pair-counting precision/recall (pairs of documents put in
    the same cluster by both / by one side);
  - the removed sets again after applying refinery's representative rule
    (keep the first document in input order) to datatrove's clusters, which
    separates "different clusters" from "same cluster, different kept doc";
  - for documents clustered by one side only: the source (imdb/cc/poem) and
    whether they are injected near-duplicates (`dup-…`).
"""
import collections
import glob
import json
import re
import subprocess
import sys


def lines(path):
    if path.endswith(".zst"):
        text = subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout.decode()
        yield from (l for l in text.split("\n") if l.strip())
    else:
        with open(path, encoding="utf-8") as f:
            yield from (l for l in f if l.strip())


def main():
    corpus, ours_dir, dt_dir = sys.argv[1:4]
    order = {}
    with open(corpus, encoding="utf-8") as f:
        for i, line in enumerate(f):
            order[json.loads(line)["id"]] = i

    ours_clusters = collections.defaultdict(set)
    ours_removed = set()
    for path in glob.glob(f"{ours_dir}/rejects/*"):
        for l in lines(path):
            d = json.loads(l)
            m = d["metadata"]
            ours_removed.add(d["id"])
            ours_clusters[m["minhash_cluster"]].update((d["id"], m["minhash_kept_id"]))

    dt_clusters = collections.defaultdict(set)
    dt_removed = set()
    for sub in ("data", "removed"):
        for path in glob.glob(f"{dt_dir}/{sub}/*"):
            for l in lines(path):
                d = json.loads(l)
                c = d.get("metadata", {}).get("minhash_cluster_id", -1)
                if sub == "removed":
                    dt_removed.add(d["id"])
                if c != -1:
                    dt_clusters[c].add(d["id"])

    def jacc(a, b):
        return len(a & b) / max(1, len(a | b))

    print(f"removed: refinery {len(ours_removed)}, datatrove {len(dt_removed)}, "
          f"both {len(ours_removed & dt_removed)}, Jaccard {jacc(ours_removed, dt_removed):.3f}")

    # Same clusters, refinery's representative rule applied to datatrove's.
    dt_removed_first = set()
    for members in dt_clusters.values():
        keep = min(members, key=lambda i: order[i])
        dt_removed_first.update(members - {keep})
    print(f"removed, datatrove clusters keeping their first doc: {len(dt_removed_first)}, "
          f"Jaccard with refinery {jacc(ours_removed, dt_removed_first):.3f}")

    ours_in = set().union(*ours_clusters.values()) if ours_clusters else set()
    dt_in = set().union(*dt_clusters.values()) if dt_clusters else set()
    print(f"docs in clusters: refinery {len(ours_in)} ({len(ours_clusters)} clusters), "
          f"datatrove {len(dt_in)} ({len(dt_clusters)} clusters), Jaccard {jacc(ours_in, dt_in):.3f}")
    ours_sets = {frozenset(s) for s in ours_clusters.values()}
    dt_sets = {frozenset(s) for s in dt_clusters.values()}
    same = len(ours_sets & dt_sets)
    print(f"identical clusters: {same} ({same / max(1, len(ours_sets)):.3f} of refinery's, "
          f"{same / max(1, len(dt_sets)):.3f} of datatrove's)")

    # Pair counting through the contingency table.
    ours_of = {d: c for c, s in ours_clusters.items() for d in s}
    dt_of = {d: c for c, s in dt_clusters.items() for d in s}
    cont = collections.Counter((ours_of[d], dt_of[d]) for d in ours_in & dt_in)
    c2 = lambda n: n * (n - 1) // 2
    both = sum(c2(n) for n in cont.values())
    p_ours = sum(c2(len(s)) for s in ours_clusters.values())
    p_dt = sum(c2(len(s)) for s in dt_clusters.values())
    print(f"same-cluster pairs: refinery {p_ours}, datatrove {p_dt}, both {both}: "
          f"datatrove's found by refinery {both / max(1, p_dt):.3f}, "
          f"refinery's found by datatrove {both / max(1, p_ours):.3f}")

    def kind(i):
        src = i.split("-of-")[-1] if i.startswith("dup-") else i
        return ("dup/" if i.startswith("dup-") else "orig/") + src.split("-")[0]

    for name, only in (("refinery only", ours_in - dt_in), ("datatrove only", dt_in - ours_in)):
        c = collections.Counter(kind(i) for i in only)
        print(f"clustered by {name}: {len(only)} docs: {dict(c.most_common())}")

    # Exact 5-gram Jaccard of same-cluster pairs (approximate normalisation:
    # lowercase, \W+ as separator), by who found them: pairs near the LSH
    # threshold are found by each tool with probability p(J), independently.
    texts = {}
    want = ours_in | dt_in
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d["id"] in want:
                texts[d["id"]] = d["text"]
    shingles = {}

    def sh(i):
        if i not in shingles:
            w = [x for x in re.split(r"\W+", texts[i].lower()) if x]
            shingles[i] = {" ".join(w[k:k + 5]) for k in range(len(w) - 4)}
        return shingles[i]

    def pairs_of(clusters):
        out = set()
        for s in clusters.values():
            m = sorted(s)
            if len(m) <= 20:
                out.update((a, b) for x, a in enumerate(m) for b in m[x + 1:])
        return out

    po, pd = pairs_of(ours_clusters), pairs_of(dt_clusters)
    edges = [0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.01]
    print("exact 5-gram Jaccard of same-cluster pairs (clusters <= 20 docs):")
    print("  J range      both  refinery-only  datatrove-only")
    groups = {"both": po & pd, "ours": po - pd, "dt": pd - po}
    hist = {k: collections.Counter() for k in groups}
    for k, ps in groups.items():
        for a, b in ps:
            x, y = sh(a), sh(b)
            j = len(x & y) / max(1, len(x | y))
            hist[k][next(i for i in range(len(edges) - 1) if j < edges[i + 1])] += 1
    for i in range(len(edges) - 1):
        print(f"  [{edges[i]:.2f},{min(1, edges[i + 1]):.2f}) {hist['both'][i]:7d} {hist['ours'][i]:14d} {hist['dt'][i]:15d}")


if __name__ == "__main__":
    main()
