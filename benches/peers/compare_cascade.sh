#!/usr/bin/env bash
# Issue 19: two visage binaries that differ in their cascade (before: mid-stage thresholds -1337.0, no
# window rejected mid-stage; after: Pigo's facefinder, -15.0) on every detection set, side by side:
#   - the faces each finds, PICO alone (`--scan-only`) and the whole detection stage, compared byte for
#     byte and scored: reference set (recall / precision / mean IoU), border set, the celebrity photos
#     with a face at --face-size 20, the turned and mirrored sets (benches/peers/transformed_sets.py);
#   - embedding quality (`visage eval` on the celebrity set);
#   - PICO's scan time: PAIRS alternating runs of `visage detect --scan-only --device cpu` (whole process)
#     on the 130 photos of compare_index.sh.
# Usage: benches/peers/compare_cascade.sh BEFORE_VISAGE AFTER_VISAGE [PAIRS]   (default 5 pairs)
#   BEFORE_VISAGE: a visage built at the commit before issue 19 (e.g. `git worktree add /tmp/old
#   ISSUE19^` and `cargo build` there); AFTER_VISAGE: this tree's. Needs Pillow and OpenCV (PYTHON),
#   the test photos and the models (the stage rows).
set -euo pipefail
cd "$(dirname "$0")/../.."
before="$(realpath "$1")" after="$(realpath "$2")" pairs="${3:-5}"
py="${PYTHON:-python3}"
data="${VISAGE_TESTDATA:-${XDG_CACHE_HOME:-$HOME/.cache}/visage/testdata}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" RUST_LOG=warn
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
score="benches/peers/score_detections.py"
ref=tests/data/reference_faces.json
VISAGE_BORDER_SET="$out/border" cargo test --quiet --test tests -- --ignored --exact border::write_border_set >/dev/null
"$py" benches/peers/transformed_sets.py "$data/celebrity" "$out/tr" >/dev/null
faces() { "$py" -c "import json,sys; print(sum(len(json.loads(l)['faces']) for l in open(sys.argv[1])))" "$1"; }
with_face() { "$py" -c "import json,sys; print(sum(1 for l in open(sys.argv[1]) if json.loads(l)['faces']))" "$1"; }

echo "== the same faces? (before | after; 'same' when the JSON lines are identical, scores included)"
row() {  # label, scorer (ref|border|count), flags and paths...
  local label="$1" kind="$2"; shift 2
  for b in before after; do
    local bin="$before"; [ "$b" = after ] && bin="$after"
    "$bin" detect --json --device cpu "$@" > "$out/$b.jsonl"
  done
  local same=DIFFERENT; cmp -s "$out/before.jsonl" "$out/after.jsonl" && same=same
  local s
  case "$kind" in
    ref) s="$("$py" $score $ref "$out/after.jsonl" | tail -n 1)";;
    border) s="$("$py" $score "$out/border/reference.json" "$out/after.jsonl" | tail -n 1)";;
    count) s="photos with a face: $(with_face "$out/before.jsonl") | $(with_face "$out/after.jsonl")";;
  esac
  printf '%-62s %-9s faces %s | %s; %s\n' "$label" "$same" "$(faces "$out/before.jsonl")" "$(faces "$out/after.jsonl")" "$s"
}
for pad in replicate mirror grey black; do  # issue 11's rows: PICO with border windows, then O-Net
  row "reference set, --face-proposals off --face-padding $pad" ref --face-proposals off --face-padding $pad "$data/celebrity" "$data/group"
  row "border set, --face-proposals off --face-padding $pad" border --face-proposals off --face-padding $pad "$out/border"
done
for stage in "--scan-only" ""; do
  name="PICO alone"; [ -z "$stage" ] && name="detection stage"
  row "reference set, $name" ref $stage "$data/celebrity" "$data/group"
  row "reference set, $name, --face-size 20" ref $stage --face-size 20 "$data/celebrity" "$data/group"
  row "reference set, $name, angles 0,+-20, no border windows" ref $stage --face-border 0 --face-angles=0,-20,20 "$data/celebrity" "$data/group"
  row "border set, $name" border $stage "$out/border"
  row "celebrity photos, $name, --face-size 20" count $stage --face-size 20 "$data/celebrity"
  for t in rot/25 rot/-25 rot/40 rot/-40 flip; do
    row "$t, $name" count $stage "$out/tr/$t"
    row "$t, $name, angles 0,+-20,+-40" count $stage --face-angles=0,-20,20,-40,40 "$out/tr/$t"
  done
done

echo "== embedding quality: visage eval --device cpu on the celebrity set (before, then after)"
for bin in "$before" "$after"; do "$bin" eval --device cpu "$data/celebrity" | sed 's/ ([0-9.]* s on [^)]*))$//'; done

echo "== PICO's scan, whole process, $pairs alternating pairs (130 photos, 8 of them 12 MP)"
mkdir -p "$out/set/large"
cp -r "$data/celebrity" "$data/group" "$out/set/"
"$py" - "$data" "$out/set/large" <<'PY'
import glob, os, sys, cv2
data, out = sys.argv[1], sys.argv[2]
picks = sorted(glob.glob(f"{data}/group/*.jpg")) + sorted(glob.glob(f"{data}/celebrity/val/*/*.jpg"))[:4]
for i, p in enumerate(picks):
    img = cv2.imread(p)
    k = 4000 / max(img.shape[:2])
    big = cv2.resize(img, (round(img.shape[1] * k), round(img.shape[0] * k)), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(f"{out}/large-{i}-{os.path.basename(p)}", big, [cv2.IMWRITE_JPEG_QUALITY, 92])
PY
"$py" - "$before" "$after" "$pairs" "$out/set" <<'PY'
import statistics, subprocess, sys, time
before, after, pairs, photos = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
import os
n = sum(len(files) for _, _, files in os.walk(photos))
def run(bin):
    t = time.perf_counter()
    subprocess.run([bin, "detect", "--scan-only", "--device", "cpu", photos], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t
run(before), run(after)  # warm the page cache
ratios = []
for i in range(pairs):
    if i % 2 == 0:  # which goes first alternates
        b = run(before)
        a = run(after)
    else:
        a = run(after)
        b = run(before)
    ratios.append(a / b)
    print(f"pair {i + 1}: before {b:.2f} s ({1e3 * b / n:.1f} ms/photo), after {a:.2f} s ({1e3 * a / n:.1f} ms/photo), after/before {a / b:.3f}")
print(f"median after/before {statistics.median(ratios):.3f} (range {min(ratios):.3f}-{max(ratios):.3f})")
PY
