//! `certauth serve`: the seed's server. A WebSocket echo (`Echo: <message>`) and
//! `GET /whoami` (the client's certificate as Node's legacy object), behind certificate
//! authentication; rejections are written as `HTTP/1.1 401` (or 400/403/431) on the raw
//! socket. TLS-peer mode by default; header mode behind a proxy on a plain-HTTP listener.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use certauth_core::AuthenticatorBuilder;
use certauth_core::policy::{BoxPolicy, PolicyExt as _, allow_any, allow_cn, for_path};
use certauth_core::proxy::protocol::ProxyProtocol;
use certauth_core::proxy::{Encoding, Preset, ProxyHeaderConfig};
use certauth_core::tls::{ClientAuthMode, TlsConfig, load_server_identity, server_config};
use certauth_core::{Authenticated, Authenticator, Limits, RequestHead};
use certauth_tokio::ServeOptions;
use certauth_tokio::tungstenite::{Error as WsError, Message};
use futures_util::{Sink, SinkExt as _, Stream, StreamExt as _};
use tracing::{info, warn};

use crate::page;
use crate::tickets::{Resumption, TicketKey};
use crate::{Failure, FilePath, Outcome, read, shown};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Runtime {
    Tokio,
    Smol,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// The rustls crypto provider: which client keys can prove possession in the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Provider {
    /// ring: RSA (2048–8192 bits), ECDSA P-256 and P-384, Ed25519.
    Ring,
    /// aws-lc-rs: the same and ECDSA P-521.
    AwsLcRs,
}

impl Provider {
    /// The provider, or why this build has none of that name (aws-lc-rs is a feature).
    pub(crate) fn get(self) -> Result<rustls::crypto::CryptoProvider, &'static str> {
        match self {
            Self::Ring => Ok(crate::ring_provider()),
            #[cfg(feature = "aws-lc-rs")]
            Self::AwsLcRs => Ok(rustls::crypto::aws_lc_rs::default_provider()),
            #[cfg(not(feature = "aws-lc-rs"))]
            Self::AwsLcRs => Err(
                "--provider aws-lc-rs: this certauth was built without it; reinstall with \
                 `--features aws-lc-rs` (or use the default, ring)",
            ),
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct Args {
    /// CA certificates that issue client certificates (PEM). Required with TLS; in header
    /// mode, forwarded chains are verified again against them.
    #[arg(long, value_name = "ROOTS.pem")]
    pub(crate) ca: Option<FilePath>,
    /// Leave out of --ca, with a warning, a CA certificate that cannot be a trust anchor (an
    /// unknown critical extension, a critical key identifier, no keyCertSign, an empty
    /// subject) instead of refusing to start: for large bundles with one odd root.
    #[arg(long, requires = "ca")]
    pub(crate) skip_bad_roots: bool,
    /// Intermediates clients may leave out of their chain (PEM or DER). Unlike an
    /// intermediate put in --ca, these are never trust anchors: a path through one goes on
    /// to a --ca root.
    #[arg(long, value_name = "INTERMEDIATES.pem", requires = "ca")]
    pub(crate) chain: Option<FilePath>,
    /// CRLs (PEM or DER; repeatable): a revoked client gets 401 CERT_REVOKED; a CRL past its
    /// nextUpdate refuses everyone it covers with CRL_HAS_EXPIRED (see --allow-expired-crl).
    #[arg(long, value_name = "CRL.pem", requires = "ca")]
    pub(crate) crl: Vec<FilePath>,
    /// Keep using a CRL past its nextUpdate instead of refusing with CRL_HAS_EXPIRED.
    #[arg(long, requires = "crl")]
    pub(crate) allow_expired_crl: bool,
    /// Refuse clients no configured CRL covers (UNABLE_TO_GET_CRL) instead of allowing them
    /// (the default, with a warning at start: Node refuses them once a CRL is configured).
    /// With --crl-fetch, also refuse a client whose distribution point's CRL cannot be had
    /// or believed. Needs --crl or --crl-fetch.
    #[arg(long)]
    pub(crate) deny_unknown_revocation: bool,
    /// Ask the OCSP responder each client certificate names (authorityInfoAccess, http):
    /// revoked → 401 CERT_REVOKED. Answers are cached until their nextUpdate, one request
    /// per certificate however many clients wait. Soft fail: a responder that cannot be
    /// reached or whose answer is not believed lets the client in, logged and counted
    /// (certauth_revocation_soft_fail_total); see --ocsp-required.
    #[arg(long, requires = "ca")]
    pub(crate) ocsp: bool,
    /// With --ocsp: no believable answer is 401 OCSP_CHECK_FAILED, and a responder's
    /// `unknown` is 401 OCSP_STATUS_UNKNOWN.
    #[arg(long, requires = "ocsp")]
    pub(crate) ocsp_required: bool,
    /// Fetch the CRL each client certificate names (CRL distribution point, http), check its
    /// signature and scope, cache it until its nextUpdate: listed → 401 CERT_REVOKED; cannot
    /// be had → allowed, logged and counted, unless --deny-unknown-revocation.
    #[arg(long, requires = "ca")]
    pub(crate) crl_fetch: bool,
    /// Seconds an OCSP or CRL fetch may take (keep it under --head-timeout, which bounds
    /// the whole decision).
    #[arg(long, value_name = "SECS", default_value_t = Seconds(certauth_core::revocation::DEFAULT_TIMEOUT))]
    pub(crate) revocation_timeout: Seconds,
    /// Largest CRL fetched with --crl-fetch, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = certauth_core::revocation::DEFAULT_MAX_CRL_BYTES)]
    pub(crate) max_crl_bytes: usize,
    /// The server's certificate chain (PEM). Required with TLS.
    #[arg(long, value_name = "SERVER.pem")]
    pub(crate) cert: Option<FilePath>,
    /// The server's private key (PEM). Required with TLS.
    #[arg(long, value_name = "SERVER.key")]
    pub(crate) key: Option<FilePath>,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub(crate) listen: SocketAddr,
    /// A TOML policy file.
    #[arg(long, value_name = "POLICY.toml", conflicts_with = "allow_cn")]
    pub(crate) policy: Option<FilePath>,
    /// Allow only these common names (repeatable). Without --policy or --allow-cn, every
    /// client whose chain verifies is let in.
    #[arg(long, value_name = "NAME")]
    pub(crate) allow_cn: Vec<String>,
    /// A stricter policy for part of the site (repeatable): requests under PREFIX (whole
    /// segments, any letter case, `/admin.json`, `/admin:x` and `/index.php/admin` too; a path with `%`, `;`, `\`, `~`, a byte
    /// outside ASCII, empty segments or one ending in `.` is under every prefix) must also be allowed by POLICY.toml, besides --policy or
    /// --allow-cn; a verified client it refuses gets 403. --open paths are not decided.
    #[arg(long, value_name = "PREFIX=POLICY.toml", value_parser = path_policy)]
    pub(crate) path_policy: Vec<(String, FilePath)>,
    /// Async runtime.
    #[arg(long, value_enum, default_value = "tokio")]
    pub(crate) runtime: Runtime,
    /// Serve Socket.IO at /socket.io/ instead of the raw WebSocket echo: each `message`
    /// event is answered with `Echo: <data>`; clients that fail authentication get a
    /// connect error. (tokio only; GET /whoami still answers.)
    #[arg(long)]
    pub(crate) socketio: bool,
    /// With --socketio: most Engine.IO sessions opened without a client certificate live at
    /// once (each lasts --head-timeout at most: a refused client reads its connect error in
    /// it); past it such handshakes are answered 503. 0 answers them all 503.
    #[arg(long, value_name = "N", requires = "socketio",
          default_value_t = certauth_hyper::SocketIoSessions::DEFAULT_MAX_UNAUTHENTICATED)]
    pub(crate) max_unauthenticated_sessions: usize,
    /// Header mode: take the certificate from a proxy preset's header. Listens on plain
    /// HTTP.
    #[arg(long, value_name = "PRESET", conflicts_with = "header", value_parser = preset_names())]
    pub(crate) source: Option<String>,
    /// Header mode with a custom header (use with --encoding).
    #[arg(long, value_name = "NAME", requires = "encoding")]
    pub(crate) header: Option<String>,
    /// The custom header's encoding.
    #[arg(long, value_name = "ENC", requires = "header", value_parser = encoding_names())]
    pub(crate) encoding: Option<String>,
    /// Proxies allowed to send the certificate header (address or CIDR; repeatable); with
    /// --proxy-protocol, the load balancers allowed to send PROXY headers.
    #[arg(long, value_name = "CIDR")]
    pub(crate) trusted_proxy: Vec<String>,
    /// Behind a TCP load balancer (HAProxy `send-proxy-v2`, AWS NLB, …): every connection
    /// starts with a PROXY protocol header (v1 or v2), accepted only from --trusted-proxy
    /// addresses (others are closed unanswered, logged) and read within
    /// --handshake-timeout. The client address it names is the one logs, policies and
    /// --max-pending-per-address see (with --upstream, the X-Forwarded-For it sends). In
    /// header mode (only with --upstream or --socketio) the client it names is the address
    /// that must be a --trusted-proxy for its certificate header to be believed.
    #[arg(long, requires = "trusted_proxy")]
    pub(crate) proxy_protocol: bool,
    /// Require this header from the proxy, e.g. X-SSL-Client-Verify=SUCCESS.
    #[arg(long, value_name = "NAME=VALUE")]
    pub(crate) verify_header: Option<String>,
    /// In header mode, use the TLS peer for a client that is not a trusted proxy and sends no
    /// certificate header (never for a trusted proxy, a malformed header or a failed verify
    /// header).
    #[arg(long)]
    pub(crate) fallback_to_tls_peer: bool,
    /// Header mode without --ca and without --verify-header: believe whatever certificate
    /// the proxy forwards. Only when the proxy itself refuses unverified clients.
    #[arg(long)]
    pub(crate) allow_unverified_proxy: bool,
    /// Reject untrusted clients during the TLS handshake instead of answering 401.
    #[arg(long)]
    pub(crate) strict: bool,
    /// The TLS crypto provider. Clients whose key it cannot verify (P-521 on ring, Ed448,
    /// RSA-PSS keys) finish the handshake and get 401 UNSUPPORTED_KEY_TYPE; RSA keys under
    /// 2048 bits get 401 WEAK_KEY.
    #[arg(long, value_enum, default_value = "ring")]
    pub(crate) provider: Provider,
    /// Put the reason code in rejection bodies (as client-certificate-auth does).
    #[arg(long)]
    pub(crate) expose_reasons: bool,
    /// Largest request head, in bytes.
    #[arg(long, default_value_t = Limits::DEFAULT.max_head_bytes)]
    pub(crate) max_head_bytes: usize,
    /// Seconds a client may take for the TLS handshake (decimals allowed).
    #[arg(long, value_name = "SECS", default_value_t = Seconds(Limits::DEFAULT.handshake_timeout))]
    pub(crate) handshake_timeout: Seconds,
    /// Seconds a client may take to send its (first) request head, however slowly it
    /// trickles in; a later one on a kept-alive connection has the --idle-timeout.
    #[arg(long, value_name = "SECS", default_value_t = Seconds(Limits::DEFAULT.head_read_timeout))]
    pub(crate) head_timeout: Seconds,
    /// Seconds a keep-alive or HTTP/2 connection may sit idle between requests (--socketio;
    /// the raw WebSocket server answers one request per connection).
    #[arg(long, value_name = "SECS", default_value_t = Seconds(Limits::DEFAULT.idle_timeout))]
    pub(crate) idle_timeout: Seconds,
    /// Seconds an authenticated WebSocket may carry no message (either way) before it is
    /// closed with 1000 `idle timeout`.
    #[arg(long, value_name = "SECS", default_value_t = Seconds(Limits::DEFAULT.websocket_idle_timeout))]
    pub(crate) websocket_idle_timeout: Seconds,
    /// Seconds between the server's pings on a WebSocket; a client that has not answered one
    /// by the next is taken for gone and disconnected (so a client that stops reading is
    /// cut off within twice this).
    #[arg(long, value_name = "SECS", default_value_t = Seconds(Limits::DEFAULT.websocket_ping_interval))]
    pub(crate) websocket_ping_interval: Seconds,
    /// Most connections open at once. Past it, stalled unauthenticated connections are
    /// closed for new ones; if all are authenticated, new clients wait in the backlog.
    #[arg(long, value_name = "N", default_value_t = ServeOptions::DEFAULT.max_connections)]
    pub(crate) max_connections: usize,
    /// Most connections still in the TLS handshake or request head; past it the stalest
    /// (after 250 ms without progress) is closed for each new one.
    #[arg(long, value_name = "N", default_value_t = ServeOptions::DEFAULT.max_pending)]
    pub(crate) max_pending: usize,
    /// Most connections one client certificate may hold open at once (WebSockets included);
    /// past it its new connections are answered 429 TOO_MANY_CONNECTIONS (default: no cap).
    /// A Socket.IO client that polls holds two connections at times: allow at least 2.
    #[arg(long, value_name = "N")]
    pub(crate) max_connections_per_identity: Option<usize>,
    /// Most unauthenticated connections from one address (default: no cap); IPv6 clients
    /// count by prefix (--ipv6-prefix).
    #[arg(long, value_name = "N")]
    pub(crate) max_pending_per_address: Option<usize>,
    /// How many leading bits of an IPv6 address make one client for
    /// --max-pending-per-address (64: one subscriber's prefix; 128: each address).
    #[arg(long, value_name = "BITS", default_value_t = ServeOptions::DEFAULT.ipv6_prefix_len,
          value_parser = clap::value_parser!(u8).range(0..=128))]
    pub(crate) ipv6_prefix: u8,
    /// Seconds open connections get to finish after SIGTERM or SIGINT (WebSockets are sent
    /// a 1001 close at once); then they are closed.
    #[arg(long, value_name = "SECS", default_value_t = Seconds(ServeOptions::DEFAULT.grace))]
    pub(crate) grace: Seconds,
    /// Serve Prometheus metrics on `GET /metrics` at this address (decisions by code,
    /// handshake failures, open and dropped connections, reloads, decision time).
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics: Option<SocketAddr>,
    /// Also answer `GET /healthz` on the --metrics address, without a client certificate:
    /// 200 `ok` while serving, 503 `draining` after SIGTERM or SIGINT.
    #[arg(long, requires = "metrics")]
    pub(crate) health: bool,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
    /// Session ticket keys (repeatable), nginx's format: 80 random bytes from
    /// `openssl rand 80` (or nginx's older 48). The first seals new tickets, all open them:
    /// servers given the same files resume each other's TLS sessions. Without it, sessions
    /// resume only on the process that made them.
    #[arg(long, value_name = "FILE")]
    pub(crate) session_ticket_key: Vec<FilePath>,
    /// Do not watch the files given (--ca, --chain, --crl, --policy, --path-policy, --cert, --key,
    /// --session-ticket-key) for changes; reload on SIGHUP only.
    #[arg(long)]
    pub(crate) no_watch: bool,
    /// Seconds between two looks at the watched files (their stat: works on every
    /// filesystem, Kubernetes' volumes included); a change is reloaded once the files have
    /// looked the same for one more interval. At least 0.05.
    #[arg(long, value_name = "SECS", default_value_t = Seconds(Duration::from_secs(1)))]
    pub(crate) watch_interval: Seconds,
    /// Front door: proxy every request and WebSocket a client is allowed to make to this
    /// upstream (http://HOST:PORT or unix:/PATH.sock, HTTP/1.1), with the client's
    /// certificate in headers (--forward-identity). Identity headers clients send are removed.
    #[arg(long, value_name = "URL", conflicts_with_all = ["socketio"])]
    pub(crate) upstream: Option<String>,
    /// How the client's certificate reaches the upstream: a proxy preset's header and
    /// encoding (rfc9440: Client-Cert and Client-Cert-Chain; envoy: X-Forwarded-Client-Cert
    /// with Hash, Cert, Chain, Subject, URI, DNS; nginx, aws-alb, cloudflare, traefik, haproxy).
    #[arg(long, value_name = "PRESET", default_value = "rfc9440", requires = "upstream",
          value_parser = preset_names())]
    pub(crate) forward_identity: String,
    /// Seconds the upstream may take to answer (from the request's last byte to the response
    /// head; while a request body is sent, between two parts of it) before the client gets
    /// 504. An unreachable upstream is 502 within 5 s.
    #[arg(long, value_name = "SECS", default_value = "60", requires = "upstream")]
    pub(crate) upstream_timeout: Seconds,
    /// A path prefix proxied without a client certificate and without identity headers
    /// (repeatable; whole segments: /health opens /health and /health/live, not /healthz).
    #[arg(long, value_name = "PREFIX", requires = "upstream")]
    pub(crate) open: Vec<String>,
    /// Most requests in flight to the upstream at once, all clients together: each holds an
    /// upstream connection until its response ends (a WebSocket: until it closes). Requests
    /// without a client certificate (--open paths) get at most half, rounded down (so with
    /// --open, at least 2); a request keeps its place until the upstream answers, even if
    /// its client left (reset, closed) before. A request past a cap
    /// waits for a place, up to --upstream-timeout, then gets 503 naming the cap.
    #[arg(long, value_name = "N", default_value_t = certauth_hyper::upstream::Caps::DEFAULT.max_connections,
          requires = "upstream", value_parser = at_least_one)]
    pub(crate) upstream_max_connections: usize,
    /// Most requests one client connection may have in flight to the upstream at once
    /// (HTTP/2 streams); past it they wait, as at --upstream-max-connections.
    #[arg(long, value_name = "N", default_value_t = certauth_hyper::upstream::Caps::DEFAULT.per_connection,
          requires = "upstream", value_parser = at_least_one)]
    pub(crate) upstream_max_per_connection: usize,
    /// Most requests without a client certificate (--open paths) one client connection may
    /// have in flight to the upstream at once: one TLS connection cannot turn its HTTP/2
    /// streams into as many upstream connections. Past it they wait, as at
    /// --upstream-max-connections.
    #[arg(long, value_name = "N", default_value_t = certauth_hyper::upstream::Caps::DEFAULT.open_per_connection,
          requires = "upstream", value_parser = at_least_one)]
    pub(crate) upstream_open_per_connection: usize,
    /// Most bytes read off the upstream connection (framing included) for a response whose
    /// client has left, read and dropped with the request's place at the caps kept (at most
    /// --upstream-timeout), before the connection is closed; 0 closes it at once. A request
    /// without a certificate whose drain stops short keeps its place until --upstream-timeout
    /// (the upstream may work on); one with a certificate frees it with the connection.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT.max_drain_bytes,
          requires = "upstream")]
    pub(crate) upstream_max_drain_bytes: usize,
    /// Seconds a relayed WebSocket that is closing waits for its peers: when idle, a frame
    /// under way must end within this of the close's start, else the tunnel is cut (when
    /// draining, the frame has --grace); then for the 1001's delivery and their close replies.
    #[arg(long, value_name = "SECS", default_value_t = Seconds(Limits::DEFAULT.tunnel_close_timeout),
          requires = "upstream")]
    pub(crate) upstream_tunnel_close_timeout: Seconds,
}

/// A number of seconds on the command line (`10`, `0.5`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Seconds(pub(crate) Duration);

impl FromStr for Seconds {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<f64>()
            .ok()
            .and_then(|v| Duration::try_from_secs_f64(v).ok())
            .map(Self)
            .ok_or_else(|| format!("{s:?} is not a number of seconds (e.g. 10 or 0.5)"))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

/// What the server runs: the authenticator, TLS unless in header mode, and the lifecycle's
/// caps.
pub(crate) struct Server {
    pub(crate) auth: Authenticator,
    pub(crate) tls: Option<TlsConfig>,
    pub(crate) listen: SocketAddr,
    pub(crate) options: ServeOptions,
}

/// `--source`'s values, from the core's preset table (aliases accepted, not listed).
/// `PREFIX=FILE` of --path-policy (the prefix itself is checked by `policy::for_path`).
fn path_policy(s: &str) -> Result<(String, FilePath), String> {
    match s.split_once('=') {
        Some((prefix, file)) if !file.is_empty() => Ok((prefix.to_owned(), file.into())),
        _ => Err(format!(
            "{s:?} is not PREFIX=POLICY.toml (e.g. /admin=admin-policy.toml)"
        )),
    }
}

/// A count that must be 1 or more (a cap of 0 would refuse everything).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a number of 1 or more")),
    }
}

fn preset_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        Preset::ALL.map(|p| clap::builder::PossibleValue::new(p.name()).aliases(p.aliases())),
    )
}

/// `--encoding`'s values, from the core's encoding table.
fn encoding_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Encoding::ALL.map(Encoding::name))
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::Usage(msg.into())
}

/// Checks the arguments and builds the server, with what resumes its TLS sessions (kept
/// across reloads).
pub(crate) fn configure(args: &Args) -> Result<(Server, Resumption), Failure> {
    let resumption = Resumption::new(!args.session_ticket_key.is_empty());
    let Loaded {
        builder,
        tls,
        ticket_keys,
    } = read_configuration(args, &resumption)?;
    resumption.install(ticket_keys);
    let auth = builder.build().map_err(|e| usage(e.to_string()))?;
    let options = ServeOptions::DEFAULT
        .with_max_connections(args.max_connections)
        .with_max_pending(args.max_pending)
        .with_max_pending_per_address(args.max_pending_per_address)
        .with_ipv6_prefix_len(args.ipv6_prefix)
        .with_max_connections_per_identity(args.max_connections_per_identity)
        .with_grace(args.grace.0);
    let options = match args.metrics {
        Some(_) => options.with_observer(crate::metrics::observer()),
        None => options,
    };
    let options = match args.proxy_protocol {
        true => options.with_proxy_protocol(
            ProxyProtocol::new(&args.trusted_proxy).map_err(|e| usage(e.to_string()))?,
        ),
        false => options,
    };
    let server = Server {
        auth,
        tls: tls.map(TlsConfig::from),
        listen: args.listen,
        options,
    };
    Ok((server, resumption))
}

/// SIGHUP or a watched file's change: reads `--ca`, `--chain`, `--crl`, `--policy`,
/// `--path-policy`, `--cert`, `--key` and `--session-ticket-key` again and, only if all of them are good,
/// replaces the configuration in force (connections in progress keep theirs). A broken file
/// is logged and the server keeps serving as before. One reload at a time.
fn reload(args: &Args, auth: &Authenticator, tls: Option<&TlsConfig>, resumption: &Resumption) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let applied = read_configuration(args, resumption).and_then(|loaded| {
        auth.reload(loaded.builder)
            .map_err(|e| usage(e.to_string()))?;
        if let (Some(slot), Some(config)) = (tls, loaded.tls) {
            slot.reload(config);
        }
        resumption.install(loaded.ticket_keys);
        Ok(())
    });
    crate::metrics::reloaded(applied.is_ok());
    match applied {
        Ok(()) => info!("reloaded"),
        Err(Failure::Usage(e) | Failure::Rejected(e)) => {
            warn!("reload failed, keeping the configuration in force: {e}");
        }
        Err(Failure::Answered) => warn!("reload failed, keeping the configuration in force"),
    }
}

/// What the files a configuration names hold, read and checked.
struct Loaded {
    /// The authenticator to build.
    builder: AuthenticatorBuilder,
    /// The TLS configuration (none in header mode without `--cert`).
    tls: Option<Arc<rustls::ServerConfig>>,
    /// `--session-ticket-key`'s keys, for [`Resumption::install`].
    ticket_keys: Vec<TicketKey>,
}

/// Reads every file the configuration names. The TLS configuration resumes sessions with
/// `resumption`'s cache or tickets, the same across reloads.
fn read_configuration(args: &Args, resumption: &Resumption) -> Result<Loaded, Failure> {
    let provider = Arc::new(args.provider.get().map_err(|e| Failure::Usage(e.into()))?);
    let verifier = match &args.ca {
        Some(ca) => {
            let algorithms = provider.signature_verification_algorithms.all;
            let mut v = crate::verify::verifier(
                ca,
                args.chain.as_deref(),
                &args.crl,
                algorithms,
                args.skip_bad_roots,
            )?
            .with_crl_expiry_enforced(!args.allow_expired_crl);
            for w in v.crl_warnings() {
                warn!("{w}");
            }
            if args.deny_unknown_revocation {
                v = v.deny_unknown_revocation();
            } else if !args.crl.is_empty() {
                warn!(
                    "clients whose certificates no --crl covers are let in (unknown revocation \
                     status is allowed); pass --deny-unknown-revocation to refuse them, as Node \
                     does once a CRL is configured"
                );
            }
            Some(v)
        }
        None => None,
    };
    let policy: BoxPolicy = match (&args.policy, args.allow_cn.is_empty()) {
        (Some(path), _) => crate::verify::load_policy(path)?.boxed(),
        (None, false) => allow_cn(args.allow_cn.clone()).boxed(),
        (None, true) => allow_any().boxed(),
    };
    let mut policy = policy;
    for (prefix, file) in &args.path_policy {
        let stricter = crate::verify::load_policy(file)?.deny_with_403();
        let here = for_path(prefix, stricter)
            .map_err(|e| usage(format!("--path-policy {prefix:?}: {e}")))?;
        policy = policy.and(here).boxed();
    }
    let limits = Limits::DEFAULT
        .with_max_head_bytes(args.max_head_bytes)
        .with_handshake_timeout(args.handshake_timeout.0)
        .with_head_read_timeout(args.head_timeout.0)
        .with_idle_timeout(args.idle_timeout.0)
        .with_websocket_idle_timeout(args.websocket_idle_timeout.0)
        .with_websocket_ping_interval(args.websocket_ping_interval.0)
        .with_max_drain_bytes(args.upstream_max_drain_bytes)
        .with_tunnel_close_timeout(args.upstream_tunnel_close_timeout.0);
    let (expose, echo) = (
        args.expose_reasons,
        if args.socketio {
            page::Echo::SocketIo
        } else {
            page::Echo::WebSocket
        },
    );
    let mut builder = Authenticator::builder()
        .policy(policy)
        .limits(limits)
        .expose_reasons(expose)
        .deny_body(move |denial, request| page::for_denial(denial, request, expose, echo));
    if args.deny_unknown_revocation && args.crl.is_empty() && !args.crl_fetch {
        return Err(usage(
            "--deny-unknown-revocation needs --crl CRL.pem or --crl-fetch: the CRLs whose \
             silence it refuses",
        ));
    }
    // Zero is not "no limit": every connection, a certificate holder's too, would be cut the
    // moment it was accepted (the eleventh attack review's note).
    for (flag, value) in [
        ("--handshake-timeout", args.handshake_timeout),
        ("--head-timeout", args.head_timeout),
    ] {
        if value.0.is_zero() {
            return Err(usage(format!(
                "{flag} must be more than 0 seconds: every connection would be closed as it is \
                 accepted"
            )));
        }
    }
    // A fetch that may outlast the head's limit never fails into the cache: each waiting
    // client is dropped at its deadline and the next starts the fetch again, so soft-fail
    // would refuse everyone while the responder black-holes (the attack review's note).
    if (args.ocsp || args.crl_fetch) && args.revocation_timeout.0 >= args.head_timeout.0 {
        return Err(usage(format!(
            "--revocation-timeout ({:?}) must be shorter than --head-timeout ({:?}), which \
             bounds the whole decision",
            args.revocation_timeout.0, args.head_timeout.0
        )));
    }
    if let Some(revocation) = crate::verify::revocation(
        args.ocsp,
        args.ocsp_required,
        args.crl_fetch,
        args.deny_unknown_revocation,
        args.revocation_timeout.0,
        args.max_crl_bytes,
        provider.signature_verification_algorithms.all,
    )? {
        builder = builder.revocation(revocation);
    }
    if let Some(v) = verifier.clone() {
        builder = builder.verifier(v);
    }
    // The observer counts for --metrics, and logs the soft fails of online revocation.
    if args.metrics.is_some() || args.ocsp || args.crl_fetch {
        builder = builder.observer(crate::metrics::observer());
    }
    let header_mode = args.source.is_some() || args.header.is_some();
    if (!header_mode || args.fallback_to_tls_peer) && args.ca.is_none() {
        return Err(usage(
            "client certificates from TLS need --ca ROOTS.pem: the CA that issues them",
        ));
    }
    if header_mode {
        let mut cfg = match (&args.source, &args.header, &args.encoding) {
            (Some(p), _, _) => {
                ProxyHeaderConfig::preset(p.parse::<Preset>().map_err(|e| usage(e.to_string()))?)
            }
            (None, Some(h), Some(e)) => {
                let enc = e.parse::<Encoding>().map_err(|e| usage(e.to_string()))?;
                ProxyHeaderConfig::custom(h, enc).map_err(|e| usage(e.to_string()))?
            }
            _ => return Err(usage("--header needs --encoding")),
        };
        if args.trusted_proxy.is_empty() {
            return Err(usage(
                "header mode needs --trusted-proxy ADDR_OR_CIDR: the certificate header is \
                 honoured only from your proxy's address",
            ));
        }
        cfg = cfg
            .with_trusted_proxies(&args.trusted_proxy)
            .map_err(|e| usage(e.to_string()))?
            .with_fallback_to_tls_peer(args.fallback_to_tls_peer);
        if args.ca.is_none() && args.verify_header.is_none() && !args.allow_unverified_proxy {
            return Err(usage(
                "header mode needs --ca ROOTS.pem (verify forwarded chains again) or \
                 --verify-header NAME=VALUE (the proxy's verification result); without either, \
                 any certificate the proxy forwards is believed (pass --allow-unverified-proxy \
                 if the proxy refuses unverified clients itself)",
            ));
        }
        if let Some(nv) = &args.verify_header {
            let (n, v) = nv
                .split_once('=')
                .ok_or_else(|| usage(format!("--verify-header {nv:?}: expected NAME=VALUE")))?;
            cfg = cfg
                .with_verify_header(n, v)
                .map_err(|e| usage(e.to_string()))?;
        }
        builder = builder.proxy_header(cfg);
    }
    let tls = if header_mode && args.cert.is_none() {
        None
    } else {
        let (Some(cert), Some(key)) = (&args.cert, &args.key) else {
            return Err(usage(
                "TLS needs --cert SERVER.pem and --key SERVER.key (and --ca ROOTS.pem)",
            ));
        };
        let Some(anchors) = verifier.as_ref().map(|v| v.anchors()) else {
            return Err(usage(
                "TLS needs --ca ROOTS.pem: the CA that issues client certificates",
            ));
        };
        let (chain, key_der) = load_server_identity(&read(cert)?, &read(key)?)
            .map_err(|e| usage(format!("{} / {}: {e}", shown(cert), shown(key))))?;
        // Past what a CertificateRequest holds, no CA is named: say so at start and reload.
        if let (Some(warning), Some(ca)) = (certauth_core::tls::ca_hints(anchors).1, &args.ca) {
            warn!("--ca {}: {warning}", shown(ca));
        }
        let mode = if args.strict {
            ClientAuthMode::Strict
        } else {
            ClientAuthMode::Deferred
        };
        let mut config = server_config(provider, chain, key_der, anchors, mode).map_err(|e| {
            usage(format!(
                "{} / {}: {e} (does the key belong to the certificate?)",
                shown(cert),
                shown(key)
            ))
        })?;
        resumption.apply(&mut config);
        // The --socketio and --upstream servers are hyper's and speak HTTP/2 too; the raw WebSocket one
        // speaks HTTP/1.1 and says so.
        let config = Arc::new(config);
        Some(if args.socketio || args.upstream.is_some() {
            certauth_core::tls::with_alpn(config, &certauth_core::tls::ALPN_HTTP2_AND_HTTP1)
        } else {
            certauth_core::tls::with_alpn(config, &certauth_core::tls::ALPN_HTTP1)
        })
    };
    let ticket_keys = crate::tickets::read_keys(&args.session_ticket_key)?;
    Ok(Loaded {
        builder,
        tls,
        ticket_keys,
    })
}

pub(crate) fn run(args: Args) -> Outcome {
    init_logging(args.log_format);
    let watched = watched_files(&args);
    let before = crate::watch::Snapshot::take(&watched);
    let (mut server, resumption) = configure(&args)?;
    if let Some(addr) = args.metrics {
        crate::metrics::serve(addr, args.health)?;
    }
    if args.socketio && args.runtime == Runtime::Smol {
        return Err(usage(
            "--socketio runs on tokio (socketioxide); drop --runtime smol",
        ));
    }
    let header_mode = args.source.is_some() || args.header.is_some();
    if args.proxy_protocol && header_mode && !args.socketio && args.upstream.is_none() {
        return Err(usage(
            "--proxy-protocol in header mode needs --upstream or --socketio: the raw WebSocket \
             server's header mode reads no PROXY header",
        ));
    }
    if args.upstream.is_some() && args.runtime == Runtime::Smol {
        return Err(usage(
            "--upstream runs on tokio (hyper); drop --runtime smol",
        ));
    }
    let upstream = match &args.upstream {
        Some(url) => Some((crate::upstream::configure(&args, url)?, args.open.clone())),
        None => None,
    };
    let (socketio, runtime) = (args.socketio, args.runtime);
    let open_sessions = args.max_unauthenticated_sessions;
    let (no_watch, interval) = (args.no_watch, args.watch_interval.0);
    let reloads = Reloader {
        args: Arc::new(args),
        auth: server.auth.clone(),
        tls: server.tls.clone(),
        resumption,
    };
    if !no_watch {
        let r = reloads.clone();
        crate::watch::spawn(watched, interval, before, move || r.reload());
    }
    if runtime == Runtime::Smol {
        let (tx, rx) = smol::channel::bounded::<()>(1);
        // smol has no signal handling of its own: a small tokio runtime waits for signals.
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(async {
                    tokio::select! {
                        () = shutdown_signal() => {}
                        () = reloads.on_sighup() => {}
                    }
                });
                let _ = tx.try_send(());
            }
        });
        return smol::block_on(async {
            let listener = smol::net::TcpListener::bind(server.listen)
                .await
                .map_err(|e| listen_error(server.listen, &e))?;
            // `--listen HOST:0` asks the system for a port: the log names the one it gave.
            server.listen = listener.local_addr().unwrap_or(server.listen);
            announce(&server, false);
            let stop = async move {
                let _ = rx.recv().await;
            };
            serve_smol(listener, server, stop).await
        });
    }
    let rt = tokio_runtime().map_err(|e| Failure::Rejected(e.to_string()))?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(server.listen)
            .await
            .map_err(|e| listen_error(server.listen, &e))?;
        server.listen = listener.local_addr().unwrap_or(server.listen);
        if upstream.is_none() {
            announce(&server, socketio);
        }
        tokio::spawn(reloads.on_sighup());
        if let Some((upstream, open)) = upstream {
            crate::upstream::serve(listener, server, upstream, open, shutdown_signal()).await
        } else if socketio {
            crate::socketio::serve(listener, server, open_sessions, shutdown_signal()).await
        } else {
            serve_tokio(listener, server, shutdown_signal()).await
        }
    })
}

/// tokio's runtime, with a worker per CPU (`TOKIO_WORKER_THREADS` sets how many); one worker
/// is tokio's current-thread scheduler, which serves alike without the cost of handing
/// tasks between workers (the front door's CPU per request: BENCHMARKS.md, issue 32).
/// Blocking work (a reload) still runs on tokio's blocking threads.
fn tokio_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    if std::env::var("TOKIO_WORKER_THREADS").is_ok_and(|n| n.trim() == "1") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    }
}

/// Every file `serve` reads, to watch for changes.
fn watched_files(args: &Args) -> Vec<FilePath> {
    let single = [&args.ca, &args.chain, &args.policy, &args.cert, &args.key];
    let single = single.into_iter().flatten();
    single
        .chain(args.path_policy.iter().map(|(_, file)| file))
        .chain(&args.crl)
        .chain(&args.session_ticket_key)
        .cloned()
        .collect()
}

/// What SIGHUP and the watcher reload.
#[derive(Clone)]
struct Reloader {
    args: Arc<Args>,
    auth: Authenticator,
    tls: Option<TlsConfig>,
    resumption: Resumption,
}

impl Reloader {
    fn reload(&self) {
        reload(&self.args, &self.auth, self.tls.as_ref(), &self.resumption);
    }

    /// Reloads on every SIGHUP (never returns on unix).
    async fn on_sighup(self) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return std::future::pending().await;
            };
            while hup.recv().await.is_some() {
                info!(
                    "received SIGHUP: reloading --ca, --chain, --crl, --policy, --path-policy, \
                     --cert, --key, --session-ticket-key"
                );
                // Off the runtime's workers: reading files blocks (a slow disk), and one
                // reload runs at a time (signals meanwhile are folded into the next).
                let this = self.clone();
                let reloading = tokio::task::spawn_blocking(move || this.reload());
                if let Err(e) = reloading.await {
                    warn!("reload failed, keeping the configuration in force: {e}");
                }
            }
        }
        std::future::pending().await
    }
}

/// SIGINT or SIGTERM (what docker, systemd and Kubernetes send): either starts the drain.
async fn shutdown_signal() {
    wait_for_shutdown_signal().await;
    crate::metrics::draining();
}

async fn wait_for_shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = interrupt.await;
            return info!("received SIGINT: draining connections");
        };
        tokio::select! {
            _ = interrupt => info!("received SIGINT: draining connections"),
            _ = term.recv() => info!("received SIGTERM: draining connections"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
        info!("received Ctrl-C: draining connections");
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr; colours only when a person reads them (not a pipe, file or journal).
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(terminal)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn listen_error(addr: SocketAddr, e: &std::io::Error) -> Failure {
    Failure::Rejected(format!("cannot listen on {addr}: {e}"))
}

fn announce(server: &Server, socketio: bool) {
    let addr = server.listen;
    let scheme = if server.tls.is_some() {
        "https/wss"
    } else {
        "plain http/ws behind a TLS-terminating proxy"
    };
    let what = if socketio {
        "Socket.IO echo at /socket.io/, GET /whoami"
    } else {
        "WebSocket echo on any path, GET /whoami"
    };
    info!("listening on {addr} ({scheme}); {what}");
    if server.tls.is_some() {
        info!(
            "in a browser holding a client certificate: https://localhost:{}/ shows what it \
             presented and the decision",
            addr.port()
        );
    }
}

/// What to do with an authenticated request.
enum Route {
    /// A complete response to write before closing.
    Respond(Vec<u8>),
    /// A WebSocket upgrade (validated by the core's `upgrade`).
    WebSocket,
}

fn respond(status: &str, content_type: &str, body: &str) -> Route {
    Route::Respond(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nX-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn route(head: &RequestHead, client: &Authenticated) -> Route {
    if certauth_core::ws::is_upgrade_request(head) {
        return Route::WebSocket;
    }
    if page::wants_page(head.method(), head.target(), head) {
        let body = page::render(
            Some(client.certificate()),
            &page::Decision::Allowed,
            page::Echo::WebSocket,
        );
        return respond("200 OK", page::CONTENT_TYPE, &body);
    }
    match (head.method(), head.path()) {
        ("GET", "/whoami") => {
            let json = serde_json::to_string(&client.certificate().to_legacy_object())
                .unwrap_or_else(|_| "{}".into());
            respond("200 OK", "application/json", &format!("{json}\n"))
        }
        _ => respond(
            "404 Not Found",
            "text/plain; charset=utf-8",
            "Not Found: try GET /whoami or a WebSocket upgrade\n",
        ),
    }
}

/// Answers each text message `m` with `Echo: m` until the client closes.
async fn echo<S>(mut ws: S)
where
    S: Stream<Item = Result<Message, WsError>> + Sink<Message> + Unpin,
{
    while let Some(msg) = ws.next().await {
        let text = match msg {
            Ok(Message::Text(text)) => text,
            Ok(_) => continue,
            // An idle client, one that stopped answering pings, a message over the limit.
            Err(e) => return info!("websocket closed: {e}"),
        };
        if ws
            .send(Message::text(format!("Echo: {text}")))
            .await
            .is_err()
        {
            break;
        }
    }
}

async fn handle_tokio<S>(acc: certauth_tokio::Accepted<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt as _;
    match route(&acc.head, &acc.client) {
        Route::Respond(bytes) => {
            let mut io = acc.io;
            let _ = io.write_all(&bytes).await;
            let _ = io.shutdown().await;
        }
        Route::WebSocket => {
            let config = certauth_tokio::default_websocket_config();
            if let Ok((ws, _)) = certauth_tokio::upgrade(acc, config).await {
                echo(ws).await;
            }
        }
    }
}

/// The raw gates on tokio: TLS, or plain TCP in header mode.
pub(crate) async fn serve_tokio(
    listener: tokio::net::TcpListener,
    server: Server,
    shutdown: impl Future<Output = ()>,
) -> Outcome {
    let Server {
        auth, tls, options, ..
    } = server;
    match tls {
        Some(tls) => {
            let gate = certauth_tokio::Gate::new(auth, tls);
            certauth_tokio::serve(listener, gate, options, shutdown, handle_tokio).await
        }
        None => certauth_tokio::serve_plain(listener, auth, options, shutdown, handle_tokio).await,
    }
    .map_err(|e| Failure::Rejected(e.to_string()))
}

async fn handle_smol<S>(acc: certauth_smol::Accepted<S>)
where
    S: futures_util::AsyncRead + futures_util::AsyncWrite + Unpin,
{
    use futures_util::AsyncWriteExt as _;
    match route(&acc.head, &acc.client) {
        Route::Respond(bytes) => {
            let mut io = acc.io;
            let _ = io.write_all(&bytes).await;
            let _ = io.close().await;
        }
        Route::WebSocket => {
            let config = certauth_smol::default_websocket_config();
            if let Ok((ws, _)) = certauth_smol::upgrade(acc, config).await {
                echo(ws).await;
            }
        }
    }
}

/// The raw gates on smol: TLS, or plain TCP in header mode.
pub(crate) async fn serve_smol(
    listener: smol::net::TcpListener,
    server: Server,
    shutdown: impl Future<Output = ()>,
) -> Outcome {
    let Server {
        auth, tls, options, ..
    } = server;
    match tls {
        Some(tls) => {
            let gate = certauth_smol::Gate::new(auth, tls);
            certauth_smol::serve(listener, gate, options, shutdown, handle_smol).await
        }
        None => certauth_smol::serve_plain(listener, auth, options, shutdown, handle_smol).await,
    }
    .map_err(|e| Failure::Rejected(e.to_string()))
}
