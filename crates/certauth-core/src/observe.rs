//! What a server reports for its metrics: every decision, failed TLS handshake, connection
//! opened, shed or closed, and reload, through an [`Observer`] you hand over as a value: to
//! the authenticator's builder (`AuthenticatorBuilder::observer`: its decisions) and to the
//! serve loops' options (`ServeOptions::with_observer`: their connections), as rustls takes
//! its crypto provider. Nothing is process-wide: two servers in one process count apart,
//! and with no observer nothing is reported. The core never reads a clock:
//! [`Observer::decision_started`] lets the observer stamp the start of a decision with its
//! own, and hands the stamp back with the outcome.
//!
//! `certauth serve --metrics ADDR` hands one over that serves these as Prometheus text.

/// Receives what the server does. Every method has an empty default: implement what you
/// count. Called on the serving threads: keep each call short (an atomic add).
pub trait Observer: Send + Sync + 'static {
    /// A decision starts: return a stamp of your clock (say, nanoseconds since your
    /// start); it comes back in [`Decided::started`].
    fn decision_started(&self) -> u64 {
        0
    }

    /// A decision was made.
    fn decided(&self, decided: &Decided) {
        let _ = decided;
    }

    /// A TLS handshake failed (the client could not prove its key, spoke no TLS, timed out).
    fn handshake_failed(&self) {}

    /// A serve helper admitted a connection.
    fn connection_opened(&self) {}

    /// A connection admitted before ended, however it ended.
    fn connection_closed(&self) {}

    /// A connection was shed, timed out before authentication, or refused at once
    /// ([`Event::Shed`], [`Event::Expired`], [`Event::Refused`], [`Event::AcceptFailed`]).
    fn connection_dropped(&self, why: Event) {
        let _ = why;
    }

    /// An online revocation check (`check`: `ocsp` or `crl`) had no answer and the client
    /// was let in anyway (soft fail, [`crate::revocation`]). `detail` says why; it quotes
    /// a URL from the certificate, so escape it before it reaches a log line.
    fn revocation_soft_fail(&self, check: &'static str, detail: &str) {
        let _ = (check, detail);
    }

    /// The configuration was reloaded (`ok`), or a reload was refused.
    fn reloaded(&self, ok: bool) {
        let _ = ok;
    }
}

/// One decision, for [`Observer::decided`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decided {
    /// The stamp [`Observer::decision_started`] returned.
    pub started: u64,
    /// Whether the client was let in.
    pub allowed: bool,
    /// `ALLOWED`, or the denial's code (`CERT_HAS_EXPIRED`, …).
    pub code: &'static str,
    /// Whether the chain's verification was reused rather than run.
    pub reused: bool,
}

/// What happened to a connection a serve loop dropped, for [`Observer::connection_dropped`]
/// (the engine's loop also rate-limits its log lines by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// A pending connection was shed for a new one.
    Shed,
    /// A pending connection ran out of time.
    Expired,
    /// A new connection was refused.
    Refused,
    /// Accepting failed for want of a resource.
    AcceptFailed,
    /// The loop stopped accepting because every slot is held.
    Full,
}
