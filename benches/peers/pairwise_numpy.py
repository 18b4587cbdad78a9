#!/usr/bin/env python3
"""The peer for visage's neighbour graph: all pairwise squared distances of N x 512 float32 embeddings
with numpy's matrix product (sgemm, OpenBLAS), |a|^2 + |b|^2 - 2 a.b, then the pairs below a threshold.

Times the matrix product alone and the whole thing (product, distances, threshold); prints one JSON line
with the sgemm rate in GFLOP/s (2 * N * N * 512 flops) and peak memory, which grows with N^2.
Usage: OPENBLAS_NUM_THREADS=2 python3 benches/peers/pairwise_numpy.py [--n 20000] [--distance 1.0]
"""
import argparse
import json
import resource
import time

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--n", type=int, default=20000)
ap.add_argument("--dim", type=int, default=512)
ap.add_argument("--distance", type=float, default=1.0)
args = ap.parse_args()

rng = np.random.default_rng(1)
x = rng.standard_normal((args.n, args.dim), dtype=np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
x @ x[:64].T  # warm up the BLAS threads

t0 = time.perf_counter()
g = x @ x.T
t_gemm = time.perf_counter() - t0
sq = np.einsum("ij,ij->i", x, x)
d2 = sq[:, None] + sq[None, :] - 2.0 * g
i, j = np.nonzero(np.triu(d2 < args.distance ** 2, k=1))
t_all = time.perf_counter() - t0
n = args.n
print(json.dumps({
    "peer": "numpy-sgemm", "numpy": np.__version__, "n": n, "dim": args.dim,
    "sgemm_seconds": round(t_gemm, 3), "sgemm_gflops": round(2 * n * n * args.dim / t_gemm / 1e9, 1),
    "total_seconds": round(t_all, 3), "pairs_per_s": round(n * (n - 1) / 2 / t_all),
    "edges": int(len(i)),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
