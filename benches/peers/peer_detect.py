#!/usr/bin/env python3
"""Face boxes from a peer detector, as JSON lines for score_detections.py: {"path", "faces": [{x, y, w, h}]}.

  scrfd  SCRFD-500M through ONNX Runtime as Immich runs it (immich_pipeline.py: fit to 1440 px, 640 x 640
         input, score >= 0.5)
  hog    face_recognition 1.3 (dlib's HOG detector, upsampled once)
  cnn    face_recognition 1.3 (dlib's CNN, MMOD, upsampled once)

Usage: peer_detect.py DETECTOR PATH... > faces.jsonl   (the peers' requirements: see immich_pipeline.py and
       face_recognition_peer.py)
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from immich_pipeline import PREVIEW, Scrfd, model_dir, photos  # noqa: E402


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("scrfd", "hog", "cnn"):
        sys.exit(__doc__)
    which, paths = sys.argv[1], sys.argv[2:]
    if which == "scrfd":
        import cv2

        scrfd = Scrfd(os.path.join(model_dir(), "scrfd_500m_bnkps.onnx"), 2)

        def detect(path):
            img = cv2.imread(path)
            h, w = img.shape[:2]
            s = min(1.0, PREVIEW / max(h, w))
            small = cv2.resize(img, (round(w * s), round(h * s))) if s < 1 else img
            boxes, _ = scrfd.detect(small)
            return [[b[0] / s, b[1] / s, (b[2] - b[0]) / s, (b[3] - b[1]) / s] for b in boxes]
    else:
        import face_recognition

        def detect(path):
            img = face_recognition.load_image_file(path)
            found = face_recognition.face_locations(img, number_of_times_to_upsample=1, model=which)
            return [[left, top, right - left, bottom - top] for top, right, bottom, left in found]

    for path in photos(paths):
        faces = [dict(zip("xywh", map(float, b))) for b in detect(path)]
        print(json.dumps({"path": path, "faces": faces}))


if __name__ == "__main__":
    main()
