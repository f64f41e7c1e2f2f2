//! Every bound on work a client can make the server do, in one place.

use std::time::Duration;

use crate::cert::CertLimits;

/// Bounds on request heads, proxy headers, certificates and time. Each field documents its default and the
/// answer a client gets for exceeding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest request head (request line and headers, up to the blank line). Default
    /// 32 KiB. Over it: 431.
    pub max_head_bytes: usize,
    /// Most header fields. Default 64. Over it: 431.
    pub max_headers: usize,
    /// Largest single header field (name and value). Default 16 KiB, enough for a
    /// URL-encoded PEM chain of three certificates. Over it: 431.
    pub max_header_bytes: usize,
    /// How long an adapter waits for the TLS handshake. Default 10 s. Enforced by the
    /// adapters with their runtime's timer; the core never reads a clock.
    pub handshake_timeout: Duration,
    /// How long an adapter waits for a complete request head after the handshake, counted
    /// once for the whole head however slowly it arrives. Default 10 s; then the connection
    /// is closed without a response. A later head on a kept-alive connection (certauth-hyper)
    /// is bounded by [`Self::idle_timeout`] instead (the thirteenth attack review).
    pub head_read_timeout: Duration,
    /// How long an HTTP connection that served a request may sit idle before the next one
    /// (keep-alive and HTTP/2, in certauth-hyper's serve; a raw gate's stream ends with the
    /// one request it decided). Default 60 s;
    /// then it is shut down gracefully.
    pub idle_timeout: Duration,
    /// After writing a rejection, how long an adapter keeps reading (and discarding) what
    /// the client is still sending before it closes, so that closing with unread data does
    /// not reset the connection before the client has read the response. Default 2 s.
    pub linger_timeout: Duration,
    /// The most bytes read and discarded while lingering. Default 1 MiB.
    pub max_linger_bytes: usize,
    /// How long an authenticated WebSocket opened by a serve helper may carry no message
    /// (text or binary, either way; pings and pongs do not count) before the server closes
    /// it with code 1000 (`idle timeout`). Default 300 s. `Duration::MAX`: never.
    pub websocket_idle_timeout: Duration,
    /// How often such a WebSocket is pinged: a ping goes out this long after the last one
    /// was answered (or the socket opened), and a client that has not answered it (with
    /// the ping's payload) this long later is taken for gone and its connection is closed
    /// without a close frame. So a client that stops reading (a ping flood that never reads
    /// the pongs, a half-open TCP connection) is cut off after at most twice this. Also
    /// bounds how long the close after an idle timeout may wait for the client's reply.
    /// Default 30 s. `Duration::MAX`: never ping.
    pub websocket_ping_interval: Duration,
    /// The front door (certauth-hyper's `Upstream`): the most bytes read off the upstream
    /// connection's socket (framing included) for a response whose client has left, read and
    /// dropped with the request's places at the caps held (for at most the response
    /// timeout), before the connection is closed. An upstream that works before it sends has
    /// sent little by then; one still sending a download nobody receives is told to stop.
    /// Default 1 MiB; 0 closes it at once. A request without a client identity whose drain
    /// stops short keeps its places until the response timeout (the upstream may work on);
    /// an authenticated client's go with the connection.
    pub max_drain_bytes: usize,
    /// The front door: once a relayed WebSocket closes, how long each wait for its peers
    /// lasts: a frame under way when the idle timeout closes it must end within this of the
    /// close's start, else the tunnel is cut without a close frame (a peer stopped or
    /// trickling mid-frame would hold it for ever; when the server drains, the frame has the
    /// grace period instead); then the 1001's delivery, the peers' close replies, and the
    /// other direction's last bytes once one has ended. Default 1 s.
    pub tunnel_close_timeout: Duration,
    /// Largest accepted certificate, in DER bytes. Default 64 KiB: client certificates are
    /// typically 0.5–2 KiB, but test infrastructure issues 20–60 KiB ones (hundreds of
    /// SANs), and a TLS 1.2 handshake message cannot carry more than 16 MiB anyway. Over it:
    /// 401 `CERT_TOO_LARGE`, as for the three below.
    pub max_cert_bytes: usize,
    /// Most attributes in one distinguished name of a certificate (subject, issuer, or a
    /// directory-name SAN). Default 64.
    pub max_name_attributes: usize,
    /// Most subject alternative names in a certificate. Default 1024 (real
    /// test-infrastructure certificates carry 260–460; BoringSSL's name-constraint budget
    /// treats more than 1024 as hostile).
    pub max_san_entries: usize,
    /// Most extensions in a certificate. Default 32.
    pub max_extensions: usize,
}

impl Limits {
    /// The defaults documented on each field.
    pub const DEFAULT: Self = Self {
        max_head_bytes: 32 * 1024,
        max_headers: 64,
        max_header_bytes: 16 * 1024,
        handshake_timeout: Duration::from_secs(10),
        head_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        linger_timeout: Duration::from_secs(2),
        max_linger_bytes: 1024 * 1024,
        websocket_idle_timeout: Duration::from_secs(300),
        websocket_ping_interval: Duration::from_secs(30),
        max_drain_bytes: 1024 * 1024,
        tunnel_close_timeout: Duration::from_secs(1),
        max_cert_bytes: 64 * 1024,
        max_name_attributes: 64,
        max_san_entries: 1024,
        max_extensions: 32,
    };

    /// With another [`Self::max_head_bytes`].
    pub const fn with_max_head_bytes(mut self, v: usize) -> Self {
        self.max_head_bytes = v;
        self
    }

    /// With another [`Self::max_headers`].
    pub const fn with_max_headers(mut self, v: usize) -> Self {
        self.max_headers = v;
        self
    }

    /// With another [`Self::max_header_bytes`].
    pub const fn with_max_header_bytes(mut self, v: usize) -> Self {
        self.max_header_bytes = v;
        self
    }

    /// With another [`Self::handshake_timeout`].
    pub const fn with_handshake_timeout(mut self, v: Duration) -> Self {
        self.handshake_timeout = v;
        self
    }

    /// With another [`Self::head_read_timeout`].
    pub const fn with_head_read_timeout(mut self, v: Duration) -> Self {
        self.head_read_timeout = v;
        self
    }

    /// With another [`Self::idle_timeout`].
    pub const fn with_idle_timeout(mut self, v: Duration) -> Self {
        self.idle_timeout = v;
        self
    }

    /// With another [`Self::linger_timeout`].
    pub const fn with_linger_timeout(mut self, v: Duration) -> Self {
        self.linger_timeout = v;
        self
    }

    /// With another [`Self::max_linger_bytes`].
    pub const fn with_max_linger_bytes(mut self, v: usize) -> Self {
        self.max_linger_bytes = v;
        self
    }

    /// With another [`Self::websocket_idle_timeout`].
    pub const fn with_websocket_idle_timeout(mut self, v: Duration) -> Self {
        self.websocket_idle_timeout = v;
        self
    }

    /// With another [`Self::websocket_ping_interval`].
    pub const fn with_websocket_ping_interval(mut self, v: Duration) -> Self {
        self.websocket_ping_interval = v;
        self
    }

    /// With another [`Self::max_drain_bytes`].
    pub const fn with_max_drain_bytes(mut self, v: usize) -> Self {
        self.max_drain_bytes = v;
        self
    }

    /// With another [`Self::tunnel_close_timeout`].
    pub const fn with_tunnel_close_timeout(mut self, v: Duration) -> Self {
        self.tunnel_close_timeout = v;
        self
    }

    /// With another [`Self::max_cert_bytes`].
    pub const fn with_max_cert_bytes(mut self, v: usize) -> Self {
        self.max_cert_bytes = v;
        self
    }

    /// With another [`Self::max_name_attributes`].
    pub const fn with_max_name_attributes(mut self, v: usize) -> Self {
        self.max_name_attributes = v;
        self
    }

    /// With another [`Self::max_san_entries`].
    pub const fn with_max_san_entries(mut self, v: usize) -> Self {
        self.max_san_entries = v;
        self
    }

    /// With another [`Self::max_extensions`].
    pub const fn with_max_extensions(mut self, v: usize) -> Self {
        self.max_extensions = v;
        self
    }

    /// The certificate caps, as the parser takes them.
    pub(crate) const fn cert_limits(&self) -> CertLimits {
        CertLimits {
            max_der_bytes: self.max_cert_bytes,
            max_name_attributes: self.max_name_attributes,
            max_san_entries: self.max_san_entries,
            max_extensions: self.max_extensions,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_doors_limits_default_as_documented_and_each_builder_sets_its_own() {
        let d = Limits::DEFAULT;
        assert_eq!(d.max_drain_bytes, 1024 * 1024);
        assert_eq!(d.tunnel_close_timeout, Duration::from_secs(1));
        let set = d
            .with_max_drain_bytes(7)
            .with_tunnel_close_timeout(Duration::from_millis(250));
        assert_eq!(set.max_drain_bytes, 7);
        assert_eq!(set.tunnel_close_timeout, Duration::from_millis(250));
        // Nothing else moved.
        assert_eq!(
            Limits {
                max_drain_bytes: d.max_drain_bytes,
                tunnel_close_timeout: d.tunnel_close_timeout,
                ..set
            },
            d
        );
    }
}
