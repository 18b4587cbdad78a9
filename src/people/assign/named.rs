//! Matching faces to the people named by hand (`clustering::matching::PersonMatcher`): a face
//! joins the person whose nearest named face (or centroid) is within reach, is left ambiguous
//! when a second person is about as near, and never joins a person it was rejected for.
//!
//! The decision for one face costs the named faces; which faces need one is found first by a
//! range search of the faces against the named faces and the people's centroids (`graph::range`),
//! so a face out of everyone's reach costs a few matrix products, not a loop over people.

use std::collections::HashMap;

use rayon::prelude::*;
use rusqlite::Connection;

use super::Faces;
use crate::clustering::matching::{PersonMatch, PersonMatcher, Reach};
use crate::config::Settings;
use crate::embedding::EMBEDDING_DIM as DIM;
use crate::graph::Rows;
use crate::graph::range::RangeQuery;
use crate::store::{SqlResult, faces};

/// Which people matching must look at after a decision: all of them, or only those whose named
/// faces the decision changed (a face out of their reach keeps its decision).
#[derive(Debug, Clone, Copy)]
pub enum Candidates<'a> {
    All,
    People(&'a [i64]),
}

/// Every person's faces named by hand (of photos still present), for matching and suggestions,
/// with the cluster each is in.
pub struct Named {
    pub matcher: PersonMatcher,
    /// The manual cluster of each named face, by face id.
    pub cluster_of: HashMap<i64, i64>,
}

/// Load every face named by hand: what person matching and suggestions compare with.
pub fn load_named(conn: &Connection) -> SqlResult<Named> {
    let rows = faces::named(conn)?;
    let matcher = PersonMatcher::new(
        rows.iter()
            .map(|n| (n.person, n.face.0, n.embedding.as_slice())),
    );
    let cluster_of = rows.iter().map(|n| (n.face.0, n.cluster.0)).collect();
    Ok(Named {
        matcher,
        cluster_of,
    })
}

/// What person matching decided for a face.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum PersonDecision {
    /// Join this person, in this (manual) cluster.
    Join {
        person: i64,
        cluster: Option<i64>,
    },
    Ambiguous,
    None,
}

impl Named {
    /// The reach of automatic matching, and the distance within which a face can matter at all
    /// (a rival within the margin makes a face ambiguous).
    pub(super) fn reach(settings: &Settings) -> (Reach, f32) {
        let reach = Reach::new(settings.face_match_dist);
        (reach, reach.auto + reach.margin)
    }

    /// The decision for each face, against every person.
    pub(super) fn decide(
        &self,
        faces: &Faces,
        rejections: &HashMap<i64, Vec<i64>>,
        settings: &Settings,
    ) -> Vec<PersonDecision> {
        let n = faces.len();
        let m = &self.matcher;
        if m.is_empty() || n == 0 {
            return vec![PersonDecision::None; n];
        }
        let (reach, near) = Self::reach(settings);
        // Faces within reach of a named face or a centroid: the only ones that can join anyone.
        let mut rows: Vec<f32> = Vec::new();
        for &p in m.people() {
            if let Some((c, _)) = m.centroid(p) {
                rows.extend_from_slice(c);
            }
        }
        rows.extend_from_slice(m.rows());
        let mut queries = RangeQuery::new(&rows, DIM, near);
        let mut close = vec![false; n];
        for hit in queries.within(Rows::F16(&faces.rows)) {
            close[hit.row as usize] = true;
        }
        let none = Vec::new();
        (0..n)
            .into_par_iter()
            .map(|k| {
                if !close[k] {
                    return PersonDecision::None;
                }
                let rejected = rejections.get(&faces.ids[k]).unwrap_or(&none);
                match m.decide(&faces.row_f32(k), rejected, reach) {
                    PersonMatch::Join { person, row, .. } => PersonDecision::Join {
                        person,
                        cluster: self.cluster_of.get(&m.face(row)).copied(),
                    },
                    PersonMatch::Ambiguous => PersonDecision::Ambiguous,
                    PersonMatch::None => PersonDecision::None,
                }
            })
            .collect()
    }
}
