//! `visage export xmp`: the people named in visage, written into XMP sidecars next to their
//! photos (MWG and Microsoft regions, people keywords), merged into sidecars that exist.
//!
//! Reads the store, never writes it; writes only sidecars, each atomically, never a photo.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::{SidecarName, under_roots};
use crate::store::{SqlResult, Store, StoreError, faces};
use crate::xmp::orientation::{self, PixelBox};
use crate::xmp::write::{self, Changes, Update};
use crate::xmp::{MAX_PACKET_BYTES, NamedFace};

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Only photos under these (all when empty).
    pub paths: Vec<PathBuf>,
    pub sidecar: SidecarName,
    /// Faces matched automatically to a named person too, not only faces named by hand.
    pub include_matched: bool,
    /// Replace a face region that names the same face differently (else: kept, a conflict).
    pub overwrite: bool,
    /// Say what would change; write nothing.
    pub dry_run: bool,
}

/// What happened to one photo's sidecar.
#[derive(Debug, Clone, Serialize)]
pub struct SidecarReport {
    pub photo: String,
    pub sidecar: String,
    /// `written`, `unchanged`, `would write` (dry run) or `failed`.
    pub outcome: &'static str,
    #[serde(flatten)]
    pub changes: Changes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    pub photos: usize,
    pub faces: usize,
    pub written: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub conflicts: usize,
    pub seconds: f64,
}

/// One photo with the faces to write.
struct PhotoFaces {
    path: String,
    shown: (u32, u32),
    orientation: u8,
    faces: Vec<NamedFace>,
}

/// Export every selected photo's named faces; `on_sidecar` hears about each photo as it is done.
pub fn export(
    store: &Store,
    opts: &ExportOptions,
    on_sidecar: impl Fn(&SidecarReport) + Sync,
) -> Result<ExportReport, StoreError> {
    let start = std::time::Instant::now();
    let selected = under_roots(&opts.paths);
    let photos: Vec<PhotoFaces> = store
        .read(|c| named_faces(c, opts.include_matched))?
        .into_iter()
        .filter(|p| selected(&p.path))
        .collect();
    let reports: Vec<SidecarReport> = photos
        .par_iter()
        .map(|p| {
            let r = export_one(p, opts);
            on_sidecar(&r);
            r
        })
        .collect();
    let mut out = ExportReport {
        photos: photos.len(),
        faces: photos.iter().map(|p| p.faces.len()).sum(),
        ..ExportReport::default()
    };
    for r in &reports {
        match r.outcome {
            "failed" => out.failed += 1,
            "unchanged" => out.unchanged += 1,
            _ => out.written += 1,
        }
        out.conflicts += r.changes.conflicts.len();
    }
    out.seconds = start.elapsed().as_secs_f64();
    Ok(out)
}

fn export_one(p: &PhotoFaces, opts: &ExportOptions) -> SidecarReport {
    let sidecar = opts.sidecar.for_photo(Path::new(&p.path));
    let mut report = SidecarReport {
        photo: p.path.clone(),
        sidecar: sidecar.to_string_lossy().into_owned(),
        outcome: "failed",
        changes: Changes::default(),
        error: None,
    };
    let update = Update {
        applied_to: orientation::stored_size(p.orientation, p.shown),
        faces: p.faces.clone(),
        overwrite: opts.overwrite,
    };
    let result = (|| -> Result<&'static str, String> {
        let existing = read_sidecar(&sidecar)?;
        let merged = write::merge(existing.as_deref(), &update).map_err(|e| e.to_string())?;
        report.changes = merged.changes;
        let Some(packet) = merged.packet else {
            return Ok("unchanged");
        };
        if opts.dry_run {
            return Ok("would write");
        }
        crate::atomic::write(&sidecar, &packet).map_err(|e| format!("cannot write: {e}"))?;
        Ok("written")
    })();
    match result {
        Ok(outcome) => report.outcome = outcome,
        Err(e) => report.error = Some(e),
    }
    report
}

/// A sidecar's bytes, `None` when there is none; too large a file is an error, not read.
pub(crate) fn read_sidecar(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_PACKET_BYTES as u64 => Err(format!(
            "{} is {} bytes; XMP sidecars over {} bytes are refused",
            path.display(),
            m.len(),
            MAX_PACKET_BYTES
        )),
        Ok(_) => std::fs::read(path)
            .map(Some)
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The named faces of photos still present, grouped by photo, as regions of the stored image.
fn named_faces(c: &rusqlite::Connection, include_matched: bool) -> SqlResult<Vec<PhotoFaces>> {
    let mut by_photo: BTreeMap<String, PhotoFaces> = BTreeMap::new();
    for row in faces::named_in_photos(c, include_matched)? {
        let (path, shown, orientation, name) =
            (row.path, (row.width, row.height), row.orientation, row.name);
        let b = PixelBox {
            x: row.x,
            y: row.y,
            w: row.w,
            h: row.h,
        };
        let entry = by_photo.entry(path.clone()).or_insert_with(|| PhotoFaces {
            path,
            shown,
            orientation,
            faces: Vec::new(),
        });
        entry.faces.push(NamedFace {
            name,
            rect: orientation::to_region(orientation, shown, b).clamped(),
        });
    }
    Ok(by_photo.into_values().collect())
}
