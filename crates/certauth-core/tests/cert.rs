//! The certificate model: every field, every SAN kind, every limit, and hostile input.
#![allow(clippy::unwrap_used, clippy::as_conversions, missing_docs)]

use std::net::IpAddr;

use certauth_core::Limits;
use certauth_core::cert::{GeneralName, PublicKeyAlgorithm};
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
    assert_eq!(c.public_key_algorithm(), PublicKeyAlgorithm::P256);
    let ku = c.key_usage().unwrap();
    assert_ne!(ku & 1, 0, "digitalSignature");
    assert_eq!(ku & 0x20, 0, "keyCertSign");
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
    assert_eq!(root_cert.basic_constraints().map(|(ca, _)| ca), Some(true));
    assert_eq!(root_cert.subject_key_id(), c.authority_key_id());
    assert_eq!(root_cert.subject(), c.issuer());
}

#[test]
fn key_algorithms_and_sizes() {
    let root = Authority::root("Keys Root");
    for (kind, want) in [
        (KeyKind::Rsa2048, PublicKeyAlgorithm::Rsa { bits: 2048 }),
        (KeyKind::P256, PublicKeyAlgorithm::P256),
        (KeyKind::P384, PublicKeyAlgorithm::P384),
        (KeyKind::Ed25519, PublicKeyAlgorithm::Ed25519),
    ] {
        let mut leaf = Leaf::client("k");
        leaf.key = kind;
        let c = ClientCertificate::from_der(&root.issue(&leaf).der).unwrap();
        assert_eq!(c.public_key_algorithm(), want, "{kind:?}");
    }
    assert_eq!(PublicKeyAlgorithm::P384.bits(), Some(384));
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
    let GeneralName::OtherName { type_id, .. } = sans[6] else {
        panic!()
    };
    assert_eq!(sans[6].upn(), Some("upn@corp"));
    assert_eq!(type_id.to_string(), "1.3.6.1.4.1.311.20.2.3");
    let GeneralName::OtherName { value, .. } = sans[7] else {
        panic!()
    };
    assert_eq!(sans[7].upn(), None);
    assert_eq!(value, der::tlv(0x04, b"raw"));
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
                a.tag(),
                a.value().into_owned(),
                a.rdn_index(),
            )
        })
        .collect();
    assert_eq!(
        attrs,
        [
            ("CN", der::BMP, "Zoë".to_owned(), 0),
            ("OU", der::TELETEX, "Café".to_owned(), 1),
            ("OU", der::UNIVERSAL, "🦀".to_owned(), 1),
        ]
    );
    assert_eq!(c.subject().to_rfc4514(), "OU=🦀+OU=Café,CN=Zoë");
}

#[test]
fn every_limit_has_a_typed_error() {
    let many_sans = crafted(|c| {
        let names: Vec<Vec<u8>> = (0..1025)
            .map(|i| san::dns(&format!("h{i}.example")))
            .collect();
        c.extensions
            .push(("2.5.29.17".into(), false, san::extension(&names)));
    });
    let err = ClientCertificate::from_der(&many_sans).unwrap_err();
    assert_eq!(err, X509Error::TooManySubjectAltNames { max: 1024 });
    assert_eq!(err.code(), "CERT_TOO_LARGE");
    let roomy = Limits::DEFAULT.with_max_san_entries(1025);
    assert_eq!(
        ClientCertificate::from_der_with_limits(&many_sans, &roomy)
            .unwrap()
            .subject_alt_names()
            .count(),
        1025
    );
    // A test-infrastructure certificate with 460 SANs parses under the defaults.
    let roomy_default = crafted(|c| {
        let names: Vec<Vec<u8>> = (0..460)
            .map(|i| san::dns(&format!("h{i}.example")))
            .collect();
        c.extensions
            .push(("2.5.29.17".into(), false, san::extension(&names)));
    });
    assert_eq!(
        ClientCertificate::from_der(&roomy_default)
            .unwrap()
            .subject_alt_names()
            .count(),
        460
    );

    let many_attrs = crafted(|c| {
        let pairs: Vec<(&str, &str)> = (0..65).map(|_| ("OU", "x")).collect();
        c.subject = der::simple_name(&pairs);
    });
    let err = ClientCertificate::from_der(&many_attrs).unwrap_err();
    assert_eq!(
        err,
        X509Error::TooManyNameAttributes {
            field: "subject",
            max: 64
        }
    );
    assert_eq!(err.code(), "CERT_TOO_LARGE");

    let many_exts = crafted(|c| {
        for i in 0..33 {
            c.extensions
                .push((format!("1.2.3.{i}"), false, der::tlv(0x05, &[])));
        }
    });
    let err = ClientCertificate::from_der(&many_exts).unwrap_err();
    assert_eq!(err, X509Error::TooManyExtensions { max: 32 });
    assert_eq!(err.code(), "CERT_TOO_LARGE");

    let dup = crafted(|c| {
        c.extensions
            .push(("1.2.3.4".into(), false, der::tlv(0x05, &[])));
        c.extensions
            .push(("1.2.3.4".into(), false, der::tlv(0x05, &[])));
    });
    let err = ClientCertificate::from_der(&dup).unwrap_err();
    assert_eq!(
        err,
        X509Error::DuplicateExtension {
            oid: "1.2.3.4".into()
        }
    );
    assert_eq!(err.code(), "MALFORMED_CERTIFICATE");

    let big = crafted(|c| {
        c.extensions
            .push(("1.2.3.4".into(), false, der::tlv(0x04, &vec![0; 70_000])));
    });
    let err = ClientCertificate::from_der(&big).unwrap_err();
    assert!(
        matches!(err, X509Error::TooLarge { max: 65536, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("over the limit of 65536 (Limits::max_cert_bytes)"),
        "{err}"
    );
    assert_eq!(err.code(), "CERT_TOO_LARGE");
    // 20 KiB, as a certificate with 800 SANs, is under the default.
    let twenty = crafted(|c| {
        c.extensions
            .push(("1.2.3.4".into(), false, der::tlv(0x04, &vec![0; 20_000])));
    });
    assert!(ClientCertificate::from_der(&twenty).is_ok());
}

#[test]
fn malformed_values_are_refused_with_a_position() {
    let bad_utf8 = crafted(|c| {
        c.subject = der::name(&[&[der::atv("2.5.4.3", der::tlv(der::UTF8, b"\xC3\x28"))]]);
    });
    assert!(matches!(
        ClientCertificate::from_der(&bad_utf8).unwrap_err(),
        X509Error::InvalidString {
            field: "subject",
            ..
        }
    ));
    let bad_issuer = crafted(|c| {
        c.issuer = der::name(&[&[der::atv("2.5.4.3", der::tlv(der::BMP, b"\x00"))]]);
    });
    assert!(matches!(
        ClientCertificate::from_der(&bad_issuer).unwrap_err(),
        X509Error::InvalidString {
            field: "issuer",
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
            field: "subject alternative name",
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
    // Colon hex as Node prints `fingerprint` (SHA-1) and `fingerprint256`.
    let hex = |d: &[u8]| {
        d.iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    assert_eq!(c.fingerprint_sha1_hex(), hex(c.fingerprint_sha1()));
    assert_eq!(c.fingerprint_sha256_hex(), hex(c.fingerprint_sha256()));
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

fn spki(alg: Vec<Vec<u8>>, key_bytes: &[u8]) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(key_bytes);
    der::seq(&[der::seq(&alg), der::tlv(0x03, &bits)])
}

#[test]
fn key_algorithms_and_sizes_of_every_kind() {
    // RSA-1025: the modulus's first byte has seven leading zeros.
    let mut modulus = vec![0x01];
    modulus.extend(std::iter::repeat_n(0xAB, 128));
    let rsa = der::seq(&[der::tlv(0x02, &modulus), der::tlv(0x02, &[1, 0, 1])]);
    let rsa_spki = spki(
        vec![der::oid("1.2.840.113549.1.1.1"), der::tlv(0x05, &[])],
        &rsa,
    );
    let ec = |curve: &str| {
        let mut point = vec![0x04];
        point.extend(std::iter::repeat_n(0x11, 64));
        spki(vec![der::oid("1.2.840.10045.2.1"), der::oid(curve)], &point)
    };
    for (spki, want, bits) in [
        (rsa_spki, PublicKeyAlgorithm::Rsa { bits: 1025 }, Some(1025)),
        (
            ec("1.2.840.10045.3.1.7"),
            PublicKeyAlgorithm::P256,
            Some(256),
        ),
        (ec("1.3.132.0.34"), PublicKeyAlgorithm::P384, Some(384)),
        (ec("1.3.132.0.35"), PublicKeyAlgorithm::P521, Some(521)),
        (ec("1.3.132.0.10"), PublicKeyAlgorithm::OtherCurve, None),
        (
            spki(vec![der::oid("1.3.101.112")], &[7; 32]),
            PublicKeyAlgorithm::Ed25519,
            Some(256),
        ),
        (
            spki(vec![der::oid("1.3.101.113")], &[7; 57]),
            PublicKeyAlgorithm::Ed448,
            Some(456),
        ),
        (
            spki(vec![der::oid("1.2.3.4")], &[7; 8]),
            PublicKeyAlgorithm::Other,
            None,
        ),
    ] {
        let c = ClientCertificate::from_der(&crafted(|c| c.spki = Some(spki.clone()))).unwrap();
        assert_eq!(c.public_key_algorithm(), want);
        assert_eq!(c.public_key_algorithm().bits(), bits, "{want:?}");
        assert_eq!(c.subject_public_key_info(), &spki[..]);
    }
}

#[test]
fn versions_as_written_and_as_omitted() {
    for (version, explicit, want) in [(1, false, 1), (1, true, 1), (2, true, 2), (3, false, 3)] {
        let der = crafted(|c| {
            c.version = version;
            c.explicit_version = explicit;
        });
        assert_eq!(ClientCertificate::from_der(&der).unwrap().version(), want);
    }
}

#[test]
fn key_usage_bits_across_both_bytes() {
    // digitalSignature (bit 0) and decipherOnly (bit 8, in the second byte).
    let der = crafted(|c| {
        c.extensions.push((
            "2.5.29.15".into(),
            true,
            der::tlv(0x03, &[0x07, 0x80, 0x80]),
        ))
    });
    let c = ClientCertificate::from_der(&der).unwrap();
    assert_eq!(c.key_usage(), Some(1 | 256));
    let (_, critical, value) = c
        .extensions()
        .find(|(oid, _, _)| oid.to_string() == "2.5.29.15")
        .unwrap();
    assert!(critical);
    assert_eq!(value, &der::tlv(0x03, &[0x07, 0x80, 0x80])[..]);
    let other = c.extensions().find(|(_, critical, _)| !critical);
    assert!(other.is_none(), "the only extension is critical");
}

#[test]
fn extended_key_usage_oids_are_each_checked() {
    let junk = der::seq(&[der::oid("1.3.6.1.5.5.7.3.2"), der::tlv(0x06, &[])]);
    let der = crafted(|c| c.extensions.push(("2.5.29.37".into(), false, junk)));
    assert!(
        ClientCertificate::from_der(&der).is_err(),
        "an empty OID in the EKU list"
    );
}

#[test]
fn every_general_name_kind_round_trips_and_upn_needs_its_oid_and_a_utf8_string() {
    let x400 = der::tlv(0xA3, &der::seq(&[der::tlv(0x13, b"x")]));
    let party = der::tlv(0xA1, &der::string(der::PRINTABLE, "y"));
    let edi = der::tlv(0xA5, &party);
    let upn = san::other_name("1.3.6.1.4.1.311.20.2.3", &der::string(der::UTF8, "a@b"));
    let not_upn = san::other_name("1.2.3.4", &der::string(der::UTF8, "c@d"));
    let upn_ia5 = san::other_name("1.3.6.1.4.1.311.20.2.3", &der::string(der::IA5, "e@f"));
    let names = san::extension(&[x400, edi, upn, not_upn, upn_ia5]);
    let der = crafted(|c| c.extensions.push(("2.5.29.17".into(), false, names)));
    let c = ClientCertificate::from_der(&der).unwrap();
    let sans: Vec<GeneralName<'_>> = c.subject_alt_names().collect();
    assert!(
        matches!(sans[0], GeneralName::X400Address(v) if v == der::seq(&[der::tlv(0x13, b"x")]))
    );
    assert!(matches!(sans[1], GeneralName::EdiPartyName(v) if v == party));
    let upns: Vec<Option<&str>> = sans[2..]
        .iter()
        .map(|n| match n {
            GeneralName::OtherName { .. } => n.upn(),
            _ => panic!("{n:?}"),
        })
        .collect();
    assert_eq!(upns, [Some("a@b"), None, None]);
}

/// EDIPartyName decodes as OpenSSL decodes it (explicit `[0]`/`[1]` DirectoryStrings) or the
/// SAN is malformed; Node then shows `subjectaltname: null`, we refuse the certificate as
/// for any other malformed SAN. Rows checked against Node 20.
#[cfg(feature = "serde")]
#[test]
fn edi_party_names_decode_as_openssl_decodes_them() {
    let party = der::tlv(0xA1, &der::string(der::PRINTABLE, "party"));
    let assigner = der::tlv(0xA0, &der::string(der::UTF8, "asg"));
    let good = [party.clone(), [assigner.clone(), party.clone()].concat()];
    let bad = [
        Vec::new(),
        assigner.clone(),
        [party.clone(), assigner].concat(),
        der::tlv(0xA1, &der::string(der::IA5, "party")),
        der::tlv(0x81, &der::string(der::PRINTABLE, "party")),
        der::tlv(
            0xA1,
            &[der::string(der::UTF8, "a"), der::string(der::UTF8, "b")].concat(),
        ),
        [party, vec![0x05, 0x00]].concat(),
    ];
    let with = |edi: &[u8]| {
        let names = san::extension(&[san::dns("a.example"), der::tlv(0xA5, edi)]);
        crafted(|c| c.extensions.push(("2.5.29.17".into(), false, names)))
    };
    for edi in good {
        let c = ClientCertificate::from_der(&with(&edi)).unwrap();
        let legacy = serde_json::to_value(c.to_legacy_object()).unwrap();
        assert_eq!(
            legacy["subjectaltname"],
            "DNS:a.example, EdiPartyName:<unsupported>"
        );
    }
    for edi in bad {
        let err = ClientCertificate::from_der(&with(&edi)).unwrap_err();
        assert!(matches!(err, X509Error::Der { .. }), "{edi:02X?}: {err:?}");
    }
}

/// An X.509-SVID leaf's SPIFFE ID has a trust domain and a path (X.509-SVID §3.1).
#[test]
fn spiffe_ids_need_a_trust_domain_and_a_path_after_the_scheme() {
    for (uri, want) in [
        ("spiffe://", None),
        ("spiffe://d", None),
        ("spiffe://d/w", Some("spiffe://d/w")),
    ] {
        let names = san::extension(&[san::uri(uri)]);
        let der = crafted(|c| c.extensions.push(("2.5.29.17".into(), false, names)));
        assert_eq!(
            ClientCertificate::from_der(&der).unwrap().spiffe_id(),
            want,
            "{uri}"
        );
    }
}

#[test]
fn equality_debug_limits_and_the_size_cap_edge() {
    let der = crafted(|_| {});
    let a = ClientCertificate::from_der(&der).unwrap();
    let b = ClientCertificate::from_der(&der).unwrap();
    let other = ClientCertificate::from_der(&crafted(|c| c.serial = vec![0x02])).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, other);
    let debug = format!("{a:?}");
    assert!(
        debug.contains("CN=crafted") && debug.contains("serial"),
        "{debug}"
    );
    let exact = Limits::DEFAULT.with_max_cert_bytes(der.len());
    ClientCertificate::from_der_with_limits(&der, &exact).unwrap();
    let under = Limits::DEFAULT.with_max_cert_bytes(der.len() - 1);
    assert!(matches!(
        ClientCertificate::from_der_with_limits(&der, &under),
        Err(X509Error::TooLarge { .. })
    ));
}

#[test]
fn negative_serials_borrow_across_bytes() {
    // -256 is FF 00: inverting gives 00 FF, and adding one carries into the first byte.
    let c = ClientCertificate::from_der(&crafted(|c| c.serial = vec![0xFF, 0x00])).unwrap();
    assert_eq!(c.serial_hex(), "-0100");
    // -511 is FE 01: adding one to the inverted 01 FE carries nothing.
    let c = ClientCertificate::from_der(&crafted(|c| c.serial = vec![0xFE, 0x01])).unwrap();
    assert_eq!(c.serial_hex(), "-01FF");
}

#[cfg(feature = "serde")]
#[test]
fn legacy_names_are_looked_up_by_key_with_every_value() {
    let der = crafted(|c| {
        c.subject = der::name(&[
            &[der::atv("2.5.4.3", der::string(der::UTF8, "a"))],
            &[der::atv("2.5.4.11", der::string(der::UTF8, "x"))],
            &[der::atv("2.5.4.11", der::string(der::UTF8, "y"))],
        ]);
    });
    let legacy = ClientCertificate::from_der(&der)
        .unwrap()
        .to_legacy_object();
    let c = ClientCertificate::from_der(&der).unwrap();
    assert_eq!(c.common_name().as_deref(), Some("a"));
    let none = ClientCertificate::from_der(&crafted(|c| c.subject = der::seq(&[]))).unwrap();
    assert_eq!(none.common_name(), None);
    assert_eq!(legacy.subject("CN"), Some(&["a".to_owned()][..]));
    assert_eq!(
        legacy.subject("OU"),
        Some(&["x".to_owned(), "y".to_owned()][..])
    );
    assert_eq!(legacy.subject("O"), None);
    assert_eq!(legacy.issuer("CN"), Some(&["crafted".to_owned()][..]));
}

/// Which name value types a certificate may carry, as OpenSSL (and so Node) decides: the
/// seven string types are read; BIT STRING, SEQUENCE and a few unknown universal types are
/// read but make Node leave the whole name out of the legacy object; everything else
/// (VisibleString included, and every non-universal tag) refuses the certificate. Each row
/// was checked against Node 20's `X509Certificate`.
#[cfg(feature = "serde")]
#[test]
fn name_value_types_are_openssls() {
    enum Want {
        Text(&'static str),
        NotText,
        Refused,
    }
    let rows: &[(u8, &[u8], Want)] = &[
        (0x0C, b"utf8", Want::Text("utf8")),
        (0x13, b"printable", Want::Text("printable")),
        (0x16, b"ia5", Want::Text("ia5")),
        (0x12, b"12", Want::Text("12")),
        (0x14, b"t61", Want::Text("t61")),
        (0x1E, b"\x00a", Want::Text("a")),
        (0x1C, b"\x00\x00\x00a", Want::Text("a")),
        (0x03, b"\x00\xAB", Want::NotText),
        (0x30, b"\x0C\x01x", Want::NotText),
        (0x0D, b"\x01", Want::NotText),
        (0x1A, b"visible", Want::Refused),
        (0x1B, b"general", Want::Refused),
        (0x19, b"graphic", Want::Refused),
        (0x15, b"videotex", Want::Refused),
        (0x04, b"octets", Want::Refused),
        (0x02, b"\x05", Want::Refused),
        (0x05, b"", Want::Refused),
        (0x01, b"\xFF", Want::Refused),
        (0x17, b"200101000000Z", Want::Refused),
        (0x41, b"app", Want::Refused),
        (0x80, b"ctx", Want::Refused),
        (0x1E, b"\x00a\x00", Want::Refused),
    ];
    for (tag, value, want) in rows {
        let der = crafted(|c| {
            c.subject = der::name(&[
                &[der::atv("2.5.4.3", der::string(der::UTF8, "a"))],
                &[der::atv("2.5.4.45", der::tlv(*tag, value))],
            ]);
        });
        let parsed = ClientCertificate::from_der(&der);
        match want {
            Want::Text(text) => {
                let c = parsed.unwrap();
                let legacy = serde_json::to_value(c.to_legacy_object()).unwrap();
                assert_eq!(legacy["subject"]["x500UniqueIdentifier"], *text, "{tag:#x}");
            }
            Want::NotText => {
                let c = parsed.unwrap();
                let attr = c.subject().attributes().nth(1).unwrap();
                assert!(attr.value().starts_with(&format!("#{tag:02X}")));
                let legacy = serde_json::to_value(c.to_legacy_object()).unwrap();
                assert!(legacy.get("subject").is_none(), "{tag:#x}: {legacy}");
                assert!(legacy.get("issuer").is_some());
            }
            Want::Refused => {
                let err = parsed.unwrap_err();
                assert!(
                    matches!(
                        err,
                        X509Error::InvalidString {
                            field: "subject",
                            ..
                        }
                    ),
                    "{tag:#x}: {err:?}"
                );
            }
        }
    }
}

#[test]
fn name_values_keep_their_string_kind_and_bytes() {
    let der = crafted(|c| {
        c.subject = der::name(&[
            &[der::atv("2.5.4.5", der::tlv(0x12, b"12 34"))],
            &[der::atv("2.5.4.3", der::tlv(0x16, b"ia5"))],
            // A T61 string whose bytes happen to be UTF-8 for "é" is still Latin-1: "Ã©".
            &[der::atv("2.5.4.10", der::tlv(0x14, &[0xC3, 0xA9]))],
        ]);
    });
    let c = ClientCertificate::from_der(&der).unwrap();
    let attrs: Vec<_> = c.subject().attributes().collect();
    assert_eq!(attrs[0].tag(), 0x12);
    assert_eq!(attrs[0].contents(), b"12 34");
    assert_eq!(attrs[1].tag(), 0x16);
    assert_eq!(attrs[2].value(), "Ã©");
    assert!(!c.subject().is_empty());
    let empty = ClientCertificate::from_der(&crafted(|c| c.subject = der::seq(&[]))).unwrap();
    assert!(empty.subject().is_empty());
}

#[test]
fn the_documented_default_limits() {
    let l = Limits::DEFAULT;
    assert_eq!(
        (l.max_head_bytes, l.max_headers, l.max_header_bytes),
        (32 * 1024, 64, 16 * 1024)
    );
    assert_eq!(l.max_linger_bytes, 1024 * 1024);
    assert_eq!(l.idle_timeout, std::time::Duration::from_secs(60));
    assert_eq!(
        (
            l.max_cert_bytes,
            l.max_name_attributes,
            l.max_san_entries,
            l.max_extensions
        ),
        (64 * 1024, 64, 1024, 32)
    );
}

/// OpenSSL decodes the key identifiers, name constraints, CRL distribution points and the
/// basic-constraints path length as it caches a certificate's extensions; one that fails
/// leaves the certificate readable but invalid (`X509_check_ca` is 0, verification fails
/// with X509_V_ERR_INVALID_EXTENSION). certauth reads them the same way. Each invalid row
/// is one of the corpus files where Node says `ca: false`.
#[test]
fn extensions_openssl_holds_invalid_make_a_readable_certificate_invalid() {
    let ca_bc = der::seq(&[der::tlv(0x01, &[0xFF])]);
    let with = |oid: &str, value: Vec<u8>| {
        crafted(|c| {
            c.extensions.push(("2.5.29.19".into(), true, ca_bc.clone()));
            c.extensions.push((oid.into(), false, value));
        })
    };
    let dir = der::tlv(0xA4, &der::simple_name(&[("CN", "x")]));
    let uri = der::tlv(0x86, b"http://crl.example/ca.crl");
    let valid: Vec<(&str, Vec<u8>)> = vec![
        ("2.5.29.14", der::tlv(0x04, &[1, 2, 3])),
        ("2.5.29.35", der::seq(&[der::tlv(0x80, &[1, 2])])),
        // Issuer and serial alone: RFC 5280 wants both, OpenSSL decodes either.
        ("2.5.29.35", der::seq(&[der::tlv(0xA1, &dir)])),
        ("2.5.29.35", der::seq(&[])),
        (
            "2.5.29.30",
            der::seq(&[der::tlv(0xA0, &der::seq(&[der::tlv(0x82, b".example")]))]),
        ),
        // A point with a full name, one with only a CRL issuer.
        (
            "2.5.29.31",
            der::seq(&[
                der::seq(&[der::tlv(0xA0, &der::tlv(0xA0, &uri))]),
                der::seq(&[der::tlv(0xA2, &dir)]),
            ]),
        ),
    ];
    let invalid: Vec<(&str, Vec<u8>)> = vec![
        ("2.5.29.14", der::tlv(0x05, &[])),
        ("2.5.29.14", [der::tlv(0x04, &[1]), vec![0]].concat()),
        ("2.5.29.35", der::seq(&[der::tlv(0x81, &[1])])),
        (
            "2.5.29.35",
            der::seq(&[der::tlv(0xA1, &der::tlv(0x89, &[1]))]),
        ),
        (
            "2.5.29.30",
            der::seq(&[der::tlv(0xA0, &der::seq(&[der::tlv(0x05, &[])]))]),
        ),
        ("2.5.29.30", der::tlv(0x04, &[])),
        // zlint's subCAcrlDistNoURL: a point with reasons only.
        (
            "2.5.29.31",
            der::seq(&[der::seq(&[der::tlv(0x81, &[0x06, 0x40])])]),
        ),
        ("2.5.29.31", der::seq(&[der::tlv(0x05, &[])])),
        // basicConstraints with a negative pathLenConstraint.
        (
            "2.5.29.19",
            der::seq(&[der::tlv(0x01, &[0xFF]), der::tlv(0x02, &[0xFF])]),
        ),
    ];
    for (oid, value) in valid {
        let c = ClientCertificate::from_der(&with(oid, value.clone())).unwrap();
        assert_eq!(c.invalid_extension(), None, "{oid} {value:02X?}");
        assert!(c.is_ca(), "{oid} {value:02X?}");
    }
    for (oid, value) in invalid {
        let der = if oid == "2.5.29.19" {
            crafted(|c| c.extensions.push((oid.into(), true, value.clone())))
        } else {
            with(oid, value.clone())
        };
        let c = ClientCertificate::from_der(&der).unwrap();
        assert_eq!(
            c.invalid_extension().map(|o| o.to_string()).as_deref(),
            Some(oid),
            "{value:02X?}"
        );
        assert!(!c.is_ca(), "{oid} {value:02X?}");
        assert!(!c.to_legacy_object().ca);
    }
}

/// RFC 5280 allows any non-negative pathLenConstraint; past u32 it limits nothing, and
/// Node says `ca: true` (BoringSSL's basic_constraints_path_too_large).
#[test]
fn a_path_length_beyond_u32_is_no_limit() {
    let huge = [&[0x0F][..], &[0xFF; 20]].concat();
    let der = crafted(|c| {
        c.extensions.push((
            "2.5.29.19".into(),
            true,
            der::seq(&[der::tlv(0x01, &[0xFF]), der::tlv(0x02, &huge)]),
        ))
    });
    let c = ClientCertificate::from_der(&der).unwrap();
    assert_eq!(c.basic_constraints(), Some((true, Some(u32::MAX))));

    assert!(c.is_ca());
    // Not minimal DER is still malformed.
    let padded = crafted(|c| {
        c.extensions.push((
            "2.5.29.19".into(),
            true,
            der::seq(&[der::tlv(0x01, &[0xFF]), der::tlv(0x02, &[0x00, 0x05])]),
        ))
    });
    assert!(ClientCertificate::from_der(&padded).is_err());
}
