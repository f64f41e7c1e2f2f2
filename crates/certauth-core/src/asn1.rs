//! A minimal, borrowing DER reader.
//!
//! Why not `der`'s reader: der 0.8 cannot even represent the UniversalString tag (0x1C), so
//! a certificate whose name holds one cannot be walked at all, and x509-cert's owned decode
//! allocates for every field (6–9 µs per certificate here). X.509 needs only single-byte
//! tags and definite lengths, so this reader is small enough to audit and fuzz; every read
//! is bounds-checked and nothing here allocates.

/// A DER decoding failure, with the byte offset (from the start of the reader's input) where
/// it was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DerError {
    pub(crate) offset: usize,
}

pub(crate) type DerResult<T> = Result<T, DerError>;

pub(crate) mod tag {
    pub(crate) const BOOLEAN: u8 = 0x01;
    pub(crate) const INTEGER: u8 = 0x02;
    pub(crate) const BIT_STRING: u8 = 0x03;
    pub(crate) const OCTET_STRING: u8 = 0x04;
    pub(crate) const OID: u8 = 0x06;
    pub(crate) const UTF8_STRING: u8 = 0x0C;
    pub(crate) const NUMERIC_STRING: u8 = 0x12;
    pub(crate) const PRINTABLE_STRING: u8 = 0x13;
    pub(crate) const TELETEX_STRING: u8 = 0x14;
    pub(crate) const IA5_STRING: u8 = 0x16;
    pub(crate) const UTC_TIME: u8 = 0x17;
    pub(crate) const GENERALIZED_TIME: u8 = 0x18;
    pub(crate) const UNIVERSAL_STRING: u8 = 0x1C;
    pub(crate) const BMP_STRING: u8 = 0x1E;
    pub(crate) const SEQUENCE: u8 = 0x30;
    pub(crate) const SET: u8 = 0x31;
    /// `[n]` context-specific, constructed.
    pub(crate) const fn context_constructed(n: u8) -> u8 {
        0xA0 | n
    }
    /// `[n]` context-specific, primitive.
    pub(crate) const fn context_primitive(n: u8) -> u8 {
        0x80 | n
    }
}

/// One tag-length-value element, borrowed from the input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    /// The contents octets.
    pub(crate) value: &'a [u8],
    /// The whole element: tag, length and contents.
    pub(crate) raw: &'a [u8],
    /// Offset of `value` within the original input, for error positions.
    pub(crate) value_offset: usize,
}

impl<'a> Tlv<'a> {
    /// A reader over this element's contents.
    pub(crate) fn reader(&self) -> Reader<'a> {
        Reader {
            input: self.value,
            pos: 0,
            base: self.value_offset,
        }
    }

    pub(crate) fn error(&self) -> DerError {
        DerError {
            offset: self.value_offset,
        }
    }

    /// Checks the tag, for callers that read with [`Reader::read_any`].
    pub(crate) fn expect_tag(self, tag: u8) -> DerResult<Self> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(self.error())
        }
    }
}

/// One DER element: `tag`, the definite length of `value`, `value`.
pub(crate) fn encode(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | u8::try_from(bytes.len()).unwrap_or(0));
        out.extend(bytes);
    }
    out.extend_from_slice(value);
    out
}

/// A cursor over DER input.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Offset of `input` within the outermost input.
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self {
            input,
            pos: 0,
            base: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn error(&self) -> DerError {
        DerError {
            offset: self.base.saturating_add(self.pos),
        }
    }

    fn byte(&mut self) -> DerResult<u8> {
        let b = *self.input.get(self.pos).ok_or_else(|| self.error())?;
        self.pos += 1;
        Ok(b)
    }

    /// The next tag without consuming it.
    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Reads any element. Rejects high tag numbers, indefinite lengths and non-minimal
    /// length encodings (DER), and lengths that run past the input.
    pub(crate) fn read_any(&mut self) -> DerResult<Tlv<'a>> {
        let start = self.pos;
        let tag = self.byte()?;
        if tag & 0x1F == 0x1F {
            // Multi-byte tag numbers never occur in X.509.
            self.pos = start;
            return Err(self.error());
        }
        let first = self.byte()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = first & 0x7F;
            // 0x80 is the indefinite form (BER only); more than 4 length bytes would be a
            // value over 4 GiB, which no certificate is.
            if n == 0 || n > 4 {
                return Err(self.error());
            }
            let mut len: usize = 0;
            for i in 0..n {
                let b = self.byte()?;
                if i == 0 && b == 0 {
                    return Err(self.error()); // leading zero: not minimal
                }
                len = (len << 8) | usize::from(b);
            }
            if len < 0x80 {
                return Err(self.error()); // long form for a short length: not minimal
            }
            len
        };
        let value_start = self.pos;
        let end = value_start
            .checked_add(len)
            .filter(|&end| end <= self.input.len())
            .ok_or_else(|| self.error())?;
        self.pos = end;
        Ok(Tlv {
            tag,
            value: &self.input[value_start..end],
            raw: &self.input[start..end],
            value_offset: self.base.saturating_add(value_start),
        })
    }

    /// Reads an element that must carry `tag`.
    pub(crate) fn read(&mut self, tag: u8) -> DerResult<Tlv<'a>> {
        let before = self.pos;
        let tlv = self.read_any()?;
        if tlv.tag != tag {
            self.pos = before;
            return Err(self.error());
        }
        Ok(tlv)
    }

    /// Reads an element only if the next tag is `tag`.
    pub(crate) fn read_optional(&mut self, tag: u8) -> DerResult<Option<Tlv<'a>>> {
        if self.peek_tag() == Some(tag) {
            self.read(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self) -> DerResult<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.error())
        }
    }
}

/// Reads a DER BOOLEAN's contents (DER allows only 0x00 and 0xFF).
pub(crate) fn boolean(tlv: Tlv<'_>) -> DerResult<bool> {
    match tlv.value {
        [0x00] => Ok(false),
        [0xFF] => Ok(true),
        _ => Err(tlv.error()),
    }
}

/// Checks an INTEGER's contents are minimally encoded and returns them (two's complement,
/// big-endian).
pub(crate) fn integer_bytes(tlv: Tlv<'_>) -> DerResult<&[u8]> {
    match tlv.value {
        [] => Err(tlv.error()),
        [0x00, next, ..] if next & 0x80 == 0 => Err(tlv.error()),
        [0xFF, next, ..] if next & 0x80 != 0 => Err(tlv.error()),
        v => Ok(v),
    }
}

/// A small non-negative INTEGER (a version, a path length).
pub(crate) fn small_uint(tlv: Tlv<'_>) -> DerResult<u32> {
    let bytes = integer_bytes(tlv)?;
    if bytes[0] & 0x80 != 0 || bytes.len() > 5 {
        return Err(tlv.error());
    }
    let mut v: u64 = 0;
    for &b in bytes {
        v = (v << 8) | u64::from(b);
    }
    u32::try_from(v).map_err(|_| tlv.error())
}

/// A BIT STRING's contents: (unused bits, bytes).
pub(crate) fn bit_string(tlv: Tlv<'_>) -> DerResult<(u8, &[u8])> {
    match tlv.value {
        [unused, rest @ ..] if *unused < 8 && (*unused == 0 || !rest.is_empty()) => {
            Ok((*unused, rest))
        }
        _ => Err(tlv.error()),
    }
}

#[cfg(test)]
mod tests;
