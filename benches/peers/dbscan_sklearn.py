#!/usr/bin/env python3
"""The peer for visage's DBSCAN: scikit-learn's DBSCAN (same eps and min_samples, Euclidean) on the
embeddings `visage bench graph --save PREFIX` wrote, timed end to end, with peak memory. Also checks
that both found the same clusters (adjusted Rand index of the two labelings, and exact equality of
the partitions).

Usage:
  cargo run -- bench graph --n 100000 --distance 1.0 --core 4 --save /tmp/g100k
  python3 benches/peers/dbscan_sklearn.py /tmp/g100k --distance 1.0 --core 4 --jobs 2
"""
import argparse
import json
import resource
import time

import numpy as np
import sklearn
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score

ap = argparse.ArgumentParser()
ap.add_argument("prefix")
ap.add_argument("--dim", type=int, default=512)
ap.add_argument("--distance", type=float, default=1.0)
ap.add_argument("--core", type=int, default=4)
ap.add_argument("--jobs", type=int, default=2)
args = ap.parse_args()

x = np.fromfile(args.prefix + ".f32", dtype="<f4").reshape(-1, args.dim)
ours = np.fromfile(args.prefix + ".labels.i32", dtype="<i4")
rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

t0 = time.perf_counter()
theirs = DBSCAN(eps=args.distance, min_samples=args.core, n_jobs=args.jobs).fit(x).labels_
seconds = time.perf_counter() - t0


def partition(labels):
    groups = {}
    for i, l in enumerate(labels):
        if l >= 0:
            groups.setdefault(l, []).append(i)
    return sorted(tuple(g) for g in groups.values())


print(json.dumps({
    "peer": "scikit-learn DBSCAN", "sklearn": sklearn.__version__, "n": len(x), "dim": args.dim,
    "eps": args.distance, "min_samples": args.core, "n_jobs": args.jobs,
    "seconds": round(seconds, 2),
    "clusters": int(theirs.max() + 1), "noise": int((theirs < 0).sum()),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "rss_before_fit_mib": round(rss_before, 1),
    "ari_vs_visage": round(adjusted_rand_score(ours, theirs), 6),
    "same_partition_as_visage": partition(ours) == partition(theirs),
}))
