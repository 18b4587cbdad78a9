//! DBSCAN on a neighbour graph: a point with at least `min_points` points within the graph's
//! distance (itself included, as PhotoPrism counts) is a core point; clusters are the core points
//! reachable from each other through core points, plus the points next to them; everything else is
//! noise. Deterministic: points are visited in index order, so a border point next to two clusters
//! joins the one found first.

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
}
