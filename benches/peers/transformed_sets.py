#!/usr/bin/env python3
"""Write the 5-celebrity photos turned and mirrored, for BENCHMARKS.md's tilted-heads and mirrored-scan rows.

OUT/rot/{25,-25,40,-40}/NNN.jpg: each photo turned by that many degrees counter-clockwise (bicubic, canvas
expanded, black corners); OUT/flip/NNN.jpg: mirrored left to right; OUT/orig/NNN.jpg: the photos as they are
(the same names, so the two scans can be joined photo by photo). JPEG quality 95. Needs Pillow.
Usage: transformed_sets.py CELEBRITY_DIR OUT
"""
import glob
import os
import shutil
import sys

from PIL import Image, ImageOps

src, out = sys.argv[1], sys.argv[2]
photos = sorted(glob.glob(os.path.join(src, "*", "*", "*.jpg")))
for sub in ["orig", "flip"] + [f"rot/{d}" for d in (25, -25, 40, -40)]:
    os.makedirs(os.path.join(out, sub), exist_ok=True)
for i, p in enumerate(photos):
    name = f"{i:03d}.jpg"
    shutil.copy(p, os.path.join(out, "orig", name))
    img = Image.open(p).convert("RGB")
    ImageOps.mirror(img).save(os.path.join(out, "flip", name), quality=95)
    for d in (25, -25, 40, -40):
        img.rotate(d, resample=Image.BICUBIC, expand=True).save(os.path.join(out, "rot", str(d), name), quality=95)
