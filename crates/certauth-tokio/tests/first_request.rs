//! Issue 25, finding 5: the raw gate decides one request, and the stream it hands on ends
//! with that request, so a second request pipelined on the connection (another user's,
//! through a proxy reusing its backend connection) never reaches the caller's HTTP server
//! undecided. The cases are the testkit's, shared with smol.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use certauth_testkit::first_request::{SWITCHING, setup, smuggling};
use certauth_tokio::{AcceptError, gate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_gate_hands_on_the_decided_request_and_nothing_after_it() {
    let (auth, cases) = setup();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    for case in cases {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(&case.sent).await.unwrap();
        let (tcp, peer) = listener.accept().await.unwrap();
        let accepted = gate(&auth, tcp, &[], Some(peer.ip())).await.unwrap();
        let mut stream = accepted.into_stream();
        let mut got = Vec::new();
        timeout(WAIT, stream.read_to_end(&mut got))
            .await
            .unwrap_or_else(|_| panic!("{}: no EOF at the request's end", case.name))
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&case.stream),
            "{}",
            case.name
        );
        if let Some(after) = case.after_switch {
            stream.write_all(SWITCHING).await.unwrap();
            let mut more = vec![0; after.len()];
            timeout(WAIT, stream.read_exact(&mut more))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(more, after, "{}", case.name);
        }
    }
}

#[tokio::test]
async fn ambiguous_framing_is_refused_before_the_decision() {
    let (auth, _) = setup();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    for (name, sent) in smuggling() {
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(&sent).await.unwrap();
        let (tcp, peer) = listener.accept().await.unwrap();
        let got = gate(&auth, tcp, &[], Some(peer.ip())).await;
        assert!(matches!(got, Err(AcceptError::Head(_))), "{name}: {got:?}");
        let mut reply = Vec::new();
        timeout(WAIT, client.read_to_end(&mut reply))
            .await
            .unwrap()
            .unwrap();
        assert!(reply.starts_with(b"HTTP/1.1 400 Bad Request\r\n"), "{name}");
    }
}

/// A decision that never comes (an async policy, or an online revocation check, still
/// waiting) is bounded as the head is: the client gets a 503 and the connection is closed,
/// instead of being held for as long as the policy waits.
#[tokio::test]
async fn a_decision_that_never_comes_is_bounded_by_the_head_time_limit() {
    use certauth_testkit::first_request::setup_with;
    use certauth_tokio::certauth_core::Limits;
    use certauth_tokio::certauth_core::policy::{OwnedPolicyContext, Verdict};
    let (auth, cases) = setup_with(|b| {
        b.limits(Limits::DEFAULT.with_head_read_timeout(Duration::from_millis(300)))
            .async_policy(|_: OwnedPolicyContext| std::future::pending::<Verdict>())
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    client.write_all(&cases[0].stream).await.unwrap();
    let (tcp, peer) = listener.accept().await.unwrap();
    let got = timeout(WAIT, gate(&auth, tcp, &[], Some(peer.ip())))
        .await
        .expect("the gate waited on the decision past the head's time limit");
    assert!(matches!(got, Err(AcceptError::DecisionTimeout)), "{got:?}");
    let mut reply = Vec::new();
    timeout(WAIT, client.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(
        reply.starts_with(b"HTTP/1.1 503 Service Unavailable\r\n"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}
