#!/usr/bin/env python3
"""Make reference face boxes for the visage test photos with MediaPipe.

Runs MediaPipe face detection (legacy `mp.solutions.face_detection`, mediapipe==0.10.14)
with both the full-range (model_selection=1) and the short-range (model_selection=0)
model on every .jpg under the test-data root (EXIF orientation applied), and merges the
union of their boxes (IoU > 0.3 counts as the same face; the higher score wins).
Photos larger than TILE px are also run in overlapping TILE x TILE tiles, because the
models see a 128/192 px input and miss small faces in big group photos; tile boxes that
touch an inner tile edge are dropped (a face cut in half there is whole in another tile).

Then applies the hand-made edits in MANUAL_EDITS (faces MediaPipe missed, false boxes),
found by reviewing the boxes drawn on the photos, and writes:
  {"source": ..., "manual_edits": [...], "photos": {"celebrity/train/ben_afflek/x.jpg":
   [{"x":..,"y":..,"w":..,"h":..}], ...}}
with paths relative to the root and boxes as int pixels (top-left origin).

Usage: python3 scripts/reference_faces.py [--root DIR] [--out tests/data/reference_faces.json]
Needs: numpy, opencv-python-headless<5, mediapipe==0.10.14, pillow.
"""
import argparse
import json
import os
from pathlib import Path

import mediapipe as mp
import numpy as np
from PIL import Image, ImageOps

MIN_CONFIDENCE = 0.5
MERGE_IOU = 0.3
TILE = 480

# Hand-made fixes after looking at the boxes drawn on every photo.
# op "add": a face MediaPipe missed; op "remove": box at `box` (matched by IoU > 0.5) is not a face.
MANUAL_EDITS = [
    {"op": "remove", "path": "group/t1.jpg", "box": {"x": 414, "y": 705, "w": 185, "h": 181},
     "reason": "false box on the poker chips/table (short-range model, bottom tile, score 0.67)"},
    {"op": "remove",
     "path": "celebrity/train/elton_john/httpimggalpmdstaticnetfithttpAFFwwwEgalaEfrFvarFgalFstorageFimagesFmediaFmultiuploaddufevrierFeltonjohnFfreFRFeltonjohnEjpgxqualityeltonjohnjpg.jpg",
     "box": {"x": 67, "y": 24, "w": 64, "h": 64},
     "reason": "false box on a dark cymbal/drum in the background"},
    {"op": "remove", "path": "celebrity/train/madonna/httpwwwetonlinecomphotomadonnabdayjpg.jpg",
     "box": {"x": 16, "y": 121, "w": 44, "h": 43},
     "reason": "false box on a strand of hair at the lower left"},
]


def iou(a, b):
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def run_model(detector, rgb, ox=0, oy=0, full_w=None, full_h=None):
    """Detect on `rgb` (a crop at ox, oy of the full image); returns [(x, y, w, h, score)]."""
    h, w = rgb.shape[:2]
    full_w, full_h = full_w or w, full_h or h
    out = []
    for d in detector.process(np.ascontiguousarray(rgb)).detections or []:
        bb = d.location_data.relative_bounding_box
        x0, y0 = max(0.0, bb.xmin * w), max(0.0, bb.ymin * h)
        x1, y1 = min(float(w), (bb.xmin + bb.width) * w), min(float(h), (bb.ymin + bb.height) * h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        # In a tile, drop boxes cut by an inner tile edge.
        m = 2.0
        if (x0 < m and ox > 0) or (y0 < m and oy > 0) or \
           (x1 > w - m and ox + w < full_w) or (y1 > h - m and oy + h < full_h):
            continue
        out.append((x0 + ox, y0 + oy, x1 - x0, y1 - y0, d.score[0]))
    return out


def tiles(w, h, size=TILE):
    """Top-left corners of size x size tiles with ~50% overlap covering a w x h image."""
    def starts(n):
        if n <= size:
            return [0]
        k = int(np.ceil((n - size) / (size / 2))) + 1
        return [round(i * (n - size) / (k - 1)) for i in range(k)]
    return [(x, y) for y in starts(h) for x in starts(w)]


def detect(detectors, rgb):
    h, w = rgb.shape[:2]
    cands = []
    for det in detectors:
        cands += run_model(det, rgb)
        if max(w, h) > TILE:
            for x, y in tiles(w, h):
                crop = rgb[y:y + TILE, x:x + TILE]
                cands += run_model(det, crop, x, y, w, h)
    kept = []
    for c in sorted(cands, key=lambda c: -c[4]):
        if all(iou(c, k) <= MERGE_IOU for k in kept):
            kept.append(c)
    return [box_dict(c) for c in sorted(kept, key=lambda c: (c[0], c[1]))]


def box_dict(c):
    x, y = int(round(c[0])), int(round(c[1]))
    return {"x": x, "y": y, "w": int(round(c[0] + c[2])) - x, "h": int(round(c[1] + c[3])) - y}


def apply_edits(photos):
    for e in MANUAL_EDITS:
        faces = photos[e["path"]]
        b = e["box"]
        if e["op"] == "add":
            faces.append(dict(b))
            faces.sort(key=lambda f: (f["x"], f["y"]))
        else:
            t = (b["x"], b["y"], b["w"], b["h"])
            hit = [f for f in faces if iou(t, (f["x"], f["y"], f["w"], f["h"])) > 0.5]
            assert hit, f"manual edit matches no box: {e}"
            faces.remove(hit[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_root = os.environ.get("VISAGE_TESTDATA", str(Path.home() / ".cache/visage/testdata"))
    ap.add_argument("--root", default=default_root)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests/data/reference_faces.json"))
    ap.add_argument("--no-edits", action="store_true", help="write raw MediaPipe boxes only")
    args = ap.parse_args()

    fd = mp.solutions.face_detection
    detectors = [fd.FaceDetection(model_selection=m, min_detection_confidence=MIN_CONFIDENCE) for m in (1, 0)]
    root = Path(args.root)
    photos = {}
    for p in sorted(root.rglob("*.jpg")):
        rgb = np.asarray(ImageOps.exif_transpose(Image.open(p)).convert("RGB"))
        photos[p.relative_to(root).as_posix()] = detect(detectors, rgb)
    if not args.no_edits:
        apply_edits(photos)

    doc = {
        "source": (
            f"scripts/reference_faces.py: MediaPipe {mp.__version__} face detection, union of "
            f"full-range (model_selection=1) and short-range (model_selection=0) models, "
            f"min_detection_confidence={MIN_CONFIDENCE}, merged by IoU>{MERGE_IOU}; images larger "
            f"than {TILE}px also run in {TILE}px tiles with 50% overlap; EXIF orientation applied; "
            "then reviewed by eye with manual_edits applied. Boxes are int pixels, top-left origin."
        ),
        "manual_edits": [] if args.no_edits else MANUAL_EDITS,
        "photos": photos,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    n = sum(len(v) for v in photos.values())
    print(f"{len(photos)} photos, {n} faces -> {out}")


if __name__ == "__main__":
    main()
