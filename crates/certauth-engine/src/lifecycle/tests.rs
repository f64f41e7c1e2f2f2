use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::*;
use certauth_core::Limits;
use certauth_core::observe::Event;

/// One instant to count from; every other time in these tests is an offset.
#[allow(
    clippy::disallowed_methods,
    reason = "a base for fixed offsets in tests"
)]
fn t0() -> Instant {
    Instant::now()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn limits() -> Limits {
    Limits::DEFAULT
        .with_handshake_timeout(ms(1000))
        .with_head_read_timeout(ms(500))
}

fn table(options: ServeOptions) -> Connections<&'static str> {
    Connections::new(options, &limits())
}

fn admitted(a: Admission<&'static str>) -> (ConnId, Option<Shed<&'static str>>) {
    match a {
        Admission::Admitted { id, shed } => (id, shed),
        Admission::Refused { reason, .. } => panic!("refused: {reason}"),
    }
}

fn refused(a: Admission<&'static str>) -> Refusal {
    match a {
        Admission::Refused { reason, .. } => reason,
        Admission::Admitted { id, .. } => panic!("admitted {id}"),
    }
}

#[test]
fn below_the_caps_everything_is_admitted_at_once() {
    let t = t0();
    let mut c = table(ServeOptions::DEFAULT);
    assert_eq!(c.poll_accept(t), Accept::Now);
    let (a, shed) = admitted(c.admit(ip("10.0.0.1"), Phase::Handshake, t));
    assert!(shed.is_none());
    let (b, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Head, t));
    assert_ne!(a, b);
    assert_eq!((c.len(), c.pending()), (2, 2));
    assert!(!c.is_empty());
}

#[test]
fn a_full_pending_phase_sheds_the_least_progressed_stalest_connection() {
    let t = t0();
    let opts = ServeOptions::DEFAULT
        .with_max_pending(3)
        .with_shed_after(ms(1000));
    let mut c = table(opts);
    let (old_head, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Handshake, t));
    assert!(c.set_handle(old_head, "old-head").is_none());
    c.advance(old_head, Phase::Head, t + ms(10));
    let (hs_old, _) = admitted(c.admit(ip("10.0.0.2"), Phase::Handshake, t + ms(20)));
    assert!(c.set_handle(hs_old, "hs-old").is_none());
    let (hs_new, _) = admitted(c.admit(ip("10.0.0.3"), Phase::Handshake, t + ms(30)));
    assert!(c.set_handle(hs_new, "hs-new").is_none());

    // Full, and the stalest is younger than shed_after: leave clients in the backlog until
    // it may be shed.
    assert_eq!(
        c.poll_accept(t + ms(500)),
        Accept::Wait {
            until: Some(t + ms(1020))
        }
    );
    assert_eq!(
        c.poll_timeout(),
        Some(t + ms(510)),
        "head deadline of old-head"
    );
    // Once it may: a connection still in the handshake goes before one that got further,
    // the one stalled longest first.
    assert_eq!(c.poll_accept(t + ms(1020)), Accept::Now);
    let (_, shed) = admitted(c.admit(ip("10.0.0.4"), Phase::Handshake, t + ms(1020)));
    let shed = shed.unwrap();
    assert_eq!(
        (shed.id, shed.handle, shed.phase, shed.stalled, shed.remote),
        (
            hs_old,
            Some("hs-old"),
            Phase::Handshake,
            ms(1000),
            ip("10.0.0.2")
        )
    );
    assert_eq!((c.len(), c.pending()), (3, 3));
    let (_, shed) = admitted(c.admit(ip("10.0.0.5"), Phase::Handshake, t + ms(1030)));
    assert_eq!(shed.unwrap().handle, Some("hs-new"));
}

#[test]
fn authenticated_connections_are_never_shed_and_the_total_cap_waits_for_them() {
    let t = t0();
    let mut c = table(ServeOptions::DEFAULT.with_max_connections(2));
    let (a, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Handshake, t));
    let (b, _) = admitted(c.admit(ip("10.0.0.2"), Phase::Head, t));
    // a is authenticated: only b may be shed.
    c.advance(a, Phase::Open, t + ms(1));
    assert_eq!(c.pending(), 1);
    assert_eq!(c.poll_accept(t + ms(5000)), Accept::Now);
    let (third, shed) = admitted(c.admit(ip("10.0.0.3"), Phase::Handshake, t + ms(5000)));
    assert_eq!(shed.unwrap().id, b);
    assert_eq!(c.len(), 2);
    // Both open now: wait (in the backlog) until one closes, and refuse if asked anyway.
    c.advance(third, Phase::Open, t + ms(5001));
    assert_eq!(c.pending(), 0);
    assert_eq!(c.poll_accept(t + ms(9000)), Accept::Wait { until: None });
    assert_eq!(
        refused(c.admit(ip("10.0.0.4"), Phase::Handshake, t + ms(9000))),
        Refusal::TooMany { limit: 2 }
    );
    // A close while the loop waits must wake it.
    let (_, wake) = c.close(a);
    assert!(wake);
    assert_eq!(c.poll_accept(t + ms(9001)), Accept::Now);
}

/// Issue 25: an IPv6 client holds a /64 (or more); counting each address apart let one
/// subscriber take every pending slot by rotating its low bits.
#[test]
fn the_per_address_cap_groups_ipv6_by_prefix() {
    let t = t0();
    let mut c = table(ServeOptions::DEFAULT.with_max_pending_per_address(Some(2)));
    let (a, _) = admitted(c.admit(ip("2001:db8:1:2::1"), Phase::Handshake, t));
    admitted(c.admit(ip("2001:db8:1:2:ffff::9"), Phase::Handshake, t));
    let r = refused(c.admit(ip("2001:db8:1:2:abcd::"), Phase::Handshake, t));
    assert_eq!(
        r,
        Refusal::PerAddress {
            address: "2001:db8:1:2::".parse().unwrap(),
            limit: 2
        }
    );
    // Another /64, and IPv4 (mapped or not), count apart.
    admitted(c.admit(ip("2001:db8:1:3::1"), Phase::Handshake, t));
    admitted(c.admit(ip("::ffff:192.0.2.1"), Phase::Handshake, t));
    admitted(c.admit(ip("192.0.2.1"), Phase::Handshake, t));
    assert!(matches!(
        c.admit(ip("192.0.2.1"), Phase::Handshake, t),
        Admission::Refused { .. }
    ));
    // Progress frees the prefix's slot.
    c.advance(a, Phase::Open, t);
    admitted(c.admit(ip("2001:db8:1:2::7"), Phase::Handshake, t));

    // Each address apart at /128; the whole Internet one group at /0.
    let o = ServeOptions::DEFAULT.with_ipv6_prefix_len(200);
    assert_eq!(o.ipv6_prefix_len, 128);
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(o.address_group(v6), v6);
    let o = ServeOptions::DEFAULT.with_ipv6_prefix_len(0);
    assert_eq!(o.address_group(v6), "::".parse::<IpAddr>().unwrap());
    let o = ServeOptions::DEFAULT.with_ipv6_prefix_len(48);
    assert_eq!(
        o.address_group("2001:db8:aaaa:bbbb::1".parse().unwrap()),
        "2001:db8:aaaa::".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        o.address_group("::ffff:10.1.2.3".parse().unwrap()),
        "10.1.2.3".parse::<IpAddr>().unwrap()
    );
}

#[test]
fn the_per_address_cap_refuses_only_that_address_and_frees_on_progress() {
    let t = t0();
    let mut c = table(ServeOptions::DEFAULT.with_max_pending_per_address(Some(2)));
    let (a, _) = admitted(c.admit(ip("192.0.2.1"), Phase::Handshake, t));
    admitted(c.admit(ip("192.0.2.1"), Phase::Handshake, t));
    let r = refused(c.admit(ip("192.0.2.1"), Phase::Handshake, t));
    assert_eq!(
        r,
        Refusal::PerAddress {
            address: "192.0.2.1".parse().unwrap(),
            limit: 2
        }
    );
    assert!(r.to_string().contains("192.0.2.1"), "{r}");
    admitted(c.admit(ip("192.0.2.2"), Phase::Handshake, t));
    admitted(c.admit(None, Phase::Handshake, t));
    // Authenticated connections do not count against it.
    c.advance(a, Phase::Open, t);
    admitted(c.admit(ip("192.0.2.1"), Phase::Handshake, t));
    assert!(
        matches!(
            c.admit(ip("192.0.2.1"), Phase::Handshake, t),
            Admission::Refused { log: None, .. }
        ),
        "the second refusal within a second is not logged"
    );
    // Off by default.
    let mut c = table(ServeOptions::DEFAULT);
    for _ in 0..50 {
        admitted(c.admit(ip("192.0.2.1"), Phase::Handshake, t));
    }
}

#[test]
fn the_per_identity_cap_refuses_with_429_once_per_connection_and_frees_on_close() {
    let t = t0();
    let mut c = table(ServeOptions::DEFAULT.with_max_connections_per_identity(Some(2)));
    let (alice, bob) = (
        Identity::of_chain(&[b"alice".to_vec().into()]),
        Identity::of_chain(&[b"bob".to_vec().into()]),
    );
    let (alice, bob) = (alice.unwrap(), bob.unwrap());
    assert_eq!(Identity::of_chain(&[]), None);
    let ids: Vec<ConnId> = (0..5)
        .map(|_| admitted(c.admit(ip("192.0.2.1"), Phase::Handshake, t)).0)
        .collect();
    assert_eq!(c.identify(ids[0], alice), Ok(()));
    assert_eq!(c.identify(ids[0], alice), Ok(()), "counted once");
    assert_eq!(c.identify(ids[1], alice), Ok(()));
    let r = c.identify(ids[2], alice).unwrap_err();
    assert_eq!(r, Refusal::PerIdentity { limit: 2 });
    assert_eq!(r.code(), "TOO_MANY_CONNECTIONS");
    assert!(
        r.to_string().contains("max_connections_per_identity"),
        "{r}"
    );
    let response = String::from_utf8(r.response().to_bytes()).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 429 Too Many Requests\r\n")
            && response.ends_with("\r\n\r\nToo Many Requests: TOO_MANY_CONNECTIONS"),
        "{response}"
    );
    assert_eq!(c.identify(ids[3], bob), Ok(()), "another identity");
    let _ = c.close(ids[0]);
    assert_eq!(c.identify(ids[2], alice), Ok(()), "freed by the close");
    assert_eq!(
        c.identify(ids[4], alice),
        Err(Refusal::PerIdentity { limit: 2 }),
        "one freed, one taken again"
    );
    // Off by default.
    let mut c = table(ServeOptions::DEFAULT);
    for _ in 0..50 {
        let (id, _) = admitted(c.admit(None, Phase::Open, t));
        assert_eq!(c.identify(id, alice), Ok(()));
    }
}

#[test]
fn each_phase_has_one_deadline_and_open_connections_none() {
    let t = t0();
    let mut c = table(ServeOptions::DEFAULT);
    let (a, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Handshake, t));
    assert!(c.set_handle(a, "a").is_none());
    let (b, _) = admitted(c.admit(ip("10.0.0.2"), Phase::Handshake, t + ms(100)));
    assert!(c.set_handle(b, "b").is_none());
    assert_eq!(c.poll_timeout(), Some(t + ms(1000)));
    // a finishes its handshake: its head deadline (500 ms) is earlier than the loop's timer.
    assert!(c.advance(a, Phase::Head, t + ms(200)));
    assert_eq!(c.poll_timeout(), Some(t + ms(700)));
    // A later deadline does not wake the loop.
    assert!(!c.advance(b, Phase::Head, t + ms(600)));
    assert!(c.expired(t + ms(699)).is_empty());
    let out = c.expired(t + ms(700));
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].id, out[0].handle, out[0].phase, out[0].stalled),
        (a, Some("a"), Phase::Head, ms(500))
    );
    assert_eq!(c.len(), 1);
    c.advance(b, Phase::Open, t + ms(650));
    assert_eq!(c.poll_timeout(), None);
    assert!(c.expired(t + ms(100_000)).is_empty());
    // A handle registered after its connection ended comes back.
    assert_eq!(c.set_handle(a, "late"), Some("late"));
    // Closing twice is harmless; an unknown id advances nothing.
    assert_eq!(c.close(a).0, None);
    assert!(!c.advance(a, Phase::Open, t));
    assert_eq!(c.close(b).0, Some("b"), "its handle, to drop or detach");
}

#[test]
fn a_finished_task_gives_up_its_handle_while_its_connection_lives_on() {
    // hyper: the connection's task ends at the upgrade; the WebSocket's task holds the slot.
    let t = t0();
    let mut c = table(ServeOptions::DEFAULT);
    let (a, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Handshake, t));
    assert!(c.set_handle(a, "a").is_none());
    assert_eq!(c.task_finished(a), Some("a"), "handed back, to detach");
    assert_eq!(c.task_finished(a), None, "once");
    c.advance(a, Phase::Open, t + ms(1));
    assert_eq!(c.len(), 1);
    assert_eq!(c.close(a).0, None, "no handle left to cancel");
    // A task that ends before the loop registers its handle: the handle comes back.
    let (b, _) = admitted(c.admit(ip("10.0.0.2"), Phase::Handshake, t));
    assert_eq!(c.task_finished(b), None);
    assert_eq!(c.set_handle(b, "b"), Some("b"));
    assert!(
        c.cancel_all().is_empty(),
        "nothing to cancel at the grace's end"
    );
    // Unknown ids: nothing.
    assert_eq!(c.task_finished(a), None);
}

#[test]
fn a_failed_accept_sheds_the_stalest_pending_connection() {
    let t = t0();
    let mut c = table(ServeOptions::DEFAULT);
    assert!(c.shed_stalest(t).is_none(), "nothing to shed");
    let (a, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Head, t));
    assert!(c.set_handle(a, "idle").is_none());
    let shed = c.shed_stalest(t + ms(1)).unwrap();
    assert_eq!(shed.handle, Some("idle"), "a descriptor is freed");
    assert_eq!(shed.event, Event::AcceptFailed);
    assert!(c.is_empty());
}

#[test]
fn draining_closes_pending_connections_and_cancel_all_the_rest() {
    let t = t0();
    let mut c = table(ServeOptions::DEFAULT);
    let (a, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Handshake, t));
    assert!(c.set_handle(a, "pending").is_none());
    let (b, _) = admitted(c.admit(ip("10.0.0.2"), Phase::Handshake, t));
    assert!(c.set_handle(b, "open").is_none());
    c.advance(b, Phase::Open, t);
    assert_eq!(c.drain(), vec!["pending"]);
    assert!(c.is_draining());
    assert_eq!(c.poll_accept(t), Accept::Wait { until: None });
    assert_eq!(
        refused(c.admit(ip("10.0.0.3"), Phase::Handshake, t)),
        Refusal::Draining
    );
    assert_eq!(c.len(), 1);
    assert_eq!(c.cancel_all(), vec!["open"]);
    assert!(c.is_empty());
    // While draining, the last close wakes the loop.
    let mut c = table(ServeOptions::DEFAULT);
    let (a, _) = admitted(c.admit(None, Phase::Handshake, t));
    c.advance(a, Phase::Open, t);
    let _ = c.drain();
    assert!(c.close(a).1);
}

/// hyper's unauthenticated requests (issue 25, finding 2): a connection serving a request
/// before any was allowed is still pending (shed, after those waiting for a head; under the
/// head deadline from the request's start), but a drain lets its request finish.
#[test]
fn an_unauthenticated_request_is_pending_but_finishes_on_drain() {
    let t = t0();
    let opts = ServeOptions::DEFAULT
        .with_max_connections(3)
        .with_shed_after(ms(100));
    let mut c = table(opts);
    let (serving, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Head, t));
    assert!(c.set_handle(serving, "serving").is_none());
    let (idle, _) = admitted(c.admit(ip("10.0.0.2"), Phase::Head, t + ms(50)));
    assert!(c.set_handle(idle, "idle").is_none());
    let (open, _) = admitted(c.admit(ip("10.0.0.3"), Phase::Head, t));
    assert!(c.set_handle(open, "open").is_none());
    c.advance(serving, Phase::Request, t + ms(10));
    c.advance(open, Phase::Open, t + ms(10));
    assert_eq!(c.pending(), 2, "a request does not authenticate");
    // The head deadline (500 ms) restarts with the request.
    assert_eq!(c.poll_timeout(), Some(t + ms(510)));
    // Full: the connection waiting for a head goes first, then the one serving a request.
    assert_eq!(c.poll_accept(t + ms(1000)), Accept::Now);
    let (late, shed) = admitted(c.admit(ip("10.0.0.4"), Phase::Handshake, t + ms(400)));
    assert_eq!(shed.unwrap().handle, Some("idle"));
    assert!(c.set_handle(late, "late").is_none());
    c.advance(late, Phase::Open, t + ms(400));
    let (_, shed) = admitted(c.admit(ip("10.0.0.5"), Phase::Handshake, t + ms(400)));
    let shed = shed.unwrap();
    assert_eq!((shed.handle, shed.phase), (Some("serving"), Phase::Request));
    assert!(
        shed.to_string().contains("unauthenticated request"),
        "{shed}"
    );

    // Draining closes a connection waiting for its head at once, not one serving a request.
    let mut c = table(ServeOptions::DEFAULT);
    let (serving, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Head, t));
    assert!(c.set_handle(serving, "serving").is_none());
    let (idle, _) = admitted(c.admit(ip("10.0.0.2"), Phase::Head, t));
    assert!(c.set_handle(idle, "idle").is_none());
    c.advance(serving, Phase::Request, t);
    assert_eq!(c.drain(), vec!["idle"]);
    assert_eq!(c.len(), 1);
    // Its request is still bounded by the head deadline, then the grace period.
    let out = c.expired(t + ms(500));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].handle, Some("serving"));
    assert!(c.is_empty());
}

/// Issue 25 (the attack review of finding 2): an unauthenticated client that keeps its
/// connection busy with requests that do not authenticate it (hyper: open routes,
/// `annotate_only` refusals) makes no progress: it is sheddable `shed_after` after its first
/// request and closed `head_read_timeout` after it, however often it asks.
#[test]
fn requests_that_do_not_authenticate_are_no_progress() {
    let t = t0();
    let opts = ServeOptions::DEFAULT
        .with_max_pending(1)
        .with_shed_after(ms(250));
    let mut c = table(opts);
    let (busy, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Head, t));
    assert!(c.set_handle(busy, "busy").is_none());
    // A request every 50 ms, none of them authenticating.
    let mut now = t;
    for _ in 0..20 {
        now += ms(25);
        c.advance(busy, Phase::Request, now);
        now += ms(25);
        c.advance(busy, Phase::Head, now);
    }
    // Its stall clock ran from its first request (t + 25 ms): a new client may shed it.
    assert_eq!(c.poll_accept(now), Accept::Now);
    let (_, shed) = admitted(c.admit(ip("10.0.0.2"), Phase::Head, now));
    assert_eq!(shed.map(|s| s.handle), Some(Some("busy")));

    // Alone, it is closed head_read_timeout (half a second here) after its first request.
    let mut c = table(ServeOptions::DEFAULT);
    let (busy, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Head, t));
    c.advance(busy, Phase::Request, t + ms(10));
    let mut now = t + ms(10);
    while now < t + ms(4900) {
        c.advance(busy, Phase::Head, now + ms(5));
        c.advance(busy, Phase::Request, now + ms(10));
        now += ms(10);
    }
    assert_eq!(
        c.poll_timeout(),
        Some(t + ms(10) + limits().head_read_timeout)
    );
    assert_eq!(c.expired(t + ms(10) + limits().head_read_timeout).len(), 1);

    // The first request itself is progress, and so is authenticating.
    let mut c = table(ServeOptions::DEFAULT);
    let (a, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Head, t));
    c.advance(a, Phase::Request, t + ms(100));
    assert_eq!(
        c.poll_timeout(),
        Some(t + ms(100) + limits().head_read_timeout)
    );
    c.advance(a, Phase::Head, t + ms(200));
    c.advance(a, Phase::Open, t + ms(300));
    assert_eq!(c.pending(), 0);
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn log_lines_are_rate_limited_per_kind() {
    let t = t0();
    let mut c = table(ServeOptions::DEFAULT);
    assert_eq!(c.should_log(Event::Shed, t), Some(0));
    assert_eq!(c.should_log(Event::Shed, t + ms(10)), None);
    assert_eq!(c.should_log(Event::Shed, t + ms(999)), None);
    assert_eq!(c.should_log(Event::Refused, t + ms(999)), Some(0));
    assert_eq!(c.should_log(Event::Shed, t + ms(1000)), Some(2));
    assert_eq!(c.should_log(Event::Shed, t + ms(2000)), Some(0));
}

#[test]
fn options_clamp_zero_caps() {
    let o = ServeOptions::DEFAULT
        .with_max_connections(0)
        .with_max_pending(0)
        .with_max_pending_per_address(Some(0))
        .with_grace(ms(7));
    assert_eq!(
        (
            o.max_connections,
            o.max_pending,
            o.max_pending_per_address,
            o.grace
        ),
        (1, 1, Some(1), ms(7))
    );
    assert_eq!(ServeOptions::default(), ServeOptions::DEFAULT);
}

#[test]
fn keep_alive_counts_idle_time_only_between_requests() {
    let t = t0();
    let l = Limits::DEFAULT.with_idle_timeout(ms(100));
    let mut k = KeepAlive::new(&l, t);
    assert_eq!(k.deadline(), Some(t + ms(100)));
    let _ = k.request_started();
    let _ = k.request_started();
    assert_eq!((k.deadline(), k.in_flight()), (None, 2));
    assert!(!k.expired(t + ms(10_000)), "a long request is not idle");
    let _ = k.request_finished(t + ms(50));
    assert_eq!(k.deadline(), None, "one stream still in flight");
    let _ = k.request_finished(t + ms(70));
    assert_eq!(k.deadline(), Some(t + ms(170)));
    assert!(!k.expired(t + ms(169)));
    assert!(k.expired(t + ms(170)));
}

/// The connection's timer moves only when the clock needs it: to the idle deadline; while a
/// request is in flight, not before the look it had set, and then an idle timeout on.
#[test]
fn keep_alive_names_when_to_look_again() {
    let t = t0();
    let mut k = KeepAlive::new(&Limits::DEFAULT.with_idle_timeout(ms(100)), t);
    assert_eq!(k.next_look(t + ms(5), t), t + ms(100), "idle: the deadline");
    let _ = k.request_started();
    assert_eq!(
        k.next_look(t + ms(100), t + ms(50)),
        t + ms(100),
        "ahead: kept"
    );
    assert_eq!(
        k.next_look(t + ms(100), t + ms(100)),
        t + ms(200),
        "due: moved on"
    );
    assert_eq!(k.next_look(t + ms(100), t + ms(130)), t + ms(230));
    let _ = k.request_finished(t + ms(300));
    assert_eq!(k.next_look(t + ms(330), t + ms(310)), t + ms(400));
    let never = Limits::DEFAULT.with_idle_timeout(Duration::MAX);
    let k = KeepAlive::new(&never, t);
    assert_eq!(
        k.next_look(t, t),
        t + LOOK_AGAIN_AT_MOST,
        "no idle timeout: a day on"
    );
    // No keep-alive: closed at once when idle, but a request in flight is looked at no
    // more often than every 100 ms, not at every tick of the timer.
    let mut k = KeepAlive::new(&Limits::DEFAULT.with_idle_timeout(Duration::ZERO), t);
    assert_eq!(k.next_look(t + ms(5), t), t, "idle: due now");
    let _ = k.request_started();
    assert_eq!(k.next_look(t, t), t + LOOK_AGAIN_AT_LEAST);
    assert_eq!(LOOK_AGAIN_AT_LEAST, ms(100));
}

/// Issue 25, finding 2: a hyper connection is authenticated only once the layer allows a
/// request; before that its requests report pending phases, after it none.
#[test]
fn keep_alive_names_the_pending_phase_until_authenticated() {
    let t = t0();
    let mut k = KeepAlive::new(&limits(), t);
    assert_eq!(k.request_started(), Some(Phase::Request));
    assert_eq!(k.request_started(), Some(Phase::Request));
    assert_eq!(
        k.request_finished(t),
        Some(Phase::Request),
        "one still in flight"
    );
    assert_eq!(k.request_finished(t), Some(Phase::Head));
    assert_eq!(k.request_started(), Some(Phase::Request));
    assert!(!k.is_authenticated());
    assert_eq!(k.authenticated(), Some(Phase::Open));
    assert!(k.is_authenticated());
    assert_eq!(k.authenticated(), None, "reported once");
    assert_eq!(k.request_finished(t), None);
    assert_eq!(k.request_started(), None);
}

#[test]
fn poll_gathers_what_the_loop_needs_with_readable_log_lines() {
    let t = t0();
    let mut c = table(ServeOptions::DEFAULT.with_max_pending(1));
    let (a, _) = admitted(c.admit(ip("10.0.0.9"), Phase::Handshake, t));
    assert!(c.set_handle(a, "a").is_none());
    let p = c.poll(t + ms(100));
    assert!(p.expired.is_empty());
    assert_eq!(
        p.accept,
        Accept::Wait {
            until: Some(t + ms(250))
        }
    );
    assert_eq!(p.timeout, Some(t + ms(250)), "when a may be shed");
    assert_eq!(
        p.full.unwrap().to_string(),
        "every connection slot is taken: new clients wait in the listen backlog"
    );
    let p = c.poll(t + ms(200));
    assert!(p.full.is_none(), "one line a second");
    let p = c.poll(t + ms(1000));
    assert_eq!(p.accept, Accept::Now);
    let [shed] = &p.expired[..] else {
        panic!("{:?}", p.expired)
    };
    assert_eq!(shed.handle, Some("a"));
    assert_eq!(
        shed.log.as_ref().unwrap().to_string(),
        format!(
            "closing connection {a} from 10.0.0.9 before authentication (TLS handshake for 1s): \
             its phase ran out of time"
        )
    );
    let notice = |c: &mut Connections<&'static str>, at| {
        c.notice(Event::AcceptFailed, at, || "accept failed".into())
    };
    assert_eq!(
        notice(&mut c, t + ms(1000)).unwrap().event,
        Event::AcceptFailed
    );
    assert!(notice(&mut c, t + ms(1500)).is_none());
    let later = notice(&mut c, t + ms(2000)).unwrap();
    assert_eq!(later.suppressed, 1);
    assert_eq!(
        later.to_string(),
        "accept failed (1 more like it since the last line)"
    );
}

/// Issue 31: behind a PROXY-protocol proxy every connection comes from the proxy; the cap
/// per address counts the clients its headers name, not the proxy.
#[test]
fn behind_a_proxy_protocol_proxy_the_cap_counts_the_named_clients() {
    let t = t0();
    let options = ServeOptions::DEFAULT
        .with_max_pending_per_address(Some(2))
        .with_proxy_protocol(ProxyProtocol::new(["10.0.0.1"]).unwrap());
    let mut c = table(options);
    let proxy = ip("10.0.0.1");
    let ids: Vec<_> = (0..5)
        .map(|_| admitted(c.admit(proxy, Phase::Handshake, t)).0)
        .collect();
    let client: IpAddr = "192.0.2.7".parse().unwrap();
    assert_eq!(c.readdress(ids[0], client), Ok(()));
    assert_eq!(
        c.readdress(ids[0], client),
        Ok(()),
        "the same address again"
    );
    assert_eq!(c.readdress(ids[1], client), Ok(()));
    assert_eq!(
        c.readdress(ids[2], client),
        Err(Refusal::PerAddress {
            address: client,
            limit: 2
        })
    );
    assert_eq!(c.readdress(ids[3], "192.0.2.8".parse().unwrap()), Ok(()));
    // Progress (and a close) frees the client's place.
    c.advance(ids[0], Phase::Open, t);
    assert_eq!(c.readdress(ids[4], client), Ok(()));
    c.close(ids[1]);
    c.close(ids[4]);
    assert_eq!(c.readdress(ids[2], client), Ok(()));
    // Without the option, the proxy itself is the address counted.
    let mut c = table(ServeOptions::DEFAULT.with_max_pending_per_address(Some(2)));
    admitted(c.admit(proxy, Phase::Handshake, t));
    admitted(c.admit(proxy, Phase::Handshake, t));
    refused(c.admit(proxy, Phase::Handshake, t));
}

/// `Duration::MAX` (what the WebSocket limits document as "never", and what a user writes
/// for "no timeout") is no deadline: admitting, advancing, shedding and the keep-alive clock
/// do not overflow an `Instant` (which panicked the serve loop on the first connection).
#[test]
fn a_timeout_of_duration_max_is_no_deadline_and_no_panic() {
    let t = t0();
    let never = Limits::DEFAULT
        .with_handshake_timeout(Duration::MAX)
        .with_head_read_timeout(Duration::MAX)
        .with_idle_timeout(Duration::MAX);
    let options = ServeOptions::DEFAULT
        .with_max_pending(1)
        .with_shed_after(Duration::MAX);
    let mut c = Connections::<&'static str>::new(options, &never);
    let (a, _) = admitted(c.admit(ip("10.0.0.1"), Phase::Handshake, t));
    assert!(c.poll(t + ms(10_000)).expired.is_empty());
    assert_eq!(c.poll_accept(t + ms(10_000)), Accept::Wait { until: None });
    let _ = c.advance(a, Phase::Head, t + ms(1));
    let p = c.poll(t + ms(20_000));
    assert!(p.expired.is_empty());
    assert_eq!(p.timeout, None);
    assert_eq!(KeepAlive::new(&never, t).deadline(), None);
    assert!(!KeepAlive::new(&never, t).expired(t + ms(1_000_000)));
}
