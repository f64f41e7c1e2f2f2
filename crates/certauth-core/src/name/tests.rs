use super::*;

fn tlv(tag: u8, v: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if v.len() < 128 {
        out.push(u8::try_from(v.len()).unwrap());
    } else {
        out.push(0x82);
        out.extend_from_slice(&u16::try_from(v.len()).unwrap().to_be_bytes());
    }
    out.extend_from_slice(v);
    out
}

fn atv(oid: &[u8], tag: u8, v: &[u8]) -> Vec<u8> {
    let mut inner = tlv(tag::OID, oid);
    inner.extend(tlv(tag, v));
    tlv(tag::SEQUENCE, &inner)
}

fn name(rdns: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut seq = Vec::new();
    for rdn in rdns {
        seq.extend(tlv(tag::SET, &rdn.concat()));
    }
    tlv(tag::SEQUENCE, &seq)
}

fn parse(der: &[u8]) -> Result<Name<'_>, NameError> {
    let t = Reader::new(der).read_any().unwrap();
    Name::parse(t, 64)
}

#[test]
fn decodes_every_string_kind() {
    let bmp: Vec<u8> = "Zoë 日本"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let univ: Vec<u8> = "Zoë 🦀"
        .chars()
        .flat_map(|c| u32::from(c).to_be_bytes())
        .collect();
    let der = name(&[
        vec![atv(known::CN, tag::UTF8_STRING, "Zoë".as_bytes())],
        vec![atv(known::CN, tag::PRINTABLE_STRING, b"a@b_c")],
        vec![atv(known::CN, tag::TELETEX_STRING, b"Zo\xEB")],
        vec![atv(known::CN, tag::BMP_STRING, &bmp)],
        vec![atv(known::CN, tag::UNIVERSAL_STRING, &univ)],
        vec![atv(known::CN, tag::IA5_STRING, b"x@y")],
    ]);
    let n = parse(&der).unwrap();
    let cns: Vec<_> = n.common_names().collect();
    assert_eq!(cns, ["Zoë", "a@b_c", "Zoë", "Zoë 日本", "Zoë 🦀", "x@y"]);
    assert!(matches!(cns[0], Cow::Borrowed(_)));
    assert!(matches!(cns[1], Cow::Borrowed(_)));
}

#[test]
fn rejects_invalid_strings() {
    for (t, v) in [
        (tag::UTF8_STRING, &b"\xFF"[..]),
        (tag::BMP_STRING, &b"\x00"[..]),
        (tag::BMP_STRING, &b"\xD8\x00"[..]),
        (tag::UNIVERSAL_STRING, &b"\x00\x00\xD8\x00"[..]),
        (tag::UNIVERSAL_STRING, &b"\x00\x11\x00\x00"[..]),
    ] {
        let der = name(&[vec![atv(known::CN, t, v)]]);
        assert!(
            matches!(parse(&der), Err(NameError::InvalidString { .. })),
            "{t} {v:?}"
        );
    }
}

#[test]
fn keeps_order_repeats_and_multi_valued_rdns() {
    let der = name(&[
        vec![atv(known::CN, tag::UTF8_STRING, b"a")],
        vec![atv(known::OU, tag::UTF8_STRING, b"x")],
        vec![atv(known::OU, tag::UTF8_STRING, b"y")],
        vec![
            atv(known::CN, tag::UTF8_STRING, b"b"),
            atv(known::O, tag::UTF8_STRING, b"c"),
        ],
    ]);
    let n = parse(&der).unwrap();
    let rdns: Vec<_> = n
        .attributes()
        .map(|a| (a.short_name().unwrap(), a.rdn_index()))
        .collect();
    assert_eq!(rdns, [("CN", 0), ("OU", 1), ("OU", 2), ("CN", 3), ("O", 3)]);
    assert_eq!(n.get("OU"), ["x", "y"]);
    assert_eq!(n.get("2.5.4.3"), ["a", "b"]);
    assert!(n.get("nope").is_empty());
    assert_eq!(n.to_rfc4514(), "O=c+CN=b,OU=y,OU=x,CN=a");
}

#[test]
fn rfc4514_escapes() {
    let der = name(&[
        vec![atv(known::CN, tag::UTF8_STRING, b" #a,b+c\"d\\e<f>g;h ")],
        vec![atv(known::O, tag::UTF8_STRING, b"#x\x01")],
        vec![atv(&[0x2A, 0x03], tag::UTF8_STRING, b"zz")],
        vec![atv(known::OU, tag::BIT_STRING, b"\x00\x01")],
    ]);
    let n = parse(&der).unwrap();
    assert_eq!(
        n.to_rfc4514(),
        "OU=#03020001,1.2.3=#0C027A7A,O=\\#x\\01,CN=\\ #a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h\\ "
    );
}

#[test]
fn caps_attributes() {
    let rdns: Vec<Vec<Vec<u8>>> = (0..65)
        .map(|_| vec![atv(known::CN, tag::UTF8_STRING, b"a")])
        .collect();
    let der = name(&rdns);
    assert_eq!(parse(&der).unwrap_err(), NameError::TooManyAttributes);
    let t = Reader::new(&der).read_any().unwrap();
    assert!(Name::parse(t, 65).is_ok());
}

#[test]
fn reads_empty_rdn_as_nothing_and_rejects_trailing_bytes() {
    // As OpenSSL does: an empty RDN SET contributes no attribute.
    let der = name(&[vec![], vec![atv(known::CN, tag::UTF8_STRING, b"a")], vec![]]);
    let n = parse(&der).unwrap();
    assert_eq!(n.attributes().count(), 1);
    assert!(!n.is_empty());
    let only_empty = name(&[vec![], vec![]]);
    assert!(parse(&only_empty).unwrap().is_empty());
    let mut bad = atv(known::CN, tag::UTF8_STRING, b"a");
    bad[1] += 1;
    bad.push(0);
    assert!(parse(&name(&[vec![bad]])).is_err());
}

#[test]
fn short_names_are_openssls() {
    let sn = |der: &'static [u8]| short_name(Oid::from_der_contents(der).unwrap());
    assert_eq!(sn(&[0x55, 0x04, 0x03]), Some("CN"));
    assert_eq!(sn(known::EMAIL_ADDRESS), Some("emailAddress"));
    // Russian OGRN and INN, and RFC 1274 mail: OpenSSL knows them, so Node prints them.
    assert_eq!(sn(&[0x2A, 0x85, 0x03, 0x64, 0x01]), Some("OGRN"));
    assert_eq!(
        sn(&[0x2A, 0x85, 0x03, 0x03, 0x81, 0x03, 0x01, 0x01]),
        Some("INN")
    );
    assert_eq!(
        sn(&[0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x03]),
        Some("mail")
    );
    assert_eq!(sn(&[0x2A, 0x03, 0x04]), None);
    // Both directions agree, and both tables are sorted for binary search.
    assert!(openssl::OBJECTS.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(openssl::BY_NAME.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(openssl::OBJECTS.len(), openssl::BY_NAME.len());
    for (der, name) in openssl::OBJECTS {
        assert_eq!(
            short_name(Oid::from_der_contents(der).unwrap()),
            Some(*name)
        );
        assert_eq!(attribute_type(name).as_deref(), Some(*der), "{name}");
    }
    assert_eq!(attribute_type("E").as_deref(), Some(known::EMAIL_ADDRESS));
    assert_eq!(
        attribute_type("2.5.4.3").as_deref(),
        Some(&[0x55, 0x04, 0x03][..])
    );
    assert_eq!(attribute_type("NoSuchName"), None);
}
