//! Socket.IO (feature `socketio`): the connect middleware that refuses unauthenticated
//! sockets ([`require_client_cert`]) and the layer that binds each Engine.IO session to the
//! certificate that opened it ([`SocketIoSessions`]).
//!
//! An Engine.IO session is named by its `sid`, which travels in URLs (and so in access
//! logs): it must not work as a bearer token. socketioxide finds a session by its sid
//! alone, so [`SocketIoSessions`] stands in front of it: a request carrying a sid reaches
//! socketioxide only when [`CertAuthLayer`](crate::CertAuthLayer) authenticated it with the
//! certificate (the leaf's SHA-256) that opened the session. Sessions opened over a
//! WebSocket never send a sid and need no binding; sessions opened by clients that did not
//! authenticate cannot be reached by any later request (over a WebSocket they still get
//! their connect error, from [`require_client_cert`]).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use certauth_core::Authenticated;
use http::{Request, Response};
use hyper::body::{Body, Bytes, Frame, SizeHint};
use tracing::warn;

use crate::{AuthRejection, BoxFuture, missing_layer, to_response};

/// Socket.IO connect middleware (socketioxide): refuses the connection with a connect
/// error unless [`CertAuthLayer::annotate_only`](crate::CertAuthLayer::annotate_only)
/// authenticated the handshake request and [`SocketIoSessions`] guards the sessions, and
/// stores the [`Authenticated`] client in the socket's extensions (the seed's
/// `socket.clientCert`). Use as `io.ns("/", handler.with(require_client_cert))`, added
/// last so that it runs first; register events in a middleware after it (not in `handler`,
/// which socketioxide spawns only after acknowledging the connection, so an event a client
/// emits at once can beat its `s.on` and be dropped).
pub async fn require_client_cert(socket: socketioxide::extract::SocketRef) -> Result<(), String> {
    let parts = socket.req_parts();
    if parts.extensions.get::<Guarded>().is_none() {
        warn!(
            "Socket.IO connection refused: add certauth_hyper::SocketIoSessions between CertAuthLayer and socketioxide's layer"
        );
        return Err("Authentication failed (certauth SocketIoSessions layer missing)".to_owned());
    }
    if let Some(client) = parts.extensions.get::<Authenticated>().cloned() {
        socket.extensions.insert(client);
        return Ok(());
    }
    Err(match parts.extensions.get::<AuthRejection>() {
        Some(r) => format!("Authentication failed ({})", r.0.code()),
        None => "Authentication failed (certauth layer missing)".to_owned(),
    })
}

/// Marks a request [`SocketIoSessions`] has seen, for [`require_client_cert`].
#[derive(Clone, Copy, Debug)]
struct Guarded;

/// The tower layer that binds Engine.IO sessions to the certificate that opened them. Put
/// it between [`CertAuthLayer::annotate_only`](crate::CertAuthLayer::annotate_only) and
/// socketioxide's layer:
/// `Router::new().layer(socketio).layer(SocketIoSessions::new()).layer(CertAuthLayer::new(auth).annotate_only())`.
///
/// On socketioxide's path (default `/socket.io`), a request with a `sid` is refused unless it
/// was authenticated (the refusal's own response, 401 with its code) by the certificate
/// that opened that session (otherwise 400 `Session ID unknown`, as Engine.IO answers an
/// unknown sid, so that the answer does not tell whether the session exists). Cheap to
/// clone; clones share the sessions.
#[derive(Clone, Debug)]
pub struct SocketIoSessions {
    sessions: Arc<Sessions>,
    path: Arc<str>,
}

impl Default for SocketIoSessions {
    fn default() -> Self {
        Self::new()
    }
}

impl SocketIoSessions {
    /// Guards socketioxide's default path, `/socket.io`; a session's binding is forgotten
    /// after 2 minutes without a request (a polling client asks at least every
    /// `ping_interval`, 25 s by default; a session upgraded to a WebSocket sends none).
    pub fn new() -> Self {
        Self {
            sessions: Arc::new(Sessions::new(Duration::from_secs(120))),
            path: Arc::from("/socket.io"),
        }
    }

    /// Guards `path`: the `req_path` given to socketioxide.
    pub fn req_path(mut self, path: &str) -> Self {
        self.path = Arc::from(path);
        self
    }

    /// Forgets a binding after `idle` without a request. Keep it above socketioxide's
    /// `ping_interval` plus `ping_timeout`: past it a polling session is refused.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.sessions = Arc::new(Sessions::new(idle));
        self
    }
}

impl<S> tower_layer::Layer<S> for SocketIoSessions {
    type Service = SessionGuard<S>;

    fn layer(&self, inner: S) -> SessionGuard<S> {
        SessionGuard {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`SocketIoSessions`] makes.
#[derive(Clone, Debug)]
pub struct SessionGuard<S> {
    inner: S,
    layer: SocketIoSessions,
}

impl<S, B, ResBody> tower_service::Service<Request<B>> for SessionGuard<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<SessionBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let mut bind = None;
        if is_req_path(req.uri().path(), &self.layer.path) {
            req.extensions_mut().insert(Guarded);
            let owner = req
                .extensions()
                .get::<Authenticated>()
                .map(|c| *c.certificate().fingerprint_sha256());
            match (engine_sid(req.uri().query()), owner) {
                (Some(sid), owner) => {
                    if let Some(refused) = self.layer.sessions.refusal(sid, owner, &req) {
                        return Box::pin(async move { Ok(refused) });
                    }
                }
                // A session opened by this client: bind the sid its answer carries.
                (None, Some(owner)) => bind = Some(Bind(Arc::clone(&self.layer.sessions), owner)),
                (None, None) => {}
            }
        }
        let future = self.inner.call(req);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| SessionBody(Inner::Body { body, bind })))
        })
    }
}

/// `path` is under socketioxide's `req_path`, as engineioxide matches it.
fn is_req_path(path: &str, req_path: &str) -> bool {
    path.strip_prefix(req_path)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || req_path.ends_with('/'))
}

/// The sid a request names, read as engineioxide reads it (the first `sid=` in the query,
/// as written): any difference would let a request name one session here and another there.
fn engine_sid(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|s| s.strip_prefix("sid="))
}

/// The sid in the first bytes of an Engine.IO open packet (`0{"sid":"…",…}`, or with v3's
/// length prefix), if they are one.
fn opened_sid(data: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(data).ok()?;
    let packet = match text.split_once(':') {
        Some((length, packet)) if length.bytes().all(|b| b.is_ascii_digit()) => packet,
        _ => text,
    };
    let rest = packet.strip_prefix("0{")?;
    let start = rest.find("\"sid\":\"")? + 7;
    let sid = rest.get(start..)?.split('"').next()?;
    let valid = (1..=64).contains(&sid.len())
        && sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    valid.then_some(sid)
}

/// Which certificate opened which session, and when each was last used.
#[derive(Debug)]
struct Sessions {
    idle: Duration,
    owners: Mutex<Owners>,
}

#[derive(Debug, Default)]
struct Owners {
    by_sid: HashMap<Box<str>, ([u8; 32], Instant)>,
    /// Sweep forgotten sessions when the map reaches this size (amortized: at least twice
    /// what the last sweep left).
    sweep_at: usize,
}

const FIRST_SWEEP: usize = 1024;

impl Sessions {
    fn new(idle: Duration) -> Self {
        Self {
            idle,
            owners: Mutex::new(Owners {
                by_sid: HashMap::new(),
                sweep_at: FIRST_SWEEP,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Owners> {
        self.owners.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bind(&self, sid: &str, owner: [u8; 32], now: Instant) {
        let mut owners = self.lock();
        if owners.by_sid.len() >= owners.sweep_at {
            owners
                .by_sid
                .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < self.idle);
            owners.sweep_at = owners.by_sid.len().saturating_mul(2).max(FIRST_SWEEP);
        }
        owners.by_sid.insert(sid.into(), (owner, now));
    }

    /// The response refusing a request authenticated as `owner` (`None`: not
    /// authenticated) that names session `sid`; `None` if it may reach the session.
    fn refusal<B, R>(
        &self,
        sid: &str,
        owner: Option<[u8; 32]>,
        req: &Request<B>,
    ) -> Option<Response<SessionBody<R>>> {
        let Some(owner) = owner else {
            warn!(sid = ?sid, "Engine.IO request refused: not authenticated");
            return Some(match req.extensions().get::<AuthRejection>() {
                Some(r) => to_response(r.0.response(), req.version()),
                None => missing_layer(),
            });
        };
        let now = Instant::now();
        let mut owners = self.lock();
        match owners.by_sid.get_mut(sid) {
            Some((bound, seen))
                if *bound == owner && now.saturating_duration_since(*seen) < self.idle =>
            {
                *seen = now;
                None
            }
            found => {
                let why = match found {
                    Some((bound, _)) if *bound != owner => "opened by another certificate",
                    Some(_) => "idle past the binding's timeout",
                    None => "not opened by an authenticated client over polling",
                };
                warn!(sid = ?sid, "Engine.IO request refused: session {why}");
                let mut r = Response::new(SessionBody::from(
                    r#"{"code":1,"message":"Session ID unknown"}"#.to_owned(),
                ));
                *r.status_mut() = http::StatusCode::BAD_REQUEST;
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                Some(r)
            }
        }
    }
}

/// Binds the session whose open packet the response body carries to `.1`.
#[derive(Debug)]
struct Bind(Arc<Sessions>, [u8; 32]);

/// The body of a response through [`SessionGuard`]: the inner service's (read once to bind
/// a session it opens), or the guard's refusal.
#[derive(Debug)]
pub struct SessionBody<B>(Inner<B>);

#[derive(Debug)]
enum Inner<B> {
    Body { body: B, bind: Option<Bind> },
    Refusal(Option<Bytes>),
}

impl<B> From<String> for SessionBody<B> {
    fn from(text: String) -> Self {
        Self(Inner::Refusal(Some(Bytes::from(text))))
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for SessionBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match &mut self.get_mut().0 {
            Inner::Body { body, bind } => {
                let frame = ready!(Pin::new(body).poll_frame(cx));
                // The open packet is the first data: bound before the client can read it.
                if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref))
                    && let (Some(data), Some(Bind(sessions, owner))) = (data, bind.take())
                    && let Some(sid) = opened_sid(data)
                {
                    sessions.bind(sid, owner, Instant::now());
                }
                Poll::Ready(frame)
            }
            Inner::Refusal(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Body { body, .. } => body.is_end_stream(),
            Inner::Refusal(text) => text.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Body { body, .. } => body.size_hint(),
            Inner::Refusal(text) => SizeHint::with_exact(
                text.as_ref()
                    .map_or(0, |t| u64::try_from(t.len()).unwrap_or(u64::MAX)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sid_is_read_as_engineioxide_reads_it() {
        assert_eq!(
            engine_sid(Some("EIO=4&transport=polling&sid=abc&sid=def")),
            Some("abc")
        );
        assert_eq!(engine_sid(Some("EIO=4&transport=polling")), None);
        assert_eq!(engine_sid(Some("EIO=4&xsid=abc")), None);
        assert_eq!(engine_sid(None), None);
        assert!(is_req_path("/socket.io/", "/socket.io"));
        assert!(is_req_path("/socket.io", "/socket.io"));
        assert!(!is_req_path("/socket.io-admin", "/socket.io"));
        assert_eq!(
            opened_sid(br#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"]}"#),
            Some("lv_VI97HAXpY6yYWAAAC")
        );
        assert_eq!(
            opened_sid(br#"96:0{"sid":"abc","pingInterval":25000}"#),
            Some("abc")
        );
        assert_eq!(opened_sid(br#"4{"sid":"abc"}"#), None, "not an open packet");
        assert_eq!(opened_sid(br#"0{"sid":"a\"b"}"#), None);
    }
}
