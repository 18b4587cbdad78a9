// PICO cascade scan: one invocation per window (level, row, column) of every image in a batch.
// Mirrors src/detection/scan/cpu.rs exactly: integer sample positions, heap-ordered trees,
// rejection as soon as the running sum is <= the tree's threshold. Survivors are appended
// to `hits` through an atomic counter; the host sorts and merges them.

struct Params {
    total_windows: u32,
    level_count: u32,
    capacity: u32,
    tree_count: u32,
    depth: u32,
    groups_x: u32,
    _pad0: u32,
    _pad1: u32,
}

struct Level {
    first_window: u32, // index of this level's first window in the batch
    cols: u32,
    size: u32,
    step: u32,
    offset: u32,
    qcos: i32,
    qsin: i32,
    image: u32,        // index into `images`
}

struct Image {
    word_offset: u32,  // where the image's pixels start in `pixels` (4 pixels per word)
    width: u32,
    height: u32,
    padding: u32,      // low byte: 0 replicate, 1 mirror, 2 constant; next byte: the constant
}

struct Hit {
    level: u32,        // index into `levels` (batch-wide)
    row: u32,
    col: u32,
    score: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> leaves: array<f32>;
@group(0) @binding(3) var<storage, read> thresholds: array<f32>;
@group(0) @binding(4) var<storage, read> pixels: array<u32>;
@group(0) @binding(5) var<storage, read> levels: array<Level>;
@group(0) @binding(6) var<storage, read> images: array<Image>;
@group(0) @binding(7) var<storage, read_write> hit_count: atomic<u32>;
@group(0) @binding(8) var<storage, read_write> hits: array<Hit>;

const WORKGROUP: u32 = 64u;

// The pixel at (r, c), which may lie outside the image: then the image's padding decides, as
// `Padding::fetch` does on the CPU.
fn pixel(img: Image, r: i32, c: i32) -> u32 {
    let h = i32(img.height);
    let w = i32(img.width);
    let mode = img.padding & 0xffu;
    let outside = r < 0 || r >= h || c < 0 || c >= w;
    if (mode == 2u && outside) {
        return (img.padding >> 8u) & 0xffu;
    }
    var rr = r;
    var cc = c;
    if (mode == 1u) {
        rr = select(rr, -rr - 1, rr < 0);
        rr = select(rr, 2 * h - 1 - rr, rr >= h);
        cc = select(cc, -cc - 1, cc < 0);
        cc = select(cc, 2 * w - 1 - cc, cc >= w);
    }
    rr = clamp(rr, 0, h - 1);
    cc = clamp(cc, 0, w - 1);
    let i = u32(rr) * img.width + u32(cc);
    let word = pixels[img.word_offset + (i >> 2u)];
    return (word >> ((i & 3u) * 8u)) & 0xffu;
}

// The last level whose first window is <= id.
fn find_level(id: u32) -> u32 {
    var lo = 0u;
    var hi = params.level_count - 1u;
    while (lo < hi) {
        let mid = (lo + hi + 1u) / 2u;
        if (levels[mid].first_window <= id) {
            lo = mid;
        } else {
            hi = mid - 1u;
        }
    }
    return lo;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) local: u32) {
    let id = (wg.y * params.groups_x + wg.x) * WORKGROUP + local;
    if (id >= params.total_windows) {
        return;
    }
    let li = find_level(id);
    let level = levels[li];
    let img = images[level.image];
    let k = id - level.first_window;
    let row = level.offset + (k / level.cols) * level.step;
    let col = level.offset + (k % level.cols) * level.step;

    let s = i32(level.size);
    let kc = s * level.qcos;
    let ks = s * level.qsin;
    let r0 = i32(row) << 16u;
    let c0 = i32(col) << 16u;

    let nodes = (1u << params.depth) - 1u;
    let nleaves = 1u << params.depth;
    var sum = 0.0;
    for (var t = 0u; t < params.tree_count; t = t + 1u) {
        let base = t * nodes;
        var idx = 0u;
        for (var d = 0u; d < params.depth; d = d + 1u) {
            let code = bitcast<i32>(codes[base + idx]);
            let r1 = extractBits(code, 0u, 8u);
            let c1 = extractBits(code, 8u, 8u);
            let r2 = extractBits(code, 16u, 8u);
            let c2 = extractBits(code, 24u, 8u);
            let p1 = pixel(img, (r0 + kc * r1 - ks * c1) >> 16u, (c0 + ks * r1 + kc * c1) >> 16u);
            let p2 = pixel(img, (r0 + kc * r2 - ks * c2) >> 16u, (c0 + ks * r2 + kc * c2) >> 16u);
            idx = 2u * idx + 1u + select(0u, 1u, p1 <= p2);
        }
        sum = sum + leaves[t * nleaves + idx - nodes];
        if (sum <= thresholds[t]) {
            return;
        }
    }
    let slot = atomicAdd(&hit_count, 1u);
    if (slot < params.capacity) {
        hits[slot] = Hit(li, row, col, sum - thresholds[params.tree_count - 1u]);
    }
}
