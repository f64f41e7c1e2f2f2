use super::*;

#[test]
fn pins_parse_in_every_common_spelling() {
    let hex = "ab".repeat(32);
    let colons = vec!["AB"; 32].join(":");
    for text in [
        hex.clone(),
        format!("SHA256:{colons}"),
        format!("sha256/{hex}"),
        colons.clone(),
        format!("  {hex}  "),
    ] {
        assert_eq!(parse_sha256_pin(&text).unwrap(), [0xAB; 32], "{text}");
    }
    let sha1 = vec!["AB"; 20].join(":");
    assert!(parse_sha256_pin(&sha1).is_err());
    assert!(parse_sha256_pin(&"zz".repeat(32)).is_err());
    assert!(parse_sha256_pin("").is_err());
    assert!(parse_sha256_pin("SHA256:").is_err());
    assert!(parse_sha256_pin("é").is_err());
}

#[test]
fn serials_normalize() {
    assert_eq!(normalize_serial("0a:1B").as_deref(), Some("A1B"));
    assert_eq!(normalize_serial("0x00ff").as_deref(), Some("FF"));
    assert_eq!(normalize_serial("00").as_deref(), Some("0"));
    assert_eq!(normalize_serial("xyz"), None);
    assert_eq!(normalize_serial(""), None);
    assert_eq!(normalize_serial("-01").as_deref(), Some("-1"));
    assert_eq!(normalize_serial("-0x00:0A").as_deref(), Some("-A"));
    assert_eq!(normalize_serial("-00").as_deref(), Some("0"));
    assert_eq!(normalize_serial("-"), None);
    assert_eq!(normalize_serial("--1"), None);
}

#[test]
fn spiffe_ids_parse_by_the_spec() {
    use super::super::spiffe::SpiffeId;
    assert!(SpiffeId::parse("spiffe://example.org/ns/prod/sa/api").is_ok());
    // A leaf's ID has a path (X.509-SVID §3.1); the scheme is lower case.
    assert!(SpiffeId::parse("spiffe://example.org").is_err());
    assert_eq!(
        SpiffeId::parse("SPIFFE://example.org/x"),
        Err("the scheme must be `spiffe://` in lower case")
    );
    assert_eq!(
        SpiffeId::parse("http://example.org/x"),
        Err("it must start with spiffe://")
    );
    // A trailing slash is named as such (not as an empty segment).
    for id in ["spiffe://example.org/", "spiffe://example.org/ns/"] {
        assert_eq!(
            SpiffeId::parse(id),
            Err("the path must not end with /"),
            "{id}"
        );
    }
    for bad in [
        "http://example.org/x",
        "spiffe://",
        "spiffe://Example.org/x",
        "spiffe://example.org/",
        "spiffe://example.org//x",
        "spiffe://example.org/./x",
        "spiffe://example.org/x/../y",
        "spiffe://example.org/x?y",
        "spiffe://exa mple.org/x",
    ] {
        assert!(SpiffeId::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn san_patterns_parse() {
    assert_eq!(
        SanPattern::parse("DNS:a.example").unwrap(),
        SanPattern::Dns("a.example".into())
    );
    assert_eq!(
        SanPattern::parse("dns:a").unwrap(),
        SanPattern::Dns("a".into())
    );
    assert_eq!(
        SanPattern::parse("IP Address:::1").unwrap(),
        SanPattern::Ip("::1".parse().unwrap())
    );
    assert!(SanPattern::parse("IP:300.1.1.1").is_err());
    assert!(SanPattern::parse("DNS:").is_err());
    assert!(SanPattern::parse("").is_err());
    assert_eq!(SanPattern::parse("x").unwrap(), SanPattern::Any("x".into()));
}

#[test]
fn deny_status_codes() {
    assert_eq!(DenyStatus::from_code(403), Some(DenyStatus::Forbidden));
    assert_eq!(DenyStatus::from_code(500), None);
    assert_eq!(DenyStatus::Unauthorized.code(), 401);
}

#[test]
fn pins_are_equal_only_byte_for_byte() {
    // Fixed inputs both ways: a HashSet lookup alone would hide an `eq` that always says
    // yes (or no) behind the hash most of the time.
    let pin = Sha256Pin([0x5A; 32]);
    assert_eq!(pin, Sha256Pin([0x5A; 32]));
    for i in [0, 15, 31] {
        let mut other = [0x5A; 32];
        other[i] ^= 0x01;
        assert_ne!(pin, Sha256Pin(other), "differs in byte {i}");
    }
    assert_ne!(Sha256Pin([0; 32]), Sha256Pin([0xFF; 32]));
}

#[test]
fn the_host_is_the_authority_without_userinfo_and_port() {
    for (authority, host) in [
        ("admin.example", "admin.example"),
        ("Admin.Example:8443", "Admin.Example"),
        ("user:pw@admin.example:1", "admin.example"),
        ("[::1]:8443", "[::1]"),
        ("[::1]", "[::1]"),
        ("", ""),
        (":", ""),
        ("@", ""),
    ] {
        let request = RequestInfo::new("GET", "/").with_authority(authority);
        assert_eq!(request.host(), Some(host), "{authority}");
        let owned_authority = request.authority.map(str::to_owned);
        assert_eq!(owned_authority.as_deref(), Some(authority));
    }
    assert_eq!(RequestInfo::new("GET", "/").host(), None);
}
