//! Suggestions, as Apple Photos' "review additional photos" and digiKam's suggested faces work:
//! the unnamed faces that are probably a person, one group per person, best first, for a person
//! to confirm in one click. They reach further than automatic matching
//! (`clustering::matching::Reach::suggest`) and grow from face to face (see [`groups`]), because
//! a person confirms them; a face is only ever suggested for the person nearest to it, never for
//! one it was rejected for, and a face of an unnamed cluster only when the person is clearly
//! nearer than its own cluster (the cluster is a rival, as another person is) or linked to that
//! cluster by a named face (see [`groups`]).
//!
//! Reading only: accepting a group is `people::accept`.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use half::slice::HalfFloatSliceExt;
use rusqlite::Connection;
use serde::Serialize;

use super::assign;
use crate::clustering::matching::{PersonMatcher, Reach, fast_distance};
use crate::config::Settings;
use crate::embedding::EMBEDDING_DIM as DIM;
use crate::graph::range::RangeQuery;
use crate::store::faces::Assigned;
use crate::store::{ClusterId, FaceId, SqlResult, embeddings, faces, people};

/// Faces offered per group at most (the page shows a group at once).
pub const GROUP: usize = 48;

/// Members of an unnamed cluster that stand for it in [`near_clusters`], at most (an even sample
/// by id of a larger cluster).
pub const CLUSTER_SEEDS: usize = 32;

/// Rounds of growth at most: each is a pass over the unnamed faces' vectors (about 1 s at a
/// million faces on 2 cores), and a chain of photos longer than this is rare and far from the
/// faces named (the growth's own limit, [`GROUP`], usually ends it first).
pub const ROUNDS: usize = 6;

/// The faces that are probably `person`, nearest first.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub person: String,
    #[serde(skip)]
    pub person_id: i64,
    pub faces: Vec<FaceId>,
    /// Distance from each face to the person's nearest named face.
    #[serde(skip)]
    pub distances: Vec<f32>,
}

/// The two nearest people of a candidate face, by their nearest member (named or suggested); a
/// face of an unnamed cluster counts that cluster (as `-id`, by its nearest other member) too.
#[derive(Debug, Clone, Copy, Default)]
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

/// A face suggested for a person: in which round of the growth, at what distance.
#[derive(Debug, Clone, Copy)]
struct Taken {
    face: i64,
    person: i64,
    round: usize,
    distance: f32,
}

/// The suggestion groups: for `person` only, or for everyone with named faces; each at most
/// `limit` faces; groups whose best face is nearest first.
///
/// A group grows from the person's named faces: a face is suggested when the person's nearest
/// member (named, or suggested in an earlier round) or their centroid (moved by the faces
/// suggested) is within the suggestion reach, and no other person is about as near; rounds go on
/// until nothing joins (at most [`ROUNDS`]). So a person confirms in one group the faces a chain
/// of close photos leads to, nearest rounds first. Each round is one pass over the vectors (see
/// [`grow`]).
///
/// A face that clustering put in an unnamed cluster goes with that cluster, which the page offers
/// to be named as a whole, unless the person is linked to the cluster: one of their named faces
/// lies within the cluster distance (`settings.face_cluster_dist`, what clustering itself calls
/// one person) of one of its members, as when a face of the cluster was named. For a person not
/// linked to it, the cluster's nearest other member is a rival like another person's nearest
/// face, so the face is suggested only when the person is nearer by the margin. Without this, a
/// group reached its first face of someone else (up to 1.0 away, where this FaceNet still keeps
/// a few pairs of different people) and grew through that face's whole cluster and on to the
/// next: on 13 people with 5 photos each, the first group after one name held 21 faces of 5
/// other people and none of the person's (BENCHMARKS.md, "The second set"). Only named faces
/// link, never suggested ones, so a chain cannot link the next cluster.
pub fn groups(
    conn: &Connection,
    person: Option<i64>,
    settings: &Settings,
    limit: usize,
) -> SqlResult<Vec<Group>> {
    let named = assign::load_named(conn)?;
    let m = &named.matcher;
    if m.is_empty() || person.is_some_and(|p| !m.people().contains(&p)) {
        return Ok(Vec::new());
    }
    let reach = Reach::new(settings.face_match_dist);
    let rejections = people::rejections(conn)?;
    let targets = person.map(|p| vec![p]);
    let taken = grow(
        conn,
        false,
        m,
        &rejections,
        Bounds {
            reach,
            link: settings.face_cluster_dist,
            limit,
        },
        targets.as_deref(),
    )?;
    let mut by_person: HashMap<i64, Vec<(usize, f32, i64)>> = HashMap::new();
    for t in taken {
        by_person
            .entry(t.person)
            .or_default()
            .push((t.round, t.distance, t.face));
    }
    let names = people::names(conn)?;
    let mut out: Vec<Group> = by_person
        .into_iter()
        .map(|(p, mut faces)| {
            faces.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
            Group {
                person: names.get(&p).cloned().unwrap_or_default(),
                person_id: p,
                distances: faces.iter().map(|x| x.1).collect(),
                faces: faces.iter().map(|x| FaceId(x.2)).collect(),
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

/// How far a growth goes.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    reach: Reach,
    /// A person's named face within this of a member of an unnamed cluster links the person to
    /// it (the cluster distance; see [`groups`]).
    link: f32,
    /// Faces a group at most.
    limit: usize,
}

/// Grow the groups of `targets` (every person of `m` when `None`) round by round over the faces a
/// person could name (no person, no verdict, not in an ignored cluster, of a photo still present;
/// with `open_only`, in no cluster either; see [`groups`]). A face's two nearest people only matter within the
/// suggestion reach plus the margin, so each round is one scan of those faces with the round's
/// new members (all named faces and centroids first, then the faces suggested and the centroids
/// they moved) as range queries: memory holds the faces within reach, never the library. A face
/// within reach that is in an unnamed cluster is compared with that cluster's seeds (see
/// [`cluster_seeds`]) once, before it may join.
fn grow(
    conn: &Connection,
    open_only: bool,
    m: &PersonMatcher,
    rejections: &HashMap<i64, Vec<i64>>,
    bounds: Bounds,
    targets: Option<&[i64]>,
) -> SqlResult<Vec<Taken>> {
    let Bounds { reach, link, limit } = bounds;
    let dim = DIM;
    let none = Vec::new();
    let rejected = |f: i64| rejections.get(&f).unwrap_or(&none);
    let within = reach.suggest + reach.margin;
    // Only the matcher's people (or the targets) get groups: a face's own cluster is a rival.
    let wanted = |p: i64| match targets {
        Some(t) => t.contains(&p),
        None => m.people().binary_search(&p).is_ok(),
    };

    // Round 0's members: every named face and every person's centroid.
    let mut members: Vec<i64> = Vec::new();
    let mut rows: Vec<f32> = Vec::new();
    for (k, &p) in m.people().iter().enumerate() {
        let named = m.rows_of(k);
        members.extend(std::iter::repeat_n(p, named.len() / dim));
        rows.extend_from_slice(named);
        if let Some((c, _)) = m.centroid(p) {
            members.push(p);
            rows.extend_from_slice(c);
        }
    }

    let mut nearest: HashMap<i64, Nearest> = HashMap::new();
    let mut vectors: HashMap<i64, Vec<f32>> = HashMap::new();
    let mut taken: HashMap<i64, Taken> = HashMap::new();
    let mut sizes: HashMap<i64, usize> = HashMap::new();
    // Each person's centroid moves as faces join them: (sum of faces, count).
    let mut centroids: HashMap<i64, (Vec<f32>, usize)> = HashMap::new();
    // The unnamed cluster of each face met, each cluster's seeds, whether a person is linked to
    // a cluster, and the faces (with the person they would be suggested for) compared with their
    // own cluster already.
    let mut cluster_of: HashMap<i64, i64> = HashMap::new();
    let mut seeds: HashMap<i64, Vec<(i64, Vec<f32>)>> = HashMap::new();
    let mut links: HashMap<(i64, i64), bool> = HashMap::new();
    let mut checked: HashSet<(i64, i64)> = HashSet::new();
    for round in 0..ROUNDS {
        if rows.is_empty() {
            break;
        }
        let mut queries = RangeQuery::new(&rows, dim, within);
        faces::search_unnamed(conn, &mut queries, open_only, |hit| {
            let (face, person) = (hit.id, members[hit.query as usize]);
            if taken.contains_key(&face) || rejected(face).contains(&person) {
                return;
            }
            if let Some(c) = hit.value(0) {
                cluster_of.insert(face, c);
            }
            nearest
                .entry(face)
                .or_default()
                .update(person, hit.d2.max(0.0).sqrt());
            vectors.entry(face).or_insert_with(|| {
                let mut v = vec![0f32; dim];
                hit.row.convert_to_f32_slice(&mut v);
                v
            });
        })?;
        // A face of an unnamed cluster goes with its cluster, unless the person is linked to
        // that cluster (see [`groups`]): the cluster (its nearest other member) is then a rival
        // like any person, so the face is suggested only when the person is clearly nearer.
        let mut unchecked: Vec<(i64, i64, i64)> = nearest
            .iter()
            .filter(|(f, _)| !taken.contains_key(f))
            .filter_map(|(&f, n)| n.suggestion(reach).map(|(p, _)| (f, p)))
            .filter(|&(_, p)| wanted(p))
            .filter_map(|(f, p)| cluster_of.get(&f).map(|&c| (f, p, c)))
            .filter(|&(f, p, _)| !checked.contains(&(f, p)))
            .collect();
        unchecked.sort_unstable();
        for (face, p, c) in unchecked {
            checked.insert((face, p));
            let mates: &[(i64, Vec<f32>)] = match seeds.entry(c) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(cluster_seeds(conn, c)?),
            };
            let linked = *links.entry((p, c)).or_insert_with(|| {
                m.people().binary_search(&p).is_ok_and(|k| {
                    m.rows_of(k)
                        .chunks_exact(dim)
                        .any(|named| mates.iter().any(|(_, e)| fast_distance(named, e) <= link))
                })
            });
            if linked {
                continue;
            }
            let own = mates
                .iter()
                .filter(|(f, _)| *f != face)
                .map(|(_, e)| fast_distance(e, &vectors[&face]))
                .fold(f32::INFINITY, f32::min);
            if own.is_finite()
                && let Some(n) = nearest.get_mut(&face)
            {
                n.update(-c, own);
            }
        }
        let mut joined: Vec<(i64, i64, f32)> = nearest
            .iter()
            .filter(|(f, _)| !taken.contains_key(f))
            .filter_map(|(&f, n)| n.suggestion(reach).map(|(p, d)| (f, p, d)))
            .filter(|&(_, p, _)| wanted(p))
            .collect();
        joined.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));
        joined.retain(|&(_, p, _)| {
            let n = sizes.entry(p).or_default();
            *n += 1;
            *n <= limit
        });
        if joined.is_empty() {
            break;
        }
        for &(face, person, distance) in &joined {
            taken.insert(
                face,
                Taken {
                    face,
                    person,
                    round,
                    distance,
                },
            );
        }
        // The new members reach the faces still open, and so do the centroids they moved.
        members.clear();
        rows.clear();
        for &(f, p, _) in &joined {
            members.push(p);
            rows.extend_from_slice(&vectors[&f]);
        }
        let mut moved: Vec<i64> = joined.iter().map(|j| j.1).collect();
        moved.sort_unstable();
        moved.dedup();
        for p in moved {
            let (sum, n) = centroids.entry(p).or_insert_with(|| match m.centroid(p) {
                Some((c, n)) => (c.iter().map(|v| v * n as f32).collect(), n),
                None => (vec![0.0; dim], 0),
            });
            for &(f, _, _) in joined.iter().filter(|j| j.1 == p) {
                for (s, v) in sum.iter_mut().zip(&vectors[&f]) {
                    *s += v;
                }
                *n += 1;
            }
            members.push(p);
            rows.extend(sum.iter().map(|s| s / *n as f32));
        }
    }
    log::debug!(
        "suggestions: {} faces in {} rounds",
        taken.len(),
        taken.values().map(|t| t.round + 1).max().unwrap_or(0)
    );
    let mut out: Vec<Taken> = taken.into_values().collect();
    out.sort_by_key(|t| t.face);
    Ok(out)
}

/// The members of unnamed cluster `c` that stand for it (each with its embedding): all of them, or
/// an even sample by id of a cluster larger than [`CLUSTER_SEEDS`] (each member is a query over
/// the unnamed faces in [`near_clusters`]).
fn cluster_seeds(conn: &Connection, c: i64) -> SqlResult<Vec<(i64, Vec<f32>)>> {
    let ids: Vec<i64> = faces::in_cluster(conn, ClusterId(c))?
        .into_iter()
        .filter(|f| matches!((f.assigned, f.person_id), (Some(Assigned::Auto), None)))
        .map(|f| f.id.0)
        .collect();
    let step = ids.len().div_ceil(CLUSTER_SEEDS).max(1);
    let ids: Vec<i64> = ids.into_iter().step_by(step).collect();
    let vectors = embeddings::get_many(conn, &ids)?;
    Ok(ids.into_iter().zip(vectors).collect())
}

/// How many faces are suggested in all (each face is in one group at most).
pub fn count(conn: &Connection, settings: &Settings) -> SqlResult<usize> {
    Ok(groups(conn, None, settings, usize::MAX)?
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
    cluster: ClusterId,
    match_distance: f32,
    limit: usize,
) -> SqlResult<Vec<FaceId>> {
    Ok(near_clusters(conn, &[cluster], match_distance, limit)?
        .remove(&cluster)
        .unwrap_or_default())
}

/// [`near_cluster`] for several clusters at once (a page of them), in one growth: the clusters
/// are each other's rivals too, so no face is offered with two of them.
pub fn near_clusters(
    conn: &Connection,
    clusters: &[ClusterId],
    match_distance: f32,
    limit: usize,
) -> SqlResult<HashMap<ClusterId, Vec<FaceId>>> {
    let named = faces::named(conn)?;
    let mut members: Vec<(i64, i64, Vec<f32>)> = Vec::new();
    for &ClusterId(c) in clusters {
        for (id, e) in cluster_seeds(conn, c)? {
            members.push((-c, id, e));
        }
    }
    if members.is_empty() {
        return Ok(HashMap::new());
    }
    let m = PersonMatcher::new(
        named
            .iter()
            .map(|n| (n.person, n.face.0, n.embedding.as_slice()))
            .chain(members.iter().map(|(p, f, e)| (*p, *f, e.as_slice()))),
    );
    let rejections = people::rejections(conn)?;
    let targets: Vec<i64> = clusters.iter().map(|c| -c.0).collect();
    let taken = grow(
        conn,
        true,
        &m,
        &rejections,
        Bounds {
            reach: Reach::new(match_distance),
            link: 0.0,
            limit,
        },
        Some(&targets),
    )?;
    let mut out: HashMap<i64, Vec<(usize, f32, i64)>> = HashMap::new();
    for t in taken {
        out.entry(-t.person)
            .or_default()
            .push((t.round, t.distance, t.face));
    }
    Ok(out
        .into_iter()
        .map(|(c, mut faces)| {
            faces.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
            (
                ClusterId(c),
                faces.into_iter().map(|x| FaceId(x.2)).collect(),
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::{self, Ref};
    use crate::store::Store;
    use crate::store::clusters::{self, ClusterKind};
    use crate::store::photos;

    /// The unit vector in the plane of axes `base` and `axis` that is `chord` away from axis
    /// `base` (turned on by `from` first: `on(b, x, f, c)` is `c` further along than
    /// `on(b, x, 0, f)`).
    fn on(base: usize, axis: usize, from: f32, chord: f32) -> Vec<f32> {
        let angle = |c: f32| 2.0 * (c / 2.0).asin();
        let t = angle(from) + angle(chord);
        let mut v = vec![0f32; DIM];
        v[base] = t.cos();
        v[axis] = t.sin();
        v
    }

    fn at(axis: usize, from: f32, chord: f32) -> Vec<f32> {
        on(0, axis, from, chord)
    }

    /// A face of its own photo for each vector; their ids in order.
    fn library(store: &mut Store, vectors: &[Vec<f32>]) -> Vec<FaceId> {
        store
            .write(|tx| -> Result<Vec<FaceId>, crate::store::StoreError> {
                let mut ids = Vec::new();
                for (k, e) in vectors.iter().enumerate() {
                    ids.push(photos::store_vector(tx, &format!("/synthetic/{k}.jpg"), e)?);
                }
                Ok(ids)
            })
            .unwrap()
    }

    /// Put `faces` in a new unnamed automatic cluster (matched there).
    fn cluster(store: &mut Store, faces: &[FaceId]) {
        store
            .write(|tx| -> Result<(), crate::store::StoreError> {
                let c = clusters::insert(tx, ClusterKind::Auto, None, &[], 0.0, 0)?;
                for f in faces {
                    crate::store::matching::join(tx, f.0, Some(c.0), None)?;
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_face_of_an_unnamed_cluster_goes_with_it_unless_the_person_is_linked_to_it() {
        let path = std::env::temp_dir().join(format!(
            "visage-suggest-{}-{}.db",
            std::process::id(),
            crate::store::now()
        ));
        let mut store = Store::open_or_create(&path).unwrap();
        let vectors = [
            at(1, 0.0, 0.0), // Ann, named
            at(1, 0.0, 0.9), // 0.9 from Ann, in a cluster whose next member is 0.4 from it
            at(1, 0.9, 0.4),
            at(1, 1.3, 0.4),
            at(2, 0.0, 0.9), // 0.9 from Ann, in no cluster
            at(3, 0.0, 0.3), // 0.3 from Ann (within the cluster distance), in a cluster
            at(3, 0.3, 0.6),
            at(3, 0.9, 0.4),
            on(10, 11, 0.0, 0.0), // Bob, named
            on(10, 11, 0.0, 0.5), // within the cluster distance of Bob: his cluster
            on(10, 11, 0.5, 0.4),
            on(10, 11, 0.9, 0.4), // 1.2 from Bob, reached through the cluster
        ];
        let ids = library(&mut store, &vectors);
        let (ann, far, open, near) = (ids[0], ids[1], ids[4], ids[5]);
        cluster(&mut store, &ids[1..4]);
        cluster(&mut store, &ids[5..8]);
        cluster(&mut store, &ids[9..12]);
        let settings = Settings::default();
        people::name_several(&mut store, &[Ref::Face(ann)], "Ann", &[], &settings, None).unwrap();
        people::name_several(
            &mut store,
            &[Ref::Face(ids[8])],
            "Bob",
            &[],
            &settings,
            None,
        )
        .unwrap();
        let groups = store.read(|c| groups(c, None, &settings, GROUP)).unwrap();
        assert_eq!(groups.len(), 2, "{groups:?}");
        let g = &groups[0];
        assert_eq!(g.person, "Ann");
        // The open face, and the cluster Ann is linked to through its near member (the rest of it
        // too: 0.88 from Ann, then 0.4 from that); not the member 0.9 away whose own cluster is
        // nearer, nor (through it) the rest of its cluster.
        assert_eq!(g.faces, vec![near, ids[6], open, ids[7]], "{groups:?}");
        assert!(!g.faces.contains(&far));
        // A person with a named face within the cluster distance of a cluster's member is linked
        // to it: its faces are suggested, nearest rounds first.
        assert_eq!(groups[1].person, "Bob");
        assert_eq!(groups[1].faces, ids[9..12].to_vec(), "{groups:?}");
        drop(store);
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
        }
    }
}
