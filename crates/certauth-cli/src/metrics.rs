//! `certauth serve --metrics ADDR`: the core's observer ([`certauth_core::observe`]) counted
//! and served as Prometheus text on `GET /metrics`. One counter set for the process (the
//! binary serves one port): the authenticator's builder and the serve loop's options are
//! handed it ([`observer`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use certauth_core::Decision;
use certauth_core::Limits;
use certauth_core::observe::{Event, Observer};
use certauth_tokio::ServeOptions;
use tracing::{info, warn};

use crate::Failure;

/// Upper bounds of the decision-time histogram, in seconds.
const BUCKETS: [f64; 11] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.1,
];

/// Every counter `GET /metrics` shows.
pub(crate) struct Metrics {
    start: Instant,
    decisions: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    reused: AtomicU64,
    handshake_failures: AtomicU64,
    active: AtomicI64,
    dropped: Mutex<BTreeMap<&'static str, u64>>,
    reloads_ok: AtomicU64,
    reloads_error: AtomicU64,
    /// Online revocation checks without an answer, by check (`ocsp`, `crl`).
    soft_fails: Mutex<BTreeMap<&'static str, u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Metrics {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            decisions: Mutex::default(),
            reused: AtomicU64::new(0),
            handshake_failures: AtomicU64::new(0),
            active: AtomicI64::new(0),
            dropped: Mutex::default(),
            reloads_ok: AtomicU64::new(0),
            reloads_error: AtomicU64::new(0),
            soft_fails: Mutex::default(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The Prometheus text exposition of every counter.
    fn render(&self) -> String {
        let mut out = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push_str(
            "# HELP certauth_decisions_total Decisions about clients, by outcome and code.\n",
        );
        out.push_str("# TYPE certauth_decisions_total counter\n");
        for ((outcome, code), n) in self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "certauth_decisions_total{{outcome=\"{outcome}\",code=\"{code}\"}} {n}"
            );
        }
        let _ = write!(
            out,
            "# HELP certauth_verifications_reused_total Decisions that reused an earlier chain verification.\n\
             # TYPE certauth_verifications_reused_total counter\ncertauth_verifications_reused_total {}\n\
             # HELP certauth_handshake_failures_total TLS handshakes that failed or never finished.\n\
             # TYPE certauth_handshake_failures_total counter\ncertauth_handshake_failures_total {}\n\
             # HELP certauth_connections_active Connections open now.\n\
             # TYPE certauth_connections_active gauge\ncertauth_connections_active {}\n",
            load(&self.reused),
            load(&self.handshake_failures),
            self.active.load(Ordering::Relaxed),
        );
        out.push_str("# HELP certauth_connections_dropped_total Connections closed before authentication: shed, expired, refused, or for a descriptor.\n");
        out.push_str("# TYPE certauth_connections_dropped_total counter\n");
        let dropped = self.dropped.lock().unwrap_or_else(PoisonError::into_inner);
        for reason in ["shed", "expired", "refused", "accept_failed"] {
            let n = dropped.get(reason).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "certauth_connections_dropped_total{{reason=\"{reason}\"}} {n}"
            );
        }
        let _ = write!(
            out,
            "# HELP certauth_reloads_total Configuration reloads (SIGHUP), by result.\n\
             # TYPE certauth_reloads_total counter\n\
             certauth_reloads_total{{result=\"ok\"}} {}\ncertauth_reloads_total{{result=\"error\"}} {}\n",
            load(&self.reloads_ok),
            load(&self.reloads_error),
        );
        out.push_str("# HELP certauth_revocation_soft_fail_total Clients let in without an online revocation answer (responder or CRL unreachable or not believed), by check.\n");
        out.push_str("# TYPE certauth_revocation_soft_fail_total counter\n");
        let soft = self
            .soft_fails
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for check in ["ocsp", "crl"] {
            let n = soft.get(check).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "certauth_revocation_soft_fail_total{{check=\"{check}\"}} {n}"
            );
        }
        drop(soft);
        out.push_str("# HELP certauth_decision_seconds Time to decide about a client.\n");
        out.push_str("# TYPE certauth_decision_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += load(n);
            let _ = writeln!(
                out,
                "certauth_decision_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = load(&self.count);
        let _ = write!(
            out,
            "certauth_decision_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             certauth_decision_seconds_sum {}\ncertauth_decision_seconds_count {count}\n",
            Duration::from_nanos(load(&self.sum_nanos)).as_secs_f64()
        );
        UPSTREAM.render(&mut out);
        out
    }
}

/// Upper bounds of the upstream-latency histogram, in seconds.
const UPSTREAM_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0];

/// `--upstream`'s answers: by status, and the time to each response head (the upstream's,
/// or certauth's own 502/504).
struct UpstreamStats {
    statuses: Mutex<BTreeMap<u16, u64>>,
    buckets: [AtomicU64; UPSTREAM_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

static UPSTREAM: UpstreamStats = UpstreamStats {
    statuses: Mutex::new(BTreeMap::new()),
    buckets: [const { AtomicU64::new(0) }; UPSTREAM_BUCKETS.len()],
    count: AtomicU64::new(0),
    sum_nanos: AtomicU64::new(0),
};

impl UpstreamStats {
    fn render(&self, out: &mut String) {
        let statuses = self.statuses.lock().unwrap_or_else(PoisonError::into_inner);
        if statuses.is_empty() {
            return;
        }
        out.push_str("# HELP certauth_upstream_responses_total Proxied requests by the status the client got (502 and 504: certauth's, the upstream gave none).\n");
        out.push_str("# TYPE certauth_upstream_responses_total counter\n");
        for (code, n) in statuses.iter() {
            let _ = writeln!(
                out,
                "certauth_upstream_responses_total{{code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP certauth_upstream_seconds Time from forwarding a request to the response head.\n");
        out.push_str("# TYPE certauth_upstream_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, n) in UPSTREAM_BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "certauth_upstream_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64();
        let _ = write!(
            out,
            "certauth_upstream_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             certauth_upstream_seconds_sum {sum}\ncertauth_upstream_seconds_count {count}\n"
        );
    }
}

/// Counts a proxied request's answer and its time to the response head.
pub(crate) fn upstream_answered(status: u16, took: Duration) {
    *UPSTREAM
        .statuses
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(status)
        .or_insert(0) += 1;
    let seconds = took.as_secs_f64();
    if let Some(i) = UPSTREAM_BUCKETS.iter().position(|b| seconds <= *b) {
        UPSTREAM.buckets[i].fetch_add(1, Ordering::Relaxed);
    }
    UPSTREAM.count.fetch_add(1, Ordering::Relaxed);
    let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
    UPSTREAM.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
}

impl Observer for Metrics {
    fn decision_started(&self) -> u64 {
        self.nanos()
    }

    fn decided(&self, started: u64, d: &Decision) {
        let (outcome, reused) = match d {
            Decision::Allow(a) => ("allow", a.reused()),
            Decision::Deny(_) => ("deny", false),
        };
        *self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((outcome, d.code()))
            .or_insert(0) += 1;
        if reused {
            self.reused.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = self.nanos().saturating_sub(started);
        let seconds = Duration::from_nanos(nanos).as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    fn handshake_failed(&self) {
        self.handshake_failures.fetch_add(1, Ordering::Relaxed);
    }

    fn connection_opened(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    fn connection_closed(&self) {
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    fn connection_dropped(&self, why: Event) {
        let reason = match why {
            Event::Shed => "shed",
            Event::Expired => "expired",
            Event::Refused => "refused",
            _ => "accept_failed",
        };
        *self
            .dropped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(reason)
            .or_insert(0) += 1;
    }

    fn revocation_soft_fail(&self, check: &'static str, detail: &str) {
        *self
            .soft_fails
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(check)
            .or_insert(0) += 1;
        // The detail quotes a URL from the client's certificate: escaped.
        warn!(
            check,
            "revocation unknown, client let in (soft fail): {}",
            certauth_core::escape::escape(detail)
        );
    }

    fn reloaded(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_error
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The process's counters, made on first use.
static METRICS: OnceLock<Arc<Metrics>> = OnceLock::new();

/// The counters as the observer to hand the authenticator and the serve loop.
pub(crate) fn observer() -> Arc<dyn Observer> {
    METRICS.get_or_init(|| Arc::new(Metrics::new())).clone()
}

/// Set once the server starts draining: `GET /healthz` then answers 503.
static DRAINING: AtomicBool = AtomicBool::new(false);

/// The server has begun to drain (SIGTERM, SIGINT).
pub(crate) fn draining() {
    DRAINING.store(true, Ordering::Relaxed);
}

/// `GET /healthz`: 200 `ok` while serving, 503 `draining` once shutdown began, so a load
/// balancer stops sending new clients before the listener closes.
async fn healthz() -> (http::StatusCode, &'static str) {
    if DRAINING.load(Ordering::Relaxed) {
        (http::StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (http::StatusCode::OK, "ok\n")
    }
}

/// What the operations listener holds at most: 16 connections (so at most 17 descriptors
/// with its listener, and the TLS service keeps every other whatever this port is sent),
/// 8 before their first request (the stalest is closed for a new one once stalled
/// 250 ms, as on the main port). Its own connections are not counted in the metrics (its
/// options name no observer).
const OPTIONS: ServeOptions = ServeOptions::DEFAULT
    .with_max_connections(16)
    .with_max_pending(8)
    .with_grace(Duration::from_secs(1));

/// Its time and size limits: a request head within 5 s and 8 KiB (Prometheus sends a few
/// hundred bytes), 10 s idle between requests.
const LIMITS: Limits = Limits::DEFAULT
    .with_max_head_bytes(8 * 1024)
    .with_head_read_timeout(Duration::from_secs(5))
    .with_idle_timeout(Duration::from_secs(10));

/// Serves `GET /metrics` (and `GET /healthz` with `health`) on `addr`, on a thread of its
/// own, through the lifecycle of the serve helpers ([`OPTIONS`], [`LIMITS`]): idle, slow
/// and oversized clients of this port are shed, timed out and refused as on the main one,
/// within a small connection cap. The operations listener asks for no client certificate:
/// the main port authenticates every request, and an exempt path there would be a hole in
/// the front door.
pub(crate) fn serve(addr: SocketAddr, health: bool) -> Result<(), Failure> {
    let metrics = METRICS.get_or_init(|| Arc::new(Metrics::new())).clone();
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| Failure::Rejected(format!("cannot listen on {addr} for --metrics: {e}")))?;
    // `--metrics HOST:0`: the log names the port the system gave.
    let addr = listener.local_addr().unwrap_or(addr);
    listener
        .set_nonblocking(true)
        .map_err(|e| Failure::Rejected(e.to_string()))?;
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return warn!("--metrics: no runtime");
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return warn!("--metrics: cannot use the listener");
            };
            info!("metrics on http://{addr}/metrics");
            let mut app = axum::Router::new();
            if health {
                info!("health on http://{addr}/healthz");
                app = app.route("/healthz", axum::routing::get(healthz));
            }
            let app = app.route(
                "/metrics",
                axum::routing::get(move || {
                    let body = metrics.render();
                    async move {
                        (
                            [(
                                http::header::CONTENT_TYPE,
                                "text/plain; version=0.0.4; charset=utf-8",
                            )],
                            body,
                        )
                    }
                }),
            );
            let forever = std::future::pending();
            if let Err(e) =
                certauth_hyper::serve_with(listener, None, LIMITS, OPTIONS.clone(), app, forever)
                    .await
            {
                warn!(error = %e, "--metrics stopped");
            }
        });
    });
    Ok(())
}

/// Counts a reload, if `--metrics` counts.
pub(crate) fn reloaded(ok: bool) {
    if let Some(m) = METRICS.get() {
        m.reloaded(ok);
    }
}
