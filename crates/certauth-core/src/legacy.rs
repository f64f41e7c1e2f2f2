//! Node.js's legacy certificate object (`X509Certificate#toLegacyObject()`, and what
//! `tlsSocket.getPeerCertificate()` returns), so that people porting policies from
//! client-certificate-auth see exactly the values they know.
//!
//! Keys, in Node's order: `subject`, `issuer`, `subjectaltname`, `ca`, `valid_from`,
//! `valid_to`, `fingerprint` (SHA-1), `fingerprint256`, `fingerprint512`, `ext_key_usage`,
//! `serialNumber`. `subjectaltname` and `ext_key_usage` are absent when the certificate has
//! no such extension, and `subject` or `issuer` when it holds a value that is not a string
//! (a BIT STRING x500UniqueIdentifier), as in Node. Formatting follows Node 20 (OpenSSL 3) byte for byte; the
//! tests compare with the `node` binary.

use std::fmt::Write as _;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::cert::{ClientCertificate, GeneralName, colon_hex};
use crate::name::Name;

/// A name as Node's object: attributes keyed by short name (or dotted OID), in order of
/// first appearance; a repeated attribute becomes an array of its values, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LegacyName {
    entries: Vec<(String, Vec<String>)>,
}

impl LegacyName {
    /// Groups a name's attributes as Node does. `None` when a value is not a string (e.g. a
    /// BIT STRING x500UniqueIdentifier): OpenSSL cannot turn it into UTF-8, and Node then
    /// leaves the whole name out of the object.
    fn from_name(name: &Name<'_>) -> Option<Self> {
        let mut entries: Vec<(String, Vec<String>)> = Vec::new();
        for a in name.attributes() {
            if a.kind() == crate::name::StringKind::Other {
                return None;
            }
            let key = a
                .short_name()
                .map_or_else(|| a.oid().to_string(), str::to_owned);
            let value = a.value().into_owned();
            match entries.iter_mut().find(|(k, _)| *k == key) {
                Some((_, values)) => values.push(value),
                None => entries.push((key, vec![value])),
            }
        }
        Some(Self { entries })
    }

    /// The values of one key.
    fn get(&self, key: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

impl Serialize for LegacyName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            match v.as_slice() {
                [one] => map.serialize_entry(k, one)?,
                many => map.serialize_entry(k, many)?,
            }
        }
        map.end()
    }
}

/// The legacy object. Serialize it (e.g. with serde_json) to get Node's JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LegacyObject {
    /// `subject` ([`Self::subject`]).
    subject: Option<LegacyName>,
    /// `issuer` ([`Self::issuer`]).
    issuer: Option<LegacyName>,
    /// `subjectaltname`: `DNS:a.example, email:x@y, IP Address:127.0.0.1, …`.
    pub subjectaltname: Option<String>,
    /// `ca`.
    pub ca: bool,
    /// `valid_from`: `Nov  3 08:09:10 2026 GMT`.
    pub valid_from: String,
    /// `valid_to`.
    pub valid_to: String,
    /// `fingerprint`: SHA-1, colon hex.
    pub fingerprint: String,
    /// `fingerprint256`.
    pub fingerprint256: String,
    /// `fingerprint512`.
    pub fingerprint512: String,
    /// `ext_key_usage`: dotted OIDs.
    pub ext_key_usage: Option<Vec<String>>,
    /// `serialNumber`: upper-case hex.
    pub serial_number: String,
}

impl LegacyObject {
    /// `subject.KEY` (`CN`, `OU`, … or a dotted OID): every value of that attribute, in
    /// order (Node's object holds one as a string, more as an array). `None` when the
    /// subject has none, or (as in Node, which leaves the subject out) holds a value that
    /// is not a string.
    pub fn subject(&self, key: &str) -> Option<&[String]> {
        self.subject.as_ref()?.get(key)
    }

    /// `issuer.KEY`, as [`Self::subject`].
    pub fn issuer(&self, key: &str) -> Option<&[String]> {
        self.issuer.as_ref()?.get(key)
    }

    /// Builds the object for a certificate.
    pub fn new(cert: &ClientCertificate) -> Self {
        Self {
            subject: LegacyName::from_name(&cert.subject()),
            issuer: LegacyName::from_name(&cert.issuer()),
            subjectaltname: cert.has_subject_alt_names().then(|| subjectaltname(cert)),
            ca: cert.is_ca(),
            valid_from: cert.not_before().to_openssl_string(),
            valid_to: cert.not_after().to_openssl_string(),
            fingerprint: colon_hex(cert.fingerprint_sha1()),
            fingerprint256: colon_hex(cert.fingerprint_sha256()),
            fingerprint512: colon_hex(cert.fingerprint_sha512()),
            ext_key_usage: cert
                .extended_key_usage()
                .map(|it| it.map(|o| o.to_string()).collect()),
            serial_number: cert.serial_hex(),
        }
    }
}

impl Serialize for LegacyObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(subject) = &self.subject {
            map.serialize_entry("subject", subject)?;
        }
        if let Some(issuer) = &self.issuer {
            map.serialize_entry("issuer", issuer)?;
        }
        if let Some(san) = &self.subjectaltname {
            map.serialize_entry("subjectaltname", san)?;
        }
        map.serialize_entry("ca", &self.ca)?;
        map.serialize_entry("valid_from", &self.valid_from)?;
        map.serialize_entry("valid_to", &self.valid_to)?;
        map.serialize_entry("fingerprint", &self.fingerprint)?;
        map.serialize_entry("fingerprint256", &self.fingerprint256)?;
        map.serialize_entry("fingerprint512", &self.fingerprint512)?;
        if let Some(eku) = &self.ext_key_usage {
            map.serialize_entry("ext_key_usage", eku)?;
        }
        map.serialize_entry("serialNumber", &self.serial_number)?;
        map.end()
    }
}

/// Node's `subjectaltname` string (Node's `PrintGeneralName`, since the CVE-2021-44532 fix).
pub fn subjectaltname(cert: &ClientCertificate) -> String {
    let mut out = String::new();
    for (i, san) in cert.subject_alt_names().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match san {
            GeneralName::Dns(v) => {
                out.push_str("DNS:");
                alt_name(&mut out, v.as_bytes(), false, None);
            }
            GeneralName::Email(v) => {
                out.push_str("email:");
                alt_name(&mut out, v.as_bytes(), false, None);
            }
            GeneralName::Uri(v) => {
                out.push_str("URI:");
                alt_name(&mut out, v.as_bytes(), false, None);
            }
            GeneralName::DirectoryName(name) => {
                out.push_str("DirName:");
                alt_name(&mut out, name.format_rfc4514(false).as_bytes(), true, None);
            }
            GeneralName::Ip(std::net::IpAddr::V4(a)) => {
                let _ = write!(out, "IP Address:{a}");
            }
            GeneralName::Ip(std::net::IpAddr::V6(a)) => {
                out.push_str("IP Address:");
                for (j, seg) in a.segments().iter().enumerate() {
                    let _ = write!(out, "{}{seg:X}", if j == 0 { "" } else { ":" });
                }
            }
            GeneralName::RegisteredId(oid) => {
                let _ = write!(out, "Registered ID:{oid}");
            }
            GeneralName::OtherName { type_id, value } => {
                // The otherName types OpenSSL 3 names, with the string type each must have.
                const PREFIXES: &[(&str, &str, u8)] = &[
                    ("1.3.6.1.5.5.7.8.9", "SmtpUTF8Mailbox", 0x0C),
                    ("1.3.6.1.5.5.7.8.5", "XmppAddr", 0x0C),
                    ("1.3.6.1.5.5.7.8.7", "SRVName", 0x16),
                    ("1.3.6.1.4.1.311.20.2.3", "UPN", 0x0C),
                    ("1.3.6.1.5.5.7.8.8", "NAIRealm", 0x0C),
                ];
                let type_id = type_id.to_string();
                // Read when the certificate was parsed: it reads again.
                let value = crate::asn1::Reader::new(value).read_any().ok();
                let prefix = PREFIXES.iter().find(|(oid, _, _)| *oid == type_id);
                match (value, prefix) {
                    (Some(value), Some((_, prefix, tag))) if value.tag == *tag => {
                        out.push_str("othername:");
                        alt_name(&mut out, value.value, *tag == 0x0C, Some(prefix));
                    }
                    _ => out.push_str("othername:<unsupported>"),
                }
            }
            GeneralName::X400Address(_) => out.push_str("X400Name:<unsupported>"),
            GeneralName::EdiPartyName(_) => out.push_str("EdiPartyName:<unsupported>"),
        }
    }
    out
}

fn is_safe_alt_name(name: &[u8], utf8: bool) -> bool {
    name.iter().all(|&c| match c {
        b'"' | b'\\' | b',' | b'\'' => false,
        _ if utf8 => c >= b' ' && c != 0x7F,
        _ => (b' '..=b'~').contains(&c),
    })
}

/// Node's `PrintAltName`: safe names as they are, others JSON-quoted with `\uXXXX` escapes
/// for control characters, commas and (outside UTF-8 strings) non-ASCII bytes.
fn alt_name(out: &mut String, name: &[u8], utf8: bool, prefix: Option<&str>) {
    if is_safe_alt_name(name, utf8) {
        if let Some(p) = prefix {
            out.push_str(p);
            out.push(':');
        }
        out.push_str(&String::from_utf8_lossy(name));
        return;
    }
    out.push('"');
    if let Some(p) = prefix {
        out.push_str(p);
        out.push(':');
    }
    let mut run: Vec<u8> = Vec::new();
    let flush = |run: &mut Vec<u8>, out: &mut String| {
        out.push_str(&String::from_utf8_lossy(run));
        run.clear();
    };
    for &c in name {
        if c == b'"' || c == b'\\' {
            run.push(b'\\');
            run.push(c);
        } else if (c >= b' ' && c != b',' && c <= b'~') || (utf8 && c & 0x80 != 0) {
            run.push(c);
        } else {
            flush(&mut run, out);
            let _ = write!(out, "\\u{c:04x}");
        }
    }
    flush(&mut run, out);
    out.push('"');
}
