#!/usr/bin/env python3
"""What storing embeddings as f16 does to the distances visage decides by (BENCHMARKS.md, issue 17).

Reads little-endian f32 rows of 512 (as benches/peers/real_embeddings.sh writes them, or any
`visage embed --json` output turned into rows), rounds them to f16 as the store does, and compares
every pair's distance: the largest change, and how many pairs cross each threshold visage uses
(cluster distance 0.64, automatic reach 0.88, suggestion reach 1.0, separation 1.04).

    python3 benches/peers/f16_distances.py EMBEDDINGS.f32
"""
import sys

import numpy as np

rows = np.fromfile(sys.argv[1], dtype="<f4").reshape(-1, 512).astype(np.float64)
half = rows.astype(np.float16).astype(np.float64)


def distances(x):
    sq = (x * x).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2 * x @ x.T
    return np.sqrt(np.maximum(d2, 0))


d32, d16 = distances(rows), distances(half)
iu = np.triu_indices(len(rows), 1)
a, b = d32[iu], d16[iu]
diff = np.abs(a - b)
print(f"{len(rows)} faces, {len(a)} pairs: |d_f16 - d_f32| max {diff.max():.2e}, mean {diff.mean():.2e}, p99.9 {np.quantile(diff, 0.999):.2e}")
for t in (0.64, 0.88, 1.0, 1.04):
    near = int((np.abs(a - t) < 1e-3).sum())
    crossed = int(((a < t) != (b < t)).sum())
    print(f"threshold {t}: {near} pairs within 0.001 of it, {crossed} on the other side after f16")
