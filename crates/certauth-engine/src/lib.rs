//! # certauth-engine
//!
//! certauth's serving engine, written once for every async runtime: the [`Gate`] (TLS
//! handshake, request head, the core's decision, the 4xx it writes), the WebSocket upgrade
//! ([`upgrade`]), and the serve loop that runs the connection lifecycle ([`lifecycle`]: sans-IO
//! state for admission, shedding, phase deadlines and draining, which takes the time and
//! returns what to do; the loop adds the lock, the wake-ups, the timer and the accept
//! back-off). Every decision about a client is the core's; the engine moves bytes and keeps
//! time.
//!
//! A runtime plugs in with a [`Runtime`] (spawn, cancel, a timer, the TLS handshake) and
//! [`Compat`] (its byte streams seen as `futures-io`), as quinn's `Runtime` does:
//! `certauth-tokio` and `certauth-smol` are those two impls and thin entry points, and
//! certauth-hyper serves on certauth-tokio's. You use those crates; this one is what they
//! share.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

// For the runtime crates' entry points (`entry_points!`).
#[doc(no_inline)]
pub use async_tungstenite::WebSocketStream;
#[doc(no_inline)]
pub use async_tungstenite::tungstenite::protocol::WebSocketConfig;
pub use certauth_core;

mod drain;
mod entry;
mod error;
mod gate;
pub mod lifecycle;
mod liveness;
mod one_request;
mod proxy_protocol;
mod serve;
mod table;
pub mod timer_thread;
mod websocket;

pub use drain::{Drain, Draining, Hold};
pub use error::AcceptError;
pub use gate::{Accepted, Gate, default_provider, gate, load_pem_files, upgrade};
pub use liveness::{Clock, Sleep};
pub use one_request::OneRequest;
pub use proxy_protocol::{ReadBeforeTls, proxied_client};
pub use serve::{PlainListener, PlainPeer, serve, serve_connections, serve_plain, serve_websocket};
pub use table::{Slot, Table, Woken};
pub use websocket::DrainingWebSocket;

/// What the engine needs of an async runtime: spawning and cancelling a connection's task,
/// a timer, accepting on its listeners, and the TLS handshake on its TCP streams.
pub trait Runtime: Copy + Send + Sync + 'static {
    /// A spawned task: detaching it ([`Self::detach`]) lets it run on, [`Self::cancel`]
    /// stops it.
    type Task: Send + 'static;
    /// A TCP listener.
    type TcpListener: Send + Sync;
    /// An accepted TCP stream.
    type Tcp: Send + 'static;
    /// A Unix-domain listener.
    type UnixListener: Send + Sync;
    /// An accepted Unix-domain stream.
    type Unix: Send + 'static;
    /// A TLS stream over [`Self::Tcp`].
    type Tls: Send + 'static;

    /// The next TCP connection.
    fn accept_tcp(
        listener: &Self::TcpListener,
    ) -> impl Future<Output = io::Result<(Self::Tcp, SocketAddr)>> + Send;
    /// The next Unix-domain connection.
    fn accept_unix(
        listener: &Self::UnixListener,
    ) -> impl Future<Output = io::Result<Self::Unix>> + Send;

    /// Runs `task` on the runtime.
    fn spawn(task: impl Future<Output = ()> + Send + 'static) -> Self::Task;
    /// Stops a task.
    fn cancel(task: Self::Task);
    /// Lets a task run to its end without its handle.
    fn detach(task: Self::Task);
    /// A future that resolves at `deadline`.
    fn sleep_until(deadline: Instant) -> Sleep;
    /// The server side of a TLS handshake on `tcp` with `config`.
    fn tls_accept(
        config: Arc<rustls::ServerConfig>,
        tcp: Self::Tcp,
    ) -> impl Future<Output = io::Result<Self::Tls>> + Send;
    /// The handshake's rustls connection (the peer's chain, the negotiated facts).
    fn tls_connection(tls: &Self::Tls) -> &rustls::ServerConnection;
    /// The TCP peer's address.
    fn tls_remote(tls: &Self::Tls) -> Option<IpAddr>;

    /// The runtime's clock and timer, for the WebSocket deadlines.
    fn clock() -> Clock {
        Clock::new(Instant::now, Self::sleep_until)
    }
}

/// A runtime's byte stream `S` as the engine reads and writes it (`futures-io`), and back:
/// tokio wraps its streams, futures-io runtimes hand them over as they are.
pub trait Compat<S>: Runtime {
    /// `S` as `futures-io`.
    type Io: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin;
    /// Wraps `S`.
    fn wrap(io: S) -> Self::Io;
    /// Unwraps it.
    fn unwrap(io: Self::Io) -> S;
}

#[cfg(test)]
mod tests;
