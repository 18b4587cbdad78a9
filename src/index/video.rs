//! A video's faces: the faces found in its stills, one per person. A person seen at several
//! moments is one face, the clearest; its `moment` says which still it is from.
//!
//! Two faces are one person when their embeddings are closer than the cluster distance. The
//! clearest face (largest, then most probable, then best scored) leads its person; each face,
//! clearest first, joins the nearest person within the distance that has no face from its own
//! still (two faces of one still are two people), or leads a new one.

use crate::detection::FoundFace;
use crate::embedding::distance;

/// How clear a face is: its side in detection pixels times O-Net's probability (a large face
/// that O-Net doubts is no clearer than a smaller sure one), then its detection score.
fn clarity(f: &FoundFace) -> (f32, f32) {
    let d = &f.detection;
    (d.size as f32 * d.probability, d.score)
}

/// One face per person of `faces` (each with the moment of its still), in the order of their
/// moments, then left to right.
pub fn one_per_person(mut faces: Vec<FoundFace>, same_person: f32) -> Vec<FoundFace> {
    faces.sort_by(|a, b| {
        let (ca, cb) = (clarity(a), clarity(b));
        cb.0.total_cmp(&ca.0).then(cb.1.total_cmp(&ca.1))
    });
    // Each person: the index of its clearest face, and the moments it has a face at.
    let mut people: Vec<(usize, Vec<Option<f64>>)> = Vec::new();
    for (i, face) in faces.iter().enumerate() {
        let nearest = people
            .iter_mut()
            .filter(|(_, moments)| !moments.contains(&face.moment))
            .map(|(lead, moments)| (distance(&faces[*lead].embedding, &face.embedding), moments))
            .filter(|(d, _)| *d < same_person)
            .min_by(|a, b| a.0.total_cmp(&b.0));
        match nearest {
            Some((_, moments)) => moments.push(face.moment),
            None => people.push((i, vec![face.moment])),
        }
    }
    let mut leads: Vec<usize> = people.into_iter().map(|(lead, _)| lead).collect();
    leads.sort_unstable();
    let mut kept: Vec<FoundFace> = faces
        .into_iter()
        .enumerate()
        .filter(|(i, _)| leads.binary_search(i).is_ok())
        .map(|(_, f)| f)
        .collect();
    kept.sort_by(|a, b| {
        a.moment
            .unwrap_or(0.0)
            .total_cmp(&b.moment.unwrap_or(0.0))
            .then(a.detection.rect.x.total_cmp(&b.detection.rect.x))
    });
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::{Detection, Source};
    use crate::geometry::Rect;

    fn face(at: f64, x: f32, size: u32, direction: usize) -> FoundFace {
        let mut embedding = vec![0.0; 8];
        embedding[direction] = 1.0;
        FoundFace {
            detection: Detection {
                rect: Rect {
                    x,
                    y: 0.0,
                    w: size as f32,
                    h: size as f32,
                },
                size,
                score: 10.0,
                source: Source::Pico,
                probability: 0.99,
                landmarks: Vec::new(),
            },
            embedding,
            moment: Some(at),
        }
    }

    #[test]
    fn a_person_seen_twice_is_one_face_the_clearest() {
        // Person 0 at 5 s (small) and 15 s (large); person 1 at 5 s; person 2 at 15 s.
        let faces = vec![
            face(5.0, 10.0, 40, 0),
            face(5.0, 300.0, 60, 1),
            face(15.0, 20.0, 90, 0),
            face(15.0, 400.0, 50, 2),
        ];
        let kept = one_per_person(faces, 0.64);
        let got: Vec<(f64, f32)> = kept
            .iter()
            .map(|f| (f.moment.unwrap(), f.detection.rect.x))
            .collect();
        assert_eq!(got, [(5.0, 300.0), (15.0, 20.0), (15.0, 400.0)]);
    }

    #[test]
    fn two_faces_of_one_still_are_two_people() {
        // Twins (the same embedding) side by side in one still stay two faces.
        let faces = vec![face(5.0, 10.0, 40, 0), face(5.0, 300.0, 50, 0)];
        assert_eq!(one_per_person(faces, 0.64).len(), 2);
        // ...and a third still of one of them joins the nearest, not both.
        let faces = vec![
            face(5.0, 10.0, 40, 0),
            face(5.0, 300.0, 50, 0),
            face(15.0, 10.0, 45, 0),
        ];
        assert_eq!(one_per_person(faces, 0.64).len(), 2);
    }
}
