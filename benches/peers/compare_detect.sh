#!/usr/bin/env bash
# Side-by-side: visage's detector against OpenCV's Haar cascade on the same real photos.
#   accuracy: recall / precision / mean IoU against tests/data/reference_faces.json
#   speed:    detection only (decoding not timed), 1 and 2 threads, t1.jpg (1280 px) and the whole set
# Usage: benches/peers/compare_detect.sh   (needs scripts/fetch-testdata and a Python with
#        benches/peers/requirements.txt; set PYTHON to choose it)
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${PYTHON:-python3}"
data="${VISAGE_TESTDATA:-${XDG_CACHE_HOME:-$HOME/.cache}/visage/testdata}"
out="$(mktemp -d)"
cargo build --quiet   # the build README's commands use (hot crates at opt-level 3, no debug assertions)
visage="${CARGO_TARGET_DIR:-target}/debug/visage"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" RUST_LOG=warn

echo "== accuracy on $(find "$data/celebrity" "$data/group" -type f -name '*.jpg' | wc -l) photos"
# PICO's scan alone (what Haar is compared with), then the whole detection stage.
for args in "--scan-only --face-size 50" "--scan-only --face-size 50 --face-angles=0,-20,20" "--scan-only --face-size 20" "--face-size 50" "--face-size 20"; do
  $visage detect --json --device cpu $args "$data/celebrity" "$data/group" > "$out/v.jsonl"
  printf 'visage %-32s ' "$args"; "$py" benches/peers/score_detections.py tests/data/reference_faces.json "$out/v.jsonl" | tail -n 1
done
for ms in 50 20; do
  "$py" benches/peers/haar_detect.py --threads 2 --min-size $ms --json "$out/h.jsonl" "$data/celebrity" "$data/group" > /dev/null
  printf 'haar   %-32s ' "--min-size $ms"; "$py" benches/peers/score_detections.py tests/data/reference_faces.json "$out/h.jsonl" | tail -n 1
done

echo "== speed (detection only)"
for threads in 1 2; do
  "$py" benches/peers/haar_detect.py --threads $threads --min-size 50 --repeat 10 "$data/group/t1.jpg" | sed -n 2p | sed "s/^/haar t1.jpg  threads=$threads min-size 50: /"
  "$py" benches/peers/haar_detect.py --threads $threads --min-size 50 --repeat 3 "$data/celebrity" "$data/group" | sed -n 2p | sed "s/^/haar set     threads=$threads min-size 50: /"
done
for threads in 1 2; do
  RAYON_NUM_THREADS=$threads cargo bench --quiet --profile dev --bench detect -- cpu > /dev/null 2>&1
  "$py" - "$threads" <<'PY'
import json, os, pathlib, sys
root = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or "target") / "criterion"
for est in sorted(root.glob("detect_*/*/new/estimates.json")):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    if "gpu" in bench["function_id"]:
        continue
    n = bench["throughput"]["Elements"]
    median_s = json.loads(est.read_text())["median"]["point_estimate"] * 1e-9
    print(f"visage {bench['group_id']}/{bench['function_id']:<17} threads={sys.argv[1]}: "
          f"{n / median_s:.1f} images/s ({median_s / n * 1e3:.1f} ms/image)")
PY
done
rm -rf "$out"
