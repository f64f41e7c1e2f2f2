//! `certauth serve --upstream URL`: the front door. Every request a client is allowed to
//! make (and every WebSocket upgrade) is proxied to the upstream with the client's identity
//! in headers (certauth-hyper's `Upstream`); `--open` paths go through without a
//! certificate and without identity. Served by certauth-hyper, so HTTP/2 clients, the
//! lifecycle limits, the drain, reload and metrics are those of `--socketio`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use certauth_core::forward::is_open_path;
use certauth_core::proxy::Preset;
use certauth_hyper::upstream::Caps;
use certauth_hyper::{CertAuth, CertAuthLayer, ProxyBody, Upstream};
use http::{Request, Response};
use hyper::body::Incoming;
use tower_layer::Layer as _;
use tracing::info;

use crate::serve::{Args, Server};
use crate::{Failure, Outcome};

/// The upstream `args` name, configured from them (a usage error names what is wrong).
pub(crate) fn configure(args: &Args, url: &str) -> Result<Upstream, Failure> {
    let identity = args
        .forward_identity
        .parse::<Preset>()
        .map_err(|e| Failure::Usage(format!("--forward-identity: {e}")))?;
    if let Some(bad) = args.open.iter().find(|p| !p.starts_with('/')) {
        return Err(Failure::Usage(format!(
            "--open {bad:?}: a path prefix starts with / (e.g. /healthz)"
        )));
    }
    if !args.open.is_empty() && args.upstream_max_connections < 2 {
        return Err(Failure::Usage(
            "--upstream-max-connections 1 with --open: requests without a client certificate \
             get half the places, rounded down, so none would be left for them (give at least 2)"
                .to_owned(),
        ));
    }
    let mut strip: Vec<String> = args.header.iter().cloned().collect();
    if let Some((name, _)) = args.verify_header.as_ref().and_then(|v| v.split_once('=')) {
        strip.push(name.to_owned());
    }
    let mut caps = Caps::DEFAULT;
    caps.max_connections = args.upstream_max_connections;
    caps.per_connection = args.upstream_max_per_connection;
    caps.open_per_connection = args.upstream_open_per_connection;
    let upstream = Upstream::new(url)
        .map_err(|e| Failure::Usage(format!("--upstream: {e}")))?
        .identity(identity)
        .response_timeout(args.upstream_timeout.0)
        .caps(caps)
        .also_remove(strip);
    Ok(upstream)
}

/// Serves the front door until `shutdown`.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    server: Server,
    upstream: Upstream,
    open: Vec<String>,
    shutdown: impl Future<Output = ()>,
) -> Outcome {
    let limits = *server.auth.limits();
    let scheme = if server.tls.is_some() {
        "https/wss"
    } else {
        "plain http/ws behind a TLS-terminating proxy"
    };
    info!(
        "listening on {} ({scheme}); proxying to {} ({} open path prefixes)",
        server.listen,
        upstream.target(),
        open.len()
    );
    let timed = Timed(upstream);
    let front = Front {
        open: open.into(),
        protected: CertAuthLayer::new(server.auth).layer(timed.clone()),
        open_service: timed,
    };
    certauth_hyper::serve_with(
        listener,
        server.tls,
        limits,
        server.options,
        front,
        shutdown,
    )
    .await
    .map_err(|e| Failure::Rejected(e.to_string()))
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Open paths straight to the upstream (no identity: nothing authenticated them); every
/// other request through the layer first.
#[derive(Clone)]
struct Front {
    open: Arc<[String]>,
    protected: CertAuth<Timed>,
    open_service: Timed,
}

impl tower_service::Service<Request<Incoming>> for Front {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<ProxyBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        if is_open_path(&self.open, req.uri().path()) {
            Box::pin(self.open_service.call(req))
        } else {
            self.protected.call(req)
        }
    }
}

/// The upstream, with each answer's status and time to its head reported to the metrics.
#[derive(Clone)]
struct Timed(Upstream);

impl tower_service::Service<Request<Incoming>> for Timed {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Timing;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        Timing {
            start: Instant::now(),
            answer: self.0.call(req),
        }
    }
}

/// [`Timed`]'s answer: the upstream's, reported when it is in. A future of its own rather
/// than an `async` block, so that a request pays for no second box and move of the
/// upstream's future.
struct Timing {
    start: Instant,
    answer: BoxFuture<Result<Response<ProxyBody>, Infallible>>,
}

impl Future for Timing {
    type Output = Result<Response<ProxyBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let answer = std::task::ready!(self.answer.as_mut().poll(cx));
        if let Ok(r) = &answer {
            crate::metrics::upstream_answered(r.status().as_u16(), self.start.elapsed());
        }
        Poll::Ready(answer)
    }
}
