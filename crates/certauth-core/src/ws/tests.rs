use super::*;
use crate::limits::Limits;

fn head(extra: &str) -> RequestHead {
    let text = format!("GET /chat HTTP/1.1\r\nHost: server.example.com\r\n{extra}\r\n");
    RequestHead::parse(text.as_bytes(), &Limits::DEFAULT)
        .unwrap()
        .unwrap()
        .0
}

const OK: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

#[test]
fn rfc_6455_example() {
    // RFC 6455 §1.3.
    assert_eq!(
        accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    let r = accept_websocket(&head(OK)).unwrap();
    assert_eq!(
        r.to_bytes(),
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    );
}

#[test]
fn connection_is_a_token_list_in_any_case() {
    let h = head(&OK.replace("Connection: Upgrade", "Connection: keep-alive, UPGRADE"));
    assert!(accept_websocket(&h).is_ok());
    let h = head(&OK.replace("Upgrade: websocket", "Upgrade: WebSocket"));
    assert!(accept_websocket(&h).is_ok());
}

#[test]
fn each_requirement_has_its_error() {
    let cases = [
        (
            OK.replace("Upgrade: websocket\r\n", ""),
            UpgradeError::NotAnUpgrade,
        ),
        (
            OK.replace("Connection: Upgrade", "Connection: keep-alive"),
            UpgradeError::MissingConnectionUpgrade,
        ),
        (
            OK.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
            UpgradeError::UnsupportedVersion,
        ),
        (
            OK.replace("Sec-WebSocket-Version: 13\r\n", ""),
            UpgradeError::UnsupportedVersion,
        ),
        (
            OK.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
            UpgradeError::BadKey,
        ),
        (
            OK.replace("dGhlIHNhbXBsZSBub25jZQ==", "not base64!"),
            UpgradeError::BadKey,
        ),
        (
            format!("{OK}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"),
            UpgradeError::BadKey,
        ),
    ];
    for (extra, want) in cases {
        assert_eq!(
            accept_websocket(&head(&extra)).unwrap_err(),
            want,
            "{extra}"
        );
    }
    let post = RequestHead::parse(
        format!("POST / HTTP/1.1\r\n{OK}\r\n").as_bytes(),
        &Limits::DEFAULT,
    )
    .unwrap()
    .unwrap()
    .0;
    assert_eq!(accept_websocket(&post).unwrap_err(), UpgradeError::NotGet);
    let old = RequestHead::parse(
        format!("GET / HTTP/1.0\r\n{OK}\r\n").as_bytes(),
        &Limits::DEFAULT,
    )
    .unwrap()
    .unwrap()
    .0;
    assert_eq!(accept_websocket(&old).unwrap_err(), UpgradeError::NotHttp11);
}

#[test]
fn version_mismatch_is_426_with_the_supported_version() {
    let r = UpgradeError::UnsupportedVersion.response();
    assert_eq!(
        r.to_bytes(),
        b"HTTP/1.1 426 Upgrade Required\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n\
          Content-Length: 16\r\nConnection: close\r\nSec-WebSocket-Version: 13\r\n\r\n\
          Upgrade Required"
    );
}

#[test]
fn subprotocol_selection() {
    let h = head(&format!("{OK}Sec-WebSocket-Protocol: chat, superchat\r\n"));
    assert_eq!(offered_protocols(&h), ["chat", "superchat"]);
    let r = accept_websocket_with(&h, |offered| offered.last().map(|s| (*s).to_owned())).unwrap();
    assert!(
        r.headers()
            .any(|(n, v)| n == "Sec-WebSocket-Protocol" && v == "superchat")
    );
    let r = accept_websocket_with(&h, |_| Some("not-offered".into())).unwrap();
    assert!(!r.headers().any(|(n, _)| n == "Sec-WebSocket-Protocol"));
    let r = accept_websocket(&h).unwrap();
    assert!(!r.headers().any(|(n, _)| n == "Sec-WebSocket-Protocol"));
}

fn head_at(target: &str) -> RequestHead {
    let text = format!("GET {target} HTTP/1.1\r\nHost: h\r\n{OK}\r\n");
    RequestHead::parse(text.as_bytes(), &Limits::DEFAULT)
        .unwrap()
        .unwrap()
        .0
}

#[test]
fn websocket_paths_any_serves_every_path() {
    for target in ["/", "/ws", "/anything?x=1"] {
        assert_eq!(WebSocketPaths::any().check(&head_at(target)), Ok(()));
    }
}

#[test]
fn websocket_paths_only_compares_the_path_without_query() {
    let paths = WebSocketPaths::only(["/ws", "/socket"]);
    assert_eq!(paths.check(&head_at("/ws")), Ok(()));
    assert_eq!(paths.check(&head_at("/ws?token=1")), Ok(()));
    assert_eq!(paths.check(&head_at("/socket")), Ok(()));
    for target in ["/", "/ws/", "/WS", "/wss", "/anything", "/x?/ws"] {
        let e = paths.check(&head_at(target)).unwrap_err();
        assert_eq!(e, UpgradeError::NotFound, "{target}");
        assert_eq!(e.status().code(), 404);
        assert!(
            e.response()
                .to_bytes()
                .starts_with(b"HTTP/1.1 404 Not Found\r\n"),
            "{target}"
        );
    }
    assert_eq!(
        WebSocketPaths::only(Vec::<String>::new()).check(&head_at("/ws")),
        Err(UpgradeError::NotFound)
    );
}

#[test]
fn upgrade_errors_say_what_to_fix() {
    for (e, text) in [
        (UpgradeError::NotGet, "websocket upgrade must use GET"),
        (
            UpgradeError::NotHttp11,
            "websocket upgrade must use HTTP/1.1",
        ),
        (
            UpgradeError::NotAnUpgrade,
            "request is not a websocket upgrade (no `Upgrade: websocket`)",
        ),
        (
            UpgradeError::MissingConnectionUpgrade,
            "`Connection` header does not hold `upgrade`",
        ),
        (
            UpgradeError::BadKey,
            "`Sec-WebSocket-Key` must be one base64 value of 16 bytes",
        ),
        (
            UpgradeError::UnsupportedVersion,
            "`Sec-WebSocket-Version` must be 13",
        ),
        (
            UpgradeError::NotFound,
            "no websocket is served at this path",
        ),
    ] {
        assert_eq!(e.to_string(), text);
    }
}

/// The limits every adapter uses: 1 MiB messages in frames of up to 1 MiB (a browser sends a
/// message as one frame), a 2 KiB read buffer, no write buffering.
#[cfg(feature = "websocket")]
#[test]
fn default_websocket_config_limits() {
    let c = default_websocket_config();
    assert_eq!(c.max_message_size, Some(1 << 20));
    assert_eq!(c.max_frame_size, Some(1 << 20));
    assert_eq!(c.read_buffer_size, 2 * 1024);
    assert_eq!(c.write_buffer_size, 0);
}
