//! What a file holds, told from its first bytes (its content, never its name): a JPEG named
//! `.heic` is a JPEG. [`sniff`] looks at the magic numbers and, for ISO base media files, the
//! `ftyp` brands, and for TIFF-based files the first IFD (a DNG, or a camera's RAW).
//!
//! It decodes nothing, and reads no more of a file than its first [`HEAD`] bytes.

use std::fmt;

use super::tiff::Tiff;

/// The kinds of file visage tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Jpeg,
    Png,
    WebP,
    Tiff,
    Bmp,
    Gif,
    /// HEIF with HEVC (HEIC) or another codec but AV1.
    Heif,
    /// HEIF with AV1.
    Avif,
    /// A camera's RAW photo.
    Raw(RawFormat),
    /// A video (its stills are read by `photo::video`, where built).
    Video(Container),
    /// None of the above.
    Unknown,
}

/// RAW formats, by their container's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RawFormat {
    /// Adobe DNG (TIFF with a DNGVersion tag).
    Dng,
    /// Canon CR2 (TIFF with "CR" after the header).
    Cr2,
    /// Canon CR3 (ISO base media, brand `crx `).
    Cr3,
    /// Nikon NEF (TIFF, make NIKON).
    Nef,
    /// Sony ARW (TIFF, make SONY).
    Arw,
    /// Fujifilm RAF.
    Raf,
    /// Olympus ORF.
    Orf,
    /// Panasonic RW2.
    Rw2,
    /// Pentax PEF (TIFF, make PENTAX or RICOH).
    Pef,
}

/// Video containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// MP4, M4V, 3GP (ISO base media).
    Mp4,
    /// QuickTime MOV.
    QuickTime,
    /// Matroska and WebM.
    Matroska,
    Avi,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Kind::Jpeg => "JPEG",
            Kind::Png => "PNG",
            Kind::WebP => "WebP",
            Kind::Tiff => "TIFF",
            Kind::Bmp => "BMP",
            Kind::Gif => "GIF",
            Kind::Heif => "HEIF",
            Kind::Avif => "AVIF",
            Kind::Raw(r) => return write!(f, "{r} RAW"),
            Kind::Video(c) => return write!(f, "{c} video"),
            Kind::Unknown => "unknown",
        };
        f.write_str(name)
    }
}

impl fmt::Display for RawFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RawFormat::Dng => "DNG",
            RawFormat::Cr2 => "CR2",
            RawFormat::Cr3 => "CR3",
            RawFormat::Nef => "NEF",
            RawFormat::Arw => "ARW",
            RawFormat::Raf => "RAF",
            RawFormat::Orf => "ORF",
            RawFormat::Rw2 => "RW2",
            RawFormat::Pef => "PEF",
        })
    }
}

impl fmt::Display for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Container::Mp4 => "MP4",
            Container::QuickTime => "QuickTime",
            Container::Matroska => "Matroska",
            Container::Avi => "AVI",
        })
    }
}

/// How much of a file [`sniff`] needs to see (a TIFF's first IFD is looked for there).
pub const HEAD: usize = 64 * 1024;

/// The kind of a file from its first [`HEAD`] bytes, read from disk (a video is never read
/// whole to be told).
pub fn sniff_file(path: &std::path::Path) -> std::io::Result<Kind> {
    use std::io::Read;
    let mut head = Vec::with_capacity(HEAD);
    std::fs::File::open(path)?
        .take(HEAD as u64)
        .read_to_end(&mut head)?;
    Ok(sniff(&head))
}

/// The kind of a file from its first bytes (the whole file, or at least its first [`HEAD`]
/// bytes).
pub fn sniff(bytes: &[u8]) -> Kind {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(&[0xFF, 0xD8, 0xFF]) {
        Kind::Jpeg
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Kind::Png
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Kind::Gif
    } else if starts(b"BM") && bytes.len() >= 26 {
        Kind::Bmp
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        Kind::WebP
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"AVI ") {
        Kind::Video(Container::Avi)
    } else if starts(&[0x1A, 0x45, 0xDF, 0xA3]) {
        Kind::Video(Container::Matroska)
    } else if starts(b"FUJIFILMCCD-RAW") {
        Kind::Raw(RawFormat::Raf)
    } else if starts(b"IIRO") || starts(b"IIRS") || starts(b"MMOR") {
        Kind::Raw(RawFormat::Orf)
    } else if starts(b"IIU\0") {
        Kind::Raw(RawFormat::Rw2)
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        tiff(bytes)
    } else if bytes.get(4..8) == Some(b"ftyp") {
        iso_media(bytes)
    } else {
        Kind::Unknown
    }
}

/// An ISO base media file (HEIF, AVIF, CR3, MP4, MOV) by its `ftyp` brands.
fn iso_media(bytes: &[u8]) -> Kind {
    let size = bytes
        .get(0..4)
        .map(|s| u32::from_be_bytes(s.try_into().expect("4 bytes")) as usize)
        .unwrap_or(0);
    let end = size.clamp(16, 4096).min(bytes.len());
    let major = &bytes[8..12.min(end)];
    // Major brand, then the compatible brands after the minor version.
    let brands: Vec<&[u8]> = std::iter::once(major)
        .chain(bytes.get(16..end).unwrap_or(&[]).chunks_exact(4))
        .collect();
    let has = |b: &[u8]| brands.contains(&b);
    if major == b"crx " {
        Kind::Raw(RawFormat::Cr3)
    } else if has(b"avif") || has(b"avis") {
        Kind::Avif
    } else if [
        "heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "mif2",
    ]
    .iter()
    .any(|b| has(b.as_bytes()))
    {
        Kind::Heif
    } else if major == b"qt  " {
        Kind::Video(Container::QuickTime)
    } else {
        // isom, iso2..iso9, mp41, mp42, avc1, M4V, M4A, 3gp4..3gp6, 3g2a, dash, ...
        Kind::Video(Container::Mp4)
    }
}

/// A TIFF-based file: a DNG, a camera's RAW (CR2, NEF, ARW, PEF) or a plain TIFF.
fn tiff(bytes: &[u8]) -> Kind {
    if bytes.get(8..10) == Some(b"CR") {
        return Kind::Raw(RawFormat::Cr2);
    }
    let Some(t) = Tiff::new(bytes) else {
        return Kind::Tiff;
    };
    let (u16_at, u32_at) = (|at| t.u16_at(at), |at| t.u32_at(at));
    let Some(ifd) = t.first_ifd() else {
        return Kind::Tiff;
    };
    let count = u16_at(ifd).unwrap_or(0) as usize;
    let mut make = None;
    for i in 0..count.min(512) {
        let entry = ifd + 2 + i * 12;
        let (Some(tag), Some(kind), Some(n)) =
            (u16_at(entry), u16_at(entry + 2), u32_at(entry + 4))
        else {
            break;
        };
        match tag {
            0xC612 => return Kind::Raw(RawFormat::Dng), // DNGVersion
            0x010F if kind == 2 => {
                // Make: ASCII, inline when it fits in 4 bytes.
                let n = n as usize;
                let at = if n <= 4 {
                    entry + 8
                } else {
                    u32_at(entry + 8).unwrap_or(0) as usize
                };
                make = bytes
                    .get(at..at + n.min(64))
                    .map(|m| String::from_utf8_lossy(m).to_ascii_uppercase());
            }
            _ => {}
        }
    }
    match make.as_deref() {
        Some(m) if m.starts_with("NIKON") => Kind::Raw(RawFormat::Nef),
        Some(m) if m.starts_with("SONY") => Kind::Raw(RawFormat::Arw),
        Some(m) if m.starts_with("PENTAX") || m.starts_with("RICOH") => Kind::Raw(RawFormat::Pef),
        _ => Kind::Tiff,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
        let size = 16 + 4 * compatible.len() as u32;
        let mut b = size.to_be_bytes().to_vec();
        b.extend(b"ftyp");
        b.extend(major);
        b.extend([0, 0, 0, 0]);
        for c in compatible {
            b.extend(*c);
        }
        b.extend(b"\0\0\0\x08meta");
        b
    }

    #[test]
    fn magic_numbers() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE1, 0, 0]), Kind::Jpeg);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0"), Kind::Png);
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Kind::WebP);
        assert_eq!(sniff(b"RIFF\0\0\0\0AVI LIST"), Kind::Video(Container::Avi));
        assert_eq!(sniff(b"FUJIFILMCCD-RAW 0201"), Kind::Raw(RawFormat::Raf));
        assert_eq!(sniff(b"IIU\0\x08\0\0\0"), Kind::Raw(RawFormat::Rw2));
        assert_eq!(sniff(b"this is not an image"), Kind::Unknown);
        assert_eq!(sniff(b""), Kind::Unknown);
    }

    #[test]
    fn brands() {
        assert_eq!(sniff(&ftyp(b"heic", &[b"mif1", b"heic"])), Kind::Heif);
        assert_eq!(
            sniff(&ftyp(b"mif1", &[b"mif1", b"heic", b"miaf"])),
            Kind::Heif
        );
        assert_eq!(sniff(&ftyp(b"avif", &[b"mif1", b"avif"])), Kind::Avif);
        assert_eq!(sniff(&ftyp(b"mif1", &[b"avif", b"miaf"])), Kind::Avif);
        assert_eq!(
            sniff(&ftyp(b"crx ", &[b"crx ", b"isom"])),
            Kind::Raw(RawFormat::Cr3)
        );
        assert_eq!(
            sniff(&ftyp(b"qt  ", &[b"qt  "])),
            Kind::Video(Container::QuickTime)
        );
        assert_eq!(
            sniff(&ftyp(b"isom", &[b"isom", b"mp41"])),
            Kind::Video(Container::Mp4)
        );
    }

    /// A little-endian TIFF header and one IFD with these (tag, type, count, value) entries.
    fn tiff_with(entries: &[(u16, u16, u32, [u8; 4])]) -> Vec<u8> {
        let mut b = b"II*\0\x08\0\0\0".to_vec();
        b.extend((entries.len() as u16).to_le_bytes());
        for (tag, kind, n, v) in entries {
            b.extend(tag.to_le_bytes());
            b.extend(kind.to_le_bytes());
            b.extend(n.to_le_bytes());
            b.extend(v);
        }
        b.extend([0, 0, 0, 0]);
        b
    }

    #[test]
    fn tiff_based_raws() {
        assert_eq!(
            sniff(&tiff_with(&[(0x0100, 3, 1, [1, 0, 0, 0])])),
            Kind::Tiff
        );
        let dng = tiff_with(&[(0x0100, 3, 1, [1, 0, 0, 0]), (0xC612, 1, 4, [1, 4, 0, 0])]);
        assert_eq!(sniff(&dng), Kind::Raw(RawFormat::Dng));
        // Make "SONY" (4 bytes with its NUL would not fit: 5 bytes, stored after the IFD).
        let mut arw = tiff_with(&[(0x010F, 2, 5, [26, 0, 0, 0])]);
        arw.extend(b"SONY\0");
        assert_eq!(sniff(&arw), Kind::Raw(RawFormat::Arw));
        let mut cr2 = b"II*\0\x10\0\0\0CR\x02\0".to_vec();
        cr2.extend([0; 8]);
        assert_eq!(sniff(&cr2), Kind::Raw(RawFormat::Cr2));
        // A truncated header is a TIFF, not a crash.
        assert_eq!(sniff(b"MM\0*\0\0"), Kind::Tiff);
    }
}
