#!/usr/bin/env python3
"""face_recognition 1.3 (dlib's HOG detector, upsampled once, and its ResNet 128-d encoder) over the
same photos as `visage bench index`, for comparison. dlib's HOG detector runs on one thread, so
`--threads N` runs N worker processes, each with its share of the photos.

Prints one JSON line: photos, faces, seconds (the whole process), photos/s, faces/s.
Usage: face_recognition_peer.py [--threads N] PATH...
       (pip install --no-deps face_recognition==1.3.0 dlib-bin==20.0.1.post1
        face-recognition-models==0.3.0; pip install Click Pillow numpy)
"""
import argparse
import json
import os
import time

START = time.perf_counter()

from multiprocessing import Pool  # noqa: E402

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")


def photos(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
            continue
        for root, _, files in sorted(os.walk(p)):
            for f in sorted(files):
                if f.lower().endswith(EXTENSIONS):
                    yield os.path.join(root, f)


def faces_in(path):
    import face_recognition

    try:
        img = face_recognition.load_image_file(path)
    except Exception:
        return None
    boxes = face_recognition.face_locations(img, number_of_times_to_upsample=1, model="hog")
    face_recognition.face_encodings(img, boxes)
    return len(boxes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    files = list(photos(a.paths))
    with Pool(a.threads) as pool:
        counts = pool.map(faces_in, files, chunksize=4)
    done = [c for c in counts if c is not None]
    seconds = time.perf_counter() - START
    print(json.dumps({
        "peer": "face_recognition 1.3 (dlib HOG, upsample 1, ResNet)", "threads": a.threads,
        "photos": len(done), "failed": len(counts) - len(done), "faces": sum(done),
        "seconds": round(seconds, 3), "photos_per_s": round(len(done) / seconds, 2),
        "faces_per_s": round(sum(done) / seconds, 2),
    }))


if __name__ == "__main__":
    main()
