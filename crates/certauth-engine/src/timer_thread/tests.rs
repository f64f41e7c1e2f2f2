use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Wake;

use super::*;

/// A waker that counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Count {
    fn waker() -> (Arc<Self>, Waker) {
        let count = Arc::new(Self::default());
        (Arc::clone(&count), Waker::from(count))
    }

    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// A clock of the test's own, without its thread: the test calls `tick` with the time.
fn clock() -> &'static TimerThread {
    Box::leak(Box::new(TimerThread::unstarted()))
}

fn pending(clock: &TimerThread) -> usize {
    clock.lock().timers.len()
}

fn looks_at(clock: &TimerThread) -> Option<Instant> {
    clock.lock().looks_at
}

/// Polls `timer` once as the task of `waker`.
fn poll(timer: &mut Timer, waker: &Waker) -> Poll<()> {
    Pin::new(timer).poll(&mut Context::from_waker(waker))
}

/// Runs `future` on this thread to its end; fails after 10 s (a timer that never fires).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        let left = give_up.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "not ready after 10 s");
        std::thread::park_timeout(left);
    }
}

#[test]
fn only_a_deadline_before_the_threads_next_look_wakes_it() {
    let clock = clock();
    let t = Instant::now();
    let (_, waker) = Count::waker();
    // Asleep with nothing pending: any deadline wakes it.
    clock.register(t + Duration::from_secs(10), waker.clone());
    assert_eq!(looks_at(clock), Some(t + Duration::from_secs(10) + SLACK));
    // It looks again after at most MAX_NAP.
    assert_eq!(clock.tick(t), Some(t + MAX_NAP));
    assert_eq!(looks_at(clock), Some(t + MAX_NAP));
    // A request's deadline seconds away: left asleep.
    clock.register(t + Duration::from_secs(5), waker.clone());
    assert_eq!(looks_at(clock), Some(t + MAX_NAP));
    // Due at the very time it looks, or within the slack before: left asleep too.
    clock.register(t + MAX_NAP, waker.clone());
    clock.register(t + MAX_NAP - SLACK, waker.clone());
    assert_eq!(looks_at(clock), Some(t + MAX_NAP));
    // Sooner: woken, for that deadline (and its slack).
    let soon = t + Duration::from_millis(20);
    clock.register(soon, waker.clone());
    assert_eq!(looks_at(clock), Some(soon + SLACK));
    // Then another due within that slack: left asleep.
    clock.register(soon + SLACK / 2, waker);
    assert_eq!(looks_at(clock), Some(soon + SLACK));
    assert_eq!(pending(clock), 6);
}

#[test]
fn a_tick_wakes_the_due_tasks_and_keeps_the_rest() {
    let clock = clock();
    let t = Instant::now();
    let (first, a) = Count::waker();
    let (second, b) = Count::waker();
    let (later, c) = Count::waker();
    clock.register(t + Duration::from_millis(1), a);
    clock.register(t + Duration::from_millis(2), b);
    clock.register(t + Duration::from_secs(3), c);
    // Nothing due yet: it looks again SLACK after the first deadline.
    assert_eq!(clock.tick(t), Some(t + Duration::from_millis(1) + SLACK));
    assert_eq!((first.get(), second.get(), later.get()), (0, 0, 0));
    // Due at the deadline itself, not only after it.
    let now = t + Duration::from_millis(2);
    assert_eq!(clock.tick(now), Some(now + MAX_NAP));
    assert_eq!((first.get(), second.get(), later.get()), (1, 1, 0));
    assert_eq!(pending(clock), 1);
    let now = t + Duration::from_secs(3);
    assert_eq!(clock.tick(now), None);
    assert_eq!((first.get(), second.get(), later.get()), (1, 1, 1));
    assert_eq!(looks_at(clock), None);
    assert_eq!(pending(clock), 0);
}

#[test]
fn a_timer_is_registered_when_polled_and_removed_when_dropped_or_reset() {
    let clock = clock();
    let mut sleep = clock.sleep_until(Instant::now() + Duration::from_secs(60));
    assert_eq!(pending(clock), 0, "not before it is polled");
    let (count, waker) = Count::waker();
    assert!(poll(&mut sleep, &waker).is_pending());
    assert!(poll(&mut sleep, &waker).is_pending());
    assert_eq!(pending(clock), 1, "once, however often polled");
    let at = Instant::now() + Duration::from_secs(30);
    sleep.reset(at);
    assert_eq!(sleep.deadline(), at);
    assert_eq!(pending(clock), 0, "reset takes the old deadline away");
    assert!(poll(&mut sleep, &waker).is_pending());
    assert_eq!(clock.lock().timers.keys().next().map(|k| k.0), Some(at));
    drop(sleep);
    assert_eq!(pending(clock), 0);
    assert_eq!(clock.tick(at), None);
    assert_eq!(count.get(), 0, "a dropped timer wakes nobody");
}

#[test]
fn a_timer_polled_by_another_task_wakes_that_one() {
    let clock = clock();
    let at = Instant::now() + Duration::from_secs(60);
    let mut sleep = clock.sleep_until(at);
    let (old, a) = Count::waker();
    let (new, b) = Count::waker();
    assert!(poll(&mut sleep, &a).is_pending());
    assert!(poll(&mut sleep, &b).is_pending());
    assert_eq!(pending(clock), 1);
    clock.tick(at);
    assert_eq!((old.get(), new.get()), (0, 1));
}

#[test]
fn a_passed_deadline_is_ready_at_once_and_leaves_nothing_behind() {
    let clock = clock();
    let mut sleep = clock.sleep_until(Instant::now());
    let (count, waker) = Count::waker();
    assert!(poll(&mut sleep, &waker).is_ready());
    assert_eq!(pending(clock), 0);
    assert_eq!(count.get(), 0);
}

#[test]
fn the_timer_thread_fires_a_timer_at_its_deadline_not_before() {
    let clock = TimerThread::global().expect("a timer thread");
    let start = Instant::now();
    let wait = Duration::from_millis(50);
    block_on(clock.sleep_until(start + wait));
    assert!(start.elapsed() >= wait);
}

#[test]
fn a_nearer_deadline_wakes_the_timer_thread_from_its_nap() {
    let clock = TimerThread::global().expect("a timer thread");
    // A far deadline pending: the thread naps for MAX_NAP.
    let mut far = clock.sleep_until(Instant::now() + Duration::from_secs(60));
    let (_, waker) = Count::waker();
    assert!(poll(&mut far, &waker).is_pending());
    std::thread::sleep(Duration::from_millis(20));
    // Were the thread not woken, this would fire only at the end of its nap.
    let start = Instant::now();
    block_on(clock.sleep_until(start + Duration::from_millis(10)));
    assert!(
        start.elapsed() < MAX_NAP * 9 / 10,
        "fired after {:?}",
        start.elapsed()
    );
}

#[test]
fn a_waker_that_panics_leaves_the_others_woken() {
    struct Panics;
    impl Wake for Panics {
        fn wake(self: Arc<Self>) {
            panic!("a waker that panics");
        }
    }
    let clock = clock();
    let t = Instant::now();
    let (count, waker) = Count::waker();
    clock.register(t, Waker::from(Arc::new(Panics)));
    clock.register(t + Duration::from_millis(1), waker);
    assert_eq!(clock.tick(t + Duration::from_millis(1)), None);
    assert_eq!(count.get(), 1);
}

#[test]
fn deadlines_within_the_slack_fire_in_one_look() {
    let clock = clock();
    let t = Instant::now();
    let (first, a) = Count::waker();
    let (second, b) = Count::waker();
    let (third, c) = Count::waker();
    clock.register(t + Duration::from_millis(10), a);
    clock.register(t + Duration::from_millis(10) + SLACK / 2, b);
    clock.register(t + Duration::from_millis(10) + SLACK * 2, c);
    let look = clock.tick(t);
    assert_eq!(look, Some(t + Duration::from_millis(10) + SLACK));
    clock.tick(look.unwrap());
    assert_eq!((first.get(), second.get(), third.get()), (1, 1, 0));
}

#[test]
fn a_timer_fired_while_another_task_polls_it_is_ready() {
    let clock = clock();
    let at = Instant::now() + Duration::from_secs(60);
    let mut sleep = clock.sleep_until(at);
    let (old, a) = Count::waker();
    let (new, b) = Count::waker();
    assert!(poll(&mut sleep, &a).is_pending());
    // The thread fires it (its clock past the deadline) before the other task's poll
    // reaches the lock (this thread's clock is not past it yet).
    clock.tick(at);
    assert_eq!(old.get(), 1);
    assert!(
        poll(&mut sleep, &b).is_ready(),
        "pending, it would wait for a wake that has gone to the other task"
    );
    assert_eq!(new.get(), 0);
    assert_eq!(pending(clock), 0);
}

#[test]
fn a_waker_dropped_by_the_clock_may_drop_a_timer() {
    // A waker owning a timer of the same clock (its task's future): dropped under the clock's
    // lock, the timer's drop would take that lock again.
    struct Owns(
        #[expect(dead_code, reason = "held for its drop: the timer goes with the waker")] Timer,
    );
    impl Wake for Owns {
        fn wake(self: Arc<Self>) {}
    }
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let clock = clock();
        let far = Instant::now() + Duration::from_secs(60);
        let (_, noop) = Count::waker();
        let mut owned = clock.sleep_until(far);
        assert!(poll(&mut owned, &noop).is_pending());
        let owner = Arc::new(Owns(owned));
        let waker = Waker::from(Arc::clone(&owner));
        drop(owner);
        // Registered with the owner's waker, then handed another: the owner's is dropped.
        let mut sleep = clock.sleep_until(far);
        assert!(poll(&mut sleep, &waker).is_pending());
        drop(waker);
        assert!(poll(&mut sleep, &noop).is_pending());
        assert_eq!(pending(clock), 1, "the owned timer went with its owner");
        // Through `remove`: a timer dropped while its waker owns another (the map's copy of
        // the waker goes first, outside the lock, then the timer's own).
        let mut owned = clock.sleep_until(far);
        assert!(poll(&mut owned, &noop).is_pending());
        let owner = Arc::new(Owns(owned));
        let mut last = clock.sleep_until(far);
        assert!(poll(&mut last, &Waker::from(owner)).is_pending());
        drop(last);
        drop(sleep);
        assert_eq!(pending(clock), 0);
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("dropping a waker under the clock's lock deadlocked");
}
