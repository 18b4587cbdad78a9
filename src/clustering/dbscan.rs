//! DBSCAN on a neighbour graph: a point with at least `min_points` points within the graph's
//! distance (itself included, as PhotoPrism counts) is a core point; clusters are the core points
//! reachable from each other through core points, plus the points next to them; everything else is
//! noise. Deterministic: points are visited in index order, so a border point next to two clusters
//! joins the one found first.
//!
//! [`dbscan`] walks a neighbour graph in memory. [`Streamed`] gives the same labels from the
//! pairs read three times (a graph on disk, in parts, larger than memory): a count per point
//! first, then the core points joined through their pairs (union-find, each component named by
//! its lowest point, which is the point the walk starts it from), then each border point given
//! the cluster, of those of its core neighbours, found first. It keeps four bytes a point for the
//! counts, four for the components and four for the labels, and nothing per pair.

use std::collections::VecDeque;

use crate::graph::NeighbourGraph;

/// A cluster label per point, `0..k` in order of discovery; `None` is noise.
pub fn dbscan(graph: &NeighbourGraph, min_points: usize) -> Vec<Option<u32>> {
    let n = graph.len();
    let is_core = |i: usize| graph.neighbours(i).len() + 1 >= min_points;
    let mut labels: Vec<Option<u32>> = vec![None; n];
    let mut next = 0u32;
    let mut queue = VecDeque::new();
    for start in 0..n {
        if labels[start].is_some() || !is_core(start) {
            continue;
        }
        labels[start] = Some(next);
        queue.push_back(start);
        while let Some(p) = queue.pop_front() {
            for &q in graph.neighbours(p) {
                let q = q as usize;
                if labels[q].is_none() {
                    labels[q] = Some(next);
                    // Only core points pass the cluster on.
                    if is_core(q) {
                        queue.push_back(q);
                    }
                }
            }
        }
        next += 1;
    }
    labels
}

/// What takes pairs a chunk at a time.
pub type PairSink<'a> = dyn FnMut(&[(u32, u32)]) + 'a;

/// Pairs handed over in chunks, as [`Streamed`] reads them: a call hands every pair to `each`.
pub type Pairs<'a, E> = dyn FnMut(&mut PairSink) -> Result<(), E> + 'a;

/// Labels of [`Streamed::labels`] for noise.
pub const NOISE: u32 = u32::MAX;

/// DBSCAN from pairs streamed three times: the labels [`dbscan`] gives over the graph of those pairs.
pub struct Streamed {
    /// Each point's neighbours.
    degree: Vec<u32>,
    min_points: u32,
}

impl Streamed {
    /// Count every point's neighbours: `pairs(each)` hands over every pair `(i, j)`, `i != j`,
    /// once, in chunks.
    pub fn count<E>(n: usize, min_points: usize, pairs: &mut Pairs<E>) -> Result<Self, E> {
        let mut degree = vec![0u32; n];
        pairs(&mut |chunk| {
            for &(i, j) in chunk {
                degree[i as usize] += 1;
                degree[j as usize] += 1;
            }
        })?;
        Ok(Streamed {
            degree,
            min_points: min_points.max(1) as u32,
        })
    }

    /// From each point's neighbours, counted already.
    pub fn from_degrees(degree: Vec<u32>, min_points: usize) -> Self {
        Streamed {
            degree,
            min_points: min_points.max(1) as u32,
        }
    }

    /// Points.
    pub fn len(&self) -> usize {
        self.degree.len()
    }

    pub fn is_empty(&self) -> bool {
        self.degree.is_empty()
    }

    /// Each point's neighbour count, itself included (what the store keeps for later runs).
    pub fn count_of(&self, i: usize) -> u32 {
        self.degree[i] + 1
    }

    fn core(&self, i: u32) -> bool {
        self.degree[i as usize] + 1 >= self.min_points
    }

    /// The clusters, from the same pairs handed over twice more: a label per point, `0..k` in
    /// order of discovery, [`NOISE`] for noise. The first pass joins the core points, the second
    /// gives each border point its cluster, so nothing is kept per pair.
    pub fn labels<E>(&self, pairs: &mut Pairs<E>) -> Result<Vec<u32>, E> {
        let n = self.degree.len();
        // Union-find over the core points; a component's root is its lowest point.
        let mut parent: Vec<u32> = (0..n as u32).collect();
        fn find(parent: &mut [u32], mut x: u32) -> u32 {
            while parent[x as usize] != x {
                let up = parent[parent[x as usize] as usize];
                parent[x as usize] = up;
                x = up;
            }
            x
        }
        pairs(&mut |chunk| {
            for &(i, j) in chunk {
                if self.core(i) && self.core(j) {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    if a != b {
                        let (lo, hi) = (a.min(b), a.max(b));
                        parent[hi as usize] = lo;
                    }
                }
            }
        })?;
        // Clusters in order of their lowest core point: the order the walk finds them in.
        let mut labels = vec![NOISE; n];
        let mut next = 0u32;
        for i in 0..n as u32 {
            if self.core(i) {
                let root = find(&mut parent, i);
                if root == i {
                    labels[i as usize] = next;
                    next += 1;
                } else {
                    labels[i as usize] = labels[root as usize];
                }
            }
        }
        drop(parent);
        // A border point joins the first-found of its core neighbours' clusters. Core points
        // have their labels already, and a border point's label is only ever lowered.
        pairs(&mut |chunk| {
            for &(i, j) in chunk {
                let (border, core) = match (self.core(i), self.core(j)) {
                    (true, false) => (j, i),
                    (false, true) => (i, j),
                    _ => continue,
                };
                let l = labels[core as usize];
                let slot = &mut labels[border as usize];
                if *slot == NOISE || l < *slot {
                    *slot = l;
                }
            }
        })?;
        Ok(labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Edge;

    fn graph(n: usize, pairs: &[(u32, u32)]) -> NeighbourGraph {
        let edges: Vec<Edge> = pairs.iter().map(|&(i, j)| Edge { i, j, d2: 0.1 }).collect();
        NeighbourGraph::from_edges(n, &edges)
    }

    #[test]
    fn cores_chain_borders_join_and_the_rest_is_noise() {
        // 0-1-2-3 a chain; 4 hangs off 3; 5 and 6 are a lone pair; 7 alone.
        let g = graph(8, &[(0, 1), (1, 2), (2, 3), (3, 4), (5, 6)]);
        // min 3 (itself + 2 neighbours): cores are 1, 2, 3.
        let labels = dbscan(&g, 3);
        assert_eq!(
            labels,
            vec![
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                Some(0),
                None,
                None,
                None
            ]
        );
        // min 2: every point with a neighbour is a core; two clusters.
        let labels = dbscan(&g, 2);
        assert_eq!(labels[5], Some(1));
        assert_eq!(labels[6], Some(1));
        assert_eq!(labels[7], None);
        // min 1: even a lone point is its own cluster.
        assert_eq!(dbscan(&g, 1)[7], Some(2));
    }

    #[test]
    fn a_border_point_does_not_pass_the_cluster_on() {
        // Star around 0 (core with 3 neighbours); 3 is a border point that also touches 4.
        let g = graph(5, &[(0, 1), (0, 2), (0, 3), (3, 4)]);
        let labels = dbscan(&g, 4);
        assert_eq!(labels, vec![Some(0), Some(0), Some(0), Some(0), None]);
    }

    #[test]
    fn streamed_pairs_give_the_walks_labels() {
        // Random graphs of clumps and chains, pairs in a shuffled order.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        for round in 0..60 {
            let n = 20 + next(300) as usize;
            let mut pairs: Vec<(u32, u32)> = Vec::new();
            for _ in 0..next(4 * n as u64) {
                let i = next(n as u64) as u32;
                // Mostly near neighbours, so clusters and borders form.
                let j = ((i as u64 + 1 + next(6)) % n as u64) as u32;
                if i != j && !pairs.contains(&(i.min(j), i.max(j))) {
                    pairs.push((i.min(j), i.max(j)));
                }
            }
            let edges: Vec<Edge> = pairs.iter().map(|&(i, j)| Edge { i, j, d2: 0.0 }).collect();
            let graph = NeighbourGraph::from_edges(n, &edges);
            for k in (1..pairs.len()).rev() {
                pairs.swap(k, next(k as u64 + 1) as usize);
            }
            for min_points in [1usize, 2, 3, 4, 6] {
                let want: Vec<u32> = dbscan(&graph, min_points)
                    .into_iter()
                    .map(|l| l.unwrap_or(NOISE))
                    .collect();
                let mut hand = |each: &mut PairSink| {
                    for chunk in pairs.chunks(7) {
                        each(chunk);
                    }
                    Ok::<(), ()>(())
                };
                let s = Streamed::count(n, min_points, &mut hand).unwrap();
                for i in 0..n {
                    assert_eq!(s.count_of(i) as usize, graph.neighbours(i).len() + 1);
                }
                assert_eq!(
                    s.labels(&mut hand).unwrap(),
                    want,
                    "round {round}, min {min_points}"
                );
            }
        }
    }
}
