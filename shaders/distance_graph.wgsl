// Neighbour graph: squared Euclidean distances between two blocks of embeddings, 16 x 16 pairs per
// workgroup, with both blocks' rows staged through workgroup memory 16 dimensions at a time. Only
// pairs closer than the threshold are written (appended through an atomic counter); nothing N x N
// is ever stored. When both blocks are the same rows, only pairs i < j are computed and emitted.
// A dispatch covers rows first_a..rows_a of block a (the host splits a block pair whose edges would
// not fit in one edge buffer) and every row of block b. Host code and CPU twin: src/graph/.

struct Params {
    rows_a: u32,       // rows in block a
    rows_b: u32,       // rows in block b
    dim: u32,          // floats per row, a multiple of 16
    same: u32,         // 1 when a and b are the same block
    base_a: u32,       // global index of a's first row
    base_b: u32,       // global index of b's first row
    capacity: u32,     // edges the output buffer holds
    max_d2: f32,       // emit pairs with squared distance < max_d2
    first_a: u32,      // first row of block a this dispatch covers (a multiple of 16)
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

struct Edge {
    i: u32,
    j: u32,
    d2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> count: atomic<u32>;
@group(0) @binding(4) var<storage, read_write> edges: array<Edge>;

const TILE: u32 = 16u;

// [row][k], padded to 17 columns against bank conflicts.
var<workgroup> tile_a: array<array<f32, 17>, 16>;
var<workgroup> tile_b: array<array<f32, 17>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let block_i = group.y + p.first_a / TILE;
    let block_j = group.x;
    // Below the diagonal of a block with itself: every pair is already covered by its mirror.
    if (p.same == 1u && block_j < block_i) {
        return;
    }
    let i = block_i * TILE + local.y;
    let j = block_j * TILE + local.x;
    // Rows this invocation stages into the tiles.
    let load_a = block_i * TILE + local.y;
    let load_b = block_j * TILE + local.y;
    // Eight partial sums (dimension k goes to sum k % 8), combined pairwise at the end: the CPU
    // twin adds in exactly this order.
    var lo = vec4<f32>(0.0);
    var hi = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.dim; k0 = k0 + TILE) {
        var va = 0.0;
        if (load_a < p.rows_a) {
            va = a[load_a * p.dim + k0 + local.x];
        }
        var vb = 0.0;
        if (load_b < p.rows_b) {
            vb = b[load_b * p.dim + k0 + local.x];
        }
        tile_a[local.y][local.x] = va;
        tile_b[local.y][local.x] = vb;
        workgroupBarrier();
        for (var k = 0u; k < TILE; k = k + 8u) {
            let ra = local.y;
            let rb = local.x;
            let d0 = vec4<f32>(
                tile_a[ra][k] - tile_b[rb][k],
                tile_a[ra][k + 1u] - tile_b[rb][k + 1u],
                tile_a[ra][k + 2u] - tile_b[rb][k + 2u],
                tile_a[ra][k + 3u] - tile_b[rb][k + 3u],
            );
            let d1 = vec4<f32>(
                tile_a[ra][k + 4u] - tile_b[rb][k + 4u],
                tile_a[ra][k + 5u] - tile_b[rb][k + 5u],
                tile_a[ra][k + 6u] - tile_b[rb][k + 6u],
                tile_a[ra][k + 7u] - tile_b[rb][k + 7u],
            );
            lo = lo + d0 * d0;
            hi = hi + d1 * d1;
        }
        workgroupBarrier();
    }
    let acc = ((lo.x + lo.y) + (lo.z + lo.w)) + ((hi.x + hi.y) + (hi.z + hi.w));
    if (i < p.rows_a && j < p.rows_b && acc < p.max_d2 && (p.same == 0u || j > i)) {
        let slot = atomicAdd(&count, 1u);
        if (slot < p.capacity) {
            edges[slot] = Edge(p.base_a + i, p.base_b + j, acc);
        }
    }
}
