//! The observer sees every decision (with the stamp it gave) of the authenticator it was
//! given to; an authenticator without it reports nothing to it. (The connections a serve
//! loop reports are certauth-engine's test.)
#![allow(clippy::unwrap_used, clippy::as_conversions, missing_docs)]

use std::sync::{Arc, Mutex};

use certauth_core::Decision;
use certauth_core::observe::Observer;
use certauth_core::verify::{ChainVerifier, TrustAnchors};
use certauth_core::{Authenticator, PeerInfo};
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
    fn decided(&self, started: u64, d: &Decision) {
        let (allowed, reused) = match d {
            Decision::Allow(a) => (true, a.reused()),
            Decision::Deny(_) => (false, false),
        };
        self.push(format!("decided {started} {allowed} {} {reused}", d.code()));
    }
}

#[test]
fn the_observer_sees_its_authenticators_decisions() {
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
}
