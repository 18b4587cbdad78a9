//! `visage import xmp`: names that other programs wrote as XMP face regions (in sidecars, or
//! embedded in JPEG, PNG, WebP and TIFF files) put on visage's faces as manual decisions, with
//! their source recorded.
//!
//! A region is mapped to the face visage detected there (IoU >= 0.5 after orientation); a region
//! with no detected face becomes a face of its own, embedded from the region's box, so the name
//! is not lost. A face that visage names differently is a conflict: reported, and decided by
//! `prefer`, never silently. Photos are read, never written; all changes are one transaction.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageDecoder, ImageReader};
use rayon::prelude::*;
use serde::Serialize;

use super::SidecarName;
use super::export::read_sidecar;
use crate::config::Settings;
use crate::geometry::Rect;
use crate::index::IndexError;
use crate::people;
use crate::photo::Reader;
use crate::pipeline::{Pipeline, PipelineError};
use crate::store::photos::{self, PhotoInfo, SAME_FACE_IOU};
use crate::store::{FaceId, PhotoId, SqlResult, Store, StoreError, faces};
use crate::xmp::orientation;
use crate::xmp::{MAX_PACKET_BYTES, NamedFace, SAME_REGION_IOU, read};

/// Who wins when a face is named differently in visage and in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Prefer {
    /// Keep visage's name and report the conflict
    #[default]
    Visage,
    /// Take the file's name (a manual decision, like `visage split`)
    File,
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Photos (files or folders) whose XMP is read.
    pub paths: Vec<PathBuf>,
    pub prefer: Prefer,
}

/// A face named differently in visage and in a file.
#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub photo: String,
    pub face: FaceId,
    pub visage: String,
    pub file: String,
    pub source: String,
    /// Which name the face has now.
    pub kept: Prefer,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Photos looked at.
    pub photos: usize,
    /// Photos with XMP that holds named face regions.
    pub with_regions: usize,
    /// Named face regions read (an MWG and a Microsoft copy of one face count once).
    pub regions: usize,
    /// Regions put on a face visage detected.
    pub matched: usize,
    /// Regions whose face already had that name in visage.
    pub already: usize,
    /// Regions that became faces of their own (visage had not detected them).
    pub created: usize,
    pub conflicts: Vec<Conflict>,
    /// Photos with regions that visage has not indexed (run `visage index` first).
    pub not_indexed: usize,
    /// Files whose XMP could not be read.
    pub failed: usize,
    pub seconds: f64,
}

/// The named face regions of one photo and where each came from.
struct Found {
    path: String,
    faces: Vec<(NamedFace, String)>,
}

/// A region visage detected no face in: its box (shown pixels), name and source.
struct Marked {
    b: Rect,
    name: String,
    source: String,
}

/// The marked regions of one photo, to become faces of their own.
struct ToCreate {
    photo: PhotoId,
    info: PhotoInfo,
    path: String,
    regions: Vec<Marked>,
}

/// A stored face of a photo, as import needs it (with the people it was rejected for).
struct StoredFace {
    id: FaceId,
    b: Rect,
    person: Option<String>,
    manual: bool,
    rejected_for: Vec<String>,
}

/// Import the names in the XMP of `opts.paths`' photos. `load` opens the networks, only if a
/// region needs a face of its own; `on_error` hears about each file that cannot be read.
pub fn import(
    store: &mut Store,
    settings: &Settings,
    opts: &ImportOptions,
    load: impl FnOnce() -> Result<Pipeline, PipelineError>,
    on_error: impl Fn(&Path, &str) + Sync,
) -> Result<ImportReport, IndexError> {
    let start = std::time::Instant::now();
    let mut report = ImportReport::default();
    let files: Vec<PathBuf> = crate::walk::photos(&opts.paths)
        .into_iter()
        .filter_map(|e| match e {
            Ok(p) => Some(p),
            Err((p, why)) => {
                on_error(&p, &why);
                None
            }
        })
        .collect();
    report.photos = files.len();
    let found: Vec<Result<Found, ()>> = files
        .par_iter()
        .map(|p| {
            regions_of(p).map_err(|why| {
                on_error(p, &why);
            })
        })
        .collect();
    report.failed = found.iter().filter(|f| f.is_err()).count();
    let found: Vec<Found> = found
        .into_iter()
        .flatten()
        .filter(|f| !f.faces.is_empty())
        .collect();
    report.with_regions = found.len();
    report.regions = found.iter().map(|f| f.faces.len()).sum();

    // Decide region by region what to do.
    let mut to_name: Vec<(FaceId, String, String)> = Vec::new();
    let mut to_create: Vec<ToCreate> = Vec::new();
    for f in &found {
        let Some((photo, info)) = store.read(|c| photos::decoded(c, &f.path))? else {
            report.not_indexed += 1;
            on_error(
                Path::new(&f.path),
                "has face regions but is not indexed: run `visage index` on it first",
            );
            continue;
        };
        let stored = store.read(|c| faces_of(c, photo))?;
        let mut taken: Vec<FaceId> = Vec::new();
        let mut create = Vec::new();
        for (region, source) in &f.faces {
            let b =
                orientation::to_pixels(info.orientation, (info.width, info.height), region.rect);
            let b = Rect {
                x: b.x as f32,
                y: b.y as f32,
                w: b.w as f32,
                h: b.h as f32,
            };
            let best = stored
                .iter()
                .filter(|s| !taken.contains(&s.id))
                .map(|s| (s, s.b.iou(&b)))
                .filter(|(_, iou)| *iou >= SAME_FACE_IOU)
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(s, _)| s);
            let Some(face) = best else {
                create.push(Marked {
                    b,
                    name: region.name.clone(),
                    source: source.clone(),
                });
                continue;
            };
            taken.push(face.id);
            let same = face
                .person
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(&region.name));
            if same && face.manual {
                report.already += 1;
                continue;
            }
            let visage_says = if face.manual {
                Some(face.person.clone().unwrap_or_else(|| "(ignored)".into()))
            } else if face
                .rejected_for
                .iter()
                .any(|r| r.eq_ignore_ascii_case(&region.name))
            {
                Some(format!("(not {})", region.name))
            } else {
                None
            };
            if let Some(visage) = visage_says {
                report.conflicts.push(Conflict {
                    photo: f.path.clone(),
                    face: face.id,
                    visage,
                    file: region.name.clone(),
                    source: source.clone(),
                    kept: opts.prefer,
                });
                if opts.prefer == Prefer::Visage {
                    continue;
                }
            }
            report.matched += 1;
            to_name.push((face.id, region.name.clone(), source.clone()));
        }
        if !create.is_empty() {
            to_create.push(ToCreate {
                photo,
                info,
                path: f.path.clone(),
                regions: create,
            });
        }
    }

    // Regions visage did not detect: embed them from their boxes.
    let mut created = Vec::new();
    if !to_create.is_empty() {
        let pipeline = load()?;
        let reader = Reader::for_settings(settings);
        for ToCreate {
            photo,
            info,
            path,
            regions,
        } in to_create
        {
            let decoded = match reader.open(Path::new(&path)) {
                Ok(p) => p,
                Err(e) => {
                    on_error(Path::new(&path), &e.to_string());
                    report.failed += 1;
                    continue;
                }
            };
            let boxes: Vec<Rect> = regions.iter().map(|r| r.b).collect();
            let faces = pipeline.embed_boxes(&decoded, &boxes);
            for (face, r) in faces.into_iter().zip(regions) {
                created.push((photo, info, face, r.name, r.source));
            }
        }
    }
    report.created = created.len();

    if !created.is_empty() || !to_name.is_empty() {
        let what = format!(
            "imported {} names from XMP ({} new faces)",
            to_name.len() + created.len(),
            created.len()
        );
        store.write(|tx| -> Result<(), StoreError> {
            people::history::record(tx, people::history::Kind::Import, what, |tx| {
                for (photo, info, face, name, source) in &created {
                    let id = photos::add_face(tx, *photo, *info, face)?;
                    to_name.push((id, name.clone(), source.clone()));
                }
                people::name_faces(tx, &to_name, settings)
            })?;
            Ok(())
        })?;
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// The named face regions of a photo: from its sidecars (`photo.jpg.xmp`, `photo.xmp`) and from
/// the XMP embedded in it, the same face read twice counted once.
fn regions_of(path: &Path) -> Result<Found, String> {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut faces: Vec<(NamedFace, String)> = Vec::new();
    let mut add = |packet: &[u8], source: String| -> Result<(), String> {
        let contents = read::read(packet).map_err(|e| format!("{source}: {e}"))?;
        for f in read::named_faces(&contents) {
            let dup = faces
                .iter()
                .any(|(g, _)| g.name == f.name && g.rect.iou(&f.rect) >= SAME_REGION_IOU);
            if !dup {
                faces.push((f, source.clone()));
            }
        }
        Ok(())
    };
    for name in [SidecarName::Appended, SidecarName::Replaced] {
        let sidecar = name.for_photo(path);
        if let Some(bytes) = read_sidecar(&sidecar)? {
            add(&bytes, format!("xmp:{}", sidecar.display()))?;
        }
    }
    if let Some(bytes) = embedded_xmp(path)? {
        add(&bytes, format!("xmp:{}", canonical.display()))?;
    }
    Ok(Found {
        path: canonical.to_string_lossy().into_owned(),
        faces,
    })
}

/// The XMP packet embedded in a photo (JPEG APP1, PNG iTXt, WebP XMP chunk, TIFF tag 700), read
/// without decoding its pixels.
fn embedded_xmp(path: &Path) -> Result<Option<Vec<u8>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let reader = ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?;
    let Ok(mut decoder) = reader.into_decoder() else {
        return Ok(None); // not an image visage reads: `index` reports it
    };
    match decoder.xmp_metadata() {
        Ok(Some(x)) if x.len() > MAX_PACKET_BYTES => Err(format!(
            "embedded XMP of {} bytes; over {MAX_PACKET_BYTES} bytes is refused",
            x.len()
        )),
        Ok(x) => Ok(x),
        Err(e) => Err(format!("cannot read its XMP: {e}")),
    }
}

/// The faces of a photo, with the names of the people each was rejected for.
fn faces_of(c: &rusqlite::Connection, photo: PhotoId) -> SqlResult<Vec<StoredFace>> {
    let mut rejected = crate::store::people::rejected_names_in(c, photo)?;
    let (_, rows) = faces::page(c, faces::Selection::Photo(photo), 0, usize::MAX)?;
    Ok(rows
        .into_iter()
        .map(|f| StoredFace {
            id: f.id,
            b: Rect {
                x: f.x,
                y: f.y,
                w: f.w,
                h: f.h,
            },
            manual: f.assigned == Some(faces::Assigned::Manual),
            rejected_for: rejected.remove(&f.id).unwrap_or_default(),
            person: f.person,
        })
        .collect())
}
