//! Distinguished names: ordered, borrowed, decoded on demand.
//!
//! A [`Name`] is validated once when its certificate is parsed (structure, attribute cap,
//! every string decodable), so reading it later cannot fail. Values are decoded only when
//! asked for, and borrowed when the bytes are already valid UTF-8.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::asn1::{DerError, Reader, Tlv, tag};
use crate::oid::{Oid, known};

mod openssl;

/// The OpenSSL short name of an attribute type (`CN`, `O`, `emailAddress`, `OGRN`, `mail`, …),
/// if OpenSSL knows the OID. Node prints a name under exactly this key (and the dotted OID
/// otherwise), so the table is OpenSSL's own object table, generated from the libcrypto Node
/// links by `scripts/gen-openssl-names.py`: every one of its 1,103 objects, not only the
/// attribute types, since a certificate may put any OID in a name.
pub fn short_name(oid: Oid<'_>) -> Option<&'static str> {
    openssl::OBJECTS
        .binary_search_by(|(der, _)| (*der).cmp(oid.as_bytes()))
        .ok()
        .map(|i| openssl::OBJECTS[i].1)
}

/// The attribute type for a short name (`"CN"`, `"OU"`, `"emailAddress"`, case-sensitive as
/// OpenSSL prints them; `"E"` is accepted for `emailAddress`), or a dotted OID.
pub(crate) fn attribute_type(name: &str) -> Option<Cow<'static, [u8]>> {
    if name == "E" {
        return Some(Cow::Borrowed(known::EMAIL_ADDRESS));
    }
    openssl::BY_NAME
        .binary_search_by(|(sn, _)| (*sn).cmp(name))
        .ok()
        .and_then(|i| openssl::OBJECTS.get(usize::from(openssl::BY_NAME[i].1)))
        .map(|(der, _)| Cow::Borrowed(*der))
        .or_else(|| crate::oid::encode_dotted(name).map(Cow::Owned))
}

/// The ASN.1 string type an attribute value was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum StringKind {
    /// UTF8String: decoded strictly.
    Utf8,
    /// PrintableString: decoded leniently (real CAs put `@` and `_` in it).
    Printable,
    /// IA5String (ASCII), decoded leniently.
    Ia5,
    /// NumericString.
    Numeric,
    /// TeletexString (T61String), decoded as Latin-1 as OpenSSL does.
    Teletex,
    /// BMPString: UTF-16BE.
    Bmp,
    /// UniversalString: UTF-32BE.
    Universal,
    /// Not a string type, but one OpenSSL reads in a name (BIT STRING, SEQUENCE, and the
    /// universal types it has no mask bit for): shown as `#` and the hex of its DER
    /// (RFC 4514). Node cannot print such a name, so the legacy object leaves it out.
    Other,
}

impl StringKind {
    /// The kind of a name value with this tag, or `None` where OpenSSL refuses the
    /// certificate (its `B_ASN1_PRINTABLE` mask for `X509_NAME_ENTRY` values): any tag
    /// that is not universal, VisibleString, GeneralString, GraphicString,
    /// VideotexString, OCTET STRING, INTEGER, times, NULL, BOOLEAN, OID, SET. Node
    /// refuses them all ("mstring not universal", "mstring wrong tag").
    fn of(tag: u8) -> Option<Self> {
        Some(match tag {
            tag::UTF8_STRING => Self::Utf8,
            tag::PRINTABLE_STRING => Self::Printable,
            tag::IA5_STRING => Self::Ia5,
            tag::NUMERIC_STRING => Self::Numeric,
            tag::TELETEX_STRING => Self::Teletex,
            tag::BMP_STRING => Self::Bmp,
            tag::UNIVERSAL_STRING => Self::Universal,
            // BIT STRING, SEQUENCE, and OpenSSL's B_ASN1_UNKNOWN tags (ObjectDescriptor,
            // EXTERNAL, REAL, EMBEDDED PDV, RELATIVE-OID, 14, 15, CharacterString).
            0x03 | tag::SEQUENCE | 0x07 | 0x08 | 0x09 | 0x0B | 0x0D | 0x0E | 0x0F | 0x1D => {
                Self::Other
            }
            _ => return None,
        })
    }
}

/// Decodes string contents of the given kind. `None` if they are not valid for it.
pub(crate) fn decode_string(kind: StringKind, bytes: &[u8]) -> Option<Cow<'_, str>> {
    match kind {
        StringKind::Utf8 => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
        StringKind::Printable | StringKind::Ia5 | StringKind::Numeric | StringKind::Teletex => {
            Some(latin1(bytes))
        }
        StringKind::Bmp => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
                .map(Cow::Owned)
        }
        StringKind::Universal => {
            if !bytes.len().is_multiple_of(4) {
                return None;
            }
            bytes
                .chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect::<Option<String>>()
                .map(Cow::Owned)
        }
        StringKind::Other => None,
    }
}

/// Whether string contents are valid for their kind, without decoding them.
fn is_valid_string(kind: StringKind, bytes: &[u8]) -> bool {
    match kind {
        StringKind::Utf8 => std::str::from_utf8(bytes).is_ok(),
        StringKind::Bmp => {
            bytes.len().is_multiple_of(2)
                && char::decode_utf16(
                    bytes
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]])),
                )
                .all(|r| r.is_ok())
        }
        StringKind::Universal => {
            bytes.len().is_multiple_of(4)
                && bytes
                    .chunks_exact(4)
                    .all(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])).is_some())
        }
        _ => true,
    }
}

/// Single-byte strings: ASCII is borrowed as is; other bytes map to the Latin-1 code point
/// of the same value, as OpenSSL's `ASN1_STRING_to_UTF8` does.
fn latin1(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) if s.is_ascii() => Cow::Borrowed(s),
        _ => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// One attribute value, borrowed from the certificate (read through [`Attribute`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttributeValue<'a> {
    kind: StringKind,
    tlv: Tlv<'a>,
}

impl<'a> AttributeValue<'a> {
    fn as_str(&self) -> Cow<'a, str> {
        decode_string(self.kind, self.tlv.value)
            .unwrap_or_else(|| Cow::Owned(rfc4514_hex(self.tlv.raw)))
    }
}

fn rfc4514_hex(der: &[u8]) -> String {
    let mut s = String::with_capacity(1 + der.len() * 2);
    s.push('#');
    for b in der {
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// One attribute of a distinguished name.
#[derive(Clone, Copy, Debug)]
pub struct Attribute<'a> {
    oid: Oid<'a>,
    value: AttributeValue<'a>,
    rdn: usize,
}

impl<'a> Attribute<'a> {
    /// The attribute type.
    pub fn oid(&self) -> Oid<'a> {
        self.oid
    }

    /// The OpenSSL short name (`CN`, `OU`, `emailAddress`, …), if the type has one.
    pub fn short_name(&self) -> Option<&'static str> {
        short_name(self.oid)
    }

    /// The value as text. Borrowed when the bytes are already UTF-8; a non-string value is
    /// `#` followed by the hex of its DER, as RFC 4514 writes it.
    pub fn value(&self) -> Cow<'a, str> {
        self.value.as_str()
    }

    /// The ASN.1 string type the value was written in.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn kind(&self) -> StringKind {
        self.value.kind
    }

    /// The value's ASN.1 tag (e.g. `0x0C` for a UTF8String).
    pub fn tag(&self) -> u8 {
        self.value.tlv.tag
    }

    /// The value's DER contents, undecoded.
    pub fn contents(&self) -> &'a [u8] {
        self.value.tlv.value
    }

    /// Index of the relative distinguished name (RDN) holding this attribute, counting from
    /// the first as written. Attributes sharing an index form one multi-valued RDN.
    pub fn rdn_index(&self) -> usize {
        self.rdn
    }
}

/// Why a name could not be accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameError {
    Der(DerError),
    TooManyAttributes,
    InvalidString { offset: usize },
}

impl From<DerError> for NameError {
    fn from(e: DerError) -> Self {
        Self::Der(e)
    }
}

/// A distinguished name (subject, issuer, or a directory-name SAN), as written: RDNs in
/// order, multi-valued RDNs kept together, repeated attributes all present.
#[derive(Clone, Copy, Debug)]
pub struct Name<'a> {
    /// The Name SEQUENCE, already validated.
    tlv: Tlv<'a>,
}

impl<'a> Name<'a> {
    pub(crate) fn tlv(&self) -> Tlv<'a> {
        self.tlv
    }

    /// Wraps a Name SEQUENCE that [`Self::parse`] already accepted (its span was recorded
    /// when the certificate was parsed), without walking it again.
    pub(crate) fn from_validated(tlv: Tlv<'a>) -> Self {
        Self { tlv }
    }

    /// Validates a Name SEQUENCE: structure, the attribute cap, and every string value.
    pub(crate) fn parse(tlv: Tlv<'a>, max_attributes: usize) -> Result<Self, NameError> {
        let tlv = tlv.expect_tag(tag::SEQUENCE)?;
        let mut count = 0usize;
        let mut rdns = tlv.reader();
        while !rdns.is_empty() {
            // An empty RDN breaks X.501's SIZE (1..MAX), but OpenSSL (so Node) reads it as
            // contributing nothing, and certificate linters' test suites are full of them.
            let mut atvs = rdns.read(tag::SET)?.reader();
            while !atvs.is_empty() {
                count += 1;
                if count > max_attributes {
                    return Err(NameError::TooManyAttributes);
                }
                let atv = atvs.read(tag::SEQUENCE)?;
                let mut r = atv.reader();
                let oid = r.read(tag::OID)?;
                Oid::from_der_contents(oid.value).ok_or_else(|| oid.error())?;
                let value = r.read_any()?;
                r.finish()?;
                match StringKind::of(value.tag) {
                    Some(kind) if is_valid_string(kind, value.value) => {}
                    _ => {
                        return Err(NameError::InvalidString {
                            offset: value.value_offset,
                        });
                    }
                }
            }
        }
        Ok(Self { tlv })
    }

    /// The whole Name as DER (tag and length included), e.g. for comparing names exactly.
    pub fn raw(&self) -> &'a [u8] {
        self.tlv.raw
    }

    /// Whether the name has no attributes.
    pub fn is_empty(&self) -> bool {
        self.attributes().next().is_none()
    }

    /// Every attribute, in the order written.
    pub fn attributes(
        &self,
    ) -> impl Iterator<Item = Attribute<'a>> + Clone + std::fmt::Debug + use<'a> {
        Attributes {
            rdns: self.tlv.reader(),
            current: None,
            rdn: 0,
        }
    }

    /// The values of every attribute of the given type, in order.
    fn values_of(&self, oid: &'static [u8]) -> impl Iterator<Item = Cow<'a, str>> + use<'a> {
        self.attributes()
            .filter(move |a| a.oid.as_bytes() == oid)
            .map(|a| a.value.as_str())
    }

    /// Values of the attribute with the given short name (`"CN"`, `"OU"`, …) or dotted OID.
    /// Empty for an unknown name.
    pub fn get(&self, name: &str) -> Vec<Cow<'a, str>> {
        match attribute_type(name) {
            Some(oid) => self
                .attributes()
                .filter(|a| a.oid.as_bytes() == &*oid)
                .map(|a| a.value.as_str())
                .collect(),
            None => Vec::new(),
        }
    }

    /// Every common name (CN), in order.
    pub fn common_names(&self) -> impl Iterator<Item = Cow<'a, str>> + use<'a> {
        self.values_of(known::CN)
    }

    /// Every organization (O), in order.
    pub fn organizations(&self) -> impl Iterator<Item = Cow<'a, str>> + use<'a> {
        self.values_of(known::O)
    }

    /// Every organizational unit (OU), in order.
    pub fn organizational_units(&self) -> impl Iterator<Item = Cow<'a, str>> + use<'a> {
        self.values_of(known::OU)
    }

    /// Every `emailAddress` attribute, in order.
    pub fn email_addresses(&self) -> impl Iterator<Item = Cow<'a, str>> + use<'a> {
        self.values_of(known::EMAIL_ADDRESS)
    }

    /// The name as an RFC 4514 string: RDNs last to first, separated by `,`; the values of
    /// a multi-valued RDN joined by `+`; OpenSSL short names, or the dotted OID with a
    /// `#`-hex value for types without one. Special characters are escaped with `\`,
    /// control characters as `\XX`; other characters are kept as UTF-8.
    pub fn to_rfc4514(&self) -> String {
        self.format_rfc4514(true)
    }

    /// Shared by [`Self::to_rfc4514`] and Node's `DirName:` (which leaves control
    /// characters for its own JSON escaping).
    pub(crate) fn format_rfc4514(&self, escape_controls: bool) -> String {
        let attrs: Vec<Attribute<'a>> = self.attributes().collect();
        let mut out = String::new();
        let mut prev_rdn = None;
        for a in attrs.iter().rev() {
            if let Some(prev) = prev_rdn {
                out.push(if prev == a.rdn { '+' } else { ',' });
            }
            prev_rdn = Some(a.rdn);
            match a.short_name() {
                Some(sn) => {
                    out.push_str(sn);
                    out.push('=');
                    match a.value.kind {
                        StringKind::Other => out.push_str(&a.value.as_str()),
                        _ => escape_rfc4514(&mut out, &a.value.as_str(), escape_controls),
                    }
                }
                None => {
                    let _ = write!(out, "{}=", a.oid);
                    out.push_str(&rfc4514_hex(a.value.tlv.raw));
                }
            }
        }
        out
    }
}

fn escape_rfc4514(out: &mut String, value: &str, escape_controls: bool) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if escape_controls && (c < ' ' || c == '\x7f') => {
                let _ = write!(out, "\\{:02X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

impl PartialEq for Name<'_> {
    /// Names compare by their DER, exactly (no case folding).
    fn eq(&self, other: &Self) -> bool {
        self.tlv.raw == other.tlv.raw
    }
}

/// Iterator over a [`Name`]'s attributes.
#[derive(Clone, Debug)]
pub(crate) struct Attributes<'a> {
    rdns: Reader<'a>,
    current: Option<Reader<'a>>,
    rdn: usize,
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        loop {
            if let Some(atvs) = &mut self.current
                && !atvs.is_empty()
            {
                // The name was validated in `Name::parse`; a failure here ends the
                // iteration rather than panicking.
                let atv = atvs.read(tag::SEQUENCE).ok()?;
                let mut r = atv.reader();
                let oid = Oid::from_der_contents(r.read(tag::OID).ok()?.value)?;
                let tlv = r.read_any().ok()?;
                return Some(Attribute {
                    oid,
                    value: AttributeValue {
                        kind: StringKind::of(tlv.tag)?,
                        tlv,
                    },
                    rdn: self.rdn - 1,
                });
            }
            if self.rdns.is_empty() {
                return None;
            }
            self.current = Some(self.rdns.read(tag::SET).ok()?.reader());
            self.rdn += 1;
        }
    }
}

/// Reads a Name from a reader positioned at it (helper for the certificate parser).
pub(crate) fn read_name<'a>(r: &mut Reader<'a>, max: usize) -> Result<Name<'a>, NameError> {
    let tlv = r.read(tag::SEQUENCE)?;
    Name::parse(tlv, max)
}

#[cfg(test)]
mod tests;
