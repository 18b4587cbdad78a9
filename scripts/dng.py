"""DNG files for the tests and benchmarks, written by pidng (PyPI) from a real photo: the photo's
Bayer mosaic (RGGB, 16 bits, linear sRGB as the camera's colour space, so a developer gives the
photo back), with a JPEG preview in a SubIFD as Adobe's DNG Converter stores one (pidng writes the
raw image alone; ExifTool reads the preview back: `exiftool -b -PreviewImage FILE.dng`).

    from dng import dng
    dng(pillow_image, scale, "out.dng", orientation, "preview.jpg")

Needs numpy, Pillow and pidng (`pip install numpy pillow pidng`).
"""
import struct

import numpy as np
from PIL import Image
from pidng.core import RAW2DNG, DNGTags, Tag
from pidng.defs import CFAPattern, CalibrationIlluminant, DNGVersion, PhotometricInterpretation

WHITE = 60000
XYZ_TO_SRGB = [[3.2406, -1.5372, -0.4986], [-0.9689, 1.8758, 0.0415], [0.0557, -0.2040, 1.0570]]


def dng(img, scale, out, orientation, preview):
    """Write `out`: the raw mosaic of `img` (a Pillow RGB image) resized by `scale` (Lanczos),
    its TIFF Orientation tag set to `orientation`, with the JPEG file `preview` embedded."""
    w, h = round(img.width * scale) // 2 * 2, round(img.height * scale) // 2 * 2
    raw = np.empty((h, w), np.uint16)
    big = img.resize((w, h), Image.LANCZOS)
    for y in range(0, h, 512):  # in bands: a 12 MP float image would need 300 MB
        a = np.asarray(big.crop((0, y, w, min(h, y + 512)))).astype(np.float32) / 255.0
        lin = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
        band = raw[y:y + 512]
        band[0::2, 0::2] = np.round(lin[0::2, 0::2, 0] * WHITE)
        band[0::2, 1::2] = np.round(lin[0::2, 1::2, 1] * WHITE)
        band[1::2, 0::2] = np.round(lin[1::2, 0::2, 1] * WHITE)
        band[1::2, 1::2] = np.round(lin[1::2, 1::2, 2] * WHITE)
    t = DNGTags()
    t.set(Tag.ImageWidth, w)
    t.set(Tag.ImageLength, h)
    t.set(Tag.TileWidth, w)
    t.set(Tag.TileLength, h)
    t.set(Tag.Orientation, orientation)
    t.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    t.set(Tag.SamplesPerPixel, 1)
    t.set(Tag.BitsPerSample, 16)
    t.set(Tag.CFARepeatPatternDim, [2, 2])
    t.set(Tag.CFAPattern, CFAPattern.RGGB)
    t.set(Tag.BlackLevel, 0)
    t.set(Tag.WhiteLevel, WHITE)
    t.set(Tag.ColorMatrix1, [[round(v * 10000), 10000] for row in XYZ_TO_SRGB for v in row])
    t.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    t.set(Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]])
    t.set(Tag.BaselineExposure, [[0, 100]])
    t.set(Tag.Make, "visage")
    t.set(Tag.Model, "test DNG")
    t.set(Tag.DNGVersion, DNGVersion.V1_4)
    t.set(Tag.DNGBackwardVersion, DNGVersion.V1_2)
    r = RAW2DNG()
    r.options(t, path="", compress=False)
    r.convert(raw, filename=out[: -len(".dng")])
    add_preview(out, preview)


def add_preview(path, jpeg_path):
    """Append a JPEG preview IFD (NewSubFileType 1, Compression 7, YCbCr) and point a new SubIFDs
    tag of IFD0 at it (IFD0 is rewritten at the end of the file; the old one is left unused)."""
    data = bytearray(open(path, "rb").read())
    jpeg = open(jpeg_path, "rb").read()
    pw, ph = Image.open(jpeg_path).size
    assert data[:4] == b"II*\0", "pidng writes little-endian TIFF"
    ifd0 = struct.unpack_from("<I", data, 4)[0]
    n = struct.unpack_from("<H", data, ifd0)[0]
    entries = [bytes(data[ifd0 + 2 + 12 * i: ifd0 + 14 + 12 * i]) for i in range(n)]

    def align():
        if len(data) % 2:
            data.append(0)

    def entry(tag, kind, count, value):
        inline = struct.pack("<H", value) + b"\0\0" if kind == 3 and count == 1 else struct.pack("<I", value)
        return struct.pack("<HHI", tag, kind, count) + inline

    align()
    jpeg_at = len(data)
    data += jpeg
    align()
    bits_at = len(data)
    data += struct.pack("<3H", 8, 8, 8)
    preview = [
        entry(254, 4, 1, 1),  # NewSubFileType: a reduced-resolution image
        entry(256, 4, 1, pw),
        entry(257, 4, 1, ph),
        entry(258, 3, 3, bits_at),  # BitsPerSample 8, 8, 8
        entry(259, 3, 1, 7),  # Compression: JPEG
        entry(262, 3, 1, 6),  # PhotometricInterpretation: YCbCr
        entry(273, 4, 1, jpeg_at),  # StripOffsets
        entry(277, 3, 1, 3),  # SamplesPerPixel
        entry(278, 4, 1, ph),  # RowsPerStrip
        entry(279, 4, 1, len(jpeg)),  # StripByteCounts
        entry(284, 3, 1, 1),  # PlanarConfiguration
    ]
    align()
    preview_at = len(data)
    data += struct.pack("<H", len(preview)) + b"".join(preview) + struct.pack("<I", 0)
    entries.append(entry(330, 4, 1, preview_at))  # SubIFDs
    entries.sort(key=lambda e: struct.unpack_from("<H", e)[0])
    align()
    new_ifd0 = len(data)
    data += struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", 0)
    struct.pack_into("<I", data, 4, new_ifd0)
    open(path, "wb").write(data)
