use super::*;

// The examples from Envoy's documentation (HTTP header manipulation,
// x-forwarded-client-cert).
const ONE: &str = "By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject=\"/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client\";URI=spiffe://lyft.com/test-team";
const TWO: &str = "By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;URI=spiffe://lyft.com/test-team,By=http://backend.lyft.com;Hash=9ba61d6425303443c0748a02dd8de688468ed33be74eee6556d90c0149c1309e;URI=spiffe://lyft.com/frontend-team";
const DNS: &str = "By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject=\"/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client\";URI=spiffe://lyft.com/test-team;DNS=lyft.com;DNS=www.lyft.com";

#[test]
fn envoy_documentation_examples() {
    let e = parse(ONE).unwrap();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].by.as_deref(), Some("http://frontend.lyft.com"));
    assert_eq!(
        e[0].subject.as_deref(),
        Some("/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client")
    );
    assert_eq!(e[0].uri, ["spiffe://lyft.com/test-team"]);

    let e = parse(TWO).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[1].by.as_deref(), Some("http://backend.lyft.com"));
    assert_eq!(e[1].uri, ["spiffe://lyft.com/frontend-team"]);
    assert_eq!(select(e.clone(), XfccSelect::Last).unwrap(), e[1]);
    assert_eq!(select(e.clone(), XfccSelect::First).unwrap(), e[0]);
    assert_eq!(
        select(e, XfccSelect::Only).unwrap_err(),
        ProxyHeaderError::XfccElementCount { count: 2 }
    );

    let e = parse(DNS).unwrap();
    assert_eq!(e[0].dns, ["lyft.com", "www.lyft.com"]);
}

#[test]
fn quoted_values_hold_separators_and_escapes() {
    let v = r#"Subject="CN=a,b;c=d \"q\" \\";URI=x,Subject="O=\"x,y\"";By=z"#;
    let e = parse(v).unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].subject.as_deref(), Some(r#"CN=a,b;c=d "q" \"#));
    assert_eq!(e[0].uri, ["x"]);
    assert_eq!(e[1].subject.as_deref(), Some(r#"O="x,y""#));
    assert_eq!(e[1].by.as_deref(), Some("z"));
    // OpenSSL's RFC 2253 escapes inside a quoted Subject stay as they are.
    let e = parse(r#"Subject="CN=a\,b+O=c";URI=u"#).unwrap();
    assert_eq!(e[0].subject.as_deref(), Some(r"CN=a\,b+O=c"));
}

#[test]
fn broken_quoting_is_an_error_with_a_position() {
    for bad in [
        r#"Subject="unterminated"#,
        r#"Subject=a"b"#,
        "NoEquals",
        "=value",
        r#"Subject="x"junk"#,
        "",
        "By=a;;",
    ] {
        assert!(
            matches!(parse(bad), Err(ProxyHeaderError::Xfcc { .. })),
            "{bad}: {:?}",
            parse(bad)
        );
    }
}

#[test]
fn spaces_around_pairs_are_skipped() {
    let e = parse("  By=a ;  Hash=b , URI=c ;DNS=d").unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].by.as_deref(), Some("a"));
    assert_eq!(e[0].hash.as_deref(), Some("b"));
    assert_eq!(e[1].uri, ["c"]);
    assert_eq!(e[1].dns, ["d"]);
    // After a quoted value too.
    let e = parse(r#"Subject="CN=x"  ; By=z , URI=u"#).unwrap();
    assert_eq!(e[0].subject.as_deref(), Some("CN=x"));
    assert_eq!(e[0].by.as_deref(), Some("z"));
    assert_eq!(e[1].uri, ["u"]);
}

#[test]
fn a_key_ends_at_any_separator() {
    // A key cut short by `;`, `,` or a quote is a key without a value, at that offset.
    for (value, offset) in [("By;Cert=x", 2), ("By,Cert=x", 2), ("By\"=x", 2)] {
        assert_eq!(
            parse(value).unwrap_err(),
            ProxyHeaderError::Xfcc {
                offset,
                reason: "expected Key=Value"
            },
            "{value}"
        );
    }
}
