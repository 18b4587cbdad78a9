//! Measuring how well embeddings separate people: pairwise distances between faces of labelled
//! people, the same-person vs different-person ROC AUC, the true-accept rate at a fixed false-accept
//! rate, and the threshold that best splits the two; and how well clusters match the people
//! (adjusted Rand index, pairwise and BCubed precision / recall / F).
//!
//! Pure arithmetic on labelled vectors; it runs no network and reads no files.

use serde::Serialize;

use crate::embedding::distance;

/// Verification quality of a labelled set of embeddings.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Separation {
    pub same_pairs: usize,
    pub different_pairs: usize,
    /// Probability that a random different-person pair is farther apart than a same-person pair.
    pub roc_auc: f64,
    /// Share of same-person pairs accepted at the largest threshold that accepts at most 0.1% of
    /// different-person pairs.
    pub tar_at_far_0_1_percent: f64,
    /// Distance threshold with the highest balanced accuracy (mean of the two accept rates).
    pub best_threshold: f32,
    pub best_balanced_accuracy: f64,
    pub same_mean_distance: f64,
    pub different_mean_distance: f64,
}

/// All pairwise distances, split into same-label and different-label pairs.
pub fn pair_distances(labels: &[usize], embeddings: &[Vec<f32>]) -> (Vec<f32>, Vec<f32>) {
    let (mut same, mut different) = (Vec::new(), Vec::new());
    for i in 0..labels.len() {
        for j in i + 1..labels.len() {
            let d = distance(&embeddings[i], &embeddings[j]);
            if labels[i] == labels[j] {
                same.push(d);
            } else {
                different.push(d);
            }
        }
    }
    (same, different)
}

/// Separation of same (should be small) and different (should be large) distances; `None` when
/// either set is empty.
pub fn separation(same: &[f32], different: &[f32]) -> Option<Separation> {
    if same.is_empty() || different.is_empty() {
        return None;
    }
    // Every distance once, ascending, with which side it came from.
    let mut all: Vec<(f32, bool)> = same
        .iter()
        .map(|&d| (d, true))
        .chain(different.iter().map(|&d| (d, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ns, nd) = (same.len() as f64, different.len() as f64);

    // AUC by the rank-sum (Mann-Whitney U) formula, ties counted as one half.
    let mut rank_sum_different = 0.0f64;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        let mid_rank = (i + j + 1) as f64 / 2.0; // ranks i+1..=j
        rank_sum_different += mid_rank * all[i..j].iter().filter(|p| !p.1).count() as f64;
        i = j;
    }
    let u = rank_sum_different - nd * (nd + 1.0) / 2.0;
    let roc_auc = u / (ns * nd);

    // Sweep thresholds: accept every pair with distance <= t.
    let (mut accepted_same, mut accepted_different) = (0usize, 0usize);
    let mut tar = 0.0;
    let (mut best_t, mut best_acc) = (0.0f32, 0.0f64);
    let mut k = 0;
    while k < all.len() {
        let t = all[k].0;
        while k < all.len() && all[k].0 == t {
            if all[k].1 {
                accepted_same += 1;
            } else {
                accepted_different += 1;
            }
            k += 1;
        }
        let tar_here = accepted_same as f64 / ns;
        let far_here = accepted_different as f64 / nd;
        if far_here <= 0.001 {
            tar = tar_here;
        }
        let balanced = (tar_here + 1.0 - far_here) / 2.0;
        if balanced > best_acc {
            let next = all.get(k).map_or(t, |p| p.0);
            (best_t, best_acc) = ((t + next) / 2.0, balanced);
        }
    }
    let mean = |v: &[f32]| v.iter().map(|&d| d as f64).sum::<f64>() / v.len() as f64;
    Some(Separation {
        same_pairs: same.len(),
        different_pairs: different.len(),
        roc_auc,
        tar_at_far_0_1_percent: tar,
        best_threshold: best_t,
        best_balanced_accuracy: best_acc,
        same_mean_distance: mean(same),
        different_mean_distance: mean(different),
    })
}

/// Agreement between clusters and the true people. Unclustered faces (noise) count as clusters
/// of one.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClusterScores {
    pub faces: usize,
    pub clusters: usize,
    pub noise: usize,
    pub adjusted_rand_index: f64,
    pub pairwise_precision: f64,
    pub pairwise_recall: f64,
    pub pairwise_f: f64,
    pub bcubed_precision: f64,
    pub bcubed_recall: f64,
    pub bcubed_f: f64,
}

impl ClusterScores {
    /// One line: ARI, pairwise P/R/F and BCubed F.
    pub fn describe(&self) -> String {
        format!(
            "ARI {:.3}  pairwise P/R/F {:.3}/{:.3}/{:.3}  BCubed F {:.3}",
            self.adjusted_rand_index,
            self.pairwise_precision,
            self.pairwise_recall,
            self.pairwise_f,
            self.bcubed_f
        )
    }
}

fn pairs(k: usize) -> f64 {
    (k * k.saturating_sub(1)) as f64 / 2.0
}

fn harmonic(p: f64, r: f64) -> f64 {
    if p + r > 0.0 {
        2.0 * p * r / (p + r)
    } else {
        0.0
    }
}

/// Score predicted clusters (`None` = noise) against true labels.
pub fn cluster_scores(truth: &[usize], predicted: &[Option<u32>]) -> ClusterScores {
    assert_eq!(truth.len(), predicted.len());
    let n = truth.len();
    let clusters = predicted
        .iter()
        .flatten()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    // Noise points become clusters of their own, numbered after the real ones.
    let pred: Vec<usize> = predicted
        .iter()
        .enumerate()
        .map(|(i, p)| p.map_or(clusters + i, |c| c as usize))
        .collect();
    let mut cells: std::collections::HashMap<(usize, usize), usize> = Default::default();
    let mut rows: std::collections::HashMap<usize, usize> = Default::default();
    let mut cols: std::collections::HashMap<usize, usize> = Default::default();
    for (&t, &p) in truth.iter().zip(&pred) {
        *cells.entry((t, p)).or_default() += 1;
        *rows.entry(t).or_default() += 1;
        *cols.entry(p).or_default() += 1;
    }
    let index: f64 = cells.values().map(|&c| pairs(c)).sum();
    let sum_rows: f64 = rows.values().map(|&c| pairs(c)).sum();
    let sum_cols: f64 = cols.values().map(|&c| pairs(c)).sum();
    let expected = if n > 1 {
        sum_rows * sum_cols / pairs(n)
    } else {
        0.0
    };
    let max = (sum_rows + sum_cols) / 2.0;
    let ari = if max - expected == 0.0 {
        1.0
    } else {
        (index - expected) / (max - expected)
    };
    let precision = if sum_cols > 0.0 {
        index / sum_cols
    } else {
        1.0
    };
    let recall = if sum_rows > 0.0 {
        index / sum_rows
    } else {
        1.0
    };
    let (mut bp, mut br) = (0.0, 0.0);
    for (&t, &p) in truth.iter().zip(&pred) {
        let both = cells[&(t, p)] as f64;
        bp += both / cols[&p] as f64;
        br += both / rows[&t] as f64;
    }
    let (bp, br) = (bp / n.max(1) as f64, br / n.max(1) as f64);
    ClusterScores {
        faces: n,
        clusters,
        noise: predicted.iter().filter(|p| p.is_none()).count(),
        adjusted_rand_index: ari,
        pairwise_precision: precision,
        pairwise_recall: recall,
        pairwise_f: harmonic(precision, recall),
        bcubed_precision: bp,
        bcubed_recall: br,
        bcubed_f: harmonic(bp, br),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_scores_of_perfect_split_and_known_cases() {
        let perfect = cluster_scores(&[0, 0, 1, 1], &[Some(5), Some(5), Some(2), Some(2)]);
        assert_eq!(perfect.adjusted_rand_index, 1.0);
        assert_eq!(perfect.pairwise_f, 1.0);
        assert_eq!(perfect.bcubed_f, 1.0);
        // Everything in one cluster: recall 1, precision = same pairs / all pairs = 2/6.
        let one = cluster_scores(&[0, 0, 1, 1], &[Some(0); 4]);
        assert!((one.pairwise_precision - 2.0 / 6.0).abs() < 1e-12);
        assert_eq!(one.pairwise_recall, 1.0);
        assert!(one.adjusted_rand_index.abs() < 1e-12);
        // All noise: each face alone, no same-cluster pairs.
        let noise = cluster_scores(&[0, 0, 1], &[None, None, None]);
        assert_eq!((noise.clusters, noise.noise), (0, 3));
        assert_eq!(noise.pairwise_recall, 0.0);
        assert_eq!(noise.bcubed_precision, 1.0);
        assert!((noise.bcubed_recall - (0.5 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
        // A textbook ARI: truth [0,0,0,1,1,1], clusters [0,0,1,1,2,2] -> 0.2424...
        let t = cluster_scores(
            &[0, 0, 0, 1, 1, 1],
            &[Some(0), Some(0), Some(1), Some(1), Some(2), Some(2)],
        );
        assert!(
            (t.adjusted_rand_index - 0.242_424_242).abs() < 1e-6,
            "{}",
            t.adjusted_rand_index
        );
    }

    #[test]
    fn perfectly_separated_sets_score_one() {
        let s = separation(&[0.1, 0.2, 0.3], &[0.9, 1.0, 1.1, 1.2]).unwrap();
        assert_eq!(s.roc_auc, 1.0);
        assert_eq!(s.tar_at_far_0_1_percent, 1.0);
        assert_eq!(s.best_balanced_accuracy, 1.0);
        assert!(s.best_threshold > 0.3 && s.best_threshold < 0.9);
    }

    #[test]
    fn auc_counts_ties_as_half_and_overlap_lowers_it() {
        // One same pair at 0.5 ties one different pair at 0.5: 11.5 of 12 orderings are right.
        let s = separation(&[0.1, 0.5, 0.2], &[0.5, 0.9, 1.0, 1.1]).unwrap();
        assert!((s.roc_auc - 11.5 / 12.0).abs() < 1e-12, "{}", s.roc_auc);
        // Reversed sets: everything is wrong.
        let s = separation(&[1.0, 1.1], &[0.1, 0.2]).unwrap();
        assert_eq!(s.roc_auc, 0.0);
        assert_eq!(s.tar_at_far_0_1_percent, 0.0);
        assert!(separation(&[], &[1.0]).is_none());
    }

    #[test]
    fn pairs_are_split_by_label() {
        let e = vec![vec![0.0, 0.0], vec![3.0, 4.0], vec![0.0, 1.0]];
        let (same, different) = pair_distances(&[7, 7, 8], &e);
        assert_eq!(same, vec![5.0]);
        assert_eq!(different, vec![1.0, (9.0f32 + 9.0).sqrt()]);
    }
}
