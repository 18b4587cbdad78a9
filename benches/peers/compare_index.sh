#!/usr/bin/env bash
# Side-by-side: the whole index of the same photos, 2 threads each, whole process, alternating:
#   visage bench index --device cpu            (detect, O-Net, FaceNet; one JSON line with stage times)
#   benches/peers/immich_pipeline.py           (ONNX Runtime: SCRFD-500M at 640 px + MobileFaceNet)
#   benches/peers/face_recognition_peer.py     (dlib HOG + ResNet)
# Photos: the 5-celebrity set (118), the 4 group photos, and 8 large ones made from them: 4 group and 4
# celebrity photos upscaled to 4000 px on the long side (about 12 MP; upscaled, so no more detail than
# the originals). Usage: benches/peers/compare_index.sh [RUNS]   (default 3; see requirements.txt and
# the two peers' headers for their pip installs)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-3}"
py="${PYTHON:-python3}"
data="${VISAGE_TESTDATA:-${XDG_CACHE_HOME:-$HOME/.cache}/visage/testdata}"
visage="${CARGO_TARGET_DIR:-target}/debug/visage"
cargo build --quiet
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" RUST_LOG=warn RAYON_NUM_THREADS=2
set_dir="$(mktemp -d)"
trap 'rm -rf "$set_dir"' EXIT
cp -r "$data/celebrity" "$data/group" "$set_dir/"
mkdir -p "$set_dir/large"
"$py" - "$data" "$set_dir/large" <<'PY'
import glob, os, sys, cv2
data, out = sys.argv[1], sys.argv[2]
picks = sorted(glob.glob(f"{data}/group/*.jpg")) + sorted(glob.glob(f"{data}/celebrity/val/*/*.jpg"))[:4]
for i, p in enumerate(picks):
    img = cv2.imread(p)
    k = 4000 / max(img.shape[:2])
    big = cv2.resize(img, (round(img.shape[1] * k), round(img.shape[0] * k)), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(f"{out}/large-{i}-{os.path.basename(p)}", big, [cv2.IMWRITE_JPEG_QUALITY, 92])
PY
echo "photos: $(find "$set_dir" -type f | wc -l) ($(find "$set_dir/large" -type f | wc -l) large)"
for run in $(seq 1 "$runs"); do
  "$visage" bench index --device cpu "$set_dir"
  "$py" benches/peers/immich_pipeline.py --threads 2 "$set_dir"
  "$py" benches/peers/face_recognition_peer.py --threads 2 "$set_dir"
done
