//! Socket.IO (feature `socketio`): the connect middleware that refuses unauthenticated
//! sockets ([`require_client_cert`]) and the layer that binds each Engine.IO session to the
//! certificate that opened it ([`SocketIoSessions`]).
//!
//! An Engine.IO session is named by its `sid`, which travels in URLs (and so in access
//! logs): it must not work as a bearer token. socketioxide finds a session by its sid
//! alone, so [`SocketIoSessions`] stands in front of it: a request carrying a sid reaches
//! socketioxide only when [`CertAuthLayer`](crate::CertAuthLayer) authenticated it with the
//! certificate (the leaf's SHA-256) that opened the session (the core's
//! `lifecycle::SessionOwners` decides). Sessions opened over a WebSocket never send a sid
//! and need no binding. A session opened without authentication is reached only by
//! requests without it, so that such a client still gets its connect error over polling
//! ([`require_client_cert`] reads the opening request, so that session never joins a
//! namespace).

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use certauth_core::Authenticated;
use certauth_engine::lifecycle::{
    DEFAULT_MAX_UNAUTHENTICATED_SESSIONS, Handshake, SessionOwners, SessionRefusal,
    engine_io_opened_sid, engine_io_path, engine_io_sid,
};
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
/// unknown sid, so that the answer does not tell whether the session exists). A handshake
/// without authentication is answered 503 while as many sessions opened without it are live
/// as [`Self::unauthenticated_sessions`] allows. Cheap to clone; clones share the sessions.
#[derive(Clone, Debug)]
pub struct SocketIoSessions {
    sessions: Arc<Mutex<SessionOwners>>,
    path: Arc<str>,
}

impl Default for SocketIoSessions {
    fn default() -> Self {
        Self::new()
    }
}

impl SocketIoSessions {
    /// Default most sessions opened without authentication live at once (1,024).
    pub const DEFAULT_MAX_UNAUTHENTICATED: usize = DEFAULT_MAX_UNAUTHENTICATED_SESSIONS;

    /// Guards socketioxide's default path, `/socket.io`; a session's binding is forgotten
    /// after 2 minutes without a request (a polling client asks at least every
    /// `ping_interval`, 25 s by default; a session upgraded to a WebSocket sends none).
    ///
    /// At most 1,024 sessions opened without authentication live at once, each reachable
    /// for 10 s ([`Self::unauthenticated_sessions`]).
    pub fn new() -> Self {
        Self {
            sessions: Arc::new(Mutex::new(SessionOwners::new(Duration::from_secs(120)))),
            path: Arc::from("/socket.io"),
        }
    }

    /// The table changed by `change` (the builders run before cloning).
    fn with(self, change: impl FnOnce(SessionOwners) -> SessionOwners) -> Self {
        let mut table = self.sessions();
        *table = change(std::mem::replace(
            &mut *table,
            SessionOwners::new(Duration::ZERO),
        ));
        drop(table);
        self
    }

    /// Guards `path`: the `req_path` given to socketioxide.
    pub fn req_path(mut self, path: &str) -> Self {
        self.path = Arc::from(path);
        self
    }

    /// Forgets a binding after `idle` without a request. Keep it above socketioxide's
    /// `ping_interval` plus `ping_timeout`: past it a polling session is refused.
    pub fn idle_timeout(self, idle: Duration) -> Self {
        self.with(|t| t.idle_timeout(idle))
    }

    /// At most `max` sessions opened without authentication live (or being opened) at
    /// once, each reachable for `lifetime` from its opening (default 1,024 and 10 s); past
    /// `max`, a handshake without authentication is answered 503 (and a log line). A
    /// refused client needs its session only to read its connect error, within
    /// milliseconds; each costs socketioxide a socket and a queue, and without the cap a
    /// client with no certificate could open them as fast as it sends handshakes. `0`
    /// answers them all 503 (no connect error over polling).
    pub fn unauthenticated_sessions(self, max: usize, lifetime: Duration) -> Self {
        self.with(|t| t.unauthenticated(max, lifetime))
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, SessionOwners> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `req` may go on: with the handshake to bind (none for a request naming its
    /// session), or the response refusing it (a session not its own; a handshake without
    /// authentication past the cap, 503).
    fn admit<B, R>(&self, req: &Request<B>) -> Result<Option<Bind>, Box<Response<SessionBody<R>>>> {
        let (client, now) = (req.extensions().get::<Authenticated>(), Instant::now());
        let sid = engine_io_sid(req.uri().query());
        let verdict = match sid {
            Some(sid) => self.sessions().check(sid, client, now).map(|()| None),
            None => self.sessions().handshake(client, now).map(Some),
        };
        let refused = match verdict {
            Ok(handshake) => {
                return Ok(handshake.map(|h| Bind(Arc::clone(&self.sessions), Some(h))));
            }
            Err(refused) => refused,
        };
        warn!(sid = ?sid, "Engine.IO request refused: {refused}");
        let (status, body) = match refused {
            SessionRefusal::NotAuthenticated => {
                return Err(Box::new(match req.extensions().get::<AuthRejection>() {
                    Some(r) => to_response(r.0.response(), req.version()),
                    None => missing_layer(),
                }));
            }
            SessionRefusal::TooManyUnauthenticated => (
                http::StatusCode::SERVICE_UNAVAILABLE,
                "Service Unavailable: too many Socket.IO sessions opened without a client \
                 certificate are live; retry later\n",
            ),
            // As Engine.IO answers an unknown sid: the answer does not tell who owns it.
            _ => (
                http::StatusCode::BAD_REQUEST,
                r#"{"code":1,"message":"Session ID unknown"}"#,
            ),
        };
        let mut r = Response::new(SessionBody::from(body.to_owned()));
        *r.status_mut() = status;
        if status == http::StatusCode::BAD_REQUEST {
            let json = http::HeaderValue::from_static("application/json");
            r.headers_mut().insert(http::header::CONTENT_TYPE, json);
        }
        Err(Box::new(r))
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
        if engine_io_path(req.uri().path(), &self.layer.path) {
            req.extensions_mut().insert(Guarded);
            match self.layer.admit(&req) {
                Ok(handshake) => bind = handshake,
                Err(refused) => return Box::pin(async move { Ok(*refused) }),
            }
        }
        let future = self.inner.call(req);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| SessionBody(Inner::Body { body, bind })))
        })
    }
}

/// Binds the session whose open packet the response body carries to the handshake's
/// client; gives the handshake back unused if it carried none (its reserved room is free).
#[derive(Debug)]
struct Bind(Arc<Mutex<SessionOwners>>, Option<Handshake>);

impl Drop for Bind {
    fn drop(&mut self) {
        if let Some(handshake) = self.1.take() {
            let mut sessions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            sessions.abandoned(handshake);
        }
    }
}

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
                    && let (Some(data), Some(mut bind)) = (data, bind.take())
                    && let Some(sid) = engine_io_opened_sid(data)
                {
                    let mut sessions = bind.0.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(handshake) = bind.1.take() {
                        sessions.opened_by(sid, handshake, Instant::now());
                    }
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
