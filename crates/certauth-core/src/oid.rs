//! Object identifiers, borrowed from the DER they were read from.

use core::fmt;

/// An object identifier: the DER contents octets (without tag and length), borrowed.
///
/// `Display` prints the dotted form (`2.5.4.3`). Arcs too large for 128 bits are printed
/// as `?`, which no real certificate carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Oid<'a>(&'a [u8]);

impl Oid<'static> {
    /// `2.5`: a placeholder for unreachable fallbacks.
    pub(crate) const UNKNOWN: Self = Self(&[0x55]);
}

impl<'a> Oid<'a> {
    /// Wraps DER contents octets. Returns `None` unless they form a valid OID encoding
    /// (non-empty, minimal base-128 arcs, the last byte ending an arc).
    pub fn from_der_contents(bytes: &'a [u8]) -> Option<Self> {
        let valid = !bytes.is_empty()
            && bytes.last().is_some_and(|b| b & 0x80 == 0)
            && bytes
                .iter()
                .enumerate()
                // An arc may not start with 0x80 (a leading zero digit).
                .all(|(i, &b)| b != 0x80 || (i > 0 && bytes[i - 1] & 0x80 != 0));
        valid.then_some(Self(bytes))
    }

    /// The DER contents octets.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// The arcs, for display. Yields `None` for an arc over 128 bits.
    fn arcs(&self) -> impl Iterator<Item = Option<u128>> + '_ {
        let mut first = true;
        let mut rest = self.0;
        let mut pending: Option<Option<u128>> = None;
        core::iter::from_fn(move || {
            if let Some(p) = pending.take() {
                return Some(p);
            }
            if rest.is_empty() {
                return None;
            }
            let mut v: Option<u128> = Some(0);
            loop {
                let (&b, tail) = rest.split_first()?;
                rest = tail;
                v = v
                    .and_then(|v| v.checked_mul(128))
                    .map(|v| v | u128::from(b & 0x7F));
                if b & 0x80 == 0 {
                    break;
                }
            }
            if first {
                first = false;
                // The first subidentifier packs the first two arcs (X.690 §8.19.4).
                let (a, b) = match v {
                    Some(v) if v < 40 => (Some(0), Some(v)),
                    Some(v) if v < 80 => (Some(1), Some(v - 40)),
                    Some(v) => (Some(2), Some(v - 80)),
                    None => (Some(2), None),
                };
                pending = Some(b);
                return Some(a);
            }
            Some(v)
        })
    }
}

impl fmt::Display for Oid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arc) in self.arcs().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match arc {
                Some(v) => write!(f, "{v}")?,
                None => f.write_str("?")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Oid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

/// Parses a dotted OID (`1.2.840.113549.1.9.1`) into DER contents octets.
pub(crate) fn encode_dotted(text: &str) -> Option<Vec<u8>> {
    let mut arcs = text.split('.').map(|a| {
        if a.is_empty() || (a.len() > 1 && a.starts_with('0')) {
            None
        } else {
            a.parse::<u128>().ok()
        }
    });
    let first = arcs.next()??;
    let second = arcs.next()??;
    if first > 2 || (first < 2 && second >= 40) {
        return None;
    }
    let mut out = Vec::new();
    let mut push = |mut v: u128| {
        let mut tmp = [0u8; 19];
        let mut n = 0;
        loop {
            tmp[n] = u8::try_from(v & 0x7F).unwrap_or(0);
            v >>= 7;
            n += 1;
            if v == 0 {
                break;
            }
        }
        for i in (0..n).rev() {
            out.push(tmp[i] | if i > 0 { 0x80 } else { 0 });
        }
    };
    push(first.checked_mul(40)?.checked_add(second)?);
    for arc in arcs {
        push(arc?);
    }
    Some(out)
}

/// DER contents of the OIDs this crate looks for.
pub(crate) mod known {
    // Name attributes (X.520 and friends).
    pub(crate) const CN: &[u8] = &[0x55, 0x04, 0x03];
    pub(crate) const OU: &[u8] = &[0x55, 0x04, 0x0B];
    pub(crate) const O: &[u8] = &[0x55, 0x04, 0x0A];
    pub(crate) const EMAIL_ADDRESS: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01];

    // Extensions.
    pub(crate) const EXT_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1D, 0x0E];
    pub(crate) const EXT_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1D, 0x23];
    pub(crate) const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x0F];
    pub(crate) const EXT_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1D, 0x11];
    pub(crate) const EXT_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1D, 0x13];
    pub(crate) const EXT_EXTENDED_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x25];
    pub(crate) const EXT_NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1D, 0x1E];
    pub(crate) const EXT_CRL_DISTRIBUTION_POINTS: &[u8] = &[0x55, 0x1D, 0x1F];

    // Public keys.
    pub(crate) const RSA_ENCRYPTION: &[u8] =
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
    pub(crate) const RSASSA_PSS: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A];
    pub(crate) const EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
    pub(crate) const ED25519: &[u8] = &[0x2B, 0x65, 0x70];
    pub(crate) const ED448: &[u8] = &[0x2B, 0x65, 0x71];
    pub(crate) const CURVE_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
    pub(crate) const CURVE_P384: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x22];
    pub(crate) const CURVE_P521: &[u8] = &[0x2B, 0x81, 0x04, 0x00, 0x23];

    // otherName types.
    pub(crate) const MS_UPN: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x14, 0x02, 0x03];
}

#[cfg(test)]
mod tests;
