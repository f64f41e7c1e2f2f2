use super::*;

#[test]
fn golden_error_bytes() {
    let r = ResponseHead::generic(Status::Unauthorized);
    assert_eq!(
        r.to_bytes(),
        b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\
          Content-Length: 12\r\nConnection: close\r\n\r\nUnauthorized"
    );
    assert!(r.closes_connection());
}

#[test]
fn golden_101_bytes() {
    let r = ResponseHead::switching_protocols("abc=".into(), Some("chat".into()));
    assert_eq!(
        r.to_bytes(),
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: abc=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
    );
    assert!(!r.closes_connection());
}

#[test]
fn sanitizes() {
    assert_eq!(sanitize_header_value("a\r\nb"), "a  b");
}
