//! Subject alternative names: [`GeneralName`] and its iterator, and the checks OpenSSL
//! applies to the name forms it decodes.

use super::*;

/// One subject alternative name.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum GeneralName<'a> {
    /// `dNSName`.
    Dns(&'a str),
    /// `rfc822Name` (an email address).
    Email(&'a str),
    /// `uniformResourceIdentifier`.
    Uri(&'a str),
    /// `iPAddress`, v4 or v6.
    Ip(IpAddr),
    /// `directoryName`.
    DirectoryName(Name<'a>),
    /// `otherName`: a type and a value ([`GeneralName::upn`] reads the one common type).
    OtherName {
        /// The type OID.
        type_id: Oid<'a>,
        /// The value's DER (inside the `[0] EXPLICIT` wrapper), tag included.
        value: &'a [u8],
    },
    /// `registeredID`.
    RegisteredId(Oid<'a>),
    /// `x400Address`, undecoded DER contents.
    X400Address(&'a [u8]),
    /// `ediPartyName`, undecoded DER contents.
    EdiPartyName(&'a [u8]),
}

impl<'a> GeneralName<'a> {
    /// The Microsoft user principal name (an `otherName` of type `1.3.6.1.4.1.311.20.2.3`
    /// whose value is a UTF8String), if this is one.
    pub fn upn(&self) -> Option<&'a str> {
        let Self::OtherName { type_id, value } = self else {
            return None;
        };
        let value = Reader::new(value).read_any().ok()?;
        (type_id.as_bytes() == known::MS_UPN && value.tag == tag::UTF8_STRING)
            .then(|| std::str::from_utf8(value.value).ok())
            .flatten()
    }
}

/// Reads one GeneralName. `max_name_attributes` bounds a directory name.
pub(super) fn read_general_name<'a>(
    r: &mut Reader<'a>,
    max_name_attributes: usize,
) -> Result<GeneralName<'a>, X509Error> {
    let t = r.read_any()?;
    let ascii = |t: Tlv<'a>| -> Result<&'a str, X509Error> {
        // IA5String is 7-bit; anything else in a SAN is refused rather than guessed at.
        match std::str::from_utf8(t.value) {
            Ok(s) if s.is_ascii() => Ok(s),
            _ => Err(X509Error::InvalidString {
                field: name_field::SUBJECT_ALT_NAME,
                offset: t.value_offset,
            }),
        }
    };
    Ok(match t.tag {
        0xA0 => {
            let mut inner = t.reader();
            let oid = inner.read(tag::OID)?;
            let type_id = Oid::from_der_contents(oid.value).ok_or_else(|| oid.error())?;
            let wrapper = inner.read(tag::context_constructed(0))?;
            inner.finish()?;
            let mut w = wrapper.reader();
            let value = w.read_any()?;
            w.finish()?;
            GeneralName::OtherName {
                type_id,
                value: value.raw,
            }
        }
        0x81 => GeneralName::Email(ascii(t)?),
        0x82 => GeneralName::Dns(ascii(t)?),
        0xA3 => GeneralName::X400Address(t.value),
        0xA4 => {
            let mut inner = t.reader();
            let name = crate::name::read_name(&mut inner, max_name_attributes).map_err(
                name_error(name_field::SUBJECT_ALT_NAME, max_name_attributes),
            )?;
            inner.finish()?;
            GeneralName::DirectoryName(name)
        }
        0xA5 => {
            check_edi_party_name(t).ok_or_else(|| t.error())?;
            GeneralName::EdiPartyName(t.value)
        }
        0x86 => GeneralName::Uri(ascii(t)?),
        0x87 => match t.value.len() {
            4 => {
                let mut b = [0u8; 4];
                b.copy_from_slice(t.value);
                GeneralName::Ip(IpAddr::from(b))
            }
            16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(t.value);
                GeneralName::Ip(IpAddr::from(b))
            }
            _ => return Err(t.error().into()),
        },
        0x88 => {
            GeneralName::RegisteredId(Oid::from_der_contents(t.value).ok_or_else(|| t.error())?)
        }
        _ => return Err(t.error().into()),
    })
}

/// Iterator over a certificate's subject alternative names.
#[derive(Clone, Debug)]
pub(crate) struct SubjectAltNames<'a> {
    pub(super) reader: Reader<'a>,
    pub(super) max_name_attributes: usize,
}

impl<'a> Iterator for SubjectAltNames<'a> {
    type Item = GeneralName<'a>;

    fn next(&mut self) -> Option<GeneralName<'a>> {
        if self.reader.is_empty() {
            return None;
        }
        // Validated when the certificate was parsed: an error here ends the iteration.
        read_general_name(&mut self.reader, self.max_name_attributes).ok()
    }
}

/// EDIPartyName (RFC 5280 4.2.1.6): `nameAssigner [0]` (optional) and `partyName [1]`, each
/// an explicitly tagged DirectoryString, as OpenSSL decodes it. One that does not decode
/// makes the SAN malformed (OpenSSL then drops the whole extension; we refuse it, as any
/// other malformed SAN).
pub(super) fn check_edi_party_name(t: Tlv<'_>) -> Option<()> {
    fn directory_string(wrapper: Tlv<'_>) -> Option<()> {
        let mut w = wrapper.reader();
        let s = w.read_any().ok()?;
        w.finish().ok()?;
        matches!(
            s.tag,
            tag::TELETEX_STRING
                | tag::PRINTABLE_STRING
                | tag::UNIVERSAL_STRING
                | tag::UTF8_STRING
                | tag::BMP_STRING
        )
        .then_some(())
    }
    let mut r = t.reader();
    if let Some(assigner) = r.read_optional(tag::context_constructed(0)).ok()? {
        directory_string(assigner)?;
    }
    directory_string(r.read(tag::context_constructed(1)).ok()?)?;
    r.finish().ok()
}

/// A GeneralName as OpenSSL decodes it inside these extensions: one of the nine
/// context-specific forms, its contents not judged (a name constraint's iPAddress is an
/// address and a mask; its dNSName may be empty or start with a dot).
pub(super) fn check_general_name(r: &mut Reader<'_>) -> Option<()> {
    let name = r.read_any().ok()?;
    match name.tag {
        0x81 | 0x82 | 0x86 | 0x87 | 0x88 => Some(()),
        0xA0 | 0xA3 | 0xA5 => Some(()),
        0xA4 => name.reader().read(tag::SEQUENCE).ok().map(|_| ()),
        _ => None,
    }
}

/// GeneralNames (OpenSSL does not hold the list to RFC 5280's one or more).
pub(super) fn check_general_names(r: &mut Reader<'_>) -> Option<()> {
    while !r.is_empty() {
        check_general_name(r)?;
    }
    Some(())
}
