#!/usr/bin/env python3
"""Write every photo under SRC in 24 variants into OUT/NNNNN.jpg: mirrored or not, turned -6, 0 or 6 degrees
(bicubic, canvas expanded, grey corners), scaled 0.85 or 1.15, brightness 0.8 or 1.2; JPEG quality 90. The
real pipeline then finds each face again, a little changed each time, as a library holds many photos of one
person. Needs Pillow. Usage: photo_variants.py SRC OUT
"""
import itertools
import os
import sys

from PIL import Image, ImageEnhance, ImageOps

src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst, exist_ok=True)
k = 0
for root, _, files in sorted(os.walk(src)):
    for f in sorted(files):
        try:
            im = Image.open(os.path.join(root, f)).convert("RGB")
        except OSError:
            continue
        for mirror, angle, scale, light in itertools.product([0, 1], [-6, 0, 6], [0.85, 1.15], [0.8, 1.2]):
            v = ImageOps.mirror(im) if mirror else im
            v = v.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(128, 128, 128))
            v = v.resize((max(1, int(v.width * scale)), max(1, int(v.height * scale))), Image.BICUBIC)
            v = ImageEnhance.Brightness(v).enhance(light)
            v.save(os.path.join(dst, f"{k:05d}.jpg"), quality=90)
            k += 1
print(f"{k} photos -> {dst}")
