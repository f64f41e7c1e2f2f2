//! A tiny DER writer for crafting test certificates.

/// Tag, length, value.
pub fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(value);
    out
}

pub fn seq(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &items.concat())
}

pub fn set(items: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x31, &items.concat())
}

/// An OID from dotted text.
pub fn oid(dotted: &str) -> Vec<u8> {
    let arcs: Vec<u128> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
    let mut body = Vec::new();
    let mut push = |mut v: u128| {
        let mut tmp = Vec::new();
        loop {
            tmp.push((v & 0x7F) as u8);
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        for (i, b) in tmp.iter().enumerate().rev() {
            body.push(b | if i > 0 { 0x80 } else { 0 });
        }
    };
    push(arcs[0] * 40 + arcs[1]);
    for &a in &arcs[2..] {
        push(a);
    }
    tlv(0x06, &body)
}

/// String tags.
pub const UTF8: u8 = 0x0C;
pub const PRINTABLE: u8 = 0x13;
pub const TELETEX: u8 = 0x14;
pub const IA5: u8 = 0x16;
pub const UNIVERSAL: u8 = 0x1C;
pub const BMP: u8 = 0x1E;

/// Encodes text in the given string type: BMP as UTF-16BE, Universal as UTF-32BE,
/// Teletex as Latin-1 (panics outside Latin-1), others as the UTF-8 bytes.
pub fn string(tag: u8, text: &str) -> Vec<u8> {
    let bytes: Vec<u8> = match tag {
        BMP => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        UNIVERSAL => text
            .chars()
            .flat_map(|c| (c as u32).to_be_bytes())
            .collect(),
        TELETEX => text
            .chars()
            .map(|c| u8::try_from(c as u32).expect("Teletex test strings are Latin-1"))
            .collect(),
        _ => text.as_bytes().to_vec(),
    };
    tlv(tag, &bytes)
}

/// One attribute: (dotted OID, value DER).
pub fn atv(oid_text: &str, value: Vec<u8>) -> Vec<u8> {
    seq(&[oid(oid_text), value])
}

/// A Name from RDNs, each a list of attributes.
pub fn name(rdns: &[&[Vec<u8>]]) -> Vec<u8> {
    let sets: Vec<Vec<u8>> = rdns.iter().map(|rdn| set(rdn)).collect();
    seq(&sets)
}

/// A Name of single-attribute RDNs given as (short name or OID, UTF8String value).
pub fn simple_name(pairs: &[(&str, &str)]) -> Vec<u8> {
    let rdns: Vec<Vec<u8>> = pairs
        .iter()
        .map(|(t, v)| set(&[atv(attr_oid(t), string(UTF8, v))]))
        .collect();
    seq(&rdns)
}

/// The OID of a common attribute's short name.
pub fn attr_oid(short: &str) -> &str {
    match short {
        "CN" => "2.5.4.3",
        "SN" => "2.5.4.4",
        "serialNumber" => "2.5.4.5",
        "C" => "2.5.4.6",
        "L" => "2.5.4.7",
        "ST" => "2.5.4.8",
        "street" => "2.5.4.9",
        "O" => "2.5.4.10",
        "OU" => "2.5.4.11",
        "title" => "2.5.4.12",
        "GN" => "2.5.4.42",
        "initials" => "2.5.4.43",
        "pseudonym" => "2.5.4.65",
        "emailAddress" => "1.2.840.113549.1.9.1",
        "DC" => "0.9.2342.19200300.100.1.25",
        "UID" => "0.9.2342.19200300.100.1.1",
        other => other,
    }
}

pub fn utc_time(s: &str) -> Vec<u8> {
    tlv(0x17, s.as_bytes())
}

pub fn generalized_time(s: &str) -> Vec<u8> {
    tlv(0x18, s.as_bytes())
}

/// GeneralName builders (context tags of RFC 5280's GeneralName).
pub mod san {
    use super::{oid, seq, tlv};

    pub fn dns(v: &str) -> Vec<u8> {
        tlv(0x82, v.as_bytes())
    }
    pub fn email(v: &str) -> Vec<u8> {
        tlv(0x81, v.as_bytes())
    }
    pub fn uri(v: &str) -> Vec<u8> {
        tlv(0x86, v.as_bytes())
    }
    pub fn ip(v: std::net::IpAddr) -> Vec<u8> {
        match v {
            std::net::IpAddr::V4(a) => tlv(0x87, &a.octets()),
            std::net::IpAddr::V6(a) => tlv(0x87, &a.octets()),
        }
    }
    pub fn dir_name(name_der: &[u8]) -> Vec<u8> {
        tlv(0xA4, name_der)
    }
    pub fn other_name(type_oid: &str, value_der: &[u8]) -> Vec<u8> {
        let mut body = oid(type_oid);
        body.extend(tlv(0xA0, value_der));
        tlv(0xA0, &body)
    }
    pub fn registered_id(dotted: &str) -> Vec<u8> {
        let o = oid(dotted);
        tlv(0x88, &o[2..])
    }
    /// The subjectAltName extnValue for these names.
    pub fn extension(names: &[Vec<u8>]) -> Vec<u8> {
        seq(names)
    }
}
