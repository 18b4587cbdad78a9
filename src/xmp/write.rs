//! Writing visage's named faces as XMP: a new packet, or an existing one with only the face
//! regions and people keywords changed. Everything else in an existing packet (ratings, labels,
//! other keywords, other tools' regions that are not faces, comments, formatting) is kept byte for
//! byte: the old packet is copied and only the properties visage rewrites are spliced.
//!
//! It decides which faces to write elsewhere; it never reads or writes a file.

use std::fmt::Write as _;

use quick_xml::escape::escape;
use serde::Serialize;

use super::read::{self, Element};
use super::*;

/// What to write for one photo: its stored image size and its named faces.
#[derive(Debug, Clone)]
pub struct Update {
    /// The stored (un-rotated) image's width and height in pixels.
    pub applied_to: (u32, u32),
    pub faces: Vec<NamedFace>,
    /// With `overwrite`, a face region of another name on the same face is replaced; without,
    /// it is kept and reported as a conflict.
    pub overwrite: bool,
}

/// What a merge did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Changes {
    /// visage faces written where the packet had no region for them.
    pub added: usize,
    /// Face regions of the same face replaced (a new box for the same name, or `overwrite`).
    pub replaced: usize,
    /// Faces the packet already had, name and box alike.
    pub unchanged: usize,
    /// Regions of the packet kept as they were (other faces, non-face regions).
    pub kept: usize,
    /// Faces the packet names differently: (the packet's name, visage's name).
    pub conflicts: Vec<(String, String)>,
    /// Names added to the keywords.
    pub keywords_added: Vec<String>,
}

impl Changes {
    pub fn changed(&self) -> bool {
        self.added + self.replaced > 0 || !self.keywords_added.is_empty()
    }
}

/// The new packet (`None` when nothing changes) and what changed.
pub struct Merged {
    pub packet: Option<Vec<u8>>,
    pub changes: Changes,
}

const REGION_PROPS: [(&str, &str); 2] = [(NS_MWG_RS, "Regions"), (NS_MP, "RegionInfo")];

/// An item of an old region list, with its raw bytes so it can be kept verbatim (an item visage
/// cannot read is kept too).
struct OldRegion<'a> {
    format: Format,
    region: Option<Region>,
    raw: &'a str,
}

impl OldRegion<'_> {
    fn face(&self) -> Option<&Region> {
        self.region.as_ref().filter(|r| r.is_face())
    }
}

/// Merge `update` into `existing` (or make a new packet when there is none).
pub fn merge(existing: Option<&[u8]>, update: &Update) -> Result<Merged, XmpError> {
    let Some(bytes) = existing else {
        let mut changes = Changes {
            added: update.faces.len(),
            ..Changes::default()
        };
        changes.keywords_added = names(&update.faces);
        let mut body = regions(update, &update.faces, &[], &[], &[]);
        body.push_str(&keyword_props(
            &[vec![], vec![], vec![]],
            &changes.keywords_added,
        ));
        return Ok(Merged {
            packet: Some(new_packet(&body).into_bytes()),
            changes,
        });
    };
    let root = read::parse(bytes)?;
    let text = std::str::from_utf8(bytes).map_err(|_| XmpError::NotUtf8)?;
    let descriptions = read::descriptions(&root);
    let Some(first) = descriptions.first() else {
        return Err(XmpError::Malformed {
            at: 0,
            why: "no rdf:Description".into(),
        });
    };

    // The old regions, each with its raw item, per format.
    let mut old: Vec<OldRegion> = Vec::new();
    let mut prop_spans: Vec<(usize, usize)> = Vec::new();
    let mut inherited_ns: Vec<(String, String)> = Vec::new();
    for d in &descriptions {
        for p in &d.children {
            if REGION_PROPS.iter().any(|(ns, l)| p.is(ns, l)) {
                prop_spans.push(p.span);
                collect_items(p, text, &mut old, &mut inherited_ns);
            }
        }
    }

    // Decide per visage face: unchanged, replaced, conflict or added.
    let mut changes = Changes::default();
    let mut dropped = vec![false; old.len()];
    let mut write_faces: Vec<NamedFace> = Vec::new();
    for f in &update.faces {
        let same: Vec<usize> = (0..old.len())
            .filter(|&i| {
                old[i]
                    .face()
                    .is_some_and(|r| r.rect.iou(&f.rect) >= SAME_REGION_IOU)
            })
            .collect();
        if same.is_empty() {
            changes.added += 1;
            write_faces.push(f.clone());
            continue;
        }
        let other_name = same
            .iter()
            .filter_map(|&i| old[i].face().and_then(|r| r.name.clone()))
            .find(|n| !n.eq_ignore_ascii_case(&f.name));
        if let (Some(other), false) = (&other_name, update.overwrite) {
            changes.conflicts.push((other.clone(), f.name.clone()));
            continue;
        }
        let identical = other_name.is_none()
            && same.iter().all(|&i| {
                let r = &old[i].face().expect("a face").rect;
                (r.x - f.rect.x).abs() < 1e-4
                    && (r.y - f.rect.y).abs() < 1e-4
                    && (r.w - f.rect.w).abs() < 1e-4
                    && (r.h - f.rect.h).abs() < 1e-4
            })
            && [Format::Mwg, Format::Microsoft]
                .iter()
                .all(|fmt| same.iter().any(|&i| old[i].format == *fmt));
        if identical {
            changes.unchanged += 1;
            continue;
        }
        changes.replaced += 1;
        for &i in &same {
            dropped[i] = true;
        }
        write_faces.push(f.clone());
    }

    // Keywords: add the names that are missing, keep every keyword that is there.
    let old_keywords = read::contents(&root).keywords;
    changes.keywords_added = names(&update.faces)
        .into_iter()
        .filter(|n| !old_keywords.iter().any(|k| k == n))
        .collect();

    if !changes.changed() {
        changes.kept = old.len();
        return Ok(Merged {
            packet: None,
            changes,
        });
    }

    let rewrite_regions = changes.added + changes.replaced > 0;
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let (mut kept_mwg, mut kept_mp) = (Vec::new(), Vec::new());
    if rewrite_regions {
        spans.extend(&prop_spans);
        for (o, dropped) in old.iter().zip(&dropped) {
            if *dropped {
                continue;
            }
            changes.kept += 1;
            match o.format {
                Format::Mwg => kept_mwg.push(o.raw),
                Format::Microsoft => kept_mp.push(o.raw),
            }
        }
    } else {
        changes.kept = old.len();
    }
    let mut keywords: Vec<(&str, &str, Vec<String>)> = Vec::new();
    if !changes.keywords_added.is_empty() {
        for d in &descriptions {
            for p in &d.children {
                if let Some(KeywordList { ns, local, .. }) =
                    KEYWORD_LISTS.iter().find(|k| p.is(k.ns, k.local))
                {
                    spans.push(p.span);
                    let items: Vec<String> = p
                        .children
                        .iter()
                        .flat_map(|l| l.children.iter())
                        .map(|li| li.text.trim().to_string())
                        .collect();
                    keywords.push((ns, local, items));
                }
            }
        }
    }
    let old_of = |ns: &str, local: &str| -> Vec<String> {
        keywords
            .iter()
            .filter(|(n, l, _)| *n == ns && *l == local)
            .flat_map(|(_, _, v)| v.clone())
            .collect()
    };
    let old_keyword_lists = [
        old_of(NS_DC, "subject"),
        old_of(NS_LR, "hierarchicalSubject"),
        old_of(NS_DIGIKAM, "TagsList"),
    ];

    let mut body = String::new();
    if rewrite_regions {
        body.push_str(&regions(
            update,
            &write_faces,
            &kept_mwg,
            &kept_mp,
            &inherited_ns,
        ));
    }
    if !changes.keywords_added.is_empty() {
        body.push_str(&keyword_props(&old_keyword_lists, &changes.keywords_added));
    }

    // Splice: drop the rewritten properties, put the new ones at the end of the first
    // description (a self-closing `<rdf:Description .../>` gets an end tag).
    let mut edits: Vec<(usize, usize, String)> =
        spans.iter().map(|&(s, e)| (s, e, String::new())).collect();
    if first.empty {
        let end = first.span.1;
        edits.push((end - 2, end, format!(">{body}  </{}>", first.qname)));
    } else {
        let at = end_tag_start(text, first);
        edits.push((at, at, format!("{body}  ")));
    }
    edits.sort_by_key(|(s, e, _)| (*s, *e));
    let mut out = String::with_capacity(text.len() + body.len());
    let mut at = 0;
    for (s, e, with) in edits {
        out.push_str(&text[at..s.max(at)]);
        out.push_str(&with);
        at = at.max(e);
    }
    out.push_str(&text[at..]);
    Ok(Merged {
        packet: Some(out.into_bytes()),
        changes,
    })
}

/// Where `</rdf:Description>` starts.
fn end_tag_start(text: &str, d: &Element) -> usize {
    text[..d.span.1].rfind("</").unwrap_or(d.span.1)
}

/// The items of a region property, with their raw text, and the namespaces declared on the way
/// down to them (which a kept item may rely on).
fn collect_items<'a>(
    p: &Element,
    text: &'a str,
    out: &mut Vec<OldRegion<'a>>,
    inherited_ns: &mut Vec<(String, String)>,
) {
    let format = if p.is(NS_MWG_RS, "Regions") {
        Format::Mwg
    } else {
        Format::Microsoft
    };
    let items = p
        .region_list()
        .map(Element::item_elements)
        .unwrap_or_default();
    let mut all = Vec::new();
    p.walk(&mut all);
    for e in &all {
        if items
            .iter()
            .any(|li| li.span.0 <= e.span.0 && e.span.1 <= li.span.1)
        {
            continue;
        }
        for ns in &e.xmlns {
            if !inherited_ns.contains(ns) {
                inherited_ns.push(ns.clone());
            }
        }
    }
    // Read each item on its own, so the reader's rules decide what it is.
    for li in items {
        out.push(OldRegion {
            format,
            region: read::contents(&wrap_item(p, li)).regions.into_iter().next(),
            raw: &text[li.span.0..li.span.1],
        });
    }
}

/// A tree holding property `p` with only item `li` in its list, to read that item alone.
fn wrap_item(p: &Element, li: &Element) -> Element {
    fn keep_only(e: &Element, li: &Element) -> Element {
        let mut c = e.clone();
        c.children = e
            .children
            .iter()
            .filter(|x| !x.is(NS_RDF, "li") || x.span == li.span)
            .map(|x| {
                if x.span == li.span {
                    x.clone()
                } else {
                    keep_only(x, li)
                }
            })
            .collect();
        c
    }
    let d = Element {
        ns: NS_RDF.into(),
        local: "Description".into(),
        children: vec![keep_only(p, li)],
        ..Element::default()
    };
    Element {
        children: vec![Element {
            ns: NS_RDF.into(),
            local: "RDF".into(),
            children: vec![d],
            ..Element::default()
        }],
        ..Element::default()
    }
}

fn names(faces: &[NamedFace]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for f in faces {
        if !v.contains(&f.name) {
            v.push(f.name.clone());
        }
    }
    v
}

fn num(v: f64) -> String {
    format!("{:.6}", v.clamp(-1.0, 2.0))
}

/// The MWG and Microsoft region properties, with `kept` old items verbatim.
fn regions(
    update: &Update,
    faces: &[NamedFace],
    kept_mwg: &[&str],
    kept_mp: &[&str],
    inherited_ns: &[(String, String)],
) -> String {
    let mine = [
        ("mwg-rs", NS_MWG_RS),
        ("stDim", NS_ST_DIM),
        ("stArea", NS_ST_AREA),
        ("MP", NS_MP),
        ("MPRI", NS_MPRI),
        ("MPReg", NS_MPREG),
        ("rdf", NS_RDF),
    ];
    let mut extra = String::new();
    for (prefix, uri) in inherited_ns {
        if prefix.is_empty() || mine.iter().any(|(p, _)| p == prefix) {
            continue;
        }
        let _ = write!(extra, " xmlns:{prefix}=\"{}\"", escape(uri.as_str()));
    }
    let (w, h) = update.applied_to;
    let mut s = String::new();
    let _ = write!(
        s,
        "\n   <mwg-rs:Regions rdf:parseType=\"Resource\" xmlns:mwg-rs=\"{NS_MWG_RS}\" \
         xmlns:stDim=\"{NS_ST_DIM}\" xmlns:stArea=\"{NS_ST_AREA}\"{extra}>\n    \
         <mwg-rs:AppliedToDimensions stDim:w=\"{w}\" stDim:h=\"{h}\" stDim:unit=\"pixel\"/>\n    \
         <mwg-rs:RegionList>\n     <rdf:Bag>"
    );
    for raw in kept_mwg {
        let _ = write!(s, "\n      {raw}");
    }
    for f in faces {
        let r = f.rect;
        let _ = write!(
            s,
            "\n      <rdf:li rdf:parseType=\"Resource\">\n       <mwg-rs:Type>Face</mwg-rs:Type>\n       \
             <mwg-rs:Name>{}</mwg-rs:Name>\n       <mwg-rs:Area stArea:x=\"{}\" stArea:y=\"{}\" \
             stArea:w=\"{}\" stArea:h=\"{}\" stArea:unit=\"normalized\"/>\n      </rdf:li>",
            escape(f.name.as_str()),
            num(r.x + r.w / 2.0),
            num(r.y + r.h / 2.0),
            num(r.w),
            num(r.h)
        );
    }
    s.push_str("\n     </rdf:Bag>\n    </mwg-rs:RegionList>\n   </mwg-rs:Regions>");
    let _ = write!(
        s,
        "\n   <MP:RegionInfo rdf:parseType=\"Resource\" xmlns:MP=\"{NS_MP}\" xmlns:MPRI=\"{NS_MPRI}\" \
         xmlns:MPReg=\"{NS_MPREG}\"{extra}>\n    <MPRI:Regions>\n     <rdf:Bag>"
    );
    for raw in kept_mp {
        let _ = write!(s, "\n      {raw}");
    }
    for f in faces {
        let r = f.rect;
        let _ = write!(
            s,
            "\n      <rdf:li rdf:parseType=\"Resource\">\n       <MPReg:Rectangle>{}, {}, {}, {}</MPReg:Rectangle>\n       \
             <MPReg:PersonDisplayName>{}</MPReg:PersonDisplayName>\n      </rdf:li>",
            num(r.x),
            num(r.y),
            num(r.w),
            num(r.h),
            escape(f.name.as_str())
        );
    }
    s.push_str("\n     </rdf:Bag>\n    </MPRI:Regions>\n   </MP:RegionInfo>\n");
    s
}

/// One of the people keyword lists and how a name is filed in it.
struct KeywordList {
    prefix: &'static str,
    ns: &'static str,
    local: &'static str,
    array: &'static str,
    file: fn(&str) -> String,
}

/// `dc:subject` (`Name`), Lightroom's `People|Name`, digiKam's `People/Name`.
const KEYWORD_LISTS: [KeywordList; 3] = [
    KeywordList {
        prefix: "dc",
        ns: NS_DC,
        local: "subject",
        array: "Bag",
        file: |n| n.to_string(),
    },
    KeywordList {
        prefix: "lr",
        ns: NS_LR,
        local: "hierarchicalSubject",
        array: "Bag",
        file: |n| format!("{PEOPLE_ROOT}|{n}"),
    },
    KeywordList {
        prefix: "digiKam",
        ns: NS_DIGIKAM,
        local: "TagsList",
        array: "Seq",
        file: |n| format!("{PEOPLE_ROOT}/{n}"),
    },
];

/// The three keyword lists: the old items with visage's names added.
fn keyword_props(old: &[Vec<String>; 3], added: &[String]) -> String {
    let mut s = String::new();
    for (list, old) in KEYWORD_LISTS.iter().zip(old) {
        let mut items: Vec<String> = old.clone();
        for n in added {
            let v = (list.file)(n);
            if !items.contains(&v) {
                items.push(v);
            }
        }
        let KeywordList {
            prefix,
            ns,
            local,
            array,
            ..
        } = list;
        let _ = write!(
            s,
            "   <{prefix}:{local} xmlns:{prefix}=\"{ns}\">\n    <rdf:{array}>"
        );
        for it in items {
            let _ = write!(s, "\n     <rdf:li>{}</rdf:li>", escape(it.as_str()));
        }
        let _ = writeln!(s, "\n    </rdf:{array}>\n   </{prefix}:{local}>");
    }
    s
}

/// A whole sidecar around `body` (properties of one description).
fn new_packet(body: &str) -> String {
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
         <x:xmpmeta xmlns:x=\"{NS_X}\" x:xmptk=\"visage {}\">\n \
         <rdf:RDF xmlns:rdf=\"{NS_RDF}\">\n  <rdf:Description rdf:about=\"\">{body}  </rdf:Description>\n \
         </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"w\"?>\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(name: &str, x: f64) -> NamedFace {
        NamedFace {
            name: name.into(),
            rect: NormRect {
                x,
                y: 0.2,
                w: 0.1,
                h: 0.15,
            },
        }
    }

    fn update(faces: Vec<NamedFace>) -> Update {
        Update {
            applied_to: (4000, 3000),
            faces,
            overwrite: false,
        }
    }

    #[test]
    fn a_new_packet_reads_back() {
        let m = merge(None, &update(vec![face("Ann <&>", 0.1), face("Bo", 0.5)])).unwrap();
        let c = read::read(&m.packet.unwrap()).unwrap();
        assert_eq!(c.applied_to, Some((4000, 3000)));
        assert_eq!(c.regions.len(), 4);
        let faces = read::named_faces(&c);
        assert_eq!(faces.len(), 2);
        assert_eq!(faces[0].name, "Ann <&>");
        assert!((faces[1].rect.x - 0.5).abs() < 1e-6);
        assert_eq!(c.keywords, vec!["Ann <&>", "Bo"]);
    }

    #[test]
    fn merging_keeps_the_rest_and_is_idempotent() {
        let old = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="4"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
    xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#">
   <!-- a comment -->
   <dc:subject><rdf:Bag><rdf:li>holiday</rdf:li></rdf:Bag></dc:subject>
   <mwg-rs:Regions rdf:parseType="Resource"><mwg-rs:RegionList><rdf:Bag>
    <rdf:li rdf:parseType="Resource"><mwg-rs:Type>Pet</mwg-rs:Type><mwg-rs:Name>Rex</mwg-rs:Name>
     <mwg-rs:Area stArea:x="0.8" stArea:y="0.8" stArea:w="0.1" stArea:h="0.1" stArea:unit="normalized"/></rdf:li>
    <rdf:li rdf:parseType="Resource"><mwg-rs:Type>Face</mwg-rs:Type><mwg-rs:Name>Bob</mwg-rs:Name>
     <mwg-rs:Area stArea:x="0.55" stArea:y="0.275" stArea:w="0.1" stArea:h="0.15" stArea:unit="normalized"/></rdf:li>
   </rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"#;
        let u = update(vec![face("Ann", 0.1), face("Robert", 0.5)]);
        let m = merge(Some(old.as_bytes()), &u).unwrap();
        assert_eq!(m.changes.added, 1);
        assert_eq!(
            m.changes.conflicts,
            vec![("Bob".to_string(), "Robert".to_string())]
        );
        let new = String::from_utf8(m.packet.unwrap()).unwrap();
        assert!(new.contains(r#"xmp:Rating="4""#) && new.contains("<!-- a comment -->"));
        let c = read::read(new.as_bytes()).unwrap();
        assert!(c.keywords.contains(&"holiday".to_string()) && c.keywords.contains(&"Ann".into()));
        assert!(
            c.regions
                .iter()
                .any(|r| r.kind == "Pet" && r.name.as_deref() == Some("Rex"))
        );
        assert!(c.regions.iter().any(|r| r.name.as_deref() == Some("Bob")));
        assert!(
            !c.regions
                .iter()
                .any(|r| r.name.as_deref() == Some("Robert"))
        );
        // The same export again changes nothing.
        let again = merge(Some(new.as_bytes()), &u).unwrap();
        assert!(again.packet.is_none(), "{:?}", again.changes);
        // With overwrite, visage's name wins on that face; the pet stays.
        let over = Update {
            overwrite: true,
            ..u.clone()
        };
        let m = merge(Some(new.as_bytes()), &over).unwrap();
        assert_eq!(m.changes.replaced, 1);
        let c = read::read(&m.packet.unwrap()).unwrap();
        let names: Vec<_> = read::named_faces(&c).into_iter().map(|f| f.name).collect();
        assert_eq!(names, vec!["Ann", "Robert"]);
        assert!(c.regions.iter().any(|r| r.kind == "Pet"));
    }
}
