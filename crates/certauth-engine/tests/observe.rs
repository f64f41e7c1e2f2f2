//! The observer a table is given sees every connection it admits, sheds, times out, refuses
//! and closes.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certauth_core::Limits;
use certauth_core::observe::{Event, Observer};
use certauth_engine::lifecycle::{Admission, Connections, Phase, ServeOptions};

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
fn the_observer_sees_the_connections_of_its_table() {
    let seen = Arc::new(Seen::default());
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
