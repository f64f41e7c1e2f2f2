//! A bounded load test on loopback: 10,000 connection attempts at concurrency 64, mixing
//! trusted, untrusted and certificate-less clients. Zero wrong accepts, zero wrong rejects;
//! afterwards no leaked tasks or file descriptors, and memory back near where it started.
//!
//! Opt-in (about 8 s of both cores here): `cargo test -p certauth-tokio --test load -- --ignored`.
//! CI runs it after the suite (`.ci/run`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use certauth_testkit::suite::{self, Pki, UPGRADE};
use certauth_tokio::certauth_core::Limits;
use certauth_tokio::certauth_core::tls::ClientAuthMode;
use certauth_tokio::{Gate, upgrade};
use futures_util::StreamExt as _;

const ATTEMPTS: usize = 10_000;
const CONCURRENCY: usize = 64;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "long (10,000 connections): run with --ignored; CI does"]
fn ten_thousand_mixed_connections() {
    let pki = Arc::new(Pki::new());
    let (tls, auth) = suite::server_parts(&pki, Limits::DEFAULT, ClientAuthMode::Deferred);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let gate = Gate::new(auth, tls);
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(async move {
        loop {
            let tcp = tokio::select! {
                _ = &mut stopped => break,
                r = listener.accept() => match r { Ok((t, _)) => t, Err(_) => continue },
            };
            let gate = gate.clone();
            tokio::spawn(async move {
                let Ok(accepted) = gate.authenticate(tcp).await else {
                    return;
                };
                if let Ok((mut ws, _)) =
                    upgrade(accepted, certauth_tokio::default_websocket_config()).await
                {
                    while let Some(Ok(m)) = ws.next().await {
                        if m.is_text() {
                            let reply = format!("Echo: {}", m.into_text().unwrap());
                            if ws.send(reply.into()).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });

    // Warm up (first-use allocations, session caches), then take the baseline.
    let configs = Arc::new([
        suite::tls_client(&pki, Some(&pki.trusted)),
        suite::tls_client(&pki, Some(&pki.other_ca)),
        suite::tls_client(&pki, None),
    ]);
    for c in configs.iter() {
        let mut t = suite::connect(addr, Arc::clone(c)).unwrap();
        let _ = t.write_all(UPGRADE.as_bytes());
        let _ = suite::read_until(&mut t, b"\r\n\r\n");
    }
    std::thread::sleep(Duration::from_millis(500));
    let metrics = rt.metrics();
    let (fds_before, tasks_before, rss_before) = (open_fds(), metrics.num_alive_tasks(), rss_kib());

    let next = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (next, wrong, configs) =
                (Arc::clone(&next), Arc::clone(&wrong), Arc::clone(&configs));
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ATTEMPTS {
                        break;
                    }
                    let kind = i % 3;
                    let outcome = attempt(addr, Arc::clone(&configs[kind]));
                    let ok = match kind {
                        0 => outcome == "echo",
                        _ => outcome == "401",
                    };
                    if !ok {
                        wrong
                            .lock()
                            .unwrap()
                            .push(format!("attempt {i} (kind {kind}): {outcome}"));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let elapsed = started.elapsed();

    // Let the server finish closing (rejections linger until the client's close).
    let deadline = Instant::now() + Duration::from_secs(10);
    while (metrics.num_alive_tasks() > tasks_before || open_fds() > fds_before)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (fds_after, tasks_after, rss_after) = (open_fds(), metrics.num_alive_tasks(), rss_kib());
    let _ = stop.send(());
    rt.shutdown_timeout(Duration::from_secs(2));

    let wrong = wrong.lock().unwrap();
    println!(
        "{ATTEMPTS} attempts at concurrency {CONCURRENCY} in {elapsed:?}; fds {fds_before} -> {fds_after}; \
         tasks {tasks_before} -> {tasks_after}; RSS {rss_before} KiB -> {rss_after} KiB"
    );
    assert!(
        wrong.is_empty(),
        "{} wrong outcomes, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(
        fds_after <= fds_before + 2,
        "file descriptors leaked: {fds_before} -> {fds_after}"
    );
    assert_eq!(tasks_after, tasks_before, "tasks leaked");
    assert!(
        rss_after <= rss_before + 48 * 1024,
        "memory grew: {rss_before} KiB -> {rss_after} KiB"
    );
}

/// One connection: `echo` if a WebSocket echo came back, the status code if refused.
fn attempt(addr: std::net::SocketAddr, config: Arc<rustls::ClientConfig>) -> String {
    let mut tls = match suite::connect(addr, config) {
        Ok(t) => t,
        Err(e) => return format!("connect: {e}"),
    };
    let bytes = [UPGRADE.as_bytes(), &suite::client_text_frame("x")].concat();
    if let Err(e) = tls.write_all(&bytes).and_then(|()| tls.flush()) {
        return format!("write: {e}");
    }
    let got = suite::read_until(&mut tls, b"Echo: x");
    let text = String::from_utf8_lossy(&got);
    if text.starts_with("HTTP/1.1 101") && text.ends_with("Echo: x") {
        // Close the WebSocket politely so the server's task ends.
        let _ = tls.write_all(&[0x88, 0x80, 0, 0, 0, 0]);
        let _ = tls.flush();
        "echo".into()
    } else {
        text.split(' ').nth(1).unwrap_or("nothing").to_owned()
    }
}
