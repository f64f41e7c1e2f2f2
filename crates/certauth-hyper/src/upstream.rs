//! The front door's proxy (feature `upstream`): [`Upstream`] is a tower service that
//! forwards each request to an HTTP/1.1 upstream (`http://HOST:PORT` or `unix:/PATH`), with
//! the client's identity in headers ([`certauth_core::forward`] decides which headers go
//! and how the identity is written). Put [`CertAuthLayer`](crate::CertAuthLayer) in front
//! of it and serve it with [`serve`](crate::serve): only allowed requests reach the
//! upstream. Bodies stream both ways (hyper's flow control: the client is read only as fast
//! as the upstream takes it, and the other way round), and an upgrade the upstream accepts
//! (a WebSocket) becomes a byte tunnel between the two, closed when the server's grace
//! period ends.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use certauth_core::forward;
use certauth_core::proxy::Preset;
use certauth_core::{Authenticated, ClientCertificate};
use http::{Request, Response, StatusCode};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tracing::{debug, warn};

use crate::{ConnState, ConnectionInfo, to_response};

mod drain;
pub(crate) mod limit;
mod tunnel;

pub use limit::Caps;

/// Upstream connections kept for reuse, at most (idle, or streaming a response body).
const MAX_IDLE: usize = 64;

/// Default time to connect to the upstream: past it the client gets 502.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time from sending a request to the upstream's response head: past it the client
/// gets 504.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the upstream listens.
#[derive(Clone, Debug)]
enum Target {
    Tcp(String),
    #[cfg(unix)]
    Unix(std::path::PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp(a) => write!(f, "http://{a}"),
            #[cfg(unix)]
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// The proxy to one upstream: a tower service answering every request with the upstream's
/// response, or with 400 (ambiguous framing, never forwarded), 502 (unreachable, or it
/// broke the connection), 503 (a cap on upstream work stayed full: [`Caps`]) or 504 (no
/// response head in time), each with a body naming the cause and a log line. Cheap to clone; clones share the idle connections.
///
/// A request carrying [`Authenticated`] (put there by [`CertAuthLayer`](crate::CertAuthLayer))
/// is forwarded with the client's identity ([`Self::identity`]); one without (an open path)
/// without any, and without its upgrade (a plain request: a tunnel would outlive the
/// unauthenticated connection's deadline and slot). Identity headers the client sent are
/// removed either way.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    target: Target,
    identity: Preset,
    connect_timeout: Duration,
    response_timeout: Duration,
    also_remove: Vec<String>,
    idle: Mutex<Vec<Pooled>>,
    places: limit::Places,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("target", &self.inner.target)
            .field("identity", &self.inner.identity)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// An upstream at `url`: `http://HOST:PORT` (a name is resolved at each connection) or
    /// `unix:/PATH` (a Unix-domain socket). Identity as RFC 9440 `Client-Cert` and
    /// `Client-Cert-Chain`; [`DEFAULT_CONNECT_TIMEOUT`] and [`DEFAULT_RESPONSE_TIMEOUT`].
    /// The error says which forms are accepted.
    pub fn new(url: &str) -> Result<Self, std::io::Error> {
        let bad = |why: &str| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "upstream {url:?}: {why} (expected http://HOST:PORT or unix:/PATH/TO.sock)"
                ),
            )
        };
        let target = if let Some(rest) = url.strip_prefix("http://") {
            let authority = rest.strip_suffix('/').unwrap_or(rest);
            if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
                return Err(bad("only a host and port, no path or user"));
            }
            let Some((host, port)) = authority.rsplit_once(':') else {
                return Err(bad("the port is missing"));
            };
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad("not HOST:PORT"));
            }
            Target::Tcp(authority.to_owned())
        } else if let Some(path) = url.strip_prefix("unix:") {
            #[cfg(unix)]
            {
                if path.is_empty() {
                    return Err(bad("the socket path is missing"));
                }
                Target::Unix(path.into())
            }
            #[cfg(not(unix))]
            return Err(bad(&format!("no Unix sockets on this system ({path})")));
        } else if url.starts_with("https://") {
            return Err(bad("TLS to the upstream is not supported"));
        } else {
            return Err(bad("unknown scheme"));
        };
        Ok(Self {
            inner: Arc::new(Inner {
                target,
                identity: Preset::Rfc9440,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                response_timeout: DEFAULT_RESPONSE_TIMEOUT,
                also_remove: Vec::new(),
                idle: Mutex::default(),
                places: limit::Places::default(),
            }),
        })
    }

    fn with(mut self, change: impl FnOnce(&mut Inner)) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            change(inner);
        }
        self
    }

    /// Writes the client's identity as `preset`'s proxy does
    /// ([`certauth_core::forward::identity_headers`]): `rfc9440` (the default), `envoy`
    /// (`X-Forwarded-Client-Cert`), `nginx`, …. Call before cloning.
    pub fn identity(self, preset: Preset) -> Self {
        self.with(|i| i.identity = preset)
    }

    /// Time to connect (default [`DEFAULT_CONNECT_TIMEOUT`]): past it, 502.
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        self.with(|i| i.connect_timeout = timeout)
    }

    /// Time the upstream may take to answer (default [`DEFAULT_RESPONSE_TIMEOUT`]): from
    /// the request's last byte to the response head, and while the request body is being
    /// sent, between two parts of it. Past it, 504. The response body has no deadline.
    pub fn response_timeout(self, timeout: Duration) -> Self {
        self.with(|i| i.response_timeout = timeout)
    }

    /// Further request headers to remove (besides every identity header name,
    /// [`certauth_core::forward::is_identity_header`]): a custom certificate header read in
    /// header mode.
    pub fn also_remove(self, names: impl IntoIterator<Item = String>) -> Self {
        self.with(|i| i.also_remove.extend(names))
    }

    /// Caps on the work clients can make the upstream do (default [`Caps::DEFAULT`]): a
    /// request past one waits for a place, first come first served, for at most the
    /// response timeout; then it is answered 503 with a body naming the cap, and a log line.
    /// Call before cloning.
    pub fn caps(self, caps: Caps) -> Self {
        self.with(|i| i.places = limit::Places::new(caps))
    }

    /// The upstream's address as configured (`http://…`, `unix:…`).
    pub fn target(&self) -> String {
        self.inner.target.to_string()
    }

    /// The request's whole way: prepared, admitted, sent, answered. Only its two waits (for
    /// a place, for the answer) are `async`; the steps between are plain functions, so that
    /// the future a request is boxed in holds what crosses a wait and no more: 480 bytes,
    /// down from 1.5 KiB with every local kept to its end, past the sizes glibc's allocator
    /// serves from its per-thread cache.
    #[expect(
        clippy::manual_async_fn,
        reason = "an `async fn` would keep the request twice (see the comment in the body)"
    )]
    fn forward(
        self,
        mut req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<ProxyBody>, Infallible>> + Send {
        // An `async` block, not an `async fn`, and the request prepared in place: the block
        // keeps it where it was captured (an `async fn` moves it into a second place).
        async move {
            let from = match self.prepare(&mut req) {
                Ok(from) => from,
                Err(refused) => return Ok(*refused),
            };
            // Shared with the request body: the upstream connection is busy until both the
            // response and the request body are done (an upstream may answer first). Waiting
            // for a place is boxed: most requests find one at once, and carry no room for it.
            let places = &self.inner.places;
            let held = match places.try_admit(&req, from.open) {
                Some(held) => held,
                None => match Box::pin(places.admit(&req, from.open, self.inner.response_timeout))
                    .await
                {
                    Ok(held) => held,
                    Err(why) => return Ok(plain(StatusCode::SERVICE_UNAVAILABLE, &why)),
                },
            };
            let (mut exchange, signals, after) = self.start(req, Arc::new(held), from);
            let answered = tokio::select! {
                biased;
                a = &mut exchange => Some(a),
                () = signals.failed.notified() => None,
            };
            Ok(self.answer(answered, after))
        }
    }

    /// The request as the upstream gets it (`forward::prepare_request_with`), and where it
    /// came from; or the answer to a request that is not forwarded.
    fn prepare(&self, req: &mut Request<Incoming>) -> Result<Arrival, Box<Response<ProxyBody>>> {
        let version = req.version();
        let remote = req
            .extensions()
            .get::<ConnectionInfo>()
            .and_then(ConnectionInfo::remote_addr)
            .map(|a| a.ip());
        let client = req.extensions().get::<Authenticated>();
        let inner = &self.inner;
        let conn = ConnState::of(req).cloned();
        let encode = |client: &Authenticated| match &conn {
            Some(conn) => conn.forwarded.headers(client, inner.identity),
            None => forward::identity_header_values(client, inner.identity),
        };
        let open = client.is_none();
        let client = client.cloned();
        let prepared =
            forward::prepare_request_with(req, client.as_ref(), encode, remote, &inner.also_remove);
        if let Err(e) = prepared {
            warn!(remote = ?remote, "request refused, not forwarded: {e}");
            return Err(Box::new(to_response(&e.response(), version)));
        }
        let from = Arrival { remote, conn, open };
        Ok(from)
    }

    /// The exchange with the upstream, started: its future (run by the caller, or in a task
    /// of its own if the caller drops it), what the request body signals, and what the
    /// answer needs.
    fn start(
        &self,
        mut req: Request<Incoming>,
        held: Arc<limit::Held>,
        from: Arrival,
    ) -> (
        Finish<impl Future<Output = Exchanged> + Send + 'static + use<>>,
        Arc<Signals>,
        After,
    ) {
        let inner = &self.inner;
        // Only an authenticated client's WebSocket upgrade is still one here
        // (`forward::prepare_request`: an h2c tunnel would carry requests no decision saw).
        let upgrade =
            forward::is_websocket_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
        // Under `serve`, its limits; else the defaults but for the tunnel's idle time.
        let limits = from.conn.as_ref().map_or(
            certauth_core::Limits::DEFAULT.with_websocket_idle_timeout(DEFAULT_TUNNEL_IDLE),
            |c| c.limits,
        );
        let after = After {
            remote: from.remote,
            upgrade,
            tunnel_clocks: (limits.websocket_idle_timeout, limits.tunnel_close_timeout),
            hold: (
                from.conn.as_ref().map(|c| c.conn.drain().clone()),
                from.conn,
            ),
        };
        let (mut parts, body) = req.into_parts();
        parts.version = http::Version::HTTP_11;
        // Origin-form (an HTTP/1.1 client's usual target) goes as it came; any other goes
        // as the path and query the decision read (`/` for none or an empty one: `#x`,
        // `http://h#x`; written as is it was an empty request line, attack review s9).
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        if parts.uri.scheme().is_some()
            || parts.uri.authority().is_some()
            || !target.starts_with('/')
        {
            let slash = if target.starts_with('/') { "" } else { "/" };
            let target = format!("{slash}{target}");
            parts.uri = http::Uri::try_from(target).unwrap_or_default();
        }
        parts.extensions = http::Extensions::new();
        let signals = Arc::new(Signals::default());
        let body = RequestBody {
            inner: body,
            upstream: Arc::clone(inner),
            signals: Arc::clone(&signals),
            stalled: None,
            _held: Arc::clone(&held),
        };
        // The exchange holds the request's places until the upstream's response head (or
        // the response timeout), even once the client is gone: a reset stream or a closed
        // connection must not free a place the upstream is still working for (limit.rs,
        // "Held until the upstream answers"). It runs in this task; dropped unfinished, it
        // goes on in a task of its own (`Finish`), so a request pays for no spawn. Its
        // response is a `ProxyBody` holding the places from the start: one nobody takes
        // (the client left before the head) is read to its end by its drop, as one whose
        // client left after it (the fourth review: dropped raw, it freed them at once).
        let (this, timeout, open) = (self.clone(), inner.response_timeout, from.open);
        let max_drain = limits.max_drain_bytes;
        let progress = Arc::clone(&signals);
        let request = Request::from_parts(parts, body);
        let exchange = Finish(Some(Box::pin(async move {
            // In a box of its own: both in this one, it was past the allocator's fast sizes
            // (1.3 KiB; each under 1 KiB now).
            let mut send = Box::pin(this.send(request));
            let sent = within(timeout, &progress.progress, send.as_mut()).await;
            let leftover = |budget| drain::Leftover {
                held: Arc::clone(&held),
                timeout,
                max: max_drain,
                budget,
                open,
            };
            let sent = sent.map(|r| {
                r.map(|(r, budget)| r.map(|b| ProxyBody(Kind::Upstream(b), Some(leftover(budget)))))
            });
            (sent, held)
        })));
        (exchange, signals, after)
    }

    /// The client's answer: the upstream's response, prepared (a WebSocket's `101` with its
    /// tunnel started), or what went wrong (`None`: the client's body broke).
    fn answer(&self, answered: Option<Exchanged>, after: After) -> Response<ProxyBody> {
        let inner = &self.inner;
        // No answer: the client's body broke.
        let Some((sent, held)) = answered else {
            warn!(remote = ?after.remote, "request refused: its body is malformed or cut");
            let body = "Bad Request: malformed request body\n";
            return plain(StatusCode::BAD_REQUEST, body);
        };
        let mut response = match sent {
            Some(Ok(response)) => response,
            Some(Err(Fail::Connect(e))) => {
                warn!(upstream = %inner.target, "upstream unreachable: {e}");
                return plain(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "Bad Gateway: the upstream is unreachable ({})\n",
                        io_cause(&e)
                    ),
                );
            }
            Some(Err(Fail::Http(e))) => {
                warn!(upstream = %inner.target, "upstream failed before its response head: {e}");
                return plain(
                    StatusCode::BAD_GATEWAY,
                    "Bad Gateway: the upstream closed the connection without a response\n",
                );
            }
            None => {
                let secs = inner.response_timeout.as_secs_f64();
                warn!(upstream = %inner.target, "upstream gave no response head within {secs}s");
                return plain(
                    StatusCode::GATEWAY_TIMEOUT,
                    &format!("Gateway Timeout: the upstream did not answer within {secs}s\n"),
                );
            }
        };
        let status = response.status();
        let switching = status == StatusCode::SWITCHING_PROTOCOLS;
        let websocket_101 = switching && forward::upgrades_to_websocket(response.headers());
        forward::prepare_response(status, response.headers_mut());
        if switching {
            match after.upgrade {
                Some(client_side) if websocket_101 => {
                    let upstream_side = hyper::upgrade::on(&mut response);
                    let tunnel =
                        tunnel::tunnel(client_side, upstream_side, after.tunnel_clocks, after.hold);
                    // The tunnel holds its upstream connection: its places go with it.
                    response.body_mut().1 = None;
                    tokio::spawn(async move {
                        tunnel.await;
                        drop(held);
                    });
                    return response;
                }
                // A 101 to a request that asked for no upgrade, or to another protocol than
                // WebSocket, cannot be relayed.
                _ => {
                    warn!(upstream = %inner.target, "upstream switched protocols unasked (or not to WebSocket)");
                    return plain(StatusCode::BAD_GATEWAY, "Bad Gateway: unexpected 101\n");
                }
            }
        }
        response
    }

    /// Sends on an idle connection, or a new one. A connection the upstream closed while
    /// idle gives the request back unsent: it goes on the next.
    ///
    /// An `async` block rather than an `async fn`: the block uses the request where it was
    /// captured, where an `async fn` would move it into a second place of its own.
    #[expect(
        clippy::manual_async_fn,
        reason = "an `async fn` would keep the request twice"
    )]
    fn send(
        &self,
        mut req: Request<RequestBody>,
    ) -> impl Future<Output = Result<Sent, Fail>> + Send + '_ {
        async move {
            loop {
                // Connecting is boxed: a request on a kept connection carries no room for it.
                let ((mut sender, budget), reused) = match self.idle() {
                    Some(s) => (s, true),
                    None => (Box::pin(self.connect()).await?, false),
                };
                let turn = budget.next_turn();
                match sender.try_send_request(req).await {
                    Ok(response) => {
                        self.recycle((sender, Arc::clone(&budget)));
                        return Ok((response, (budget, turn)));
                    }
                    Err(mut e) => match e.take_message() {
                        Some(unsent) if reused => req = unsent,
                        _ => return Err(Fail::Http(e.into_error())),
                    },
                }
            }
        }
    }

    /// A kept connection that is ready for a request (its last response read to the end);
    /// closed ones are dropped on the way.
    fn idle(&self) -> Option<Pooled> {
        let mut kept = self.kept();
        kept.retain(|(s, _)| !s.is_closed());
        let ready = kept.iter().position(|(s, _)| s.is_ready())?;
        Some(kept.swap_remove(ready))
    }

    /// Kept for reuse as soon as its response head is in (without a task to wait for the
    /// body: [`Self::idle`] takes it only once it is ready again), up to [`MAX_IDLE`]; past
    /// that, or after an upgrade, it closes once its response is done.
    fn recycle(&self, sender: Pooled) {
        let mut kept = self.kept();
        if kept.len() < MAX_IDLE {
            kept.push(sender);
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Vec<Pooled>> {
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn connect(&self) -> Result<Pooled, Fail> {
        let timeout = self.inner.connect_timeout;
        let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
        let io: Box<dyn crate::Io> = match &self.inner.target {
            Target::Tcp(addr) => {
                let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
                    .await
                    .map_err(|_| Fail::Connect(timed_out()))?
                    .map_err(Fail::Connect)?;
                let _ = tcp.set_nodelay(true);
                Box::new(tcp)
            }
            #[cfg(unix)]
            Target::Unix(path) => Box::new(
                tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path))
                    .await
                    .map_err(|_| Fail::Connect(timed_out()))?
                    .map_err(Fail::Connect)?,
            ),
        };
        let budget = drain::Budget::unlimited();
        let io = drain::Metered {
            io,
            budget: Arc::clone(&budget),
        };
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(Fail::Http)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                debug!(error = %e, "upstream connection ended with an error");
            }
        });
        Ok((sender, budget))
    }
}

/// Where a forwarded request came from, as [`Upstream::forward`] keeps it past
/// [`Upstream::prepare`].
struct Arrival {
    remote: Option<std::net::IpAddr>,
    conn: Option<Arc<ConnState>>,
    /// Without a client identity (an open path).
    open: bool,
}

/// What [`Upstream::answer`] needs of the request once it is sent.
struct After {
    remote: Option<std::net::IpAddr>,
    /// The client's side of a WebSocket upgrade it asked for.
    upgrade: Option<hyper::upgrade::OnUpgrade>,
    tunnel_clocks: (Duration, Duration),
    hold: (Option<certauth_engine::Drain>, Option<Arc<ConnState>>),
}

/// The exchange's outcome: the upstream's response (or why there is none; `None`: the
/// response timeout passed), and the request's places.
type Exchanged = (Option<Result<Response<ProxyBody>, Fail>>, Arc<limit::Held>);

/// The upstream's response head, and what its connection's socket may still read for the
/// rest of it (the budget and the request's turn on it).
type Sent = (Response<Incoming>, (Arc<drain::Budget>, u64));

/// An upstream connection's sender, and what its socket may still read.
type Pooled = (SendRequest<RequestBody>, Arc<drain::Budget>);

type Headers = Vec<(http::HeaderName, http::HeaderValue)>;
/// The headers with the preset and the DERs (leaf, then intermediates) they encode.
type Kept = (Preset, Vec<Vec<u8>>, Headers);

/// A connection's identity headers, kept from its last forwarded request: its requests all
/// carry the same certificate, so they are encoded once. Kept per connection (in its
/// `ConnState`), never shared with another, and keyed to what they were encoded from (the
/// certificate, the verified intermediates, the format): any other (header mode: one proxy
/// connection carries many clients) is encoded afresh.
#[derive(Debug, Default)]
pub(crate) struct IdentityMemo(Mutex<Option<Kept>>);

impl IdentityMemo {
    /// [`forward::identity_header_values`] of `client` in `preset`'s format.
    fn headers(&self, client: &Authenticated, preset: Preset) -> Headers {
        let intermediates = client.chain().map_or(&[][..], |c| c.intermediates());
        let ders = || {
            std::iter::once(client.certificate())
                .chain(intermediates)
                .map(ClientCertificate::der)
        };
        let mut memo = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &*memo {
            Some((kept, from, headers))
                if *kept == preset && from.iter().map(Vec::as_slice).eq(ders()) =>
            {
                headers.clone()
            }
            _ => {
                let headers = forward::identity_header_values(client, preset);
                let from = ders().map(<[u8]>::to_vec).collect();
                *memo = Some((preset, from, headers.clone()));
                headers
            }
        }
    }
}

/// `send`'s outcome (`None`: timed out), unless `timeout` passes without it and without `progress` (a part of
/// the request body taken by the upstream): an upload as slow as the client is never cut,
/// an upstream that sits on a request is.
async fn within<T>(
    timeout: Duration,
    progress: &tokio::sync::Notify,
    // Pinned by the caller: moved in, it would take room twice.
    mut send: Pin<&mut impl Future<Output = T>>,
) -> Option<T> {
    // On the timer thread (`certauth_tokio::Deadline`): pending while the upstream works,
    // a tokio timer would cost this thread's wait on its sockets a kernel timer.
    let mut timer = certauth_tokio::Deadline::after(timeout);
    loop {
        // In this order (no random draw per poll): the answer first, then the progress.
        tokio::select! {
            biased;
            r = &mut send => return Some(r),
            () = progress.notified() => timer = certauth_tokio::Deadline::after(timeout),
            () = &mut timer => return None,
        }
    }
}

/// A future that runs to its end even if its caller drops it: dropped unfinished, it is
/// spawned on the runtime (outside one, at shutdown, it is dropped).
struct Finish<F: Future<Output: Send> + Send + 'static>(Option<Pin<Box<F>>>);

impl<F: Future<Output: Send> + Send + 'static> Future for Finish<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(exchange) = self.0.as_mut() else {
            return Poll::Pending;
        };
        let out = std::task::ready!(exchange.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(out)
    }
}

impl<F: Future<Output: Send> + Send + 'static> Drop for Finish<F> {
    fn drop(&mut self) {
        if let (Some(exchange), Ok(runtime)) =
            (self.0.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(exchange);
        }
    }
}

/// Why a request got no response from the upstream.
#[derive(Debug)]
enum Fail {
    Connect(std::io::Error),
    Http(hyper::Error),
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connect: {e}"),
            Self::Http(e) => write!(f, "{e}"),
        }
    }
}

/// The cause of a connect failure in words a client may read (no address).
fn io_cause(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused",
        std::io::ErrorKind::TimedOut => "connect timed out",
        std::io::ErrorKind::NotFound => "no such socket",
        std::io::ErrorKind::PermissionDenied => "permission denied",
        _ => "connect failed",
    }
}

fn plain(status: StatusCode, body: &str) -> Response<ProxyBody> {
    let mut r = Response::new(ProxyBody::from(body.to_owned()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A relayed WebSocket's idle time, outside [`serve`](crate::serve) (which passes
/// [`Limits::websocket_idle_timeout`](certauth_core::Limits::websocket_idle_timeout)).
const DEFAULT_TUNNEL_IDLE: Duration = Duration::from_secs(300);

/// What a request body tells the request's exchange (one allocation for both).
#[derive(Default)]
struct Signals {
    /// The client's side broke: it is answered 400.
    failed: tokio::sync::Notify,
    /// A part of the body went upstream: the response timeout starts again.
    progress: tokio::sync::Notify,
}

/// The client's request body on its way upstream; cleans its trailers, and when the client's
/// side breaks (a bad chunk, a reset stream, a closed connection) tells `failed` (the client
/// is answered 400) but keeps the upstream waiting for the rest (`stalled`) until the response
/// timeout: the upstream may be working on the request, and its place is held until it answers.
struct RequestBody {
    inner: Incoming,
    /// For the names its trailers may not carry (`forward::prepare_trailers`) and the timeout.
    upstream: Arc<Inner>,
    signals: Arc<Signals>,
    /// The client's error, passed on to the upstream connection once the timer fires.
    stalled: Option<(Pin<Box<tokio::time::Sleep>>, Option<hyper::Error>)>,
    /// The request's places, also held by its response: an upstream that answers before it
    /// has read the body keeps its connection busy while the body goes on, and a request
    /// that could free its places there would let clients open upstream connections past
    /// the caps (the third attack review: 252 with a cap of 64).
    _held: Arc<limit::Held>,
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if let Some((timer, error)) = &mut self.stalled {
            std::task::ready!(timer.as_mut().poll(cx));
            return Poll::Ready(error.take().map(Err));
        }
        match std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Err(e)) => {
                self.signals.failed.notify_one();
                let timer = Box::pin(tokio::time::sleep(self.upstream.response_timeout));
                self.stalled = Some((timer, Some(e)));
                // Once more, for the timer to be polled.
                self.poll_frame(cx)
            }
            mut frame => {
                if let Some(trailers) = frame.as_mut().and_then(|f| f.as_mut().ok()?.trailers_mut())
                {
                    forward::prepare_trailers(trailers, &self.upstream.also_remove);
                }
                self.signals.progress.notify_one();
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.stalled.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body: the upstream's, streamed, or one of certauth's own.
#[derive(Debug)]
pub struct ProxyBody(
    Kind,
    /// The request's places at the caps and what draining needs: the upstream connection
    /// is busy until the body has been sent (or, the client gone, drained: `drain.rs`),
    /// and until the request body has (`RequestBody`).
    Option<drain::Leftover>,
);

impl Drop for ProxyBody {
    /// A client that left before the upstream's body ended: the rest is drained (`drain.rs`:
    /// read and dropped up to `Limits::max_drain_bytes` off the socket and the response
    /// timeout, the places held). Closing the upstream connection instead freed them while
    /// the upstream still worked (a handler that sends its head, then works): one
    /// connection without a certificate, resetting after each head, kept 16 of an
    /// upstream's workers busy under an open share of 8 (attack review s5, finding 1).
    fn drop(&mut self) {
        let (Some(leftover), Kind::Upstream(_)) = (self.1.take(), &self.0) else {
            return;
        };
        if let Kind::Upstream(body) = std::mem::replace(&mut self.0, Kind::Own(None)) {
            leftover.drain(body);
        }
    }
}

#[derive(Debug)]
enum Kind {
    Upstream(Incoming),
    Own(Option<Bytes>),
}

impl From<String> for ProxyBody {
    fn from(s: String) -> Self {
        Self(Kind::Own(Some(Bytes::from(s))), None)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.0 {
            Kind::Upstream(b) => {
                let frame = std::task::ready!(Pin::new(b).poll_frame(cx));
                if frame.is_none() {
                    // Read to its end: nothing for the drop to drain.
                    self.1 = None;
                }
                Poll::Ready(frame)
            }
            Kind::Own(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Upstream(b) => b.is_end_stream(),
            Kind::Own(b) => b.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Upstream(b) => b.size_hint(),
            Kind::Own(b) => SizeHint::with_exact(
                b.as_ref()
                    .map_or(0, |b| u64::try_from(b.len()).unwrap_or(u64::MAX)),
            ),
        }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower_service::Service<Request<Incoming>> for Upstream {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<ProxyBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        // Not wrapped in another `async` block: that one would keep room for the request
        // beside the future it moved it into.
        Box::pin(self.clone().forward(req))
    }
}
