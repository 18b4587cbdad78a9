//! XMP face regions, the format other photo programs read (digiKam, Lightroom, darktable, Windows
//! Photo Gallery, PhotoPrism, Immich): MWG regions (`mwg-rs:Regions`), Microsoft Photo regions
//! (`MP:RegionInfo`) and the people keywords (`dc:subject`, `lr:hierarchicalSubject`,
//! `digiKam:TagsList`).
//!
//! [`read`] parses a packet safely (no DTD, no entities beyond XML's five, bounded size and
//! depth) and finds the regions in it; [`write`] makes a packet or merges visage's faces into an
//! existing one, leaving every other property as it was; [`orientation`] converts boxes between
//! visage's EXIF-oriented pixels and the stored pixels regions refer to.
//!
//! Pure data in, data out: nothing here opens a file or the database.

pub mod orientation;
pub mod read;
pub mod write;

use thiserror::Error;

use crate::geometry::Rect;

pub const NS_X: &str = "adobe:ns:meta/";
pub const NS_RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
pub const NS_MWG_RS: &str = "http://www.metadataworkinggroup.com/schemas/regions/";
pub const NS_ST_DIM: &str = "http://ns.adobe.com/xap/1.0/sType/Dimensions#";
pub const NS_ST_AREA: &str = "http://ns.adobe.com/xmp/sType/Area#";
pub const NS_MP: &str = "http://ns.microsoft.com/photo/1.2/";
pub const NS_MPRI: &str = "http://ns.microsoft.com/photo/1.2/t/RegionInfo#";
pub const NS_MPREG: &str = "http://ns.microsoft.com/photo/1.2/t/Region#";
pub const NS_DC: &str = "http://purl.org/dc/elements/1.1/";
pub const NS_LR: &str = "http://ns.adobe.com/lightroom/1.0/";
pub const NS_DIGIKAM: &str = "http://www.digikam.org/ns/1.0/";

/// The largest XMP packet read (sidecars and embedded packets alike). Real ones are kilobytes;
/// JPEG's own limit is 64 KiB per packet.
pub const MAX_PACKET_BYTES: usize = 4 << 20;
/// The deepest element nesting accepted (real packets nest about 10 deep).
pub const MAX_DEPTH: usize = 64;
/// The most elements accepted in one packet.
pub const MAX_ELEMENTS: usize = 200_000;

/// Where digiKam, darktable and Lightroom keep people: `People|Name` and `People/Name`.
pub const PEOPLE_ROOT: &str = "People";

#[derive(Debug, Error)]
pub enum XmpError {
    #[error("XMP larger than {max} bytes ({0} bytes)", max = MAX_PACKET_BYTES)]
    TooLarge(usize),
    #[error("XMP with a document type declaration (DTD) is refused (entities are not expanded)")]
    Doctype,
    #[error("XMP refers to the entity &{0}; (only XML's predefined entities are allowed)")]
    Entity(String),
    #[error("XMP nests deeper than {max} elements", max = MAX_DEPTH)]
    TooDeep,
    #[error("XMP has more than {max} elements", max = MAX_ELEMENTS)]
    TooManyElements,
    #[error("malformed XMP at byte {at}: {why}")]
    Malformed { at: u64, why: String },
    #[error("truncated XMP: <{0}> is never closed")]
    Truncated(String),
    #[error("XMP is not UTF-8")]
    NotUtf8,
}

/// A rectangle normalised to 0-1 of the stored (un-rotated) image, top-left corner and size (the
/// regions' own frame, unlike visage's boxes in oriented pixels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormRect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl NormRect {
    /// Intersection over union ([`Rect::iou`], in f64).
    pub fn iou(&self, o: &NormRect) -> f64 {
        self.rect().iou(&o.rect())
    }

    pub fn rect(&self) -> Rect<f64> {
        Rect::from([self.x, self.y, self.w, self.h])
    }

    /// The part of the rectangle inside the image (0-1).
    pub fn clamped(&self) -> NormRect {
        let (x0, y0) = (self.x.clamp(0.0, 1.0), self.y.clamp(0.0, 1.0));
        let (x1, y1) = (
            (self.x + self.w).clamp(0.0, 1.0),
            (self.y + self.h).clamp(0.0, 1.0),
        );
        NormRect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        }
    }

    /// True when every coordinate is finite and the rectangle has an area.
    pub fn is_sane(&self) -> bool {
        [self.x, self.y, self.w, self.h]
            .iter()
            .all(|v| v.is_finite())
            && self.w > 0.0
            && self.h > 0.0
    }
}

/// Which region format a region was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Mwg,
    Microsoft,
}

/// One region found in a packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub format: Format,
    /// MWG's `Type` (`Face`, `Pet`, `Focus`, `BarCode`; Microsoft regions are people: `Face`).
    pub kind: String,
    pub name: Option<String>,
    pub rect: NormRect,
}

impl Region {
    pub fn is_face(&self) -> bool {
        self.kind.eq_ignore_ascii_case("face")
    }
}

/// A face visage writes: a name and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedFace {
    pub name: String,
    pub rect: NormRect,
}

/// Two regions overlapping at least this much (IoU) are the same face (as `index` decides).
pub const SAME_REGION_IOU: f64 = 0.5;
