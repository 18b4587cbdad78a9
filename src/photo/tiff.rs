//! A TIFF file's byte order and the integers at its offsets, bounds-checked: what sniffing a
//! TIFF-based RAW ([`super::kind`]) and finding its JPEG previews ([`super::raw`]) read. It
//! decodes no image data, and an offset past the end is `None`, never a panic.

/// A TIFF's bytes, read in its byte order.
#[derive(Clone, Copy)]
pub(super) struct Tiff<'a> {
    pub bytes: &'a [u8],
    little: bool,
}

impl<'a> Tiff<'a> {
    /// The file if its header is a TIFF's (`II*\0`, little-endian, or `MM\0*`).
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        let little = match bytes.get(..4)? {
            b"II*\0" => true,
            b"MM\0*" => false,
            _ => return None,
        };
        Some(Tiff { bytes, little })
    }

    pub fn u16_at(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }

    pub fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    /// Where IFD0 starts.
    pub fn first_ifd(&self) -> Option<usize> {
        self.u32_at(4).map(|o| o as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_byte_orders_and_no_reading_past_the_end() {
        let le = Tiff::new(b"II*\0\x08\0\0\0\x01\x02").unwrap();
        assert_eq!((le.first_ifd(), le.u16_at(8)), (Some(8), Some(0x0201)));
        let be = Tiff::new(b"MM\0*\0\0\0\x08\x01\x02").unwrap();
        assert_eq!((be.first_ifd(), be.u16_at(8)), (Some(8), Some(0x0102)));
        assert_eq!((le.u16_at(9), le.u32_at(usize::MAX - 1)), (None, None));
        assert!(Tiff::new(b"II*").is_none() && Tiff::new(b"\xFF\xD8\xFF\xE0").is_none());
    }
}
