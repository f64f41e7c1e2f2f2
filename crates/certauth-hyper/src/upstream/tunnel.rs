//! A relayed WebSocket: after the client and the upstream both switched protocols, bytes
//! pass both ways until either side ends, the server drains or the tunnel is idle; closes
//! go between frames (`certauth_core::forward::FrameCursor` finds their boundaries). Only
//! moves bytes: what may become a tunnel is decided before (`forward::is_websocket_upgrade`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use certauth_core::forward;
use certauth_engine::Drain;
use hyper_util::rt::TokioIo;
use tracing::debug;

use crate::ConnState;

/// When a relayed WebSocket last carried a byte, either way; and its clocks.
struct Activity {
    last: Mutex<tokio::time::Instant>,
    idle: Duration,
    /// [`certauth_core::Limits::tunnel_close_timeout`]: once closing, how long the peers
    /// are waited for (a frame under way, a close reply, the other direction's last bytes).
    close: Duration,
}

impl Activity {
    fn touch(&self) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = tokio::time::Instant::now();
    }

    /// Completes once no byte has passed for `idle` (never for `Duration::MAX`).
    async fn idle(&self) {
        loop {
            let last = *self.last.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(deadline) = last.checked_add(self.idle) else {
                return std::future::pending().await;
            };
            tokio::time::sleep_until(deadline).await;
            if *self.last.lock().unwrap_or_else(PoisonError::into_inner) == last {
                return;
            }
        }
    }
}

/// Relays bytes between the client and the upstream after both switched protocols, until
/// either closes or the server's grace period ends (`hold` keeps the drain waiting for it
/// and the connection counted). A WebSocket is closed with 1001 (going away) on both sides
/// as soon as the server drains, or once no byte has passed either way for `idle` (the
/// `--websocket-idle-timeout` certauth's own WebSockets have), each close between two
/// frames of its direction; `close` bounds each wait for the peers once closing
/// ([`certauth_core::Limits::tunnel_close_timeout`]).
pub(super) async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    (idle, close): (Duration, Duration),
    hold: (Option<Drain>, Option<Arc<ConnState>>),
) {
    let (drain, conn) = hold;
    let drain = drain.unwrap_or_default();
    let _held = (drain.hold(), conn);
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => return debug!(error = %e, "upgrade failed"),
    };
    let (client, upstream) = (TokioIo::new(client), TokioIo::new(upstream));
    let relay = async {
        let (client_read, client_write) = tokio::io::split(client);
        let (upstream_read, upstream_write) = tokio::io::split(upstream);
        let activity = Activity {
            last: Mutex::new(tokio::time::Instant::now()),
            idle,
            close,
        };
        let mut up = std::pin::pin!(relay(client_read, upstream_write, &drain, &activity, true));
        let mut down = std::pin::pin!(relay(upstream_read, client_write, &drain, &activity, false));
        // Once one direction has ended (its reader closed or failed: a client gone without
        // close_notify is an error), the other gets a moment to pass its peer's last bytes
        // (a close reply), then the tunnel ends: no side waits on a peer that has left
        // (attack review s4, finding 4), and the places go at once.
        // When the server drains, the other direction has the grace period (an upload under
        // way was cut a second after the idle direction's close; attack review s8, R2).
        let rest = |other| {
            tokio::time::timeout(
                if drain.is_draining() {
                    Duration::MAX
                } else {
                    close
                },
                other,
            )
        };
        let (up, down) = tokio::select! {
            up = &mut up => (Ok(up), rest(down).await),
            down = &mut down => (rest(up).await, Ok(down)),
        };
        debug!(to_upstream = ?up, to_client = ?down, "websocket relay closed");
    };
    tokio::select! {
        () = relay => {}
        () = drain.cancelled() => debug!("grace period over: tunnel closed"),
    }
}

/// One direction of a relayed WebSocket: passes `from`'s bytes to `to` until `from` ends,
/// or, once the server drains or the tunnel is idle, until the frame under way ends; then
/// sends `to` a 1001 close, reads what `from` still sends for a moment (its own close) and
/// shuts `to` down. When idle, a frame under way that has not ended `activity.close` after
/// closing began is cut there, without a close frame (none can follow half a frame): a peer
/// stopped mid-frame kept an idle tunnel and its places for ever (attack review s5, finding
/// 2). When the server drains, a frame under way has the grace period (whose end cancels
/// the tunnel): cut a second after SIGTERM, an upload in progress lost its frame whatever
/// `--grace` said (attack review s7, N3).
async fn relay<R, W>(
    mut from: R,
    mut to: W,
    drain: &Drain,
    activity: &Activity,
    to_server: bool,
) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut frames = forward::FrameCursor::new();
    let mut buf = vec![0; 16 * 1024];
    // Whether closing for idleness (else the server drains).
    let mut draining = std::pin::pin!(async {
        tokio::select! {
            () = drain.draining() => false,
            () = activity.idle() => {
                debug!("websocket idle: closing the tunnel");
                true
            }
        }
    });
    // Once closing for idleness, the frame under way has until this deadline to end:
    // counted from when closing began, not from the last byte (a peer trickling a byte a
    // second inside a huge frame kept a closing tunnel for ever; attack review s6, C5).
    // `Some(None)`: closing for the drain, bounded by the grace period.
    let mut closing: Option<Option<tokio::time::Instant>> = None;
    loop {
        if closing.is_some() && frames.at_boundary() {
            break;
        }
        let cut = closing.flatten();
        tokio::select! {
            n = from.read(&mut buf) => {
                // At the end, or an error (a client gone without close_notify): the other
                // side learns at once that this one is gone.
                let Ok(n @ 1..) = n else {
                    let shut = to.shutdown().await;
                    return n.and(shut);
                };
                activity.touch();
                let pass = frames.pass(&buf[..n], closing.is_some());
                // A peer that reads nothing blocks this write: the idle clock still runs
                // (both ways blocked, nothing else would end the tunnel; fourth review).
                tokio::select! {
                    biased;
                    written = to.write_all(&buf[..pass]) => written?,
                    () = activity.idle() => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "websocket peer reads nothing")),
                }
            }
            idle = &mut draining, if closing.is_none() => {
                closing = Some(idle.then(|| tokio::time::Instant::now() + activity.close));
            }
            // Evaluated every turn, but a timer is set only while closing for idleness.
            () = async { tokio::time::sleep_until(cut.unwrap_or_else(tokio::time::Instant::now)).await }, if cut.is_some() => {
                debug!("websocket frame unfinished while closing: tunnel cut");
                return to.shutdown().await;
            }
        }
    }
    // A peer that reads nothing does not hold the close either.
    let close = async {
        to.write_all(&forward::going_away_frame(to_server)).await?;
        to.flush().await
    };
    let unread =
        || std::io::Error::new(std::io::ErrorKind::TimedOut, "websocket peer reads nothing");
    tokio::time::timeout(activity.close, close)
        .await
        .map_err(|_| unread())??;
    let _ = tokio::time::timeout(activity.close, async {
        while from.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    })
    .await;
    // While the server drains, the client's side is not shut here: the other direction may
    // still carry an upload for the grace period, and a shut client connection discards
    // what the client sends (hyper's lingering close); the tunnel's end closes it.
    if !to_server && drain.is_draining() {
        return Ok(());
    }
    to.shutdown().await
}
