#!/usr/bin/env bash
# Real FaceNet embeddings for a sanity check of the neighbour search (`visage bench graph --load`):
# every test photo in 24 variants (mirrored or not, turned -6/0/6 degrees, scaled 0.85/1.15, darker
# or lighter; benches/peers/photo_variants.py, needs Pillow), through the whole pipeline
# (`visage embed --json`), every face's 512 floats written to OUT/embeddings.f32.
# Usage: benches/peers/real_embeddings.sh OUT   (then: visage bench graph --load OUT/embeddings.f32
#        --distance 0.64 --approx --recall). The 123 test photos give about 3,000 faces.
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${PYTHON:-python3}"
out="${1:?usage: real_embeddings.sh OUT}"
testdata="${VISAGE_TESTDATA:-$HOME/.cache/visage/testdata}"
cargo build --quiet
visage="${CARGO_TARGET_DIR:-target}/debug/visage"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" RUST_LOG=warn
mkdir -p "$out"
"$py" benches/peers/photo_variants.py "$testdata" "$out/photos"
"$visage" embed --json "$out/photos" > "$out/faces.jsonl"
python3 - "$out/faces.jsonl" "$out/embeddings.f32" <<'PY'
import json, struct, sys
rows = 0
with open(sys.argv[2], "wb") as out:
    for line in open(sys.argv[1]):
        for face in json.loads(line)["faces"]:
            out.write(struct.pack("<512f", *face["embedding"]))
            rows += 1
print(f"{rows} faces -> {sys.argv[2]}")
PY
