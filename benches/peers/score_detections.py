#!/usr/bin/env python3
"""Score face detections against the reference boxes (tests/data/reference_faces.json).

Detections are JSON lines: {"path": ..., "faces": [{"x","y","w","h", ...}]}, one image
per line; a path may be absolute or relative and is matched by suffix against the
reference keys (e.g. ".../testdata/group/t1.jpg" -> "group/t1.jpg"). Only photos present
in the detections file are scored. Per photo, detection/reference pairs with IoU >= --iou
are matched one-to-one, greedily by highest IoU first. Prints recall (reference faces
matched / reference faces), precision (detections matched / detections) and mean IoU of
the matches; --json OUT writes the same numbers; --verbose lists photos with misses or
extra detections.

Usage: python3 benches/peers/score_detections.py REFERENCE.json DETECTIONS.jsonl
           [--iou 0.4] [--json OUT] [--verbose]
"""
import argparse
import json
import sys


def iou(a, b):
    iw = max(0, min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"]))
    ih = max(0, min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"]))
    inter = iw * ih
    union = a["w"] * a["h"] + b["w"] * b["h"] - inter
    return inter / union if union > 0 else 0.0


def match(refs, dets, thresh):
    """Greedy one-to-one matching; returns the IoUs of the matched pairs."""
    pairs = sorted(((iou(r, d), i, j) for i, r in enumerate(refs) for j, d in enumerate(dets)), reverse=True)
    used_r, used_d, ious = set(), set(), []
    for v, i, j in pairs:
        if v < thresh:
            break
        if i not in used_r and j not in used_d:
            used_r.add(i), used_d.add(j), ious.append(v)
    return ious


def ref_key(path, keys):
    path = path.replace("\\", "/")
    hits = [k for k in keys if path == k or path.endswith("/" + k)]
    return max(hits, key=len) if hits else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reference")
    ap.add_argument("detections")
    ap.add_argument("--iou", type=float, default=0.4, help="IoU a match needs (default 0.4)")
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    ref = json.load(open(args.reference))["photos"]
    n_ref = n_det = 0
    ious, seen = [], set()
    for line in open(args.detections):
        if not line.strip():
            continue
        rec = json.loads(line)
        key = ref_key(rec["path"], ref)
        if key is None:
            print(f"warning: no reference for {rec['path']}", file=sys.stderr)
            continue
        if key in seen:
            print(f"warning: {key} listed twice, scoring it twice", file=sys.stderr)
        seen.add(key)
        refs, dets = ref[key], rec["faces"]
        m = match(refs, dets, args.iou)
        n_ref, n_det, ious = n_ref + len(refs), n_det + len(dets), ious + m
        if args.verbose and (len(m) < len(refs) or len(m) < len(dets)):
            print(f"{key}: ref={len(refs)} det={len(dets)} matched={len(m)}")

    if len(seen) < len(ref):
        print(f"note: {len(ref) - len(seen)} reference photos have no detections line and are not scored",
              file=sys.stderr)
    res = {
        "photos": len(seen),
        "reference_faces": n_ref,
        "detections": n_det,
        "matched": len(ious),
        "recall": len(ious) / n_ref if n_ref else 0.0,
        "precision": len(ious) / n_det if n_det else 0.0,
        "mean_iou": sum(ious) / len(ious) if ious else 0.0,
        "iou_threshold": args.iou,
    }
    print(f"{res['photos']} photos, {n_ref} reference faces, {n_det} detections, {len(ious)} matched "
          f"(IoU >= {args.iou})")
    print(f"recall {res['recall']:.3f}  precision {res['precision']:.3f}  mean IoU {res['mean_iou']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
