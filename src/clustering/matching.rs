//! Matching a face to known clusters, as PhotoPrism does: a face may join a cluster when its
//! distance to the cluster's centroid is within the cluster's sample radius plus the match
//! distance. Clusters whose person was set by hand win over automatic ones; a face about equally
//! close to two different identities is ambiguous rather than guessed; a person the face was
//! rejected for is never a candidate.
//!
//! Pure decision over vectors: it reads and writes nothing.

use crate::embedding::distance;
use crate::graph::LANES;
use crate::graph::cpu::squared_distance;

/// Distance in eight interleaved sums, which the compiler vectorises (2.5x the plain sum:
/// `cargo bench --profile dev --bench graph -- match`, 629 -> 255 ms for 1000 x 1000); the plain
/// sum for dimensions it does not cover.
fn fast_distance(a: &[f32], b: &[f32]) -> f32 {
    if a.len() == b.len() && a.len().is_multiple_of(LANES) {
        squared_distance(a, b).sqrt()
    } else {
        distance(a, b)
    }
}

/// Two candidates whose distances differ by less than this are "equally close".
pub const AMBIGUITY_MARGIN: f32 = 0.02;

/// A cluster a face could join.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub centroid: &'a [f32],
    pub radius: f32,
    /// Named (or ignored) by hand: wins over automatic clusters.
    pub manual: bool,
    /// Who the cluster is: its person, or for an unnamed cluster something unique to it.
    pub identity: Identity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    Person(i64),
    Cluster(i64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Match {
    /// Join the target at this index, at this distance.
    Join(usize, f32),
    /// Two identities are equally close.
    Ambiguous,
    None,
}

/// The decision for one face. `rejected` lists the people it must not be matched to.
pub fn best_match(
    embedding: &[f32],
    targets: &[Target],
    rejected: &[i64],
    match_distance: f32,
) -> Match {
    let candidates: Vec<(usize, f32)> = targets
        .iter()
        .enumerate()
        .map(|(k, t)| (k, fast_distance(embedding, t.centroid)))
        .filter(|&(k, d)| d <= targets[k].radius + match_distance)
        .collect();
    choose(candidates, targets, rejected)
}

/// The decision for one face among the targets within reach of it (`(index, distance)`, each
/// within its target's radius plus the match distance), as [`best_match`] decides: a caller
/// that finds those candidates faster (a range search over many faces) gets the same answer.
pub fn choose(mut candidates: Vec<(usize, f32)>, targets: &[Target], rejected: &[i64]) -> Match {
    candidates.retain(
        |(k, _)| !matches!(targets[*k].identity, Identity::Person(p) if rejected.contains(&p)),
    );
    if candidates.iter().any(|&(k, _)| targets[k].manual) {
        candidates.retain(|&(k, _)| targets[k].manual);
    }
    candidates.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let Some(&(best, d)) = candidates.first() else {
        return Match::None;
    };
    let rival = candidates[1..]
        .iter()
        .find(|&&(k, _)| targets[k].identity != targets[best].identity);
    match rival {
        Some(&(_, d2)) if d2 - d < AMBIGUITY_MARGIN => Match::Ambiguous,
        _ => Match::Join(best, d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(angle: f32) -> Vec<f32> {
        vec![angle.cos(), angle.sin()]
    }

    #[test]
    fn nearest_within_radius_plus_offset_manual_first_ambiguous_and_rejected() {
        let (a, b, c) = (unit(0.0), unit(1.0), unit(2.0));
        let targets = [
            Target {
                centroid: &a,
                radius: 0.1,
                manual: false,
                identity: Identity::Cluster(1),
            },
            Target {
                centroid: &b,
                radius: 0.1,
                manual: true,
                identity: Identity::Person(7),
            },
            Target {
                centroid: &c,
                radius: 0.1,
                manual: false,
                identity: Identity::Cluster(3),
            },
        ];
        // Close to a only.
        assert!(matches!(
            best_match(&unit(0.05), &targets, &[], 0.2),
            Match::Join(0, _)
        ));
        // Far from everything.
        assert_eq!(best_match(&unit(4.0), &targets, &[], 0.2), Match::None);
        // Within reach of both a (auto, nearer) and b (manual): the manual cluster wins.
        assert!(matches!(
            best_match(&unit(0.45), &targets, &[], 0.5),
            Match::Join(1, _)
        ));
        // ...unless the face was rejected for b's person.
        assert!(matches!(
            best_match(&unit(0.45), &targets, &[7], 0.5),
            Match::Join(0, _)
        ));
        // Half-way between the two automatic clusters (b rejected): ambiguous.
        assert_eq!(
            best_match(&unit(1.0), &targets, &[7], 0.9),
            Match::Ambiguous
        );
    }
}
