use super::*;

#[test]
fn email_constraints_follow_rfc_5280() {
    for (email, constraint, want) in [
        ("foo@example.com", "foo@example.com", true),
        ("foo@EXAMPLE.com", "foo@example.com", true),
        // The local part without ASCII case, as allow_email compares (issue 25, finding 9).
        ("Foo@example.com", "foo@example.com", true),
        ("CEO@victim.com", "ceo@victim.com", true),
        ("bar@example.com", "foo@example.com", false),
        ("foo@example.com", "example.com", true),
        ("foo@mail.example.com", "example.com", false),
        ("foo@mail.example.com", ".example.com", true),
        ("foo@example.com", ".example.com", false),
        ("user*@example.com", "user*@example.com", true),
        ("userx@example.com", "user*@example.com", false),
        ("no-at-sign", "example.com", false),
        ("a@b@example.com", "example.com", true),
    ] {
        assert_eq!(
            email_matches(email, constraint),
            want,
            "{email} / {constraint}"
        );
    }
}

#[test]
fn uri_constraints_name_the_host() {
    for (uri, host) in [
        ("spiffe://example.org/api", Some("example.org")),
        ("https://user@Example.org:8443/x?y#z", Some("Example.org")),
        ("https://example.org", Some("example.org")),
        ("https://[::1]/x", None),
        ("urn:example:thing", None),
        ("spiffe:///path", None),
    ] {
        assert_eq!(uri_host(uri), host, "{uri}");
    }
    assert!(uri_matches("spiffe://example.org/api", "example.org"));
    assert!(!uri_matches("spiffe://evil.example/api", "example.org"));
    assert!(!uri_matches("spiffe://example.org.evil/api", "example.org"));
    assert!(uri_matches("https://a.example.org/", ".example.org"));
    assert!(!uri_matches("https://example.org/", ".example.org"));
    assert!(!uri_matches("urn:x", "example.org"));
    // A longer host that is not under the domain, and a host that is the constraint itself.
    assert!(!uri_matches("https://zzzzzzzzzzzzzz.org/", ".example.org"));
    assert!(!uri_matches("https://.example.org/", ".example.org"));
}

fn name(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut seq = Vec::new();
    for (oid, value) in pairs {
        let oid = crate::oid::encode_dotted(oid).unwrap();
        let atv = tlv(
            0x30,
            &[tlv(0x06, &oid), tlv(0x0C, value.as_bytes())].concat(),
        );
        seq.extend(tlv(0x31, &atv));
    }
    tlv(0x30, &seq)
}

#[test]
fn directory_constraints_are_rdn_prefixes() {
    let o = name(&[("2.5.4.6", "US"), ("2.5.4.10", "Example")]);
    let spaced = name(&[("2.5.4.6", "us"), ("2.5.4.10", "  EXAMPLE ")]);
    let full = name(&[
        ("2.5.4.6", "US"),
        ("2.5.4.10", "Example"),
        ("2.5.4.3", "alice"),
    ]);
    let other = name(&[
        ("2.5.4.6", "US"),
        ("2.5.4.10", "Evil"),
        ("2.5.4.3", "alice"),
    ]);
    fn parse(der: &[u8]) -> Name<'_> {
        let t = Reader::new(der).read_any().unwrap();
        Name::parse(t, 64).unwrap()
    }
    assert!(directory_matches(&parse(&full), &o));
    assert!(directory_matches(&parse(&o), &o));
    assert!(!directory_matches(&parse(&other), &o));
    assert!(!directory_matches(&parse(&o), &full));
    // caseIgnoreMatch with insignificant spaces (RFC 5280 7.1).
    assert!(directory_matches(&parse(&full), &spaced));
    // A constraint that is not a Name matches nothing.
    assert!(!directory_matches(&parse(&full), &[0x05, 0x00]));
}

#[test]
fn split_keeps_what_webpki_implements_and_takes_the_rest() {
    let dns = tlv(0x30, &tlv(0x82, b"example.com"));
    let uri = tlv(0x30, &tlv(0x86, b"example.org"));
    let email = tlv(0x30, &tlv(0x81, b".example.net"));
    let dn = tlv(0x30, &tlv(0xA4, &name(&[("2.5.4.3", "foo")])));
    let ip = tlv(0x30, &tlv(0x87, &[10, 0, 0, 0, 255, 0, 0, 0]));
    let contents = [
        tlv(0xA0, &[dns.clone(), uri, dn].concat()),
        tlv(0xA1, &[email, ip.clone()].concat()),
    ]
    .concat();
    let s = split(&contents).unwrap();
    assert_eq!(
        s.for_webpki,
        Some([tlv(0xA0, &dns), tlv(0xA1, &ip)].concat())
    );
    assert_eq!(s.ours.permitted.len(), 2);
    assert_eq!(s.ours.excluded, [Base::Email(".example.net".into())]);
    assert!(has_forms_webpki_lacks(&contents));
    // Only forms webpki implements: nothing for certauth, the same for webpki.
    let only_dns = tlv(0xA0, &dns);
    let s = split(&only_dns).unwrap();
    assert!(s.ours.is_empty());
    assert_eq!(s.for_webpki, Some(only_dns.clone()));
    assert!(!has_forms_webpki_lacks(&only_dns));
    // Only ours: webpki gets no constraints at all.
    let only_uri = tlv(0xA0, &tlv(0x30, &tlv(0x86, b"example.org")));
    assert_eq!(split(&only_uri).unwrap().for_webpki, None);
    // Trailing junk, or a subtree that is not a SEQUENCE: not a NameConstraints.
    assert!(split(&[only_dns.clone(), vec![0x05, 0x00]].concat()).is_none());
    assert!(split(&tlv(0xA0, &tlv(0x82, b"x"))).is_none());
    // Long contents get a long-form length.
    let many: Vec<u8> = (0..20).flat_map(|_| dns.clone()).collect();
    let s = split(&tlv(0xA0, &many)).unwrap();
    assert_eq!(s.for_webpki, Some(tlv(0xA0, &many)));
    assert_eq!(tlv(0xA0, &many)[1..4], [0x82, 0x01, 0x2C]);
    // 128 bytes need the long form; 127 do not.
    assert_eq!(tlv(0xA0, &[0; 0x80])[1..3], [0x81, 0x80]);
    assert_eq!(tlv(0xA0, &[0; 0x7F])[1], 0x7F);
}

#[test]
fn permitted_and_excluded_combine_per_form() {
    let c = Constraints {
        permitted: vec![
            Base::Uri("example.org".into()),
            Base::Email("example.com".into()),
        ],
        excluded: vec![Base::Uri("bad.example.org".into())],
    };
    assert_eq!(
        c.judge(|b| match b {
            Base::Uri(x) => Some(uri_matches("spiffe://example.org/a", x)),
            _ => None,
        }),
        None
    );
    assert_eq!(
        c.judge(|b| match b {
            Base::Uri(x) => Some(uri_matches("spiffe://evil.example/a", x)),
            _ => None,
        }),
        Some("outside every permitted subtree")
    );
    let excluded_only = Constraints {
        permitted: vec![],
        excluded: vec![Base::Uri(".example.org".into())],
    };
    assert_eq!(
        excluded_only.judge(|b| match b {
            Base::Uri(x) => Some(uri_matches("spiffe://a.example.org/", x)),
            _ => None,
        }),
        Some("in an excluded subtree")
    );
    // A form with no subtree is not constrained.
    assert_eq!(
        c.judge(|b| match b {
            Base::Directory(_) => Some(false),
            _ => None,
        }),
        None
    );
}
