//! Matching faces to people and clusters: the decisions, as pure code over vectors (it reads and
//! writes nothing).
//!
//! - **People** ([`PersonMatcher`]): a face is compared with each person's faces named by hand
//!   (confirmed suggestions included), never with faces matched automatically, so a person's
//!   reach cannot creep. A person's distance is the nearer of their nearest named face and the
//!   mean of their named faces (their centroid: a steadier prototype once several are named). A
//!   face joins the nearest person within [`Reach::auto`]: PhotoPrism's sample radius clamp
//!   ([`SAMPLE_RADIUS_CLAMP`]) plus the match distance, so every named face and every centroid
//!   stands for a sample of that radius. A person the face was rejected for is never a
//!   candidate, and a face about as close to a second person is left unassigned as ambiguous.
//! - **Suggestions** reach further ([`Reach::suggest`]), because a person confirms them, but never
//!   past where this FaceNet stops telling people apart ([`SEPARATION`]).
//! - **Automatic clusters** ([`best_match`]): a face may join an unnamed cluster when its distance
//!   to the centroid is within the cluster's sample radius, clamped as PhotoPrism clamps it, plus
//!   the match distance.
//!
//! The distances are calibrated for this FaceNet: see BENCHMARKS.md, "Naming that converges".

use crate::embedding::distance;
use crate::graph::LANES;
use crate::graph::cpu::squared_distance;

/// Distance in eight interleaved sums, which the compiler vectorises (2.5x the plain sum:
/// `cargo bench --profile dev --bench graph -- match`, 629 -> 255 ms for 1000 x 1000); the plain
/// sum for dimensions it does not cover.
pub fn fast_distance(a: &[f32], b: &[f32]) -> f32 {
    fast_squared(a, b).sqrt()
}

fn fast_squared(a: &[f32], b: &[f32]) -> f32 {
    if a.len() == b.len() && a.len().is_multiple_of(LANES) {
        squared_distance(a, b)
    } else {
        let d = distance(a, b);
        d * d
    }
}

/// Two candidates whose distances differ by less than this are "equally close".
pub const AMBIGUITY_MARGIN: f32 = 0.02;

/// PhotoPrism's largest sample radius of a cluster (0.35, raised to 0.42 in 2025): a cluster never
/// reaches further than this plus the match distance, whatever its members' spread.
pub const SAMPLE_RADIUS_CLAMP: f32 = 0.42;

/// Where this FaceNet stops telling people apart: on pairs of labelled people the false-accept
/// rate stays at 0.1% up to about 1.02, and the equal-error point is 1.04. Nothing reaches
/// further.
pub const SEPARATION: f32 = 1.0;

/// How far suggestions reach from a person's nearest named (or already suggested) face: a person
/// confirms them.
pub const SUGGEST_REACH: f32 = SEPARATION;

/// A second person closer than the best one plus this leaves a face ambiguous for automatic
/// matching (and keeps it out of suggestions, where only the nearest person may suggest it).
pub const PERSON_MARGIN: f32 = 0.1;

/// How far a person's named faces reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reach {
    /// Automatic matching: a face within this of a person's nearest named face joins them.
    pub auto: f32,
    /// Suggestions: a face within this may be offered for confirmation.
    pub suggest: f32,
    /// A rival person within the best distance plus this makes the face ambiguous.
    pub margin: f32,
}

impl Reach {
    /// The reach for the match distance setting (PhotoPrism's offset over a sample radius).
    pub fn new(match_distance: f32) -> Self {
        let auto = (SAMPLE_RADIUS_CLAMP + match_distance).min(SEPARATION);
        Reach {
            auto,
            suggest: SUGGEST_REACH.max(auto),
            margin: PERSON_MARGIN,
        }
    }
}

/// The decision for one face about people.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PersonMatch {
    /// Join this person: the distance to their nearest named face, and that face's row in the
    /// matcher (see [`PersonMatcher::face`]).
    Join {
        person: i64,
        distance: f32,
        row: usize,
    },
    /// Two people are about equally close.
    Ambiguous,
    None,
}

/// Every person's faces named by hand, grouped by person, as flat rows.
#[derive(Debug, Clone, Default)]
pub struct PersonMatcher {
    dim: usize,
    /// Person ids, ascending; person `k`'s rows are `starts[k]..starts[k + 1]`.
    people: Vec<i64>,
    starts: Vec<usize>,
    rows: Vec<f32>,
    /// An id the caller gave each row (the face id).
    ids: Vec<i64>,
    /// Each person's mean named face, `dim` floats a person.
    centroids: Vec<f32>,
}

impl PersonMatcher {
    /// From `(person, face id, embedding)` for each face named by hand, in any order.
    pub fn new<'a>(named: impl IntoIterator<Item = (i64, i64, &'a [f32])>) -> Self {
        let mut named: Vec<(i64, i64, &[f32])> = named.into_iter().collect();
        named.sort_by_key(|&(p, f, _)| (p, f));
        let dim = named.first().map_or(0, |n| n.2.len());
        let mut m = PersonMatcher {
            dim,
            rows: Vec::with_capacity(named.len() * dim),
            ..PersonMatcher::default()
        };
        for (p, f, e) in named {
            if e.len() != dim {
                continue;
            }
            if m.people.last() != Some(&p) {
                m.people.push(p);
                m.starts.push(m.ids.len());
            }
            m.rows.extend_from_slice(e);
            m.ids.push(f);
        }
        m.starts.push(m.ids.len());
        for k in 0..m.people.len() {
            let rows = m.starts[k]..m.starts[k + 1];
            let n = rows.len() as f32;
            let mut c = vec![0f32; dim];
            for row in rows {
                for (c, v) in c.iter_mut().zip(&m.rows[row * dim..(row + 1) * dim]) {
                    *c += v / n;
                }
            }
            m.centroids.extend(c);
        }
        m
    }

    pub fn is_empty(&self) -> bool {
        self.people.is_empty()
    }

    /// The people with named faces.
    pub fn people(&self) -> &[i64] {
        &self.people
    }

    /// Every named face's embedding, person by person, `named() * dim` floats.
    pub fn rows(&self) -> &[f32] {
        &self.rows
    }

    /// The named faces' embeddings of the `k`-th person of [`Self::people`].
    pub fn rows_of(&self, k: usize) -> &[f32] {
        &self.rows[self.starts[k] * self.dim..self.starts[k + 1] * self.dim]
    }

    /// How many faces are named, in all.
    pub fn named(&self) -> usize {
        self.ids.len()
    }

    /// The face id of row `row`.
    pub fn face(&self, row: usize) -> i64 {
        self.ids[row]
    }

    /// `person`'s centroid (the mean of their named faces) and how many faces it is the mean of.
    pub fn centroid(&self, person: i64) -> Option<(&[f32], usize)> {
        let k = self.slot(person)?;
        Some((
            &self.centroids[k * self.dim..(k + 1) * self.dim],
            self.starts[k + 1] - self.starts[k],
        ))
    }

    fn slot(&self, person: i64) -> Option<usize> {
        self.people.binary_search(&person).ok()
    }

    /// Squared distance from `face` to person slot `k`: to the nearer of their nearest named face
    /// and their centroid; and the row of the nearest named face.
    fn nearest_squared(&self, face: &[f32], k: usize) -> (f32, usize) {
        let mut best = (f32::INFINITY, usize::MAX);
        for row in self.starts[k]..self.starts[k + 1] {
            let d = fast_squared(face, &self.rows[row * self.dim..(row + 1) * self.dim]);
            if d < best.0 {
                best = (d, row);
            }
        }
        let centroid = fast_squared(face, &self.centroids[k * self.dim..(k + 1) * self.dim]);
        (best.0.min(centroid), best.1)
    }

    /// Distance from `face` to `person` (their nearest named face or centroid; infinite if they
    /// have none).
    pub fn nearest(&self, face: &[f32], person: i64) -> f32 {
        self.slot(person)
            .map_or(f32::INFINITY, |k| self.nearest_squared(face, k).0.sqrt())
    }

    /// Each person's nearest named face (person, distance, row), nearest person first, leaving
    /// out `rejected` people.
    pub fn ranked(&self, face: &[f32], rejected: &[i64]) -> Vec<(i64, f32, usize)> {
        let mut out: Vec<(i64, f32, usize)> = (0..self.people.len())
            .filter(|&k| !rejected.contains(&self.people[k]))
            .map(|k| {
                let (d2, row) = self.nearest_squared(face, k);
                (self.people[k], d2.sqrt(), row)
            })
            .collect();
        out.sort_by(|a, b| a.1.total_cmp(&b.1));
        out
    }

    /// The decision for one face against every person.
    pub fn decide(&self, face: &[f32], rejected: &[i64], reach: Reach) -> PersonMatch {
        let ranked = self.ranked(face, rejected);
        let Some(&(person, d, row)) = ranked.first() else {
            return PersonMatch::None;
        };
        if d > reach.auto {
            return PersonMatch::None;
        }
        match ranked.get(1) {
            Some(&(_, d2, _)) if d2 < d + reach.margin => PersonMatch::Ambiguous,
            _ => PersonMatch::Join {
                person,
                distance: d,
                row,
            },
        }
    }

    /// The decision for one face when only `candidates` changed: a face out of every candidate's
    /// reach is decided without looking at anyone else (`None`); one within reach is decided
    /// against everyone, so a rival still makes it ambiguous. Costs the candidates' named faces,
    /// plus everyone's for the few faces that come within reach.
    pub fn decide_among(
        &self,
        face: &[f32],
        rejected: &[i64],
        candidates: &[i64],
        reach: Reach,
    ) -> Option<PersonMatch> {
        let limit = reach.auto * reach.auto;
        let near = candidates
            .iter()
            .filter(|p| !rejected.contains(p))
            .filter_map(|&p| self.slot(p))
            .any(|k| self.nearest_squared(face, k).0 <= limit);
        near.then(|| self.decide(face, rejected, reach))
    }

    /// Whether `face` may be suggested as `person`: their nearest named face is within the
    /// suggestion reach, and nobody else is nearer (or about as near). Returns the distance.
    pub fn suggest(
        &self,
        face: &[f32],
        person: i64,
        rejected: &[i64],
        reach: Reach,
    ) -> Option<f32> {
        if rejected.contains(&person) {
            return None;
        }
        let k = self.slot(person)?;
        let (d2, _) = self.nearest_squared(face, k);
        if d2 > reach.suggest * reach.suggest {
            return None;
        }
        let d = d2.sqrt();
        let rival = (0..self.people.len())
            .filter(|&j| j != k && !rejected.contains(&self.people[j]))
            .any(|j| self.nearest_squared(face, j).0.sqrt() < d + reach.margin);
        (!rival).then_some(d)
    }
}

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

/// The decision for one face against clusters: within the cluster's sample radius (clamped at
/// [`SAMPLE_RADIUS_CLAMP`]) plus `match_distance` of its centroid. `rejected` lists the people it
/// must not be matched to.
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
        .filter(|&(k, d)| d <= targets[k].radius.min(SAMPLE_RADIUS_CLAMP) + match_distance)
        .collect();
    choose(candidates, targets, rejected)
}

/// The decision for one face among the targets within reach of it (`(index, distance)`, each
/// within its target's clamped radius plus the match distance), as [`best_match`] decides: a
/// caller that finds those candidates faster (a range search over many faces) gets the same
/// answer.
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

    #[test]
    fn a_wide_cluster_reaches_no_further_than_the_clamp() {
        let a = unit(0.0);
        let wide = [Target {
            centroid: &a,
            radius: 0.8,
            manual: false,
            identity: Identity::Cluster(1),
        }];
        // 1.0 from the centroid: within 0.8 + 0.46 but not within 0.42 + 0.46.
        let face = unit(2.0 * (0.5f32).asin());
        assert!((distance(&face, &a) - 1.0).abs() < 1e-5);
        assert_eq!(best_match(&face, &wide, &[], 0.46), Match::None);
        assert!(matches!(
            best_match(&unit(0.8), &wide, &[], 0.46),
            Match::Join(0, _)
        ));
    }

    /// The point on the unit circle `chord` away from angle 0, turning the other way from the
    /// named faces below.
    fn at(chord: f32) -> Vec<f32> {
        unit(-2.0 * (chord / 2.0).asin())
    }

    #[test]
    fn people_are_matched_by_their_nearest_named_face() {
        let reach = Reach::new(0.46);
        assert!((reach.auto - 0.88).abs() < 1e-6);
        assert_eq!(reach.suggest, SEPARATION);
        // Person 1 named at 0 and at 1.2 (two far apart photos); person 2 at 2.5.
        let (p1a, p1b, p2) = (unit(0.0), unit(1.2), unit(2.5));
        let m = PersonMatcher::new([(2, 30, &p2[..]), (1, 10, &p1a[..]), (1, 11, &p1b[..])]);
        assert_eq!(m.people(), &[1, 2]);
        assert_eq!(m.named(), 3);
        // Near the second photo of person 1: its nearest named face decides, not a centroid.
        match m.decide(&unit(1.3), &[], reach) {
            PersonMatch::Join { person, row, .. } => {
                assert_eq!(person, 1);
                assert_eq!(m.face(row), 11);
            }
            other => panic!("{other:?}"),
        }
        // 0.9 from person 1's nearest face: out of automatic reach, yet a suggestion.
        let face = at(0.9);
        assert_eq!(m.decide(&face, &[], reach), PersonMatch::None);
        let d = m.suggest(&face, 1, &[], reach).unwrap();
        assert!((d - 0.9).abs() < 1e-4, "{d}");
        // Rejected for person 1: never matched or suggested as them.
        assert_eq!(m.decide(&unit(0.1), &[1], reach), PersonMatch::None);
        assert_eq!(m.suggest(&unit(0.1), 1, &[1], reach), None);
        // Between person 1 (at 1.2) and person 2 (at 2.5), about as close to both: ambiguous.
        assert_eq!(m.decide(&unit(1.85), &[], reach), PersonMatch::Ambiguous);
        assert_eq!(m.suggest(&unit(1.85), 1, &[], reach), None);
        assert_eq!(m.suggest(&unit(1.85), 2, &[], reach), None);
        // Only person 2 changed: a face far from person 2 is settled without person 1's faces...
        assert_eq!(m.decide_among(&unit(0.0), &[], &[2], reach), None);
        // ...and one near person 2 is decided against everyone.
        assert!(matches!(
            m.decide_among(&unit(2.4), &[], &[2], reach),
            Some(PersonMatch::Join { person: 2, .. })
        ));
        assert_eq!(
            m.decide_among(&unit(1.85), &[], &[2], reach),
            Some(PersonMatch::Ambiguous)
        );
        // Nobody named: nothing to match.
        let empty = PersonMatcher::new(std::iter::empty());
        assert!(empty.is_empty());
        assert_eq!(empty.decide(&unit(0.0), &[], reach), PersonMatch::None);
    }
}
