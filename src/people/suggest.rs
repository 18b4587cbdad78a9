//! Suggestions, as Apple Photos' "review additional photos" and digiKam's suggested faces work:
//! the unnamed faces that are probably a person, one group per person, best first, for a person
//! to confirm in one click. They reach further than automatic matching
//! (`clustering::matching::Reach::suggest`) and grow from face to face (see [`groups`]), because
//! a person confirms them; a face is only ever suggested for the person nearest to it, never for
//! one it was rejected for.
//!
//! Reading only: accepting a group is `people::accept`.

use std::collections::HashMap;

use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;
use rusqlite::Connection;
use serde::Serialize;

use super::assign;
use crate::clustering::matching::{PersonMatcher, Reach, fast_distance};
use crate::store::faces::Assigned;
use crate::store::{SqlResult, embeddings, faces};

/// Faces offered per group at most (the page shows a group at once).
pub const GROUP: usize = 48;

/// The faces that are probably `person`, nearest first.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub person: String,
    #[serde(skip)]
    pub person_id: i64,
    /// Serialised as f-ids: `"f12"`.
    #[serde(serialize_with = "face_refs")]
    pub faces: Vec<i64>,
    /// Distance from each face to the person's nearest named face.
    #[serde(skip)]
    pub distances: Vec<f32>,
}

fn face_refs<S: serde::Serializer>(ids: &[i64], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ids.iter().map(|f| format!("f{f}")))
}

/// The faces a person could still name: no person, no verdict, not in an ignored cluster, of a
/// photo still present (open faces and faces of unnamed automatic clusters).
fn unnamed(conn: &Connection, open_only: bool) -> SqlResult<Vec<(i64, Vec<f32>)>> {
    let filter = if open_only {
        "f.person IS NULL AND f.verdict IS NULL AND f.assigned IS NOT 'manual' AND f.gone = 0
         AND f.cluster IS NULL"
    } else {
        "f.person IS NULL AND f.verdict IS NULL AND f.assigned IS NOT 'manual' AND f.gone = 0"
    };
    let mut out = Vec::new();
    embeddings::scan(conn, &[], filter, |chunk| {
        for (k, &id) in chunk.ids.iter().enumerate() {
            let mut v = vec![0f32; chunk.dim];
            chunk.rows[k * chunk.dim..(k + 1) * chunk.dim].convert_to_f32_slice(&mut v);
            out.push((id, v));
        }
        Ok(())
    })?;
    Ok(out)
}

/// The two nearest people of a candidate face, by their nearest member (named or suggested).
#[derive(Debug, Clone, Copy)]
struct Nearest {
    first: Option<(i64, f32)>,
    second: Option<(i64, f32)>,
}

impl Nearest {
    /// A member of `person` at distance `d` joined.
    fn update(&mut self, person: i64, d: f32) {
        match (self.first, self.second) {
            (Some((p, d1)), _) if p == person => {
                self.first = Some((p, d1.min(d)));
            }
            (_, Some((p, d2))) if p == person => {
                self.second = Some((p, d2.min(d)));
                if self.second.map(|x| x.1) < self.first.map(|x| x.1) {
                    std::mem::swap(&mut self.first, &mut self.second);
                }
            }
            (Some((_, d1)), _) if d < d1 => {
                self.second = self.first;
                self.first = Some((person, d));
            }
            (None, _) => self.first = Some((person, d)),
            (Some(_), second) if second.is_none_or(|(_, d2)| d < d2) => {
                self.second = Some((person, d));
            }
            _ => {}
        }
    }

    /// The person this face may be suggested as: the nearest within reach, nobody else about as
    /// near.
    fn suggestion(&self, reach: Reach) -> Option<(i64, f32)> {
        let (p, d) = self.first?;
        let clear = self.second.is_none_or(|(_, d2)| d2 >= d + reach.margin);
        (d <= reach.suggest && clear).then_some((p, d))
    }
}

/// The suggestion groups: for `person` only, or for everyone with named faces; each at most
/// `limit` faces; groups whose best face is nearest first.
///
/// A group grows from the person's named faces: a face is suggested when the person's nearest
/// member (named, or suggested in an earlier round) or their centroid (moved by the faces
/// suggested) is within the suggestion reach, and no other person is about as near; rounds go on
/// until nothing joins. So a person
/// confirms in one group the faces a chain of close photos leads to, nearest rounds first. Costs
/// the unnamed faces times the named faces once, then times the faces suggested.
pub fn groups(
    conn: &Connection,
    person: Option<i64>,
    match_distance: f32,
    limit: usize,
) -> SqlResult<Vec<Group>> {
    let named = assign::load_named(conn)?;
    let m = &named.matcher;
    if m.is_empty() || person.is_some_and(|p| !m.people().contains(&p)) {
        return Ok(Vec::new());
    }
    let reach = Reach::new(match_distance);
    let rejections = faces::rejections(conn)?;
    let candidates = unnamed(conn, false)?;
    let mut nearest = start(m, &candidates, &rejections);
    let taken = grow(
        m,
        &mut nearest,
        &candidates,
        &rejections,
        reach,
        person,
        limit,
    );
    let mut by_person: HashMap<i64, Vec<(usize, f32, i64)>> = HashMap::new();
    for (i, t) in taken.iter().enumerate() {
        if let Some((p, round, d)) = t {
            by_person
                .entry(*p)
                .or_default()
                .push((*round, *d, candidates[i].0));
        }
    }
    let names = names(conn)?;
    let mut out: Vec<Group> = by_person
        .into_iter()
        .map(|(p, mut faces)| {
            faces.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
            Group {
                person: names.get(&p).cloned().unwrap_or_default(),
                person_id: p,
                distances: faces.iter().map(|x| x.1).collect(),
                faces: faces.iter().map(|x| x.2).collect(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        a.distances[0]
            .total_cmp(&b.distances[0])
            .then(a.person.cmp(&b.person))
    });
    Ok(out)
}

/// Each candidate's two nearest people by their named faces.
fn start(
    m: &PersonMatcher,
    candidates: &[(i64, Vec<f32>)],
    rejections: &HashMap<i64, Vec<i64>>,
) -> Vec<Nearest> {
    let none = Vec::new();
    candidates
        .par_iter()
        .map(|(f, e)| {
            let ranked = m.ranked(e, rejections.get(f).unwrap_or(&none));
            Nearest {
                first: ranked.first().map(|r| (r.0, r.1)),
                second: ranked.get(1).map(|r| (r.0, r.1)),
            }
        })
        .collect()
}

/// Grow the groups round by round (see [`groups`]): for each candidate, the person it joined, in
/// which round, at what distance.
fn grow(
    m: &PersonMatcher,
    nearest: &mut [Nearest],
    candidates: &[(i64, Vec<f32>)],
    rejections: &HashMap<i64, Vec<i64>>,
    reach: Reach,
    person: Option<i64>,
    limit: usize,
) -> Vec<Option<(i64, usize, f32)>> {
    let none = Vec::new();
    let rejected = |f: i64| rejections.get(&f).unwrap_or(&none);
    let mut taken: Vec<Option<(i64, usize, f32)>> = vec![None; candidates.len()];
    let mut sizes: HashMap<i64, usize> = HashMap::new();
    // Each person's centroid moves as faces join them: (sum of faces, count).
    let mut centroids: HashMap<i64, (Vec<f32>, usize)> = HashMap::new();
    for round in 0.. {
        let mut joined: Vec<(usize, i64, f32)> = nearest
            .iter()
            .enumerate()
            .filter(|(i, _)| taken[*i].is_none())
            .filter_map(|(i, n)| n.suggestion(reach).map(|(p, d)| (i, p, d)))
            .filter(|&(_, p, _)| person.is_none_or(|q| q == p))
            .collect();
        joined.sort_by(|a, b| a.2.total_cmp(&b.2));
        joined.retain(|&(_, p, _)| {
            let n = sizes.entry(p).or_default();
            *n += 1;
            *n <= limit
        });
        if joined.is_empty() {
            break;
        }
        for &(i, p, d) in &joined {
            taken[i] = Some((p, round, d));
        }
        // The new members reach the faces still open, and so do the centroids they moved.
        let mut members: Vec<(i64, Vec<f32>)> = joined
            .iter()
            .map(|&(i, p, _)| (p, candidates[i].1.clone()))
            .collect();
        let mut moved: Vec<i64> = joined.iter().map(|j| j.1).collect();
        moved.sort_unstable();
        moved.dedup();
        for p in moved {
            let (sum, n) = centroids.entry(p).or_insert_with(|| match m.centroid(p) {
                Some((c, n)) => (c.iter().map(|v| v * n as f32).collect(), n),
                None => (Vec::new(), 0),
            });
            for (_, e) in members.iter().filter(|(q, _)| *q == p) {
                if sum.is_empty() {
                    *sum = vec![0.0; e.len()];
                }
                for (s, v) in sum.iter_mut().zip(e) {
                    *s += v;
                }
                *n += 1;
            }
            let mean: Vec<f32> = sum.iter().map(|s| s / *n as f32).collect();
            members.push((p, mean));
        }
        nearest
            .par_iter_mut()
            .zip(candidates.par_iter())
            .zip(taken.par_iter())
            .filter(|(_, t)| t.is_none())
            .for_each(|((n, (f, e)), _)| {
                let rejected = rejected(*f);
                for (p, member) in &members {
                    if !rejected.contains(p) {
                        n.update(*p, fast_distance(e, member));
                    }
                }
            });
    }
    taken
}

fn names(conn: &Connection) -> SqlResult<HashMap<i64, String>> {
    let mut stmt = conn.prepare("SELECT id, name FROM people")?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// How many faces are suggested in all (each face is in one group at most).
pub fn count(conn: &Connection, match_distance: f32) -> SqlResult<usize> {
    Ok(groups(conn, None, match_distance, usize::MAX)?
        .iter()
        .map(|g| g.faces.len())
        .sum())
}

/// The faces in no cluster that look like the members of unnamed cluster `cluster`, grown as a
/// suggestion group is (the cluster's members stand for a person; named people are the rivals,
/// as for a suggestion), nearest first, at most `limit`. The review page offers them
/// with the cluster, so one name takes them too.
pub fn near_cluster(
    conn: &Connection,
    cluster: i64,
    match_distance: f32,
    limit: usize,
) -> SqlResult<Vec<i64>> {
    let mut seeds: Vec<(i64, i64, Vec<f32>)> = faces::named(conn)?
        .into_iter()
        .map(|n| (n.person, n.face, n.embedding))
        .collect();
    for f in faces::in_cluster(conn, cluster)? {
        if let (Some(Assigned::Auto), None) = (f.assigned, f.person_id) {
            seeds.push((-cluster, f.id, faces::embedding(conn, f.id)?));
        }
    }
    if !seeds.iter().any(|s| s.0 == -cluster) {
        return Ok(Vec::new());
    }
    let m = PersonMatcher::new(seeds.iter().map(|(p, f, e)| (*p, *f, e.as_slice())));
    let rejections = faces::rejections(conn)?;
    let candidates = unnamed(conn, true)?;
    let mut nearest = start(&m, &candidates, &rejections);
    let taken = grow(
        &m,
        &mut nearest,
        &candidates,
        &rejections,
        Reach::new(match_distance),
        Some(-cluster),
        limit,
    );
    let mut out: Vec<(usize, f32, i64)> = taken
        .iter()
        .zip(&candidates)
        .filter_map(|(t, (f, _))| t.map(|(_, round, d)| (round, d, *f)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
    Ok(out.into_iter().map(|x| x.2).collect())
}
