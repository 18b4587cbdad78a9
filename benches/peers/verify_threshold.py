#!/usr/bin/env python3
"""How the O-Net threshold (--face-verify) and the landmark template were chosen, from `visage embed --json`.

threshold: each face found is a true face when it overlaps a reference box (tests/data/reference_faces.json)
with IoU >= 0.4, otherwise a false box; prints how many of each survive each probability threshold.
template:  the mean landmark positions, in a 160x160 crop of each face's box grown by 20%, over the faces at or
above --min-probability, mirrored to be symmetric (src/pipeline.rs LANDMARK_TEMPLATE).

Usage:
  visage embed --json --device cpu --face-verify 0 --face-score 1 --face-size 20 \\
      --face-angles 0,-20,20,-35,35 $DATA/celebrity $DATA/group > loose.jsonl
  python3 benches/peers/verify_threshold.py threshold tests/data/reference_faces.json loose.jsonl
  visage embed --json --device cpu --face-verify 0 --face-score 3 $DATA/celebrity $DATA/group > faces.jsonl
  python3 benches/peers/verify_threshold.py template faces.jsonl
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from score_detections import iou  # noqa: E402


def faces(path):
    for line in open(path):
        photo = json.loads(line)
        yield photo["path"], photo["faces"]


def threshold(reference, detections):
    ref = json.load(open(reference))["photos"]
    true, false = [], []
    for path, found in faces(detections):
        key = next((k for k in ref if path.endswith("/" + k)), None)
        boxes = ref.get(key, [])
        for f in found:
            best = max((iou(f, r) for r in boxes), default=0.0)
            (true if best >= 0.4 else false).append(f["probability"])
    print(f"true faces {len(true)}, false boxes {len(false)}")
    for t in [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98]:
        print(f"threshold {t}: true kept {sum(p >= t for p in true)}, false kept {sum(p >= t for p in false)}")


def template(detections, min_probability=0.8):
    sums, n = [[0.0, 0.0] for _ in range(5)], 0
    for _, found in faces(detections):
        for f in found:
            if f["probability"] < min_probability:
                continue
            x0, y0 = f["x"] - 0.1 * f["w"], f["y"] - 0.1 * f["h"]
            for k, (lx, ly) in enumerate(f["landmarks"]):
                sums[k][0] += (lx - x0) / (1.2 * f["w"]) * 160
                sums[k][1] += (ly - y0) / (1.2 * f["h"]) * 160
            n += 1
    m = [[x / n, y / n] for x, y in sums]
    print(f"{n} faces, mean landmarks {[[round(x, 1), round(y, 1)] for x, y in m]}")
    eye_x, eye_y = (m[0][0] + 160 - m[1][0]) / 2, (m[0][1] + m[1][1]) / 2
    mouth_x, mouth_y = (m[3][0] + 160 - m[4][0]) / 2, (m[3][1] + m[4][1]) / 2
    sym = [[eye_x, eye_y], [160 - eye_x, eye_y], [80.0, m[2][1]], [mouth_x, mouth_y], [160 - mouth_x, mouth_y]]
    print(f"symmetric template {[[round(x, 2), round(y, 2)] for x, y in sym]}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["threshold"]:
        threshold(sys.argv[2], sys.argv[3])
    elif sys.argv[1:2] == ["template"]:
        template(sys.argv[2])
    else:
        sys.exit(__doc__)
