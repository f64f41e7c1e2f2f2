use super::*;

const REQ: &[u8] = b"GET /chat?x=1 HTTP/1.1\r\nHost: a.example\r\nUpgrade: websocket\r\n\
    Connection: keep-alive, Upgrade\r\nX-Multi: a\r\nx-multi: b\r\n\r\nFRAME";

fn limits() -> Limits {
    Limits::DEFAULT
}

#[test]
fn whole_and_byte_by_byte_agree() {
    let (head, consumed) = RequestHead::parse(REQ, &limits()).unwrap().unwrap();
    assert_eq!(&REQ[consumed..], b"FRAME");
    assert_eq!(head.method(), "GET");
    assert_eq!(head.target(), "/chat?x=1");
    assert_eq!(head.path(), "/chat");
    assert_eq!(head.version(), Version::Http11);
    assert_eq!(head.header("host"), Some(&b"a.example"[..]));
    assert_eq!(head.header_all("X-MULTI").collect::<Vec<_>>(), [b"a", b"b"]);
    assert!(head.has_token("connection", "upgrade"));
    assert!(!head.has_token("connection", "close"));
    assert_eq!(head.raw(), &REQ[..consumed]);

    let mut p = HeadParser::new(&limits());
    for n in 1..=REQ.len() {
        match p.parse(&REQ[..n]).unwrap() {
            HeadProgress::NeedMore => assert!(n < consumed, "need more at {n}"),
            HeadProgress::Complete {
                head: h,
                consumed: c,
            } => {
                assert_eq!(n, consumed, "complete exactly when the blank line arrives");
                assert_eq!(c, consumed);
                assert_eq!(h.raw(), head.raw());
                return;
            }
        }
    }
    panic!("never completed");
}

#[test]
fn from_parts_matches_a_parsed_head() {
    let h = RequestHead::from_parts(
        "GET",
        "/chat?x=1",
        Version::Http11,
        [
            ("host", &b"a.example"[..]),
            ("upgrade", b"websocket"),
            ("x-bad", b"a\r\nb"),
            ("bad name", b"x"),
        ],
    );
    assert_eq!(h.method(), "GET");
    assert_eq!(h.path(), "/chat");
    assert_eq!(h.header("Host"), Some(&b"a.example"[..]));
    assert_eq!(h.header("x-bad"), None, "CR/LF values are skipped");
    assert_eq!(h.headers().count(), 2);
    let (parsed, _) = RequestHead::parse(h.raw(), &limits()).unwrap().unwrap();
    assert_eq!(parsed.raw(), h.raw());
}

#[test]
fn bare_lf_heads_are_accepted() {
    let req = b"GET / HTTP/1.1\nHost: x\n\nrest";
    let (head, consumed) = RequestHead::parse(req, &limits()).unwrap().unwrap();
    assert_eq!(&req[consumed..], b"rest");
    assert_eq!(head.header("host"), Some(&b"x"[..]));
}

#[test]
fn limits_answer_431() {
    let l = limits().with_max_head_bytes(64);
    let big = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 100]].concat();
    let err = HeadParser::new(&l).parse(&big).unwrap_err();
    assert_eq!(err, HeadError::TooLarge { max: 64 });
    assert_eq!(err.status(), Status::RequestHeaderFieldsTooLarge);

    let many: Vec<u8> = [
        b"GET / HTTP/1.1\r\n".to_vec(),
        (0..5)
            .flat_map(|i| format!("H{i}: v\r\n").into_bytes())
            .collect(),
        b"\r\n".to_vec(),
    ]
    .concat();
    let err = HeadParser::new(&limits().with_max_headers(4))
        .parse(&many)
        .unwrap_err();
    assert_eq!(err, HeadError::TooManyHeaders { max: 4 });
    assert!(
        HeadParser::new(&limits().with_max_headers(5))
            .parse(&many)
            .is_ok()
    );

    let long = b"GET / HTTP/1.1\r\nX-Long: 0123456789\r\n\r\n";
    let err = HeadParser::new(&limits().with_max_header_bytes(10))
        .parse(long)
        .unwrap_err();
    assert_eq!(
        err,
        HeadError::HeaderTooLarge {
            name: "X-Long".into(),
            max: 10
        }
    );
}

#[test]
fn malformed_heads_answer_400() {
    for bad in [
        &b"GET / HTTP/2.0\r\n\r\n"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"G\x00T / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",
        b"\r\n\r\n",
    ] {
        let err = HeadParser::new(&limits()).parse(bad).unwrap_err();
        assert_eq!(err.status(), Status::BadRequest, "{bad:?}: {err}");
    }
}

#[test]
fn invalid_utf8_in_values_is_kept_as_bytes() {
    let req = b"GET / HTTP/1.1\r\nX: \xff\xfe\r\n\r\n";
    let (head, _) = RequestHead::parse(req, &limits()).unwrap().unwrap();
    assert_eq!(head.header("x"), Some(&b"\xff\xfe"[..]));
}
