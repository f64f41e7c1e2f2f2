//! The observer sees every decision (with the stamp it gave) of the authenticator it was
//! given to, and every connection a table given it admits, sheds, times out, refuses and
//! closes; an authenticator and a table without it report nothing to it.
#![allow(clippy::unwrap_used, clippy::as_conversions, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certauth_core::lifecycle::{Admission, Connections, Event, Phase, ServeOptions};
use certauth_core::observe::{Decided, Observer};
use certauth_core::verify::{ChainVerifier, TrustAnchors};
use certauth_core::{Authenticator, Limits, PeerInfo};
use certauth_testkit::{Authority, Leaf, now};

#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl Seen {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }
}

impl Observer for Seen {
    fn decision_started(&self) -> u64 {
        42
    }
    fn decided(&self, d: &Decided) {
        self.push(format!(
            "decided {} {} {} {}",
            d.started, d.allowed, d.code, d.reused
        ));
    }
    fn handshake_failed(&self) {
        self.push("handshake failed".into());
    }
    fn connection_opened(&self) {
        self.push("opened".into());
    }
    fn connection_closed(&self) {
        self.push("closed".into());
    }
    fn connection_dropped(&self, why: Event) {
        self.push(format!("dropped {why:?}"));
    }
}

#[test]
fn the_observer_sees_decisions_and_connections() {
    let seen = Arc::new(Seen::default());

    let root = Authority::root("Observe Root");
    let leaf = root.issue(&Leaf::client("observed"));
    let v = ChainVerifier::new(
        TrustAnchors::from_der([root.cert.der.clone()]).unwrap(),
        webpki::ALL_VERIFICATION_ALGS,
    );
    let unobserved = Authenticator::builder()
        .verifier(v.clone())
        .build()
        .unwrap();
    let auth = Authenticator::builder()
        .verifier(v)
        .observer(seen.clone())
        .build()
        .unwrap();
    let head = certauth_testkit::head(b"GET / HTTP/1.1\r\n\r\n");
    let chain = [leaf.der.clone()];
    let _ = unobserved
        .decide(&PeerInfo::new(&chain, None), &head, now())
        .ready()
        .unwrap();
    assert!(seen.take().is_empty(), "another authenticator's decision");
    for peer in [
        PeerInfo::new(&chain, None),
        PeerInfo::new(&chain, None),
        PeerInfo::new(&[], None),
    ] {
        let _ = auth.decide(&peer, &head, now()).ready().unwrap();
    }
    assert_eq!(
        seen.take(),
        [
            "decided 42 true ALLOWED false",
            "decided 42 true ALLOWED true",
            "decided 42 false NO_CERTIFICATE false",
        ]
    );

    #[allow(clippy::disallowed_methods, reason = "a base for offsets")]
    let t = Instant::now();
    let mut c: Connections<()> = Connections::new(
        ServeOptions::DEFAULT
            .with_max_pending(1)
            .with_max_connections(2)
            .with_shed_after(Duration::ZERO)
            .with_observer(seen.clone()),
        &Limits::DEFAULT.with_handshake_timeout(Duration::from_secs(1)),
    );
    let Admission::Admitted { id: a, .. } = c.admit(None, Phase::Handshake, t) else {
        panic!()
    };
    let Admission::Admitted { id: b, .. } = c.admit(None, Phase::Handshake, t) else {
        panic!()
    };
    assert_eq!(
        seen.take(),
        ["opened", "dropped Shed", "closed", "opened"],
        "a was shed for b"
    );
    let _ = c.close(a);
    assert!(seen.take().is_empty(), "a was already gone");
    let _ = c.close(b);
    assert_eq!(
        seen.take(),
        ["handshake failed", "closed"],
        "b ended in its handshake"
    );
    let Admission::Admitted { id: d, .. } = c.admit(None, Phase::Handshake, t) else {
        panic!()
    };
    let _ = c.expired(t + Duration::from_secs(2));
    assert_eq!(
        seen.take(),
        ["opened", "handshake failed", "dropped Expired", "closed"]
    );
    let _ = c.close(d);
    let Admission::Admitted { id: e, .. } = c.admit(None, Phase::Head, t) else {
        panic!()
    };
    c.advance(e, Phase::Open, t);
    let Admission::Admitted { .. } = c.admit(None, Phase::Head, t) else {
        panic!()
    };
    c.drain();
    let _ = c.admit(None, Phase::Head, t);
    let _ = c.cancel_all();
    assert_eq!(
        seen.take(),
        ["opened", "opened", "closed", "dropped Refused", "closed"],
        "admitted, admitted, drained (pending), refused, cancelled (open)"
    );
}
