use super::*;
use crate::http::{HeadParser, HeadProgress};
use crate::limits::Limits;

fn head(text: &str) -> RequestHead {
    match HeadParser::new(&Limits::DEFAULT).parse(text.as_bytes()) {
        Ok(HeadProgress::Complete { head, .. }) => head,
        other => panic!("{other:?}"),
    }
}

fn first(text: &str) -> Result<FirstRequest, HeadError> {
    FirstRequest::new(&head(text))
}

/// How many of `rest` belong to the request, fed whole and fed a byte at a time (the
/// answer must not depend on how reads split the stream).
fn belongs(head_text: &str, rest: &[u8]) -> usize {
    let mut whole = first(head_text).unwrap();
    let n = whole.take(rest);
    let mut bytewise = first(head_text).unwrap();
    let mut m = 0;
    for b in rest {
        let k = bytewise.take(std::slice::from_ref(b));
        m += k;
        if k == 0 {
            break;
        }
    }
    assert_eq!(n, m, "split reads disagree on {rest:?}");
    assert_eq!(whole.is_complete(), bytewise.is_complete());
    n
}

const NEXT: &[u8] = b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n";

#[test]
fn a_request_without_a_body_ends_at_its_head() {
    let r = first("GET /public HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert!(r.is_complete());
    assert_eq!(belongs("GET /public HTTP/1.1\r\nHost: a\r\n\r\n", NEXT), 0);
}

#[test]
fn content_length_bodies_end_at_their_length() {
    let h = "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
    let mut bytes = b"hello".to_vec();
    bytes.extend_from_slice(NEXT);
    assert_eq!(belongs(h, &bytes), 5);
    let mut r = first(h).unwrap();
    assert!(!r.is_complete());
    assert_eq!(r.take(b"hel"), 3);
    assert_eq!(r.take(b"lo"), 2);
    assert!(r.is_complete());
    assert_eq!(r.take(NEXT), 0);
    // The same length twice (one header or two) is one length.
    assert_eq!(
        belongs("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", &bytes),
        5
    );
    assert_eq!(
        belongs(
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            &bytes
        ),
        5
    );
}

#[test]
fn chunked_bodies_end_after_their_last_chunk_and_trailers() {
    let h = "POST /p HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    for body in [
        &b"5\r\nhello\r\n0\r\n\r\n"[..],
        b"5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n",
        b"5 ;x\r\nhello\r\n0\r\nTrailer: t\r\nOther: u\r\n\r\n",
        b"000\r\n\r\n",
        b"fFfF\r\n",
    ] {
        let mut bytes = body.to_vec();
        let complete = bytes.ends_with(b"\r\n\r\n");
        bytes.extend_from_slice(NEXT);
        let want = if complete { body.len() } else { bytes.len() };
        assert_eq!(
            belongs(h, &bytes),
            want,
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

/// A chunked body that breaks the grammar ends where it breaks: whatever follows is never
/// handed on as this request (a parser behind sees a truncated body and fails).
#[test]
fn a_broken_chunked_body_ends_where_it_breaks() {
    let h = "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (body, want) in [
        (&b"x\r\n"[..], 0),
        (b"\r\n", 0),
        (b"5\nhello", 1),
        (b"5\r\nhelloX", 8),
        (b"5\r\nhello\rX", 9),
        (b"0\r\n\r\r", 4),
        (b"0\r\nTrailer\n", 10),
        (b"0\r\n\nGET", 3),
        (b"5;ext\nhello", 5),
        (b"1\r\nx\r\n0\r\n\rGET", 10),
        // Extensions or whitespace before any digit.
        (b";ext\r\n", 0),
        (b" 5\r\n", 0),
        // A size over 64 bits.
        (b"10000000000000000\r\n", 16),
    ] {
        let mut bytes = body.to_vec();
        bytes.extend_from_slice(NEXT);
        assert_eq!(
            belongs(h, &bytes),
            want,
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    let mut long = b"1;".to_vec();
    long.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE_BYTES + 10));
    assert!(belongs(h, &long) <= MAX_CHUNK_LINE_BYTES + 1);
    // The size line's length counts its digits, `;` and extensions: exactly the limit is
    // a line, one byte more ends the body.
    let line = |ext: usize| {
        let mut b = b"1;".to_vec();
        b.extend(std::iter::repeat_n(b'a', ext));
        b.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        b
    };
    let at_limit = line(MAX_CHUNK_LINE_BYTES - 2);
    assert_eq!(belongs(h, &at_limit), at_limit.len());
    assert_eq!(
        belongs(h, &line(MAX_CHUNK_LINE_BYTES - 1)),
        MAX_CHUNK_LINE_BYTES
    );
    let digits = |n: usize| {
        let mut b = vec![b'0'; n - 1];
        b.extend_from_slice(b"1;");
        b.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE_BYTES - n - 1));
        b.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        b
    };
    let many = digits(16);
    assert_eq!(belongs(h, &many), many.len(), "sixteen digits count too");
    let mut trailer = b"0\r\n".to_vec();
    trailer.extend(std::iter::repeat_n(b'a', MAX_CHUNK_LINE_BYTES + 10));
    assert!(belongs(h, &trailer) <= MAX_CHUNK_LINE_BYTES + 3);
}

/// The request-smuggling cases: framing that servers read differently is refused (400)
/// before anything is decided.
#[test]
fn ambiguous_framing_is_refused() {
    for text in [
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: \r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
    ] {
        let got = first(text);
        assert!(
            matches!(&got, Err(HeadError::Malformed { .. })),
            "{text:?}: {got:?}"
        );
        assert_eq!(got.unwrap_err().status().code(), 400);
    }
    let split = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(first(split).is_ok());
}

#[test]
fn only_a_101_to_an_upgrade_request_switches_protocols() {
    let upgrade = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n";
    let mut r = first(upgrade).unwrap();
    assert!(!r.switched());
    r.wrote(b"HTTP/1.1 10");
    assert!(!r.switched());
    r.wrote(b"1 Switching Protocols\r\n\r\n");
    assert!(r.switched());

    let mut refused = first(upgrade).unwrap();
    refused.wrote(b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 ");
    assert!(!refused.switched());

    let mut plain = first("GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    plain.wrote(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
    assert!(
        !plain.switched(),
        "a 101 to a request that did not ask to upgrade"
    );

    let mut no_connection = first("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").unwrap();
    no_connection.wrote(b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
    assert!(!no_connection.switched());
}
