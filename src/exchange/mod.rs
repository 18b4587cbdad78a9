//! Names in and out of photo metadata: [`export`] writes the people named in visage into XMP
//! sidecars other photo programs read; [`import`] reads the names those programs wrote (sidecars
//! and XMP embedded in the photos) back onto visage's faces.
//!
//! These are operations on the store like the people commands, shared by every front (the CLI
//! today). The XMP format itself is [`crate::xmp`]'s; nothing here parses XML. Photo files are
//! only ever read, never modified.

pub mod export;
pub mod import;

use std::path::{Path, PathBuf};

/// How a sidecar is named next to its photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SidecarName {
    /// `photo.jpg.xmp`, as digiKam and darktable name them
    #[default]
    #[value(name = "photo.jpg.xmp")]
    Appended,
    /// `photo.xmp`, as Lightroom names them
    #[value(name = "photo.xmp")]
    Replaced,
}

impl SidecarName {
    pub fn for_photo(self, photo: &Path) -> PathBuf {
        match self {
            SidecarName::Appended => {
                let mut s = photo.as_os_str().to_owned();
                s.push(".xmp");
                PathBuf::from(s)
            }
            SidecarName::Replaced => photo.with_extension("xmp"),
        }
    }
}

/// Photos under one of `roots` (all of them when there is none). Roots are compared after
/// canonicalisation, as `index` stores paths.
pub(crate) fn under_roots(roots: &[PathBuf]) -> impl Fn(&str) -> bool {
    let roots: Vec<PathBuf> = roots
        .iter()
        .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
        .collect();
    move |path: &str| roots.is_empty() || roots.iter().any(|r| Path::new(path).starts_with(r))
}
