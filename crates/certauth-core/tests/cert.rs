//! The certificate model: every field, every SAN kind, every limit, and hostile input.
#![allow(clippy::unwrap_used, clippy::as_conversions, missing_docs)]

use std::net::IpAddr;

use certauth_core::cert::{
    CertLimits, Curve, GeneralName, KeyUsage, NameField, PublicKeyAlgorithm,
};
use certauth_core::name::StringKind;
use certauth_core::{ClientCertificate, Time, X509Error};
use certauth_testkit::der::{self, san};
use certauth_testkit::{Authority, Crafted, KeyKind, Leaf, NOW_SECS, key};
use rcgen::{DnType, SanType};

fn crafted(f: impl FnOnce(&mut Crafted)) -> Vec<u8> {
    let k = key(KeyKind::P256);
    let mut c = Crafted::new(der::simple_name(&[("CN", "crafted")]));
    f(&mut c);
    c.sign(&k, &k)
}

#[test]
fn reads_the_fields_of_an_issued_certificate() {
    let root = Authority::root("Model Root");
    let mut leaf = Leaf::client("model-client");
    leaf.extra_dn = vec![
        (DnType::OrganizationName, "Model Org".into()),
        (DnType::OrganizationalUnitName, "Unit".into()),
        (DnType::CountryName, "DE".into()),
    ];
    leaf.serial = Some(vec![0x01, 0x02, 0x03]);
    let issued = root.issue(&leaf);
    let c = ClientCertificate::from_der(&issued.der).unwrap();

    assert_eq!(c.version(), 3);
    assert_eq!(c.serial_hex(), "010203");
    assert_eq!(c.serial_bytes(), [1, 2, 3]);
    assert_eq!(
        c.subject().common_names().collect::<Vec<_>>(),
        ["model-client"]
    );
    assert_eq!(
        c.subject().organizations().collect::<Vec<_>>(),
        ["Model Org"]
    );
    assert_eq!(
        c.subject().organizational_units().collect::<Vec<_>>(),
        ["Unit"]
    );
    assert_eq!(c.subject().get("C"), ["DE"]);
    assert_eq!(c.issuer().get("CN"), ["Model Root"]);
    assert_eq!(c.issuer().to_rfc4514(), "O=certauth tests,CN=Model Root");
    assert_eq!(
        c.not_before(),
        Time::from_unix_seconds(NOW_SECS as i64 - 365 * 86_400)
    );
    assert_eq!(
        c.not_after(),
        Time::from_unix_seconds(NOW_SECS as i64 + 365 * 86_400)
    );
    assert!(c.is_valid_at(Time::from_unix_seconds(NOW_SECS as i64)));
    assert!(!c.is_valid_at(Time::from_unix_seconds(NOW_SECS as i64 + 400 * 86_400)));
    // RFC 5280 4.1.2.5: both ends inclusive, to the second.
    let (nb, na) = (
        NOW_SECS as i64 - 365 * 86_400,
        NOW_SECS as i64 + 365 * 86_400,
    );
    for (at, valid) in [(nb - 1, false), (nb, true), (na, true), (na + 1, false)] {
        assert_eq!(c.is_valid_at(Time::from_unix_seconds(at)), valid, "at {at}");
    }
    assert_eq!(c.signature_algorithm().to_string(), "1.2.840.10045.4.3.2");
    assert_eq!(
        c.public_key_algorithm(),
        PublicKeyAlgorithm::Ec(Curve::P256)
    );
    let ku = c.key_usage().unwrap();
    assert!(ku.contains(KeyUsage::DIGITAL_SIGNATURE));
    assert!(!ku.contains(KeyUsage::KEY_CERT_SIGN));
    let eku: Vec<String> = c
        .extended_key_usage()
        .unwrap()
        .map(|o| o.to_string())
        .collect();
    assert_eq!(eku, ["1.3.6.1.5.5.7.3.2"]);
    assert!(!c.is_ca());
    assert!(c.authority_key_id().is_some());
    assert_eq!(c.der(), &issued.der[..]);

    let root_cert = ClientCertificate::from_der(&root.cert.der).unwrap();
    assert!(root_cert.is_ca());
    assert_eq!(root_cert.basic_constraints().map(|b| b.ca), Some(true));
    assert_eq!(root_cert.subject_key_id(), c.authority_key_id());
    assert_eq!(root_cert.subject(), c.issuer());
}

#[test]
fn key_algorithms_and_sizes() {
    let root = Authority::root("Keys Root");
    for (kind, want) in [
        (KeyKind::Rsa2048, PublicKeyAlgorithm::Rsa { bits: 2048 }),
        (KeyKind::P256, PublicKeyAlgorithm::Ec(Curve::P256)),
        (KeyKind::P384, PublicKeyAlgorithm::Ec(Curve::P384)),
        (KeyKind::Ed25519, PublicKeyAlgorithm::Ed25519),
    ] {
        let mut leaf = Leaf::client("k");
        leaf.key = kind;
        let c = ClientCertificate::from_der(&root.issue(&leaf).der).unwrap();
        assert_eq!(c.public_key_algorithm(), want, "{kind:?}");
    }
    assert_eq!(PublicKeyAlgorithm::Ec(Curve::P384).bits(), Some(384));
}

#[test]
fn every_san_kind() {
    let der = crafted(|c| {
        c.extensions.push((
            "2.5.29.17".into(),
            false,
            san::extension(&[
                san::dns("a.example"),
                san::email("x@y.example"),
                san::uri("spiffe://td.example/w"),
                san::ip("192.0.2.1".parse::<IpAddr>().unwrap()),
                san::ip("2001:db8::1".parse::<IpAddr>().unwrap()),
                san::dir_name(&der::simple_name(&[("CN", "dn"), ("O", "org")])),
                san::other_name(
                    "1.3.6.1.4.1.311.20.2.3",
                    &der::string(der::UTF8, "upn@corp"),
                ),
                san::other_name("1.2.3.4", &der::tlv(0x04, b"raw")),
                san::registered_id("1.2.3.99"),
            ]),
        ));
    });
    let c = ClientCertificate::from_der(&der).unwrap();
    let sans: Vec<GeneralName<'_>> = c.subject_alt_names().collect();
    assert_eq!(sans.len(), 9);
    assert!(matches!(sans[0], GeneralName::Dns("a.example")));
    assert!(matches!(sans[1], GeneralName::Email("x@y.example")));
    assert!(matches!(sans[2], GeneralName::Uri("spiffe://td.example/w")));
    assert!(matches!(sans[3], GeneralName::Ip(ip) if ip == "192.0.2.1".parse::<IpAddr>().unwrap()));
    assert!(
        matches!(sans[4], GeneralName::Ip(ip) if ip == "2001:db8::1".parse::<IpAddr>().unwrap())
    );
    let GeneralName::DirectoryName(dn) = sans[5] else {
        panic!()
    };
    assert_eq!(dn.to_rfc4514(), "O=org,CN=dn");
    let GeneralName::OtherName(upn) = sans[6] else {
        panic!()
    };
    assert_eq!(upn.upn(), Some("upn@corp"));
    assert_eq!(upn.type_id().to_string(), "1.3.6.1.4.1.311.20.2.3");
    let GeneralName::OtherName(other) = sans[7] else {
        panic!()
    };
    assert_eq!(other.upn(), None);
    assert_eq!(other.value_der(), der::tlv(0x04, b"raw"));
    assert!(matches!(sans[8], GeneralName::RegisteredId(o) if o.to_string() == "1.2.3.99"));
    assert_eq!(c.spiffe_id(), Some("spiffe://td.example/w"));
    assert_eq!(c.email_addresses().collect::<Vec<_>>(), ["x@y.example"]);

    let root = Authority::root("SAN Root");
    let mut leaf = Leaf::client("rcgen sans");
    leaf.sans = vec![SanType::IpAddress("::1".parse().unwrap())];
    let c = ClientCertificate::from_der(&root.issue(&leaf).der).unwrap();
    assert!(c.has_subject_alt_names());
}

#[test]
fn names_keep_every_string_kind_order_and_grouping() {
    let der = crafted(|c| {
        c.subject = der::name(&[
            &[der::atv("2.5.4.3", der::string(der::BMP, "Zoë"))],
            &[
                der::atv("2.5.4.11", der::string(der::TELETEX, "Café")),
                der::atv("2.5.4.11", der::string(der::UNIVERSAL, "🦀")),
            ],
        ]);
    });
    let c = ClientCertificate::from_der(&der).unwrap();
    let attrs: Vec<_> = c
        .subject()
        .attributes()
        .map(|a| {
            (
                a.short_name().unwrap(),
                a.value().kind(),
                a.value().as_str().into_owned(),
                a.rdn_index(),
            )
        })
        .collect();
    assert_eq!(
        attrs,
        [
            ("CN", StringKind::Bmp, "Zoë".to_owned(), 0),
            ("OU", StringKind::Teletex, "Café".to_owned(), 1),
            ("OU", StringKind::Universal, "🦀".to_owned(), 1),
        ]
    );
    assert_eq!(c.subject().to_rfc4514(), "OU=🦀+OU=Café,CN=Zoë");
}

#[test]
fn every_limit_has_a_typed_error() {
    let many_sans = crafted(|c| {
        let names: Vec<Vec<u8>> = (0..300)
            .map(|i| san::dns(&format!("h{i}.example")))
            .collect();
        c.extensions
            .push(("2.5.29.17".into(), false, san::extension(&names)));
    });
    assert_eq!(
        ClientCertificate::from_der(&many_sans).unwrap_err(),
        X509Error::TooManySubjectAltNames { max: 256 }
    );
    let roomy = CertLimits::DEFAULT.with_max_san_entries(300);
    assert_eq!(
        ClientCertificate::from_der_with_limits(&many_sans, roomy)
            .unwrap()
            .subject_alt_names()
            .count(),
        300
    );

    let many_attrs = crafted(|c| {
        let pairs: Vec<(&str, &str)> = (0..65).map(|_| ("OU", "x")).collect();
        c.subject = der::simple_name(&pairs);
    });
    assert_eq!(
        ClientCertificate::from_der(&many_attrs).unwrap_err(),
        X509Error::TooManyNameAttributes {
            field: NameField::Subject,
            max: 64
        }
    );

    let many_exts = crafted(|c| {
        for i in 0..33 {
            c.extensions
                .push((format!("1.2.3.{i}"), false, der::tlv(0x05, &[])));
        }
    });
    assert_eq!(
        ClientCertificate::from_der(&many_exts).unwrap_err(),
        X509Error::TooManyExtensions { max: 32 }
    );

    let dup = crafted(|c| {
        c.extensions
            .push(("1.2.3.4".into(), false, der::tlv(0x05, &[])));
        c.extensions
            .push(("1.2.3.4".into(), false, der::tlv(0x05, &[])));
    });
    assert_eq!(
        ClientCertificate::from_der(&dup).unwrap_err(),
        X509Error::DuplicateExtension {
            oid: "1.2.3.4".into()
        }
    );

    let big = crafted(|c| {
        c.extensions
            .push(("1.2.3.4".into(), false, der::tlv(0x04, &vec![0; 20_000])));
    });
    assert!(matches!(
        ClientCertificate::from_der(&big).unwrap_err(),
        X509Error::TooLarge { max: 16384, .. }
    ));
    let err = ClientCertificate::from_der(&big).unwrap_err();
    assert!(err.to_string().contains("over the limit of 16384"), "{err}");
}

#[test]
fn malformed_values_are_refused_with_a_position() {
    let bad_utf8 = crafted(|c| {
        c.subject = der::name(&[&[der::atv("2.5.4.3", der::tlv(der::UTF8, b"\xC3\x28"))]]);
    });
    assert!(matches!(
        ClientCertificate::from_der(&bad_utf8).unwrap_err(),
        X509Error::InvalidString {
            field: NameField::Subject,
            ..
        }
    ));
    let bad_issuer = crafted(|c| {
        c.issuer = der::name(&[&[der::atv("2.5.4.3", der::tlv(der::BMP, b"\x00"))]]);
    });
    assert!(matches!(
        ClientCertificate::from_der(&bad_issuer).unwrap_err(),
        X509Error::InvalidString {
            field: NameField::Issuer,
            ..
        }
    ));
    let non_ascii_dns = crafted(|c| {
        c.extensions.push((
            "2.5.29.17".into(),
            false,
            san::extension(&[der::tlv(0x82, "é.example".as_bytes())]),
        ));
    });
    assert!(matches!(
        ClientCertificate::from_der(&non_ascii_dns).unwrap_err(),
        X509Error::InvalidString {
            field: NameField::SubjectAltName,
            ..
        }
    ));
    let bad_ip = crafted(|c| {
        c.extensions.push((
            "2.5.29.17".into(),
            false,
            san::extension(&[der::tlv(0x87, &[1, 2, 3])]),
        ));
    });
    assert!(matches!(
        ClientCertificate::from_der(&bad_ip).unwrap_err(),
        X509Error::Der { .. }
    ));
    let bad_time = crafted(|c| c.not_after = der::utc_time("991332000000Z"));
    assert!(matches!(
        ClientCertificate::from_der(&bad_time).unwrap_err(),
        X509Error::InvalidTime { .. }
    ));
    let bad_bc = crafted(|c| {
        c.extensions
            .push(("2.5.29.19".into(), true, der::tlv(0x05, &[])))
    });
    assert_eq!(
        ClientCertificate::from_der(&bad_bc).unwrap_err(),
        X509Error::InvalidExtension {
            oid: "2.5.29.19".into()
        }
    );
    let mut trailing = crafted(|_| {});
    trailing.push(0);
    assert!(matches!(
        ClientCertificate::from_der(&trailing).unwrap_err(),
        X509Error::Der { .. }
    ));
}

#[test]
fn fingerprints_are_computed_once() {
    let c = ClientCertificate::from_der(&crafted(|_| {})).unwrap();
    let a: *const [u8; 32] = c.fingerprint_sha256();
    let b: *const [u8; 32] = c.fingerprint_sha256();
    assert_eq!(a, b, "the second call returns the cached digest");
    let clone = c.clone();
    assert_eq!(
        clone.fingerprint_sha256(),
        c.fingerprint_sha256(),
        "clones carry it"
    );
    assert_eq!(c.fingerprint_sha256_hex().len(), 32 * 3 - 1);
}

/// Every truncation and every single-byte change of real certificates: an error or a
/// certificate, never a panic. (The fuzz targets go further; this runs in every test run.)
#[test]
fn hostile_bytes_never_panic() {
    let root = Authority::root("Hostile Root");
    let mut leaf = Leaf::client("hostile");
    leaf.sans = vec![
        SanType::DnsName("h.example".try_into().unwrap()),
        SanType::URI("spiffe://h.example/x".try_into().unwrap()),
        SanType::IpAddress("10.0.0.1".parse().unwrap()),
    ];
    let samples = [
        root.issue(&leaf).der.to_vec(),
        crafted(|c| {
            c.subject = der::name(&[&[der::atv("2.5.4.3", der::string(der::UNIVERSAL, "ü"))]]);
            c.extensions.push((
                "2.5.29.17".into(),
                false,
                san::extension(&[san::dir_name(&der::simple_name(&[("CN", "d")]))]),
            ));
        }),
    ];
    let exercise = |bytes: &[u8]| {
        if let Ok(c) = ClientCertificate::from_der(bytes) {
            let _ = c.subject().to_rfc4514();
            let _ = c.issuer().to_rfc4514();
            let _ = c.subject_alt_names().count();
            let _ = c.extended_key_usage().map(Iterator::count);
            let _ = (
                c.public_key_algorithm(),
                c.serial_hex(),
                c.spiffe_id(),
                c.is_ca(),
            );
            let _ = (c.subject_key_id(), c.authority_key_id());
        }
    };
    for der in &samples {
        for len in 0..der.len() {
            assert!(ClientCertificate::from_der(&der[..len]).is_err());
        }
        for i in 0..der.len() {
            for delta in [0x01u8, 0x80, 0xFF] {
                let mut m = der.clone();
                m[i] ^= delta;
                exercise(&m);
            }
        }
    }
}
