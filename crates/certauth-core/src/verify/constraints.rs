//! Name constraints rustls-webpki does not implement: rfc822Name, uniformResourceIdentifier
//! and directoryName subtrees. webpki fails closed on them (every name of the form is
//! "outside" a permitted subtree), so a SPIFFE CA limited to its trust domain
//! (`permitted;URI:example.org`) or an enterprise CA limited to its mail domain could
//! authenticate no one.
//!
//! In a trust anchor, certauth gives webpki the anchor without those subtrees and enforces
//! them here over the verified path, with RFC 5280 4.2.1.10 semantics:
//!
//! - rfc822Name: `user@host` is one mailbox; `host` every mailbox on that host; `.domain`
//!   every mailbox on a host under the domain. Hosts compare without case, local parts
//!   exactly, characters literally (an `*` is an `*`). Without a subject alternative name,
//!   the subject's emailAddress attributes are checked instead.
//! - URI: the constraint names a host (`example.org`, or `.example.org` for the hosts under
//!   it), matched against the URI's host, so `spiffe://example.org/api` is within
//!   `example.org`. A URI without a host is outside every permitted subtree.
//! - directoryName: the constraint is a prefix of the name, RDN by RDN, values compared
//!   without case or extra spaces whatever their string type (RFC 5280 7.1).
//!
//! Self-issued intermediates are not held to them (RFC 5280 6.1.4). In an intermediate
//! webpki still refuses these forms before certauth can act; the code then says so
//! (`UNSUPPORTED_NAME_CONSTRAINT`), and the CA operator can move the constraint to the
//! root.

use crate::asn1::{Reader, tag};
use crate::cert::{ClientCertificate, GeneralName};
use crate::name::Name;

/// GeneralName tags of the forms certauth enforces: rfc822Name, URI, directoryName.
const OURS: [u8; 3] = [0x81, 0x86, 0xA4];

/// One subtree certauth enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Base {
    Email(String),
    Uri(String),
    Directory(Vec<u8>),
}

impl Base {
    fn read(tag: u8, value: &[u8]) -> Option<Self> {
        let text = || std::str::from_utf8(value).ok().map(str::to_owned);
        match tag {
            0x81 => text().map(Self::Email),
            0x86 => text().map(Self::Uri),
            // [4] EXPLICIT Name: the Name is the content.
            0xA4 => Some(Self::Directory(
                Reader::new(value).read(tag::SEQUENCE).ok()?.raw.to_vec(),
            )),
            _ => None,
        }
    }
}

/// The subtrees of an anchor's name constraints that certauth enforces itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Constraints {
    permitted: Vec<Base>,
    excluded: Vec<Base>,
}

/// What one name constraints extension becomes: the contents webpki keeps (dNSName,
/// iPAddress and the forms neither implements, which webpki refuses), and the subtrees
/// certauth enforces.
#[derive(Debug)]
pub(super) struct Split {
    /// The NameConstraints SEQUENCE contents for webpki (`[0]` and `[1]`), or `None`.
    pub(super) for_webpki: Option<Vec<u8>>,
    pub(super) ours: Constraints,
}

/// Splits the contents of a NameConstraints SEQUENCE. `None` if it does not decode (the
/// certificate is then invalid, see `ClientCertificate::invalid_extension`).
pub(super) fn split(contents: &[u8]) -> Option<Split> {
    let mut r = Reader::new(contents);
    let mut kept = Vec::new();
    let mut ours = Constraints::default();
    for t in [0u8, 1] {
        let Some(subtrees) = r.read_optional(tag::context_constructed(t)).ok()? else {
            continue;
        };
        let mut s = subtrees.reader();
        let mut keep = Vec::new();
        while !s.is_empty() {
            let subtree = s.read(tag::SEQUENCE).ok()?;
            let base = subtree.reader().read_any().ok()?;
            if OURS.contains(&base.tag) {
                let b = Base::read(base.tag, base.value)?;
                if t == 0 {
                    ours.permitted.push(b);
                } else {
                    ours.excluded.push(b);
                }
            } else {
                keep.extend_from_slice(subtree.raw);
            }
        }
        if !keep.is_empty() {
            kept.push(tlv(0xA0 | t, &keep));
        }
    }
    r.finish().ok()?;
    Some(Split {
        for_webpki: (!kept.is_empty()).then(|| kept.concat()),
        ours,
    })
}

/// Whether a NameConstraints SEQUENCE's contents hold a form webpki does not implement.
pub(super) fn has_forms_webpki_lacks(contents: &[u8]) -> bool {
    split(contents).is_some_and(|s| !s.ours.is_empty())
}

fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    crate::asn1::encode(tag, value)
}

impl Constraints {
    pub(super) fn is_empty(&self) -> bool {
        self.permitted.is_empty() && self.excluded.is_empty()
    }

    /// The first name of `cert` outside these constraints, described, if any.
    pub(super) fn violation(&self, cert: &ClientCertificate) -> Option<String> {
        let sans: Vec<GeneralName<'_>> = cert.subject_alt_names().collect();
        // Every address a policy can match (`allow_email` reads the subject's emailAddress
        // too), so the subject's count whether or not the certificate has SANs, as OpenSSL
        // checks them.
        let emails: Vec<String> = cert.email_addresses().map(|e| e.into_owned()).collect();
        let uris = sans.iter().filter_map(|n| match n {
            GeneralName::Uri(u) => Some(*u),
            _ => None,
        });
        let mut directories: Vec<Name<'_>> = sans
            .iter()
            .filter_map(|n| match n {
                GeneralName::DirectoryName(d) => Some(*d),
                _ => None,
            })
            .collect();
        if !cert.subject().is_empty() {
            directories.push(cert.subject());
        }
        for email in &emails {
            if let Some(why) = self.judge(|b| match b {
                Base::Email(c) => Some(email_matches(email, c)),
                _ => None,
            }) {
                return Some(format!("email {email} is {why}"));
            }
        }
        for uri in uris {
            if let Some(why) = self.judge(|b| match b {
                Base::Uri(c) => Some(uri_matches(uri, c)),
                _ => None,
            }) {
                return Some(format!("URI {uri} is {why}"));
            }
        }
        for dn in &directories {
            if let Some(why) = self.judge(|b| match b {
                Base::Directory(c) => Some(directory_matches(dn, c)),
                _ => None,
            }) {
                return Some(format!("name {} is {why}", dn.to_rfc4514()));
            }
        }
        None
    }

    /// Judges one name by `matches` (`None`: another form): `Some` with the reason if it
    /// is excluded, or outside every permitted subtree of its form.
    fn judge(&self, matches: impl Fn(&Base) -> Option<bool>) -> Option<&'static str> {
        if self.excluded.iter().any(|b| matches(b) == Some(true)) {
            return Some("in an excluded subtree");
        }
        let permitted: Vec<bool> = self.permitted.iter().filter_map(&matches).collect();
        (!permitted.is_empty() && !permitted.contains(&true))
            .then_some("outside every permitted subtree")
    }
}

/// `host` is `constraint`, or (for `.domain`) a host under it; without case.
fn host_matches(host: &str, constraint: &str) -> bool {
    let (host, constraint) = (host.to_ascii_lowercase(), constraint.to_ascii_lowercase());
    match constraint.strip_prefix('.') {
        Some(_) => host.len() > constraint.len() && host.ends_with(&constraint),
        None => host == constraint,
    }
}

fn email_matches(email: &str, constraint: &str) -> bool {
    let Some((local, host)) = email.rsplit_once('@') else {
        return false;
    };
    match constraint.rsplit_once('@') {
        // The local part is compared without ASCII case, as `allow_email` compares it: an
        // excluded `ceo@victim.com` must exclude the `CEO@victim.com` the policy would admit.
        Some((c_local, c_host)) => {
            local.eq_ignore_ascii_case(c_local) && host.eq_ignore_ascii_case(c_host)
        }
        None => host_matches(host, constraint),
    }
}

/// The host of a URI with an authority (`scheme://[userinfo@]host[:port]…`).
fn uri_host(uri: &str) -> Option<&str> {
    let (_, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        return None; // an IP literal: the constraint names hosts
    }
    let host = host_port.split(':').next()?;
    (!host.is_empty()).then_some(host)
}

fn uri_matches(uri: &str, constraint: &str) -> bool {
    uri_host(uri).is_some_and(|h| host_matches(h, constraint))
}

/// A Name's RDNs, each a sorted list of (attribute type, value), the value compared as
/// RFC 5280 7.1 asks (caseIgnoreMatch after insignificant spaces are removed, whatever the
/// string type): so `O=Example` as a PrintableString matches it as a UTF8String.
fn rdns(name: &Name<'_>) -> Vec<Vec<(Vec<u8>, String)>> {
    let mut out: Vec<Vec<(Vec<u8>, String)>> = Vec::new();
    let mut last = None;
    for a in name.attributes() {
        if last != Some(a.rdn_index()) {
            out.push(Vec::new());
            last = Some(a.rdn_index());
        }
        let value = a
            .value()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if let Some(rdn) = out.last_mut() {
            rdn.push((a.oid().as_bytes().to_vec(), value));
        }
    }
    for rdn in &mut out {
        rdn.sort();
    }
    out
}

/// Whether two names are one as RFC 5280 7.1 compares them (see [`rdns`]).
pub(crate) fn same_name(a: &Name<'_>, b: &Name<'_>) -> bool {
    a.raw() == b.raw() || rdns(a) == rdns(b)
}

fn directory_matches(name: &Name<'_>, constraint: &[u8]) -> bool {
    let Some(constraint) = Reader::new(constraint)
        .read_any()
        .ok()
        .and_then(|t| Name::parse(t, usize::MAX).ok())
    else {
        return false;
    };
    let (name, constraint) = (rdns(name), rdns(&constraint));
    name.len() >= constraint.len() && name.iter().zip(&constraint).all(|(a, b)| a == b)
}

#[cfg(test)]
mod tests;
