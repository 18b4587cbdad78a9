//! DBSCAN kept up to date as faces come and go, after Ester et al., "Incremental Clustering for
//! Mining in a Data Warehousing Environment" (VLDB 1998): only the neighbourhoods of the faces
//! that arrive or leave are searched, and only the clusters they touch change.
//!
//! The store keeps, for every face DBSCAN runs over, its neighbour count (faces within the
//! cluster distance, itself included), its cluster and whether DBSCAN put it there. A [`Batch`]
//! takes that state for the faces involved, the pairs found around the faces that arrive
//! ([`Batch::add`]) or leave ([`Batch::remove`]), and works out what changes:
//! - a face whose count reaches the core size links, through its core neighbours, the clusters
//!   around it (they merge, the oldest id stays) or starts a new one, and takes its non-core
//!   neighbours along as border faces;
//! - a cluster that loses a core face (gone, or its count fell) is clustered again from its own
//!   members, which may split it or leave faces as noise.
//!
//! The result is DBSCAN's over the faces as they are now, up to which of two clusters a border
//! face touching both belongs to (batch DBSCAN leaves that to visiting order too). Pure decisions
//! over ids: the caller searches neighbourhoods and writes the changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What the store holds for a face DBSCAN runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Faces within the cluster distance, itself included.
    pub count: u32,
    pub cluster: Option<i64>,
    /// DBSCAN placed it in `cluster` (core or border), rather than matching by distance.
    pub member: bool,
}

/// A face's cluster after the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Label {
    /// A cluster that exists in the store.
    Cluster(i64),
    /// The k-th new cluster of this batch.
    New(u32),
}

/// What a batch changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// The new neighbour count of every remaining face whose count changed (new faces included).
    pub counts: BTreeMap<i64, u32>,
    /// The new DBSCAN label of every face whose label changed; `None`: noise now.
    pub labels: BTreeMap<i64, Option<Label>>,
    /// Existing clusters absorbed by another: `(from, into)`. Their faces all move.
    pub merged: Vec<(i64, i64)>,
    /// How many new clusters (`Label::New(0..n)`).
    pub new_clusters: u32,
    /// Existing clusters that gained or lost faces (their summaries are stale).
    pub touched: BTreeSet<i64>,
}

/// A cluster's remaining members and the pairs among them.
type Members = (Vec<i64>, Vec<(i64, i64)>);

/// One round of arrivals and departures. Use: [`Batch::know`] the stored state of every face the
/// searches return, [`Batch::add`] / [`Batch::remove`] the faces that arrive or leave,
/// [`Batch::pair`] every pair within the distance that involves one of them; then
/// [`Batch::gained_cores`] and [`Batch::split_candidates`] say what else to fetch
/// ([`Batch::neighbourhood`], [`Batch::members`]); [`Batch::finish`] gives the change.
#[derive(Debug, Default)]
pub struct Batch {
    min_points: u32,
    known: HashMap<i64, Point>,
    added: BTreeSet<i64>,
    removed: BTreeMap<i64, Point>,
    /// Pairs around the added faces, each stored both ways.
    around: HashMap<i64, BTreeSet<i64>>,
    /// Count changes of remaining faces.
    delta: HashMap<i64, i64>,
    /// Full neighbourhoods of old faces that became core.
    full: HashMap<i64, Vec<i64>>,
    /// Members and internal pairs of clusters to cluster again.
    reclustered: BTreeMap<i64, Members>,
}

impl Batch {
    pub fn new(min_points: u32) -> Self {
        Batch {
            min_points: min_points.max(1),
            ..Batch::default()
        }
    }

    /// The stored state of a face (once is enough; later calls are ignored).
    pub fn know(&mut self, id: i64, point: Point) {
        self.known.entry(id).or_insert(point);
    }

    /// A face that joins the faces DBSCAN runs over.
    pub fn add(&mut self, id: i64) {
        self.added.insert(id);
        self.known.insert(
            id,
            Point {
                count: 0,
                cluster: None,
                member: false,
            },
        );
    }

    /// A face that leaves them, with the state it had.
    pub fn remove(&mut self, id: i64, point: Point) {
        self.removed.insert(id, point);
    }

    /// A pair within the cluster distance, at least one of them added or removed. Pairs may be
    /// reported twice (each way); they count once.
    pub fn pair(&mut self, a: i64, b: i64) {
        if a == b {
            return;
        }
        let (a_rem, b_rem) = (self.removed.contains_key(&a), self.removed.contains_key(&b));
        if a_rem && b_rem {
            return;
        }
        if a_rem || b_rem {
            // A remaining face loses a neighbour (an added face cannot have been counted).
            let (gone, stays) = if a_rem { (a, b) } else { (b, a) };
            if !self.added.contains(&stays) && self.around_removed(gone, stays) {
                *self.delta.entry(stays).or_default() -= 1;
            }
            return;
        }
        if !self.added.contains(&a) && !self.added.contains(&b) {
            return;
        }
        if self.around.entry(a).or_default().insert(b) {
            self.around.entry(b).or_default().insert(a);
            for x in [a, b] {
                if !self.added.contains(&x) {
                    *self.delta.entry(x).or_default() += 1;
                }
            }
        }
    }

    /// Record a removed-remaining pair once (it may be reported twice).
    fn around_removed(&mut self, gone: i64, stays: i64) -> bool {
        // Negative ids cannot be face ids: key the removed side apart from `around`.
        self.around.entry(-gone - 1).or_default().insert(stays)
    }

    fn point(&self, id: i64) -> Point {
        self.known.get(&id).copied().unwrap_or(Point {
            count: 1,
            cluster: None,
            member: false,
        })
    }

    /// A face's count after the batch.
    pub fn count(&self, id: i64) -> u32 {
        if self.added.contains(&id) {
            return 1 + self.around.get(&id).map_or(0, |s| s.len()) as u32;
        }
        let before = self.point(id).count as i64;
        (before + self.delta.get(&id).copied().unwrap_or(0)).max(1) as u32
    }

    fn core_now(&self, id: i64) -> bool {
        !self.removed.contains_key(&id) && self.count(id) >= self.min_points
    }

    fn core_before(&self, id: i64) -> bool {
        !self.added.contains(&id) && self.point(id).count >= self.min_points
    }

    /// Old faces that became core: their whole neighbourhood is needed ([`Batch::neighbourhood`]).
    pub fn gained_cores(&self) -> Vec<i64> {
        let mut out: Vec<i64> = self
            .delta
            .iter()
            .filter(|&(&id, &d)| d > 0 && self.core_now(id) && !self.core_before(id))
            .map(|(&id, _)| id)
            .collect();
        out.sort_unstable();
        out
    }

    /// Clusters that lost a core face (removed, or its count fell below the core size): their
    /// members and the pairs among them are needed ([`Batch::members`]).
    pub fn split_candidates(&self) -> Vec<i64> {
        let lost_by_count = self
            .delta
            .iter()
            .filter(|&(&id, &d)| d < 0 && self.core_before(id) && !self.core_now(id))
            .filter_map(|(&id, _)| self.point(id).cluster.filter(|_| self.point(id).member));
        let lost_by_removal = self
            .removed
            .values()
            .filter(|p| p.member && p.count >= self.min_points)
            .filter_map(|p| p.cluster);
        let set: BTreeSet<i64> = lost_by_count.chain(lost_by_removal).collect();
        set.into_iter().collect()
    }

    /// The full neighbourhood (within the distance, itself excluded) of an old face that became
    /// core.
    pub fn neighbourhood(&mut self, id: i64, neighbours: Vec<i64>) {
        self.full.insert(id, neighbours);
    }

    /// The remaining DBSCAN members of a cluster to cluster again, and every pair among them
    /// within the distance.
    pub fn members(&mut self, cluster: i64, members: Vec<i64>, pairs: Vec<(i64, i64)>) {
        self.reclustered.insert(cluster, (members, pairs));
    }

    /// Members of the clusters clustered again that no core of their own cluster reaches any
    /// more: they may still be a border face of another cluster, so their whole neighbourhood is
    /// needed ([`Batch::neighbourhood`]). Call after [`Batch::members`].
    pub fn orphans(&self) -> Vec<i64> {
        let mut out = Vec::new();
        for (members, pairs) in self.reclustered.values() {
            let placed: BTreeSet<i64> = recluster(members, pairs, |id| self.core_now(id))
                .into_iter()
                .flatten()
                .collect();
            out.extend(members.iter().filter(|m| !placed.contains(m)));
        }
        out.sort_unstable();
        out
    }

    /// Neighbours of a face that became core (or an orphan): from the search around added
    /// faces, or the full neighbourhood fetched for it.
    fn neighbours_of(&self, id: i64) -> Vec<i64> {
        let mut out: Vec<i64> = match self.full.get(&id) {
            Some(n) => n.clone(),
            None => self
                .around
                .get(&id)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default(),
        };
        out.retain(|n| !self.removed.contains_key(n) && *n != id);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Work out the change.
    pub fn finish(self) -> Change {
        let mut change = Change::default();
        // Counts.
        for &id in self.delta.keys().chain(self.added.iter()) {
            if self.removed.contains_key(&id) {
                continue;
            }
            let now = self.count(id);
            if self.added.contains(&id) || now != self.point(id).count {
                change.counts.insert(id, now);
            }
        }

        // Current labels (after removals), then the clusters that lost a core clustered again.
        let mut label: HashMap<i64, Option<Label>> = HashMap::new();
        let label_of = |label: &HashMap<i64, Option<Label>>, id: i64| -> Option<Label> {
            match label.get(&id) {
                Some(l) => *l,
                None => {
                    let p = self.point(id);
                    p.cluster.filter(|_| p.member).map(Label::Cluster)
                }
            }
        };
        for &id in self.removed.keys() {
            if let Some(c) = self.removed[&id]
                .cluster
                .filter(|_| self.removed[&id].member)
            {
                change.touched.insert(c);
            }
        }
        let mut next_new = 0u32;
        let mut new_label = || {
            next_new += 1;
            Label::New(next_new - 1)
        };
        for (&cluster, (members, pairs)) in &self.reclustered {
            change.touched.insert(cluster);
            let parts = recluster(members, pairs, |id| self.core_now(id));
            // The largest part keeps the cluster's id.
            let keep = parts
                .iter()
                .enumerate()
                .max_by_key(|(k, part)| (part.len(), std::cmp::Reverse(*k)))
                .map(|(k, _)| k);
            let mut placed: BTreeSet<i64> = BTreeSet::new();
            for (k, part) in parts.iter().enumerate() {
                let l = if Some(k) == keep {
                    Label::Cluster(cluster)
                } else {
                    new_label()
                };
                for &id in part {
                    label.insert(id, Some(l));
                    placed.insert(id);
                }
            }
            for &id in members {
                if !placed.contains(&id) {
                    label.insert(id, None);
                }
            }
        }

        // Faces that became core link the clusters around them.
        let gained: Vec<i64> = {
            let mut g: Vec<i64> = self
                .added
                .iter()
                .copied()
                .filter(|&id| self.core_now(id))
                .chain(self.gained_cores())
                .collect();
            g.sort_unstable();
            g.dedup();
            g
        };
        let mut units = Units::default();
        let unit_of =
            |label: &HashMap<i64, Option<Label>>, units: &mut Units, id: i64| match label_of(
                label, id,
            ) {
                Some(l) => units.of(Unit::Label(l)),
                None => units.of(Unit::Face(id)),
            };
        for &x in &gained {
            let ux = unit_of(&label, &mut units, x);
            for y in self.neighbours_of(x) {
                if self.core_now(y) {
                    let uy = unit_of(&label, &mut units, y);
                    units.union(ux, uy);
                }
            }
        }
        // One label per component: the oldest existing cluster in it, else a new one.
        let mut component_label: BTreeMap<usize, Label> = BTreeMap::new();
        let mut by_root: BTreeMap<usize, Vec<Unit>> = BTreeMap::new();
        for (k, u) in units.items.clone().into_iter().enumerate() {
            by_root.entry(units.find(k)).or_default().push(u);
        }
        for (root, members) in &by_root {
            let existing: Vec<i64> = members
                .iter()
                .filter_map(|u| match u {
                    Unit::Label(Label::Cluster(c)) => Some(*c),
                    _ => None,
                })
                .collect();
            let l = match existing.iter().min() {
                Some(&c) => {
                    for &other in existing.iter().filter(|&&o| o != c) {
                        change.merged.push((other, c));
                        change.touched.insert(c);
                    }
                    Label::Cluster(c)
                }
                None => {
                    // Sub-clusters of a reclustered cluster keep their new label when nothing
                    // joins them to an existing one.
                    members
                        .iter()
                        .find_map(|u| match u {
                            Unit::Label(l @ Label::New(_)) => Some(*l),
                            _ => None,
                        })
                        .unwrap_or_else(&mut new_label)
                }
            };
            component_label.insert(*root, l);
            // Other new sub-clusters in the same component fold into that label.
            for u in members {
                if let Unit::Label(n @ Label::New(_)) = u
                    && *n != l
                {
                    for v in label.values_mut() {
                        if *v == Some(*n) {
                            *v = Some(l);
                        }
                    }
                }
            }
        }
        let merged_into: HashMap<i64, i64> = change.merged.iter().copied().collect();
        let resolve = |l: Label| match l {
            Label::Cluster(c) => Label::Cluster(*merged_into.get(&c).unwrap_or(&c)),
            n => n,
        };
        // Gained cores take their component's label; their non-core neighbours without a label
        // join it as border faces.
        for &x in &gained {
            let ux = unit_of(&label, &mut units, x);
            let root = units.find(ux);
            let l = component_label[&root];
            label.insert(x, Some(l));
            for y in self.neighbours_of(x) {
                if !self.core_now(y) && label_of(&label, y).is_none() {
                    label.insert(y, Some(l));
                }
            }
        }
        // Orphans of clusters clustered again, then added faces that are not core: border faces
        // of their first core neighbour's cluster (a face with a label keeps it).
        let border_of = |label: &HashMap<i64, Option<Label>>, id: i64| -> Option<Label> {
            self.neighbours_of(id)
                .into_iter()
                .find(|&y| self.core_now(y))
                .and_then(|y| label_of(label, y))
        };
        let added = self.added.iter().copied().filter(|&q| !self.core_now(q));
        for x in self.orphans().into_iter().chain(added) {
            if label_of(&label, x).is_some() {
                continue;
            }
            if let Some(l) = border_of(&label, x) {
                label.insert(x, Some(l));
            }
        }

        // Report each label that differs from the stored one.
        let mut ids: Vec<i64> = label.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if self.removed.contains_key(&id) {
                continue;
            }
            let now = label[&id].map(resolve);
            let p = self.point(id);
            let before = p
                .cluster
                .filter(|_| p.member)
                .map(|c| resolve(Label::Cluster(c)));
            if now != before || (now.is_some() && !p.member) {
                if let Some(Label::Cluster(c)) = now {
                    change.touched.insert(c);
                }
                if let Some(c) = p.cluster.filter(|_| p.member) {
                    change.touched.insert(*merged_into.get(&c).unwrap_or(&c));
                }
                change.labels.insert(id, now);
            }
        }
        // Renumber new labels densely in order of first appearance.
        let mut renumber: BTreeMap<u32, u32> = BTreeMap::new();
        for l in change.labels.values_mut().flatten() {
            if let Label::New(k) = l {
                let n = renumber.len() as u32;
                *k = *renumber.entry(*k).or_insert(n);
            }
        }
        change.new_clusters = renumber.len() as u32;
        for (from, _) in &change.merged {
            change.touched.remove(from);
        }
        change
    }
}

/// DBSCAN over one cluster's remaining members: the parts its cores form, each with the
/// non-core members next to them.
fn recluster(members: &[i64], pairs: &[(i64, i64)], core: impl Fn(i64) -> bool) -> Vec<Vec<i64>> {
    let index: HashMap<i64, usize> = members.iter().enumerate().map(|(k, &m)| (m, k)).collect();
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); members.len()];
    for &(a, b) in pairs {
        if let (Some(&i), Some(&j)) = (index.get(&a), index.get(&b))
            && i != j
        {
            adj[i].push(j);
            adj[j].push(i);
        }
    }
    let mut part: Vec<Option<usize>> = vec![None; members.len()];
    let mut parts: Vec<Vec<i64>> = Vec::new();
    for start in 0..members.len() {
        if part[start].is_some() || !core(members[start]) {
            continue;
        }
        let k = parts.len();
        parts.push(Vec::new());
        part[start] = Some(k);
        let mut stack = vec![start];
        while let Some(p) = stack.pop() {
            parts[k].push(members[p]);
            for &q in &adj[p] {
                if part[q].is_none() {
                    part[q] = Some(k);
                    if core(members[q]) {
                        stack.push(q);
                    } else {
                        parts[k].push(members[q]);
                    }
                }
            }
        }
    }
    parts
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Unit {
    Label(Label),
    Face(i64),
}

/// Union-find over units (clusters and faces that became core).
#[derive(Debug, Default)]
struct Units {
    items: Vec<Unit>,
    index: HashMap<Unit, usize>,
    parent: Vec<usize>,
}

impl Units {
    fn of(&mut self, u: Unit) -> usize {
        if let Some(&k) = self.index.get(&u) {
            return k;
        }
        let k = self.items.len();
        self.items.push(u);
        self.index.insert(u, k);
        self.parent.push(k);
        k
    }

    fn find(&mut self, mut k: usize) -> usize {
        while self.parent[k] != k {
            self.parent[k] = self.parent[self.parent[k]];
            k = self.parent[k];
        }
        k
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi] = lo;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clustering::dbscan;
    use crate::graph::{Edge, NeighbourGraph};

    /// A small world of 2-D points with ids, clustered by batch DBSCAN or kept incrementally.
    struct World {
        eps: f32,
        min: u32,
        points: BTreeMap<i64, (f32, f32)>,
        state: BTreeMap<i64, Point>,
        next_cluster: i64,
        /// How often each path was taken: merges, clusters clustered again, new clusters.
        merges: usize,
        splits: usize,
        created: usize,
    }

    impl World {
        fn near(&self, a: (f32, f32), b: (f32, f32)) -> bool {
            (a.0 - b.0).powi(2) + (a.1 - b.1).powi(2) < self.eps * self.eps
        }

        /// Apply a batch the way the store does: search around the faces that arrive and leave,
        /// fetch what the batch asks for, write the change.
        fn apply(&mut self, add: &[(i64, (f32, f32))], remove: &[i64]) {
            let mut batch = Batch::new(self.min);
            for (&id, p) in &self.state {
                batch.know(id, *p);
            }
            let gone: BTreeMap<i64, (f32, f32)> =
                remove.iter().map(|id| (*id, self.points[id])).collect();
            for id in remove {
                batch.remove(*id, self.state[id]);
                self.points.remove(id);
                self.state.remove(id);
            }
            for &(id, p) in add {
                batch.add(id);
                self.points.insert(id, p);
            }
            for (&g, &gp) in gone.iter().chain(add.iter().map(|(i, p)| (i, p))) {
                for (&id, &p) in &self.points {
                    if id != g && self.near(gp, p) {
                        batch.pair(g, id);
                    }
                }
            }
            for id in batch.gained_cores() {
                let p = self.points[&id];
                let n = self
                    .points
                    .iter()
                    .filter(|&(&o, &q)| o != id && self.near(p, q))
                    .map(|(&o, _)| o)
                    .collect();
                batch.neighbourhood(id, n);
            }
            for c in batch.split_candidates() {
                let members: Vec<i64> = self
                    .state
                    .iter()
                    .filter(|(_, s)| s.member && s.cluster == Some(c))
                    .map(|(&id, _)| id)
                    .collect();
                let mut pairs = Vec::new();
                for &a in &members {
                    for &b in &members {
                        if a < b && self.near(self.points[&a], self.points[&b]) {
                            pairs.push((a, b));
                        }
                    }
                }
                batch.members(c, members, pairs);
            }
            for id in batch.orphans() {
                let p = self.points[&id];
                let n = self
                    .points
                    .iter()
                    .filter(|&(&o, &q)| o != id && self.near(p, q))
                    .map(|(&o, _)| o)
                    .collect();
                batch.neighbourhood(id, n);
            }
            self.splits += batch.split_candidates().len();
            let change = batch.finish();
            self.merges += change.merged.len();
            self.created += change.new_clusters as usize;
            for &(id, _) in add {
                self.state.insert(
                    id,
                    Point {
                        count: 1,
                        cluster: None,
                        member: false,
                    },
                );
            }
            for (id, count) in &change.counts {
                self.state.get_mut(id).unwrap().count = *count;
            }
            let fresh: Vec<i64> = (0..change.new_clusters)
                .map(|_| {
                    self.next_cluster += 1;
                    self.next_cluster
                })
                .collect();
            for (from, into) in &change.merged {
                for s in self.state.values_mut() {
                    if s.cluster == Some(*from) {
                        s.cluster = Some(*into);
                    }
                }
            }
            for (id, l) in &change.labels {
                let s = self.state.get_mut(id).unwrap();
                match l {
                    Some(Label::Cluster(c)) => (s.cluster, s.member) = (Some(*c), true),
                    Some(Label::New(k)) => (s.cluster, s.member) = (Some(fresh[*k as usize]), true),
                    None => (s.cluster, s.member) = (None, false),
                }
            }
        }

        /// Batch DBSCAN over the points now.
        fn batch(&self) -> (Vec<i64>, Vec<Option<u32>>, Vec<bool>) {
            let ids: Vec<i64> = self.points.keys().copied().collect();
            let pts: Vec<(f32, f32)> = self.points.values().copied().collect();
            let mut edges = Vec::new();
            for i in 0..pts.len() {
                for j in i + 1..pts.len() {
                    if self.near(pts[i], pts[j]) {
                        edges.push(Edge {
                            i: i as u32,
                            j: j as u32,
                            d2: 0.0,
                        });
                    }
                }
            }
            let g = NeighbourGraph::from_edges(pts.len(), &edges);
            let core = (0..pts.len())
                .map(|i| g.neighbours(i).len() as u32 + 1 >= self.min)
                .collect();
            (ids, dbscan(&g, self.min as usize), core)
        }

        fn check(&self) {
            let (ids, labels, core) = self.batch();
            // Counts are exact.
            for (k, id) in ids.iter().enumerate() {
                let p = self.points[id];
                let n = self.points.values().filter(|&&q| self.near(p, q)).count() as u32;
                assert_eq!(self.state[id].count, n, "count of {id}");
                // Noise is noise; members are members.
                assert_eq!(
                    labels[k].is_some(),
                    self.state[id].member,
                    "membership of {id}"
                );
                if core[k] {
                    assert!(self.state[id].member, "core {id} is a member");
                }
            }
            // Core faces are partitioned exactly as batch DBSCAN partitions them.
            for a in 0..ids.len() {
                for b in 0..ids.len() {
                    if core[a] && core[b] {
                        assert_eq!(
                            labels[a] == labels[b],
                            self.state[&ids[a]].cluster == self.state[&ids[b]].cluster,
                            "cores {} and {}",
                            ids[a],
                            ids[b]
                        );
                    }
                }
            }
            // A border face sits in the cluster of one of its core neighbours.
            for (k, id) in ids.iter().enumerate() {
                if labels[k].is_some() && !core[k] {
                    let c = self.state[id].cluster;
                    let ok = ids.iter().enumerate().any(|(j, o)| {
                        core[j]
                            && self.near(self.points[id], self.points[o])
                            && self.state[o].cluster == c
                    });
                    assert!(ok, "border {id} beside a core of its cluster");
                }
            }
        }
    }

    /// A deterministic pseudo-random sequence (xorshift).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    #[test]
    fn arrivals_and_departures_give_batch_dbscans_clusters() {
        let (mut merges, mut splits, mut created) = (0, 0, 0);
        for seed in 1..=40u64 {
            let mut rng = Rng(seed * 0x9E37_79B9_7F4A_7C15);
            let mut w = World {
                eps: 0.09,
                min: 1 + (seed % 4) as u32,
                points: BTreeMap::new(),
                state: BTreeMap::new(),
                next_cluster: 0,
                merges: 0,
                splits: 0,
                created: 0,
            };
            let mut next_id = 1i64;
            for round in 0..20 {
                // A few blobs' worth of points, some alone.
                let n = 1 + (rng.next() * 12.0) as usize;
                let centre = (rng.next(), rng.next());
                let add: Vec<(i64, (f32, f32))> = (0..n)
                    .map(|_| {
                        next_id += 1;
                        let spread = if rng.next() < 0.7 { 0.06 } else { 0.4 };
                        (
                            next_id,
                            (
                                centre.0 + (rng.next() - 0.5) * spread,
                                centre.1 + (rng.next() - 0.5) * spread,
                            ),
                        )
                    })
                    .collect();
                let remove: Vec<i64> = if round % 3 == 2 {
                    w.points
                        .keys()
                        .copied()
                        .filter(|_| rng.next() < 0.2)
                        .collect()
                } else {
                    Vec::new()
                };
                w.apply(&add, &remove);
                w.check();
            }
            (merges, splits, created) = (merges + w.merges, splits + w.splits, created + w.created);
        }
        // Every path was taken, many times.
        assert!(
            merges > 20 && splits > 20 && created > 100,
            "{merges} {splits} {created}"
        );
    }
}
