//! Reading an XMP packet: a bounded, namespace-resolved element tree (quick-xml underneath), and
//! the face regions and people keywords in it, in whichever RDF form the writer chose (properties
//! as attributes or elements, `rdf:parseType="Resource"` or nested `rdf:Description`).
//!
//! Hostile input fails fast: a DTD is refused (so no entity can be declared, let alone expanded),
//! only XML's five predefined entities and character references are accepted, and size, depth
//! and element count are bounded. It never fetches anything and never writes.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use super::*;

/// An element of the packet with its namespace resolved.
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub ns: String,
    pub local: String,
    /// The name as written (`prefix:local`).
    pub qname: String,
    pub attrs: Vec<Attr>,
    /// `xmlns` declarations made on this element: (prefix, uri).
    pub xmlns: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
    /// Byte range of the element in the packet, start tag to end tag.
    pub span: (usize, usize),
    /// True for `<a/>`.
    pub empty: bool,
}

#[derive(Debug, Clone)]
pub struct Attr {
    pub ns: String,
    pub local: String,
    pub value: String,
}

impl Element {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.ns == ns && self.local == local
    }

    pub fn attr(&self, ns: &str, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns == ns && a.local == local)
            .map(|a| a.value.as_str())
    }

    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, local))
    }

    /// Every element below this one (depth first), this one included.
    pub fn walk<'a>(&'a self, out: &mut Vec<&'a Element>) {
        out.push(self);
        for c in &self.children {
            c.walk(out);
        }
    }

    /// This element seen as an RDF struct: its fields are its attributes and children, or those
    /// of the `rdf:Description` it holds.
    fn as_struct(&self) -> &Element {
        match self.child(NS_RDF, "Description") {
            Some(d) if self.children.len() == 1 => d,
            _ => self,
        }
    }

    /// A struct field's text: an attribute, or a child element's text.
    fn field(&self, ns: &str, local: &str) -> Option<String> {
        let s = self.as_struct();
        s.attr(ns, local)
            .map(str::to_string)
            .or_else(|| s.child(ns, local).map(|c| c.text.trim().to_string()))
    }

    /// A struct field that is itself a struct.
    fn struct_field(&self, ns: &str, local: &str) -> Option<&Element> {
        self.as_struct().child(ns, local).map(Element::as_struct)
    }

    /// The items of an array property (`rdf:Bag`, `rdf:Seq` or `rdf:Alt`), each as a struct.
    fn items(&self) -> Vec<&Element> {
        self.item_elements()
            .into_iter()
            .map(Element::as_struct)
            .collect()
    }

    /// The `rdf:li` elements of an array property.
    pub fn item_elements(&self) -> Vec<&Element> {
        let s = self.as_struct();
        s.children
            .iter()
            .filter(|c| c.ns == NS_RDF && matches!(c.local.as_str(), "Bag" | "Seq" | "Alt"))
            .flat_map(|list| list.children.iter().filter(|li| li.is(NS_RDF, "li")))
            .collect()
    }

    /// The region list of an MWG `Regions` or Microsoft `RegionInfo` property.
    pub fn region_list(&self) -> Option<&Element> {
        if self.is(NS_MWG_RS, "Regions") {
            self.struct_field(NS_MWG_RS, "RegionList")
        } else if self.is(NS_MP, "RegionInfo") {
            self.struct_field(NS_MPRI, "Regions")
        } else {
            None
        }
    }
}

/// Parse a packet into its document element tree (a nameless root holding the top elements).
pub fn parse(bytes: &[u8]) -> Result<Element, XmpError> {
    if bytes.len() > MAX_PACKET_BYTES {
        return Err(XmpError::TooLarge(bytes.len()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| XmpError::NotUtf8)?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = vec![Element::default()];
    let mut count = 0usize;
    loop {
        let start = reader.buffer_position() as usize;
        let malformed = |e: quick_xml::Error, at: u64| XmpError::Malformed {
            at,
            why: e.to_string(),
        };
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => return Err(malformed(e, reader.error_position())),
        };
        match event {
            Event::DocType(_) => return Err(XmpError::Doctype),
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(XmpError::TooManyElements);
                }
                if stack.len() > MAX_DEPTH {
                    return Err(XmpError::TooDeep);
                }
                let ns = namespace(&reader.resolver().resolve_element(e.name()).0);
                let mut el = Element {
                    ns,
                    local: e.local_name().as_ref().to_string(),
                    qname: e.name().as_ref().to_string(),
                    span: (start, 0),
                    empty: matches!(event, Event::Empty(_)),
                    ..Element::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| malformed(e.into(), reader.buffer_position()))?;
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| match e {
                            quick_xml::Error::Escape(
                                quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                            ) => XmpError::Entity(name),
                            e => malformed(e, reader.buffer_position()),
                        })?
                        .into_owned();
                    let key = a.key.as_ref();
                    if key == "xmlns" {
                        el.xmlns.push((String::new(), value));
                        continue;
                    }
                    if let Some(prefix) = key.strip_prefix("xmlns:") {
                        el.xmlns.push((prefix.to_string(), value));
                        continue;
                    }
                    let (res, local) = reader.resolver().resolve_attribute(a.key);
                    el.attrs.push(Attr {
                        ns: namespace(&res),
                        local: local.as_ref().to_string(),
                        value,
                    });
                }
                if el.empty {
                    el.span.1 = reader.buffer_position() as usize;
                    stack.last_mut().expect("root").children.push(el);
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let mut el = stack.pop().expect("quick-xml matches end tags");
                el.span.1 = reader.buffer_position() as usize;
                stack.last_mut().expect("root").children.push(el);
            }
            Event::Text(t) => {
                let s = t.xml10_content();
                stack.last_mut().expect("root").text.push_str(&s);
            }
            Event::CData(t) => {
                let s = t.as_ref().to_string();
                stack.last_mut().expect("root").text.push_str(&s);
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| malformed(e, reader.buffer_position()))?
                } else {
                    let name = r.xml10_content();
                    quick_xml::escape::resolve_predefined_entity(&name)
                        .and_then(|s| s.chars().next())
                        .map(Some)
                        .ok_or_else(|| XmpError::Entity(name.into_owned()))?
                };
                if let Some(c) = c {
                    stack.last_mut().expect("root").text.push(c);
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if stack.len() > 1 {
        return Err(XmpError::Truncated(stack.pop().expect("open").qname));
    }
    let mut root = stack.pop().expect("root");
    root.span = (0, bytes.len());
    if root.children.is_empty() {
        return Err(XmpError::Malformed {
            at: 0,
            why: "no element".into(),
        });
    }
    Ok(root)
}

fn namespace(r: &ResolveResult) -> String {
    match r {
        ResolveResult::Bound(ns) => ns.as_ref().to_string(),
        _ => String::new(),
    }
}

/// Every `rdf:Description` at the top of the packet's `rdf:RDF`.
pub fn descriptions(root: &Element) -> Vec<&Element> {
    let mut all = Vec::new();
    root.walk(&mut all);
    all.into_iter()
        .filter(|e| e.is(NS_RDF, "RDF"))
        .flat_map(|rdf| rdf.children.iter().filter(|d| d.is(NS_RDF, "Description")))
        .collect()
}

/// What visage reads from a packet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contents {
    pub regions: Vec<Region>,
    /// MWG's `AppliedToDimensions` (width, height), when given in pixels.
    pub applied_to: Option<(u32, u32)>,
    /// `dc:subject` items.
    pub keywords: Vec<String>,
}

/// The regions and keywords of a parsed packet. Regions without a usable rectangle are skipped.
pub fn contents(root: &Element) -> Contents {
    let mut out = Contents::default();
    for d in descriptions(root) {
        for p in &d.children {
            if p.is(NS_MWG_RS, "Regions") {
                mwg_regions(p, &mut out);
            } else if p.is(NS_MP, "RegionInfo") {
                microsoft_regions(p, &mut out);
            } else if p.is(NS_DC, "subject") {
                out.keywords
                    .extend(p.items().iter().map(|li| li.text.trim().to_string()));
            }
        }
    }
    out
}

fn mwg_regions(p: &Element, out: &mut Contents) {
    if let Some(dim) = p.struct_field(NS_MWG_RS, "AppliedToDimensions") {
        let num = |k| {
            dim.field(NS_ST_DIM, k)
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let unit = dim
            .field(NS_ST_DIM, "unit")
            .unwrap_or_else(|| "pixel".into());
        if let (Some(w), Some(h), "pixel") = (num("w"), num("h"), unit.as_str()) {
            out.applied_to = Some((w.round() as u32, h.round() as u32));
        }
    }
    let Some(list) = p.region_list() else {
        return;
    };
    for r in list.items() {
        let Some(area) = r.struct_field(NS_MWG_RS, "Area") else {
            continue;
        };
        let num = |k| {
            area.field(NS_ST_AREA, k)
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let unit = area
            .field(NS_ST_AREA, "unit")
            .unwrap_or_else(|| "normalized".into());
        let (Some(cx), Some(cy), Some(w), Some(h)) = (num("x"), num("y"), num("w"), num("h"))
        else {
            continue;
        };
        let rect = match (unit.as_str(), out.applied_to) {
            ("normalized", _) => NormRect {
                x: cx - w / 2.0,
                y: cy - h / 2.0,
                w,
                h,
            },
            ("pixel", Some((iw, ih))) if iw > 0 && ih > 0 => {
                let (iw, ih) = (iw as f64, ih as f64);
                NormRect {
                    x: (cx - w / 2.0) / iw,
                    y: (cy - h / 2.0) / ih,
                    w: w / iw,
                    h: h / ih,
                }
            }
            _ => continue,
        };
        if !rect.is_sane() {
            continue;
        }
        out.regions.push(Region {
            format: Format::Mwg,
            kind: r.field(NS_MWG_RS, "Type").unwrap_or_default(),
            name: r.field(NS_MWG_RS, "Name").filter(|n| !n.trim().is_empty()),
            rect,
        });
    }
}

fn microsoft_regions(p: &Element, out: &mut Contents) {
    let Some(regions) = p.region_list() else {
        return;
    };
    for r in regions.items() {
        let Some(rect) = r
            .field(NS_MPREG, "Rectangle")
            .and_then(|s| parse_rectangle(&s))
        else {
            continue;
        };
        out.regions.push(Region {
            format: Format::Microsoft,
            kind: "Face".into(),
            name: r
                .field(NS_MPREG, "PersonDisplayName")
                .filter(|n| !n.trim().is_empty()),
            rect,
        });
    }
}

/// Microsoft's `"x, y, w, h"` (normalised, top-left corner).
pub fn parse_rectangle(s: &str) -> Option<NormRect> {
    let v: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()?;
    let r = match v[..] {
        [x, y, w, h] => NormRect { x, y, w, h },
        _ => return None,
    };
    r.is_sane().then_some(r)
}

/// Parse a packet and read its contents.
pub fn read(bytes: &[u8]) -> Result<Contents, XmpError> {
    Ok(contents(&parse(bytes)?))
}

/// The face regions worth importing: named faces, with the Microsoft copy of a face that also has
/// an MWG region of the same name dropped (visage and many tools write both).
pub fn named_faces(c: &Contents) -> Vec<NamedFace> {
    let mut out: Vec<(Format, NamedFace)> = Vec::new();
    let mut ordered: Vec<&Region> = c.regions.iter().filter(|r| r.is_face()).collect();
    ordered.sort_by_key(|r| r.format != Format::Mwg);
    for r in ordered {
        let Some(name) = r.name.as_deref().map(str::trim) else {
            continue;
        };
        let duplicate = out.iter().any(|(f, n)| {
            *f != r.format && n.name == name && n.rect.iou(&r.rect) >= SAME_REGION_IOU
        });
        if !duplicate {
            out.push((
                r.format,
                NamedFace {
                    name: name.to_string(),
                    rect: r.rect,
                },
            ));
        }
    }
    out.into_iter().map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_forms_of_the_same_region() {
        let attrs = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:mwg-rs="http://www.metadataworkinggroup.com/schemas/regions/"
 xmlns:stArea="http://ns.adobe.com/xmp/sType/Area#" xmlns:stDim="http://ns.adobe.com/xap/1.0/sType/Dimensions#">
<mwg-rs:Regions rdf:parseType="Resource">
 <mwg-rs:AppliedToDimensions stDim:w="400" stDim:h="200" stDim:unit="pixel"/>
 <mwg-rs:RegionList><rdf:Bag><rdf:li><rdf:Description mwg-rs:Name="A &amp; B" mwg-rs:Type="Face">
  <mwg-rs:Area stArea:x="0.5" stArea:y="0.5" stArea:w="0.2" stArea:h="0.4" stArea:unit="normalized"/>
 </rdf:Description></rdf:li></rdf:Bag></mwg-rs:RegionList>
</mwg-rs:Regions></rdf:Description></rdf:RDF></x:xmpmeta>"#;
        let elems = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about=""><r:Regions xmlns:r="http://www.metadataworkinggroup.com/schemas/regions/"><rdf:Description>
 <r:AppliedToDimensions rdf:parseType="Resource"><d:w xmlns:d="http://ns.adobe.com/xap/1.0/sType/Dimensions#">400</d:w></r:AppliedToDimensions>
 <r:RegionList><rdf:Seq><rdf:li rdf:parseType="Resource"><r:Name>A &#38; B</r:Name><r:Type>Face</r:Type>
  <r:Area rdf:parseType="Resource" xmlns:a="http://ns.adobe.com/xmp/sType/Area#"><a:x>0.5</a:x><a:y>0.5</a:y><a:w>0.2</a:w><a:h>0.4</a:h></r:Area>
 </rdf:li></rdf:Seq></r:RegionList></rdf:Description></r:Regions></rdf:Description></rdf:RDF></x:xmpmeta>"#;
        for packet in [attrs, elems] {
            let c = read(packet.as_bytes()).unwrap();
            assert_eq!(c.regions.len(), 1, "{packet}");
            let r = &c.regions[0];
            assert_eq!(r.name.as_deref(), Some("A & B"));
            assert!(r.is_face());
            assert!((r.rect.x - 0.4).abs() < 1e-12 && (r.rect.y - 0.3).abs() < 1e-12);
            assert!((r.rect.w - 0.2).abs() < 1e-12 && (r.rect.h - 0.4).abs() < 1e-12);
        }
    }

    #[test]
    fn hostile_packets_are_refused() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><lolz>&lol2;</lolz>"#;
        assert!(matches!(parse(laughs.as_bytes()), Err(XmpError::Doctype)));
        let undeclared = "<a>&xxe;</a>";
        assert!(matches!(
            parse(undeclared.as_bytes()),
            Err(XmpError::Entity(_))
        ));
        let truncated = "<a><b>";
        assert!(matches!(
            parse(truncated.as_bytes()),
            Err(XmpError::Truncated(_))
        ));
        let deep = "<a>".repeat(MAX_DEPTH + 2);
        assert!(matches!(parse(deep.as_bytes()), Err(XmpError::TooDeep)));
        let big = vec![b' '; MAX_PACKET_BYTES + 1];
        assert!(matches!(parse(&big), Err(XmpError::TooLarge(_))));
    }
}
