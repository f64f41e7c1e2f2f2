//! Our legacy object against Node's own `X509Certificate#toLegacyObject()`, field by field,
//! over certificates made here: every string type, repeated and multi-valued attributes,
//! every SAN kind, odd serials and every key type.
#![cfg(feature = "serde")]
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::IpAddr;

use certauth_core::ClientCertificate;
use certauth_testkit::der::{self, san};
use certauth_testkit::{Authority, Crafted, KeyKind, Leaf, key, node};
use rcgen::SanType;
use serde_json::Value;

const KEYS: &[&str] = &[
    "subject",
    "issuer",
    "subjectaltname",
    "ca",
    "valid_from",
    "valid_to",
    "fingerprint",
    "fingerprint256",
    "fingerprint512",
    "ext_key_usage",
    "serialNumber",
];

fn crafted_cases() -> Vec<(&'static str, Vec<u8>)> {
    let k = key(KeyKind::P256);
    let sign = |c: &Crafted| c.sign(&k, &k);
    let with_subject = |subject: Vec<u8>| sign(&Crafted::new(subject));
    let mut cases = Vec::new();

    for (label, tag, text) in [
        ("utf8 non-ascii", der::UTF8, "Zoë Ångström 日本語"),
        ("printable with @ and _", der::PRINTABLE, "user_1@example"),
        ("teletex latin-1", der::TELETEX, "Café Zoë"),
        ("bmp", der::BMP, "Müller 東京"),
        ("universal", der::UNIVERSAL, "Grüße 🦀"),
        ("ia5", der::IA5, "plain@ascii"),
    ] {
        let name = der::name(&[
            &[der::atv("2.5.4.6", der::string(der::PRINTABLE, "DE"))],
            &[der::atv("2.5.4.3", der::string(tag, text))],
        ]);
        cases.push((label, with_subject(name)));
    }

    cases.push((
        "repeated and multi-valued attributes",
        with_subject(der::name(&[
            &[der::atv("2.5.4.3", der::string(der::UTF8, "a"))],
            &[der::atv("2.5.4.11", der::string(der::UTF8, "x"))],
            &[der::atv("2.5.4.11", der::string(der::UTF8, "y"))],
            &[
                der::atv("2.5.4.3", der::string(der::UTF8, "b")),
                der::atv("2.5.4.10", der::string(der::UTF8, "c")),
            ],
            &[der::atv("2.5.4.11", der::string(der::UTF8, "z"))],
        ])),
    ));
    cases.push((
        "every common attribute",
        with_subject(der::simple_name(&[
            ("C", "US"),
            ("ST", "CA"),
            ("L", "SF"),
            ("street", "1 Main St"),
            ("O", "Acme"),
            ("OU", "Eng"),
            ("CN", "all"),
            ("emailAddress", "a@b.example"),
            ("serialNumber", "42"),
            ("DC", "example"),
            ("UID", "u1"),
            ("title", "t"),
            ("GN", "g"),
            ("SN", "s"),
            ("initials", "i"),
            ("pseudonym", "p"),
            ("1.2.3.4.5", "unknown type"),
        ])),
    ));
    cases.push(("empty subject", with_subject(der::seq(&[]))));

    let sans = |names: Vec<Vec<u8>>| {
        let mut c = Crafted::new(der::simple_name(&[("CN", "sans")]));
        c.extensions
            .push(("2.5.29.17".into(), false, san::extension(&names)));
        sign(&c)
    };
    cases.push((
        "every SAN kind",
        sans(vec![
            san::dns("a.example"),
            san::dns("*.wild.example"),
            san::email("x@y.example"),
            san::uri("spiffe://td.example/ns/prod/sa/api"),
            san::ip("127.0.0.1".parse::<IpAddr>().unwrap()),
            san::ip("::1".parse::<IpAddr>().unwrap()),
            san::ip("2001:db8::abcd:1".parse::<IpAddr>().unwrap()),
            san::other_name(
                "1.3.6.1.4.1.311.20.2.3",
                &der::string(der::UTF8, "upn@corp.example"),
            ),
            san::other_name("1.2.3.5", &der::string(der::UTF8, "opaque")),
            san::registered_id("1.2.3.4.99"),
            san::dir_name(&der::simple_name(&[("CN", "dn1"), ("O", "org")])),
        ]),
    ));
    cases.push((
        "SANs needing escapes",
        sans(vec![
            san::dns("q,x"),
            san::uri("https://x.example/a\"b\\c"),
            san::email("o'brien@x.example"),
            san::dir_name(&der::simple_name(&[("CN", "Zoë, Jr."), ("O", "a+b")])),
            san::other_name("1.3.6.1.4.1.311.20.2.3", &der::string(der::UTF8, "ü,upn")),
            san::other_name(
                "1.3.6.1.4.1.311.20.2.3",
                &der::string(der::IA5, "wrongtype"),
            ),
        ]),
    ));
    cases.push(("empty SAN extension", sans(vec![])));
    // Which bytes are printed as they are: UTF-8 strings (UPN) keep non-ASCII text but not
    // control characters; single-byte strings (SRVName, IA5) keep ASCII only.
    cases.push((
        "SAN strings by their safe bytes",
        sans(vec![
            san::other_name(
                "1.3.6.1.4.1.311.20.2.3",
                &der::string(der::UTF8, "zoë@corp.example"),
            ),
            san::other_name(
                "1.3.6.1.4.1.311.20.2.3",
                &der::string(der::UTF8, "ctl\u{1}@x"),
            ),
            san::other_name(
                "1.3.6.1.4.1.311.20.2.3",
                &der::string(der::UTF8, "del\u{7f}@x"),
            ),
            san::other_name("1.3.6.1.5.5.7.8.7", &der::tlv(0x16, &[b'_', b's', 0xE9])),
            san::other_name("1.3.6.1.5.5.7.8.7", &der::tlv(0x16, b"_ldap.example")),
        ]),
    ));

    for (label, serial) in [
        ("1-byte serial", vec![0x05]),
        ("20-byte serial", (1..=20).collect::<Vec<u8>>()),
        ("high-bit serial", vec![0x00, 0x80, 0x01, 0xFF]),
        ("zero serial", vec![0x00]),
    ] {
        let mut c = Crafted::new(der::simple_name(&[("CN", label)]));
        c.serial = serial;
        cases.push((label, sign(&c)));
    }

    let mut c = Crafted::new(der::simple_name(&[("CN", "generalized time")]));
    c.not_before = der::generalized_time("19491231235959Z");
    c.not_after = der::generalized_time("20991231235959Z");
    cases.push(("generalized times", sign(&c)));

    let mut c = Crafted::new(der::simple_name(&[("CN", "v1")]));
    c.version = 1;
    cases.push(("v1 certificate", sign(&c)));

    let mut c = Crafted::new(der::simple_name(&[("CN", "ca with ku")]));
    c.extensions.push((
        "2.5.29.19".into(),
        true,
        der::seq(&[der::tlv(0x01, &[0xFF])]),
    ));
    c.extensions
        .push(("2.5.29.15".into(), true, der::tlv(0x03, &[0x01, 0x02])));
    cases.push(("CA flag but no keyCertSign", sign(&c)));
    let mut c = Crafted::new(der::simple_name(&[("CN", "ca")]));
    c.extensions.push((
        "2.5.29.19".into(),
        true,
        der::seq(&[der::tlv(0x01, &[0xFF])]),
    ));
    c.extensions
        .push(("2.5.29.15".into(), true, der::tlv(0x03, &[0x01, 0x06])));
    cases.push(("CA", sign(&c)));

    let mut c = Crafted::new(der::simple_name(&[("CN", "eku")]));
    c.extensions.push((
        "2.5.29.37".into(),
        false,
        der::seq(&[
            der::oid("1.3.6.1.5.5.7.3.2"),
            der::oid("1.3.6.1.5.5.7.3.1"),
            der::oid("1.2.3.9"),
        ]),
    ));
    cases.push(("extended key usage", sign(&c)));
    cases
}

fn rcgen_cases() -> Vec<(&'static str, Vec<u8>)> {
    let root = Authority::root("Node Compare Root");
    let inter = root.intermediate("Node Compare Intermediate");
    let mut cases = vec![
        ("root", root.cert.der.to_vec()),
        ("intermediate", inter.cert.der.to_vec()),
    ];
    for (label, kind) in [
        ("rsa-2048 leaf", KeyKind::Rsa2048),
        ("p-256 leaf", KeyKind::P256),
        ("p-384 leaf", KeyKind::P384),
        ("ed25519 leaf", KeyKind::Ed25519),
    ] {
        let mut leaf = Leaf::client(label);
        leaf.key = kind;
        leaf.sans = vec![
            SanType::DnsName("client.example".try_into().unwrap()),
            SanType::Rfc822Name("client@example.com".try_into().unwrap()),
            SanType::URI("spiffe://example.org/client".try_into().unwrap()),
            SanType::IpAddress("10.1.2.3".parse().unwrap()),
        ];
        cases.push((label, inter.issue(&leaf).der.to_vec()));
    }
    cases
}

#[test]
fn legacy_object_matches_node() {
    let cases: Vec<_> = crafted_cases().into_iter().chain(rcgen_cases()).collect();
    assert!(
        cases.len() >= 25,
        "the comparison covers {} certificates",
        cases.len()
    );
    let ders: Vec<Vec<u8>> = cases.iter().map(|(_, d)| d.clone()).collect();
    let expected = node::legacy_objects(&ders);
    assert_eq!(
        expected.len(),
        cases.len(),
        "Node answered for every certificate"
    );
    let mut failures = Vec::new();
    for ((label, der), node) in cases.iter().zip(expected) {
        assert!(node.get("error").is_none(), "node refused {label}: {node}");
        let ours =
            serde_json::to_value(ClientCertificate::from_der(der).unwrap().to_legacy_object())
                .unwrap();
        for key in KEYS {
            if ours.get(*key) != node.get(*key) {
                failures.push(format!(
                    "{label}: {key}\n  ours: {}\n  node: {}",
                    ours.get(*key).unwrap_or(&Value::Null),
                    node.get(*key).unwrap_or(&Value::Null)
                ));
            }
        }
        // Same keys in the same order, for the keys we produce.
        let node_keys: Vec<&String> = node
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| KEYS.contains(&k.as_str()))
            .collect();
        let our_keys: Vec<&String> = ours.as_object().unwrap().keys().collect();
        if node_keys != our_keys {
            failures.push(format!(
                "{label}: key order\n  ours: {our_keys:?}\n  node: {node_keys:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
