//! `lifecycle::SessionOwners` (issue 25, finding 4): an Engine.IO session reaches only the
//! certificate that opened it, and the session ids are read as engineioxide reads them.
// The table takes `now`; a test may read the clock to make one.
#![allow(clippy::unwrap_used, clippy::disallowed_methods, missing_docs)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use certauth_core::verify::{ChainVerifier, TrustAnchors};
use certauth_core::{Authenticated, Authenticator, Decision, PeerInfo};
use certauth_engine::lifecycle::{
    SessionOwners, SessionRefusal, engine_io_opened_sid, engine_io_path, engine_io_sid,
};
use certauth_testkit::{Authority, Leaf, now};

fn clients() -> (Authenticated, Authenticated) {
    let root = Authority::root("Sessions Root");
    let auth = Authenticator::builder()
        .verifier(ChainVerifier::new(
            TrustAnchors::from_der([root.cert.der.clone()]).unwrap(),
            webpki::ALL_VERIFICATION_ALGS,
        ))
        .build()
        .unwrap();
    let head = certauth_testkit::head(b"GET /socket.io/?EIO=4 HTTP/1.1\r\nHost: a\r\n\r\n");
    let allow = |cn: &str| {
        let chain = [root.issue(&Leaf::client(cn)).der];
        let peer = PeerInfo::new(&chain, Some(IpAddr::from([127, 0, 0, 1])));
        match auth.decide(&peer, &head, now()).ready().unwrap() {
            Decision::Allow(client) => client,
            Decision::Deny(d) => panic!("{d}"),
        }
    };
    (allow("owner"), allow("other"))
}

#[test]
fn a_session_reaches_only_the_certificate_that_opened_it() {
    let (owner, other) = clients();
    let t = Instant::now();
    let mut s = SessionOwners::new(Duration::from_secs(60));
    assert!(s.is_empty());
    s.opened("abc", Some(&owner), t);
    assert_eq!((s.len(), s.is_empty()), (1, false));
    assert_eq!(
        s.check("abc", Some(&owner), t + Duration::from_secs(50)),
        Ok(())
    );
    // Used at 50 s: the idle timeout counts from then.
    assert_eq!(
        s.check("abc", Some(&owner), t + Duration::from_secs(100)),
        Ok(())
    );
    assert_eq!(
        s.check("abc", None, t),
        Err(SessionRefusal::NotAuthenticated)
    );
    assert_eq!(
        s.check("abc", Some(&other), t),
        Err(SessionRefusal::OtherCertificate)
    );
    assert_eq!(
        s.check("abd", Some(&owner), t),
        Err(SessionRefusal::Unknown)
    );
    assert_eq!(
        s.check("abc", Some(&owner), t + Duration::from_secs(160)),
        Err(SessionRefusal::Idle)
    );
    // A session opened without a certificate: reached only without one.
    s.opened("anon", None, t);
    assert_eq!(s.check("anon", None, t), Ok(()));
    assert_eq!(
        s.check("anon", Some(&owner), t),
        Err(SessionRefusal::OtherCertificate)
    );
    assert_eq!(
        s.check("nope", None, t),
        Err(SessionRefusal::NotAuthenticated)
    );
    assert!(
        SessionRefusal::OtherCertificate
            .to_string()
            .contains("another certificate")
    );
}

#[test]
fn forgotten_sessions_are_swept_as_the_table_grows() {
    let (owner, _) = clients();
    let t = Instant::now();
    let secs = Duration::from_secs;
    // Below 1,024 bindings nothing is swept, idle or not.
    let mut s = SessionOwners::new(secs(10));
    for i in 0..10 {
        s.opened(&format!("old{i}"), Some(&owner), t);
    }
    s.opened("new", Some(&owner), t + secs(20));
    assert_eq!(s.len(), 11);
    // At 1,024 the next binding sweeps: idle for the timeout or longer goes, fresher stays.
    let mut s = SessionOwners::new(secs(10));
    for i in 0..1022 {
        s.opened(&format!("old{i}"), Some(&owner), t);
    }
    s.opened("edge", Some(&owner), t + secs(10));
    s.opened("fresh", Some(&owner), t + secs(20));
    assert_eq!(s.len(), 1024);
    s.opened("new", Some(&owner), t + secs(20));
    assert_eq!(s.len(), 2, "the idle bindings were swept");
    assert_eq!(s.check("fresh", Some(&owner), t + secs(20)), Ok(()));
    assert_eq!(s.check("new", Some(&owner), t + secs(20)), Ok(()));
    assert_eq!(
        s.check("edge", Some(&owner), t + secs(20)),
        Err(SessionRefusal::Unknown)
    );
}

/// Sessions opened without authentication: at most `max` live or being opened, each
/// reachable for its lifetime from its opening, whatever its use; sessions with a
/// certificate never count and never wait.
#[test]
fn sessions_without_authentication_are_capped_in_number_and_time() {
    let (owner, _) = clients();
    let t = Instant::now();
    let secs = Duration::from_secs;
    let mut s = SessionOwners::new(secs(120)).unauthenticated(2, secs(10));
    let full = Err(SessionRefusal::TooManyUnauthenticated);
    let anonymous = |s: &mut SessionOwners, at| s.handshake(None, at);
    // Two handshakes under way take the room; a third waits for none.
    let first = anonymous(&mut s, t).unwrap();
    let second = anonymous(&mut s, t).unwrap();
    assert_eq!(anonymous(&mut s, t).map(drop), full);
    // One opened no session (an error, a WebSocket): its room is given back.
    s.abandoned(first);
    let third = anonymous(&mut s, t).unwrap();
    // Both open theirs: the room stays taken by the sessions, whichever order.
    s.opened_by("a", third, t);
    assert_eq!(anonymous(&mut s, t).map(drop), full);
    s.opened_by("b", second, t + secs(5));
    assert_eq!(anonymous(&mut s, t + secs(5)).map(drop), full);
    // A client with a certificate opens sessions whatever the count, and its own
    // handshakes reserve nothing (abandoned or not).
    let mine = s.handshake(Some(&owner), t + secs(5)).unwrap();
    s.opened_by("mine", mine, t + secs(5));
    let unused = s.handshake(Some(&owner), t + secs(5)).unwrap();
    s.abandoned(unused);
    assert_eq!(s.check("mine", Some(&owner), t + secs(5)), Ok(()));
    assert_eq!(
        s.check("mine", None, t + secs(5)),
        Err(SessionRefusal::NotAuthenticated)
    );
    assert_eq!(anonymous(&mut s, t + secs(5)).map(drop), full);
    // Use does not renew a session without authentication: at 10 s from its opening "a"
    // is forgotten (its requests are refused as any unknown sid without a certificate),
    // and its room is free; "b" lasts until 15 s.
    assert_eq!(s.check("a", None, t + secs(9)), Ok(()));
    assert_eq!(
        s.check("a", None, t + secs(10)),
        Err(SessionRefusal::NotAuthenticated)
    );
    assert_eq!(s.check("b", None, t + secs(10)), Ok(()));
    let at_10 = anonymous(&mut s, t + secs(10)).unwrap();
    assert_eq!(anonymous(&mut s, t + secs(10)).map(drop), full);
    let at_15 = anonymous(&mut s, t + secs(15)).unwrap();
    assert_eq!(
        s.check("b", None, t + secs(15)),
        Err(SessionRefusal::NotAuthenticated)
    );
    // The certificate holder's session outlives them all, up to its idle timeout.
    assert_eq!(s.check("mine", Some(&owner), t + secs(100)), Ok(()));
    assert_eq!(s.len(), 1);
    // A session opened without a reservation counts too (it may pass the cap).
    s.abandoned(at_10);
    s.abandoned(at_15);
    s.opened("x", None, t + secs(100));
    s.opened("y", None, t + secs(100));
    assert_eq!(anonymous(&mut s, t + secs(100)).map(drop), full);
    // A session id a certificate holder opened after an anonymous one is not forgotten
    // with the anonymous one's lifetime.
    s.opened("c", None, t + secs(100));
    s.opened("c", Some(&owner), t + secs(101));
    assert_eq!(s.check("c", Some(&owner), t + secs(111)), Ok(()));
    // 0 refuses every session without authentication.
    let mut none = SessionOwners::new(secs(120)).unauthenticated(0, secs(10));
    assert_eq!(none.handshake(None, t).map(drop), full);
    assert!(none.handshake(Some(&owner), t).is_ok());
    // The idle timeout can be set after the table is made.
    let mut short = SessionOwners::new(secs(120)).idle_timeout(secs(1));
    short.opened("z", Some(&owner), t);
    assert_eq!(
        short.check("z", Some(&owner), t + secs(1)),
        Err(SessionRefusal::Idle)
    );
    assert!(
        SessionRefusal::TooManyUnauthenticated
            .to_string()
            .contains("without a client certificate")
    );
}

#[test]
fn engine_io_fields_are_read_as_engineioxide_reads_them() {
    assert_eq!(
        engine_io_sid(Some("EIO=4&transport=polling&sid=abc&sid=def")),
        Some("abc")
    );
    assert_eq!(engine_io_sid(Some("EIO=4&transport=polling")), None);
    assert_eq!(engine_io_sid(Some("EIO=4&xsid=abc")), None);
    assert_eq!(engine_io_sid(None), None);
    assert!(engine_io_path("/socket.io/", "/socket.io"));
    assert!(engine_io_path("/socket.io", "/socket.io"));
    assert!(engine_io_path("/socket.io/x", "/socket.io/"));
    assert!(!engine_io_path("/socket.io-admin", "/socket.io"));
    assert!(!engine_io_path("/other", "/socket.io"));
    assert_eq!(
        engine_io_opened_sid(br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"]}"#),
        Some("lv_VI97HAXpY6yYWAAAC")
    );
    assert_eq!(
        engine_io_opened_sid(br#"96:0{"sid":"abc","pingInterval":25000}"#),
        Some("abc")
    );
    assert_eq!(
        engine_io_opened_sid(br#"4{"sid":"abc"}"#),
        None,
        "not an open packet"
    );
    assert_eq!(engine_io_opened_sid(br#"0{"sid":"a\"b"}"#), None);
    assert_eq!(engine_io_opened_sid(br#"0{"sid":""}"#), None);
    assert_eq!(engine_io_opened_sid(b"0{\xff}"), None);
}
