#!/usr/bin/env python3
"""OpenCV Haar-cascade face detector: the peer visage is benchmarked against.

Loads haarcascade_frontalface_default.xml from cv2.data.haarcascades. Every image
(.jpg/.jpeg/.png; folders are searched recursively) is decoded first, untimed. Then,
over --repeat rounds, each image goes through: BGR -> gray, downscale to fit --max-side
(only ever down, never up, like visage), detectMultiScale(scaleFactor, minNeighbors,
minSize). Only that part is timed. Prints images/s and the faces found (first round).
--json writes one line per image: {"path": ..., "faces": [{"x","y","w","h"}]}, boxes in
original image pixels (top-left origin); the path is the file path as found from PATH.

Usage: python3 benches/peers/haar_detect.py --threads N [--repeat R] [--max-side 1280]
           [--scale-factor 1.1] [--min-neighbors 3] [--min-size 20] [--json OUT] PATH...
"""
import argparse
import json
import sys
import time
from pathlib import Path

import cv2

EXTS = {".jpg", ".jpeg", ".png"}


def find_images(paths):
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in EXTS and f.is_file())
        else:
            out.append(p)
    return out


def detect(cascade, bgr, args):
    """Boxes [(x, y, w, h)] in the pixels of `bgr`."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape
    scale = min(1.0, args.max_side / max(h, w))
    if scale < 1.0:
        gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    faces = cascade.detectMultiScale(gray, scaleFactor=args.scale_factor, minNeighbors=args.min_neighbors,
                                     minSize=(args.min_size, args.min_size))
    # Sorted: with several threads OpenCV returns the same boxes in varying order.
    return sorted(tuple(round(v / scale) for v in f) for f in faces)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("paths", nargs="+", metavar="PATH")
    ap.add_argument("--threads", type=int, required=True, help="cv2.setNumThreads(N)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--max-side", type=int, default=1280)
    ap.add_argument("--scale-factor", type=float, default=1.1)
    ap.add_argument("--min-neighbors", type=int, default=3)
    ap.add_argument("--min-size", type=int, default=20)
    ap.add_argument("--json", metavar="OUT", help="write per-image boxes as JSON lines")
    args = ap.parse_args()

    cv2.setNumThreads(args.threads)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    assert not cascade.empty(), "could not load the Haar cascade"

    images = []
    for p in find_images(args.paths):
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"skipping unreadable {p}", file=sys.stderr)
            continue
        images.append((p, bgr))
    if not images:
        sys.exit("no images found")

    results = None
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        r = [detect(cascade, bgr, args) for _, bgr in images]
        results = results or r
    dt = time.perf_counter() - t0

    n = len(images) * args.repeat
    print(f"opencv {cv2.__version__} haar, threads={args.threads} (cv2.getNumThreads()={cv2.getNumThreads()}), "
          f"{len(images)} images x {args.repeat} repeats")
    print(f"{n / dt:.1f} images/s ({1000 * dt / n:.2f} ms/image), {sum(map(len, results))} faces found")

    if args.json:
        with open(args.json, "w") as f:
            for (p, _), faces in zip(images, results):
                boxes = [{"x": x, "y": y, "w": w, "h": h} for x, y, w, h in faces]
                f.write(json.dumps({"path": p.as_posix(), "faces": boxes}) + "\n")


if __name__ == "__main__":
    main()
