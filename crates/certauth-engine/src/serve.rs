//! The serve loop: accepts, asks the core's `Connections` whom to admit, shed and time out,
//! runs each connection in its own task, backs off when accepting fails, and drains.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use certauth_core::observe::Event;
use certauth_core::{Authenticated, Authenticator, Limits, PeerInfo};
use futures_io::{AsyncRead, AsyncWrite};
use tracing::field::Empty;
use tracing::{Instrument as _, debug, info, warn};

use crate::gate::{decide_on, reject, upgrade_at};
use crate::lifecycle::{Accept, Admission, Identity, Phase, ServeOptions, Shed};
use crate::proxy_protocol::ReadBeforeTls;
use crate::{AcceptError, Accepted, Compat, DrainingWebSocket, Gate, Runtime, Sleep, Slot, Table};

/// What the loop accepts from: a runtime's TCP or Unix-domain listener.
trait Listener: Send {
    type Io: Send + 'static;
    type Addr: PeerAddr;
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Io, Self::Addr)>> + Send;
}

/// A peer's address as the loop logs it and as the core sees it in header mode (no TLS
/// chain: the certificate comes from the proxy's headers).
trait PeerAddr: Copy + fmt::Display + Send + 'static {
    fn peer(self) -> PeerInfo<'static>;
}

impl PeerAddr for SocketAddr {
    fn peer(self) -> PeerInfo<'static> {
        PeerInfo::new(&[], Some(self.ip()))
    }
}

/// Whom a [`PlainListener`] accepted: a TCP peer (its address is checked against the
/// trusted proxies) or the peer of a Unix-domain socket (logged as `unix`: the proxy's end
/// has no address worth logging; trusted as the configuration's `trust_unix_socket` says).
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum PlainPeer {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// The peer of a Unix-domain socket.
    Unix,
}

impl fmt::Display for PlainPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => addr.fmt(f),
            Self::Unix => f.write_str("unix"),
        }
    }
}

impl PeerAddr for PlainPeer {
    fn peer(self) -> PeerInfo<'static> {
        match self {
            Self::Tcp(addr) => addr.peer(),
            Self::Unix => PeerInfo::unix_socket(),
        }
    }
}

/// A listener [`serve_plain`] (header mode) accepts from: the runtime's TCP listener, or
/// its Unix-domain listener for a proxy on the same host (nginx `proxy_pass
/// http://unix:/run/app.sock:`), where the socket is the trust boundary: the
/// authenticator's proxy configuration must trust it
/// ([`ProxyHeaderConfig::trust_unix_socket`](certauth_core::ProxyHeaderConfig::trust_unix_socket));
/// make the socket file writable by the proxy alone. Each runtime crate implements it for
/// both of its listeners (`entry_points!`).
pub trait PlainListener<R: Runtime>: Send + Sync {
    /// The stream it accepts.
    type Io: Send + 'static;
    /// The next connection and its peer.
    #[doc(hidden)]
    fn accept_plain(&self) -> impl Future<Output = io::Result<(Self::Io, PlainPeer)>> + Send;
}

/// A [`PlainListener`] as the loop accepts from it.
struct Plain<R, L>(L, PhantomData<fn() -> R>);

impl<R: Runtime, L: PlainListener<R>> Listener for Plain<R, L> {
    type Io = L::Io;
    type Addr = PlainPeer;
    fn accept(&self) -> impl Future<Output = io::Result<(L::Io, PlainPeer)>> + Send {
        self.0.accept_plain()
    }
}

struct Tcp<R: Runtime>(R::TcpListener, PhantomData<fn() -> R>);

impl<R: Runtime> Listener for Tcp<R> {
    type Io = R::Tcp;
    type Addr = SocketAddr;
    fn accept(&self) -> impl Future<Output = io::Result<(R::Tcp, SocketAddr)>> + Send {
        R::accept_tcp(&self.0)
    }
}

/// What a connection's task runs next, boxed.
type Next = Pin<Box<dyn Future<Output = ()> + Send>>;

/// After the gate, in a serve helper: logs the outcome (`tracing`; a refusal with its
/// code); a client let in leaves the pre-authentication phase. Returns what to run: the
/// handler, or the per-identity refusal. Not async, and boxing what it returns: an async
/// function keeps its arguments for as long as it runs, and the accepted connection (its TLS
/// stream, head and client) would be held twice for the connection's life, once moved out.
fn admitted<R, S, Fut>(
    result: Result<Accepted<S>, AcceptError>,
    conn: &Slot<R::Task>,
    handler: impl FnOnce(Accepted<S>) -> Fut,
) -> Option<Next>
where
    R: Runtime,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    match result {
        Ok(mut accepted) => {
            let client = &accepted.client;
            // Quoted (Debug): a subject's spaces and `=` cannot forge fields of the text log.
            info!(client = ?client.to_string(), reused = client.reused(), "client authenticated");
            if let Err(refused) = conn.open(Some(Identity::of(client)), Instant::now()) {
                warn!(code = refused.code(), "client refused: {refused}");
                return Some(Box::pin(async move {
                    let limits = accepted.limits;
                    reject::<R, _>(&mut accepted.io, &refused.response(), &limits).await;
                }));
            }
            accepted.drain = conn.drain().clone();
            Some(Box::pin(handler(accepted)))
        }
        Err(AcceptError::Denied(d)) => {
            warn!(
                code = d.code(),
                status = d.status().code(),
                subject = d.subject(),
                "client rejected: {d}"
            );
            None
        }
        Err(e) => {
            debug!(error = %e, "connection closed before authentication");
            None
        }
    }
}

/// Serves authenticated TLS clients: runs the lifecycle ([`serve_connections`]) and, for
/// each client the gate lets in, `handler` in the connection's task. Rejected clients get
/// the core's response and are logged (`tracing`, with the code).
pub async fn serve<R, F, Fut>(
    listener: R::TcpListener,
    gate: Gate<R>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
    handler: F,
) -> io::Result<()>
where
    R: Compat<<R as Runtime>::Tls> + ReadBeforeTls,
    R::Io: Send + 'static,
    F: Fn(Accepted<R::Tls>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    serve_tls(listener, gate, options, shutdown, move |accepted| {
        handler(accepted.map_io(R::unwrap))
    })
    .await
}

/// [`serve`] for WebSocket clients: each authenticated client runs `handler` with its
/// WebSocket, which on shutdown is sent a 1001 close.
pub async fn serve_websocket<R, F, Fut>(
    listener: R::TcpListener,
    gate: Gate<R>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
    handler: F,
) -> io::Result<()>
where
    R: Compat<<R as Runtime>::Tls> + ReadBeforeTls,
    R::Io: Send + 'static,
    F: Fn(DrainingWebSocket<WebSocketStream<R::Io>>, Authenticated) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    let (ws, paths) = (gate.ws, gate.paths.clone());
    serve_tls(listener, gate, options, shutdown, move |accepted| {
        // Boxed before the block below captures it: the block keeps the connection only
        // through the upgrade's box, which is freed once the WebSocket is open.
        let upgrade = Box::pin(upgrade_at::<R, _>(accepted, ws, paths.clone()));
        let handler = Arc::clone(&handler);
        async move {
            // Moved out whole before the handler's await: a match on `upgrade.await` would
            // keep the upgrade's result (the WebSocket, moved out) in this block for life.
            let (ws, client) = match upgrade.await {
                Ok(upgraded) => upgraded,
                Err(e) => return debug!(error = %e, "not a WebSocket upgrade"),
            };
            Box::pin(handler(ws, client)).await;
        }
    })
    .await
}

/// The TLS gate in the lifecycle, handing on each admitted client over the engine's view of
/// its stream.
async fn serve_tls<R, F, Fut>(
    listener: R::TcpListener,
    gate: Gate<R>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
    handler: F,
) -> io::Result<()>
where
    R: Compat<<R as Runtime>::Tls> + ReadBeforeTls,
    R::Io: Send + 'static,
    F: Fn(Accepted<R::Io>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    let limits = *gate.auth.limits();
    let first = Phase::Handshake;
    let options = crate::proxy_protocol::options(&gate, options);
    let proxies = options.proxy_protocol.clone();
    lifecycle::<R, _, _, _>(
        Tcp::<R>(listener, PhantomData),
        limits,
        options,
        first,
        shutdown,
        move |tcp, addr, conn| {
            let (gate, handler) = (gate.clone(), Arc::clone(&handler));
            let proxies = proxies.clone();
            async move {
                // Boxed: the handshake's and the head's state is freed once the client is
                // in, instead of sizing the connection's task for its whole life.
                let accepted = Box::pin(async {
                    let (tcp, client) =
                        crate::proxied_client::<R>(proxies.as_deref(), tcp, addr, &conn).await?;
                    let handshake = gate.handshake(tcp).await?;
                    conn.advance(Phase::Head, Instant::now());
                    gate.after_handshake(handshake, None, Some(client.ip()))
                        .await
                })
                .await;
                if let Some(next) = admitted::<R, _, _>(accepted, &conn, &*handler) {
                    next.await;
                }
            }
        },
    )
    .await
}

/// [`serve`] for clients behind a TLS-terminating proxy (header mode): plain TCP (or a
/// Unix-domain socket: [`PlainListener`]), the certificate from the proxy's headers, the
/// peer for the trusted-proxy check. It reads no PROXY-protocol header: options with
/// [`ServeOptions::proxy_protocol`] are an `InvalidInput` error (certauth-hyper's
/// `serve_with` reads one in header mode too).
pub async fn serve_plain<R, L, F, Fut>(
    listener: L,
    auth: Authenticator,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
    handler: F,
) -> io::Result<()>
where
    L: PlainListener<R>,
    R: Compat<L::Io>,
    R::Io: Send,
    F: Fn(Accepted<L::Io>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = Plain::<R, L>(listener, PhantomData);
    serve_header_mode::<R, _, _, _>(listener, auth, options, shutdown, handler).await
}

/// Why header mode here refuses [`ServeOptions::proxy_protocol`].
const NO_PROXY_PROTOCOL: &str = "serve_plain reads no PROXY-protocol header: serve header mode \
with certauth-hyper's serve_with to combine it with ServeOptions::proxy_protocol";

/// Header mode on any listener: the peer (its address, or the Unix socket) for the
/// trusted-proxy check, the certificate from the proxy's headers.
async fn serve_header_mode<R, L, F, Fut>(
    listener: L,
    auth: Authenticator,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
    handler: F,
) -> io::Result<()>
where
    R: Compat<L::Io>,
    L: Listener,
    R::Io: Send,
    F: Fn(Accepted<L::Io>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if options.proxy_protocol.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            NO_PROXY_PROTOCOL,
        ));
    }
    let handler = Arc::new(handler);
    auth.warnings().iter().for_each(|w| warn!("{w}"));
    let limits = *auth.limits();
    lifecycle::<R, _, _, _>(
        listener,
        limits,
        options,
        Phase::Head,
        shutdown,
        move |io, addr, conn| {
            let (auth, handler) = (auth.clone(), Arc::clone(&handler));
            async move {
                // Boxed, as the TLS gate is: its state is freed once the client is in.
                let result =
                    Box::pin(decide_on::<R, _>(&auth, R::wrap(io), addr.peer(), None)).await;
                let next = admitted::<R, _, _>(result, &conn, |accepted| {
                    handler(accepted.map_io(R::unwrap))
                });
                if let Some(next) = next {
                    next.await;
                }
            }
        },
    )
    .await
}

fn cancel<R: Runtime>(shed: Shed<R::Task>) {
    if let Some(notice) = &shed.log {
        warn!("{notice}");
    }
    if let Some(task) = shed.handle {
        R::cancel(task);
    }
}

/// Accept-error back-off: the first wait and the longest.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_millis(250);

/// How long to wait after a failed accept, given how many failed in a row before it: a
/// client that left before its accept is retried at once (`None`); running out of
/// descriptors, buffers or memory backs off, longer each time in a row (5 ms doubling up to
/// 250 ms), so the loop never spins and serves again as soon as descriptors free up.
fn backoff(error: &io::Error, failures: u32) -> Option<Duration> {
    use io::ErrorKind as K;
    let transient = matches!(
        error.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::Interrupted | K::WouldBlock
    );
    let retry = BACKOFF_MIN.saturating_mul(1 << failures.min(6));
    (!transient).then(|| retry.min(BACKOFF_MAX))
}

/// What woke the loop.
enum Step<T> {
    Shutdown,
    Look,
    Accepted(io::Result<T>),
}

/// The connection lifecycle: accepts on `listener` until `shutdown` completes, asks the
/// [`Connections`](crate::lifecycle::Connections) whom to admit, shed and
/// time out (connections start in `first`), and runs `connection` for each admitted one in
/// its own task. On shutdown the listener is closed at once, connections not yet
/// authenticated are closed, the others get `options.grace` (their drain signal fires) and
/// are then cancelled. One timer (the loop's) bounds every pending connection, so a
/// connection costs no timer of its own.
pub async fn serve_connections<R, F, Fut>(
    listener: R::TcpListener,
    limits: Limits,
    options: ServeOptions,
    first: Phase,
    shutdown: impl Future<Output = ()>,
    connection: F,
) -> io::Result<()>
where
    R: Runtime,
    F: Fn(R::Tcp, SocketAddr, Slot<R::Task>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = Tcp::<R>(listener, PhantomData);
    lifecycle::<R, _, _, _>(listener, limits, options, first, shutdown, connection).await
}

/// [`serve_connections`] on any listener.
async fn lifecycle<R, L, F, Fut>(
    listener: L,
    limits: Limits,
    options: ServeOptions,
    first: Phase,
    shutdown: impl Future<Output = ()>,
    connection: F,
) -> io::Result<()>
where
    R: Runtime,
    L: Listener,
    F: Fn(L::Io, L::Addr, Slot<R::Task>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let grace = options.grace;
    let table = Table::<R::Task>::new(options, &limits);
    let mut shutdown = pin!(shutdown);
    let mut timer: Option<(Instant, Sleep)> = None;
    let mut failures = 0u32;
    loop {
        let poll = table.lock().poll(Instant::now());
        poll.expired.into_iter().for_each(cancel::<R>);
        if let Some(notice) = poll.full {
            warn!("{notice}");
        }
        // One timer for the whole loop, moved only when the earliest deadline moves.
        if timer.as_ref().map(|(at, _)| *at) != poll.timeout {
            timer = poll.timeout.map(|at| (at, R::sleep_until(at)));
        }
        let mut accept = pin!(async {
            match poll.accept {
                Accept::Now => listener.accept().await,
                _ => std::future::pending().await,
            }
        });
        let mut woken = table.woken();
        let step = poll_fn(|cx| {
            if shutdown.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Step::Shutdown);
            }
            if let Poll::Ready(r) = accept.as_mut().poll(cx) {
                return Poll::Ready(Step::Accepted(r));
            }
            if let Some((_, sleep)) = &mut timer
                && sleep.as_mut().poll(cx).is_ready()
            {
                timer = None;
                return Poll::Ready(Step::Look);
            }
            match Pin::new(&mut woken).poll(cx) {
                Poll::Ready(()) => Poll::Ready(Step::Look),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let (io, addr) = match step {
            Step::Shutdown => break,
            Step::Look => continue,
            Step::Accepted(Ok(c)) => {
                failures = 0;
                c
            }
            Step::Accepted(Err(e)) => {
                let Some(retry) = backoff(&e, failures) else {
                    continue;
                };
                failures = failures.saturating_add(1);
                let now = Instant::now();
                let (log, shed) = {
                    let mut connections = table.lock();
                    let log = connections.notice(Event::AcceptFailed, now, || {
                        format!("accept failed ({e}); backing off {retry:?}")
                    });
                    (log, connections.shed_stalest(now))
                };
                if let Some(notice) = log {
                    warn!("{notice}");
                }
                shed.into_iter().for_each(cancel::<R>);
                R::sleep_until(now + retry).await;
                continue;
            }
        };
        let admission = table
            .lock()
            .admit(addr.peer().remote_addr, first, Instant::now());
        match admission {
            Admission::Refused {
                log: Some(notice), ..
            } => warn!(remote = %addr, "{notice}"),
            Admission::Admitted { id, shed } => {
                shed.into_iter().for_each(cancel::<R>);
                let span = tracing::info_span!("certauth", remote = %addr, client_addr = Empty);
                let run = connection(io, addr, table.slot(id));
                let table_of_task = table.clone();
                let task = R::spawn(
                    async move {
                        run.await;
                        // Its handle is no use once it has ended, and would keep its memory.
                        let handle = table_of_task.lock().task_finished(id);
                        handle.into_iter().for_each(R::detach);
                    }
                    .instrument(span),
                );
                let ended = table.lock().set_handle(id, task);
                ended.into_iter().for_each(R::detach);
            }
            _ => {}
        }
    }
    drop(listener);
    let pending = table.lock().drain();
    pending.into_iter().for_each(R::cancel);
    info!(
        open = table.lock().len(),
        "shutting down: draining connections"
    );
    table.drain().signal();
    let finished = async {
        while !table.lock().is_empty() {
            table.woken().await;
        }
        table.drain().released().await;
    };
    if crate::gate::within::<R, _>(Some(grace), finished)
        .await
        .is_none()
    {
        warn!(
            left = table.lock().len(),
            "grace period over: cancelling connections"
        );
        table.drain().cancel();
        let tasks = table.lock().cancel_all();
        tasks.into_iter().for_each(R::cancel);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn accept_errors_back_off_doubling_and_never_spin() {
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(backoff(&aborted, 3), None, "a client that left: at once");
        let emfile = io::Error::from_raw_os_error(24);
        let waits: Vec<Option<Duration>> = (0..9).map(|n| backoff(&emfile, n)).collect();
        assert_eq!(
            waits,
            [5, 10, 20, 40, 80, 160, 250, 250, 250].map(|n| Some(ms(n))),
            "doubling, capped"
        );
        assert_eq!(backoff(&emfile, u32::MAX), Some(ms(250)));
    }
}
