//! Extensions: the raw list and the walk that records and checks the ones
//! certauth reads, as OpenSSL reads them.

use super::*;

/// One extension, borrowed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Extension<'a> {
    pub(super) oid: Oid<'a>,
    pub(super) critical: bool,
    pub(super) value: &'a [u8],
}

impl<'a> Extension<'a> {
    /// The extension's OID.
    pub(crate) fn oid(&self) -> Oid<'a> {
        self.oid
    }

    /// Whether it is marked critical.
    pub(crate) fn critical(&self) -> bool {
        self.critical
    }

    /// The extnValue contents (the DER inside the OCTET STRING).
    pub(crate) fn value(&self) -> &'a [u8] {
        self.value
    }
}

pub(super) fn read_extension<'a>(r: &mut Reader<'a>) -> Result<Extension<'a>, X509Error> {
    let ext = r.read(tag::SEQUENCE)?;
    let mut e = ext.reader();
    let oid = e.read(tag::OID)?;
    let oid = Oid::from_der_contents(oid.value).ok_or_else(|| oid.error())?;
    let critical = match e.read_optional(tag::BOOLEAN)? {
        Some(b) => asn1::boolean(b)?,
        None => false,
    };
    let value = e.read(tag::OCTET_STRING)?.value;
    e.finish()?;
    Ok(Extension {
        oid,
        critical,
        value,
    })
}

/// Iterator over a certificate's extensions.
#[derive(Clone, Debug)]
pub(crate) struct Extensions<'a> {
    pub(super) reader: Reader<'a>,
}

impl<'a> Iterator for Extensions<'a> {
    type Item = Extension<'a>;

    fn next(&mut self) -> Option<Extension<'a>> {
        if self.reader.is_empty() {
            return None;
        }
        read_extension(&mut self.reader).ok()
    }
}

pub(super) fn parse_extensions(
    seq: Tlv<'_>,
    der: &[u8],
    limits: &CertLimits,
    index: &mut Index,
) -> Result<(), X509Error> {
    let mut r = seq.reader();
    // Extension OIDs seen so far, for the duplicate check: on the stack for the usual
    // handful, spilling to the heap only past 16.
    let mut seen_inline: [&[u8]; 16] = [&[]; 16];
    let mut seen_heap: Vec<&[u8]> = Vec::new();
    let mut count = 0usize;
    while !r.is_empty() {
        if count >= limits.max_extensions {
            return Err(X509Error::TooManyExtensions {
                max: limits.max_extensions,
            });
        }
        let before = r.clone();
        let ext = read_extension(&mut r)?;
        let oid = ext.oid.as_bytes();
        let seen = seen_inline[..count.min(16)].iter().chain(&seen_heap);
        if seen.clone().any(|s| *s == oid) {
            return Err(X509Error::DuplicateExtension {
                oid: ext.oid.to_string(),
            });
        }
        match seen_inline.get_mut(count) {
            Some(slot) => *slot = oid,
            None => seen_heap.push(oid),
        }
        count += 1;
        let invalid = || X509Error::InvalidExtension {
            oid: ext.oid.to_string(),
        };
        // Re-read to get the OCTET STRING's position for the span.
        let value_tlv = {
            let mut b = before;
            let e = b.read(tag::SEQUENCE)?;
            let mut er = e.reader();
            er.read(tag::OID)?;
            er.read_optional(tag::BOOLEAN)?;
            er.read(tag::OCTET_STRING)?
        };
        let mut inner = value_tlv.reader();
        match oid {
            known::EXT_SUBJECT_ALT_NAME => {
                let names = inner.read(tag::SEQUENCE).map_err(|_| invalid())?;
                inner.finish().map_err(|_| invalid())?;
                let mut nr = names.reader();
                let mut count = 0usize;
                while !nr.is_empty() {
                    count += 1;
                    if count > limits.max_san_entries {
                        return Err(X509Error::TooManySubjectAltNames {
                            max: limits.max_san_entries,
                        });
                    }
                    read_general_name(&mut nr, limits.max_name_attributes)?;
                }
                index.san = Some(Span::of(&names, der));
            }
            known::EXT_BASIC_CONSTRAINTS => {
                let bc = inner.read(tag::SEQUENCE).map_err(|_| invalid())?;
                inner.finish().map_err(|_| invalid())?;
                let mut b = bc.reader();
                let ca = match b.read_optional(tag::BOOLEAN)? {
                    Some(t) => asn1::boolean(t)?,
                    None => false,
                };
                let path_len = match b.read_optional(tag::INTEGER)? {
                    Some(t) => {
                        let bytes = asn1::integer_bytes(t).map_err(|_| invalid())?;
                        if bytes[0] & 0x80 != 0 {
                            // Negative: valid DER, an invalid certificate (OpenSSL's
                            // X509V3_R_NEGATIVE_PATHLEN), so never a CA and never verified.
                            if index.invalid_extension.is_none() {
                                index.invalid_extension = Some(Span::of(&value_tlv, der));
                            }
                            None
                        } else {
                            // RFC 5280 allows any INTEGER ≥ 0; past u32 it limits nothing.
                            Some(asn1::small_uint(t).unwrap_or(u32::MAX))
                        }
                    }
                    None => None,
                };
                b.finish().map_err(|_| invalid())?;
                index.basic_constraints = Some(BasicConstraints { ca, path_len });
            }
            known::EXT_KEY_USAGE => {
                let bits = inner.read(tag::BIT_STRING).map_err(|_| invalid())?;
                inner.finish().map_err(|_| invalid())?;
                let (_, bytes) = asn1::bit_string(bits).map_err(|_| invalid())?;
                // Bit 0 is the most significant bit of the first byte.
                let mut ku = 0u16;
                for (i, b) in bytes.iter().take(2).enumerate() {
                    for bit in 0..8 {
                        if b & (0x80 >> bit) != 0 {
                            ku |= 1 << (i * 8 + bit);
                        }
                    }
                }
                index.key_usage = Some(KeyUsage(ku));
            }
            known::EXT_EXTENDED_KEY_USAGE => {
                let list = inner.read(tag::SEQUENCE).map_err(|_| invalid())?;
                inner.finish().map_err(|_| invalid())?;
                let mut l = list.reader();
                while !l.is_empty() {
                    let o = l.read(tag::OID).map_err(|_| invalid())?;
                    Oid::from_der_contents(o.value).ok_or_else(invalid)?;
                }
                index.eku = Some(Span::of(&list, der));
            }
            // OpenSSL decodes these four as it caches a certificate's extensions; one that
            // does not decode leaves the certificate readable but invalid: never a CA
            // (`X509_check_ca`), never verified (X509_V_ERR_INVALID_EXTENSION).
            known::EXT_SUBJECT_KEY_ID
            | known::EXT_AUTHORITY_KEY_ID
            | known::EXT_NAME_CONSTRAINTS
            | known::EXT_CRL_DISTRIBUTION_POINTS => {
                let decodes = match oid {
                    known::EXT_SUBJECT_KEY_ID => inner
                        .read(tag::OCTET_STRING)
                        .and_then(|_| inner.finish())
                        .ok(),
                    known::EXT_AUTHORITY_KEY_ID => check_authority_key_id(&mut inner),
                    known::EXT_NAME_CONSTRAINTS => check_name_constraints(&mut inner),
                    _ => check_crl_distribution_points(&mut inner),
                };
                if decodes.is_none() && index.invalid_extension.is_none() {
                    index.invalid_extension = Some(Span::of(&value_tlv, der));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// AuthorityKeyIdentifier (RFC 5280 4.2.1.1): an optional `[0]` key identifier, issuer `[1]`
/// and serial `[2]` (RFC 5280 wants the last two together; OpenSSL decodes either alone).
pub(super) fn check_authority_key_id(inner: &mut Reader<'_>) -> Option<()> {
    let aki = inner.read(tag::SEQUENCE).ok()?;
    inner.finish().ok()?;
    let mut a = aki.reader();
    a.read_optional(tag::context_primitive(0)).ok()?;
    let issuer = a.read_optional(tag::context_constructed(1)).ok()?;
    a.read_optional(tag::context_primitive(2)).ok()?;
    a.finish().ok()?;
    if let Some(issuer) = issuer {
        check_general_names(&mut issuer.reader())?;
    }
    Some(())
}

/// NameConstraints (RFC 5280 4.2.1.10): permitted `[0]` and excluded `[1]` subtrees, each a
/// list of GeneralSubtree `{ base, [0] minimum, [1] maximum }`.
pub(super) fn check_name_constraints(inner: &mut Reader<'_>) -> Option<()> {
    let nc = inner.read(tag::SEQUENCE).ok()?;
    inner.finish().ok()?;
    let mut n = nc.reader();
    for t in [0, 1] {
        let Some(subtrees) = n.read_optional(tag::context_constructed(t)).ok()? else {
            continue;
        };
        let mut s = subtrees.reader();
        while !s.is_empty() {
            let subtree = s.read(tag::SEQUENCE).ok()?;
            let mut st = subtree.reader();
            check_general_name(&mut st)?;
            st.read_optional(tag::context_primitive(0)).ok()?;
            st.read_optional(tag::context_primitive(1)).ok()?;
            st.finish().ok()?;
        }
    }
    n.finish().ok()
}

/// CRLDistributionPoints (RFC 5280 4.2.1.13): each point names where the CRL is or who
/// issues it; a point with only reasons is not a point.
pub(super) fn check_crl_distribution_points(inner: &mut Reader<'_>) -> Option<()> {
    let points = inner.read(tag::SEQUENCE).ok()?;
    inner.finish().ok()?;
    let mut p = points.reader();
    while !p.is_empty() {
        let point = p.read(tag::SEQUENCE).ok()?;
        let mut d = point.reader();
        let name = d.read_optional(tag::context_constructed(0)).ok()?;
        if let Some(name) = &name {
            let mut nr = name.reader();
            match nr.peek_tag()? {
                0xA0 => check_general_names(&mut nr.read(0xA0).ok()?.reader())?,
                0xA1 => {
                    nr.read(0xA1).ok()?;
                }
                _ => return None,
            }
            nr.finish().ok()?;
        }
        d.read_optional(tag::context_primitive(1)).ok()?;
        let issuer = d.read_optional(tag::context_constructed(2)).ok()?;
        if let Some(issuer) = &issuer {
            check_general_names(&mut issuer.reader())?;
        }
        d.finish().ok()?;
        if name.is_none() && issuer.is_none() {
            return None;
        }
    }
    Some(())
}
