#!/usr/bin/env bash
# Issue 11, side by side in one run: what visage's detection stage finds on the reference set and on
# the border set (faces cut by the frame or filling it, tests/common/border.rs), before (PICO alone:
# windows inside the frame, angles 0,+-20, as up to 2026-12) and after (the defaults: PICO upright
# with border windows, MTCNN's proposals, O-Net), against SCRFD (as Immich runs it) and dlib's HOG
# and CNN detectors; then the detection stage's time per photo, before and after, alternating.
# Usage: benches/peers/compare_border.sh [ROUNDS]   (peers: see peer_detect.py; PEER_CNN=0 skips dlib CNN, about 4 min on the reference set; not run on the border set, about 30 min)
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${PYTHON:-python3}"
rounds="${1:-3}"
data="${VISAGE_TESTDATA:-${XDG_CACHE_HOME:-$HOME/.cache}/visage/testdata}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" RUST_LOG=warn
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo build --quiet
visage="${CARGO_TARGET_DIR:-target}/debug/visage"
VISAGE_BORDER_SET="$out/border" cargo test --quiet --test tests -- --ignored --exact border::write_border_set >/dev/null
score="benches/peers/score_detections.py"
ref=tests/data/reference_faces.json
border="$out/border/reference.json"
before=(--face-proposals off --face-border 0 --face-angles=0,-20,20)
with_face() { "$py" -c "import json,sys; print(sum(1 for l in open(sys.argv[1]) if '/celebrity/' in l and json.loads(l)['faces']))" "$1"; }

echo "== reference set (122 photos, 126 faces) and border set ($(ls "$out/border" | grep -c png) crops), IoU >= 0.4"
row() {  # label, visage flags...
  local label="$1"; shift
  "$visage" detect --json --device cpu "$@" "$data/celebrity" "$data/group" > "$out/r.jsonl"
  "$visage" detect --json --device cpu "$@" --face-size 20 "$data/celebrity" > "$out/s.jsonl"
  "$visage" detect --json --device cpu "$@" "$out/border" > "$out/b.jsonl"
  printf '%-44s ref: %s | border: %s | celebrity photos with a face at --face-size 20: %s\n' "$label" \
    "$("$py" $score $ref "$out/r.jsonl" | tail -n 1)" "$("$py" $score "$border" "$out/b.jsonl" | tail -n 1)" \
    "$(with_face "$out/s.jsonl")"
}
row "visage before (PICO alone, old defaults)" "${before[@]}"
row "visage PICO + border windows, upright" --face-proposals off
for pad in mirror grey black; do row "visage PICO + border windows, $pad" --face-proposals off --face-padding "$pad"; done
row "visage defaults, border windows off" --face-border 0
row "visage defaults, angles 0,+-20" --face-angles=0,-20,20
row "visage defaults" 
for peer in scrfd hog cnn; do
  [ "$peer" = cnn ] && [ "${PEER_CNN:-1}" != 1 ] && continue
  "$py" benches/peers/peer_detect.py $peer "$data/celebrity" "$data/group" > "$out/r.jsonl"
  b="(not run: slow)"
  if [ "$peer" != cnn ]; then
    "$py" benches/peers/peer_detect.py $peer "$out/border" > "$out/b.jsonl"
    b="$("$py" $score "$border" "$out/b.jsonl" | tail -n 1)"
  fi
  printf '%-44s ref: %s | border: %s | celebrity photos with a face: %s\n' "$peer" \
    "$("$py" $score $ref "$out/r.jsonl" | tail -n 1)" "$b" "$(with_face "$out/r.jsonl")"
done

echo "== detection stage (PICO + proposals + O-Net), ms per photo, 122 photos, $rounds alternating rounds"
stage() { "$visage" bench index --device cpu "$@" "$data/celebrity" "$data/group" | "$py" -c "
import json, sys
d = json.load(sys.stdin); s = d['stages']
print(f\"{1e3 * (s['detect'] + s['propose'] + s['onet']) / d['photos']:.2f} (PICO {1e3 * s['detect'] / d['photos']:.2f}, proposals {1e3 * s['propose'] / d['photos']:.2f}, O-Net {1e3 * s['onet'] / d['photos']:.2f})\")"; }
for i in $(seq "$rounds"); do
  echo "round $i before: $(stage "${before[@]}")"
  echo "round $i after:  $(stage)"
done
