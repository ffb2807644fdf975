//! The core without Python: a test binding whose callbacks are numbered records.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::super::binding::{Binding, Callback};
use super::super::cell::Lock;
use super::super::error::SchedulerError;
use super::super::reactor::{Direction, Trigger};
use super::super::timers::Cancellable;
use super::{Core, IDLE, STOP, YIELD};

#[derive(Clone, Copy)]
struct T;
// SAFETY: each test uses its core from its own thread only.
unsafe impl Lock for T {}

struct Cb {
    id: u32,
    when: Option<f64>,
    cancelled: AtomicBool,
    scheduled: AtomicBool,
}

type Item = Arc<Cb>;

impl Cancellable for Item {
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

impl Callback for Item {
    fn is_timer(&self) -> bool {
        self.when.is_some()
    }
    fn when(&self) -> f64 {
        self.when.unwrap_or(0.0)
    }
    fn set_scheduled(&self, scheduled: bool) {
        self.scheduled.store(scheduled, Ordering::Relaxed);
    }
    fn take_scheduled(&self) -> bool {
        self.scheduled.swap(false, Ordering::Relaxed)
    }
}

struct TestBinding;

impl Binding for TestBinding {
    type Item = Item;
    type Clock = ();
    type Error = SchedulerError;
    type Token<'a> = T;

    fn clone_item(_: T, item: &Item) -> Item {
        item.clone()
    }
    fn clone_clock(_: T, _: &()) {}
    fn read_clock(_: T, _: ()) -> Result<f64, SchedulerError> {
        Ok(0.0)
    }
    fn unlocked<R: Send>(_: T, f: impl FnOnce() -> R + Send) -> R {
        f()
    }
    fn check_signals(_: T) -> Result<(), SchedulerError> {
        Ok(())
    }
    fn thread_ident() -> u64 {
        // SAFETY: pthread_self has no preconditions.
        unsafe { libc::pthread_self() as u64 }
    }
}

fn cb(id: u32, when: Option<f64>) -> Item {
    Arc::new(Cb {
        id,
        when,
        cancelled: AtomicBool::new(false),
        scheduled: AtomicBool::new(false),
    })
}

fn core() -> Core<TestBinding> {
    Core::new().expect("a poller")
}

/// Run one batch, recording the ids run; `then` runs after each callback.
fn run(c: &Core<TestBinding>, then: impl Fn(&Item)) -> (i32, Vec<u32>) {
    let ran = RefCell::new(Vec::new());
    let r = c
        .run_batch(T, 10.0, false, &mut |h, _debug| {
            ran.borrow_mut().push(h.id);
            then(&h);
            Ok(())
        })
        .expect("batch");
    (r, ran.into_inner())
}

#[test]
fn ready_callbacks_run_in_fifo_order() {
    let c = core();
    for id in 0..3 {
        c.schedule(T, cb(id, None));
    }
    assert_eq!(run(&c, |_| ()), (IDLE, vec![0, 1, 2]));
    assert_eq!(c.statistics(T).callbacks, 3);
}

#[test]
fn callbacks_queued_by_a_callback_run_in_the_next_iteration() {
    let c = core();
    c.schedule(T, cb(0, None));
    c.schedule(T, cb(1, None));
    let (r, ran) = run(&c, |h| {
        if h.id == 0 {
            c.schedule(T, cb(2, None));
        }
    });
    assert_eq!((r, ran), (IDLE, vec![0, 1, 2]));
    assert_eq!(c.statistics(T).iterations, 2);
}

#[test]
fn due_timers_run_after_ready_callbacks_and_future_ones_stay() {
    let c = core();
    let now = c.now(T).unwrap();
    c.schedule(T, cb(10, Some(now - 1.0)));
    c.schedule(T, cb(11, Some(now + 3600.0)));
    c.schedule(T, cb(1, None));
    assert_eq!(run(&c, |_| ()), (IDLE, vec![1, 10]));
    assert_eq!(c.timers_len(T), 1);
    assert_eq!(c.prepare_sleep(T), Some(now + 3600.0));
    c.end_sleep(T).unwrap();
}

#[test]
fn cancelled_callbacks_are_skipped() {
    let c = core();
    let a = cb(0, None);
    c.schedule(T, a.clone());
    c.schedule(T, cb(1, None));
    a.cancelled.store(true, Ordering::Relaxed);
    assert_eq!(run(&c, |_| ()), (IDLE, vec![1]));
}

#[test]
fn cancelled_timers_are_released_unscheduled_by_compaction() {
    let c = core();
    let now = c.now(T).unwrap();
    let timers: Vec<Item> = (0..150).map(|i| cb(i, Some(now + 3600.0))).collect();
    for h in &timers {
        c.schedule(T, h.clone());
        assert!(h.scheduled.load(Ordering::Relaxed));
    }
    for h in &timers[..100] {
        h.cancelled.store(true, Ordering::Relaxed);
        c.timer_cancelled(T);
    }
    // asyncio's rule: more than half of at least 100 timers dead -> the heap is compacted.
    assert!(c.timers_len(T) < 150);
    let released = timers[..100]
        .iter()
        .filter(|h| !h.scheduled.load(Ordering::Relaxed))
        .count();
    assert_eq!(released, 150 - c.timers_len(T));
    assert!(timers[100..]
        .iter()
        .all(|h| h.scheduled.load(Ordering::Relaxed)));
}

#[test]
fn a_cancelled_timer_at_the_top_is_released_before_sleeping() {
    let c = core();
    let now = c.now(T).unwrap();
    let early = cb(0, Some(now + 100.0));
    c.schedule(T, early.clone());
    c.schedule(T, cb(1, Some(now + 200.0)));
    early.cancelled.store(true, Ordering::Relaxed);
    c.timer_cancelled(T);
    assert_eq!(c.prepare_sleep(T), Some(now + 200.0));
    c.end_sleep(T).unwrap();
    assert!(!early.scheduled.load(Ordering::Relaxed));
    assert_eq!(
        Arc::strong_count(&early),
        1,
        "the core dropped its reference"
    );
}

#[test]
fn stop_ends_the_batch_and_stays_set() {
    let c = core();
    c.schedule(T, cb(0, None));
    c.schedule(T, cb(1, None));
    let (r, ran) = run(&c, |h| {
        if h.id == 0 {
            c.stop();
            c.schedule(T, cb(2, None));
        }
    });
    // The iteration in progress completes; the callback queued for the next does not run.
    assert_eq!((r, ran), (STOP, vec![0, 1]));
    assert!(c.is_stopping());
    c.end_run(false);
    assert!(!c.is_stopping());
}

#[test]
fn a_spent_budget_yields() {
    let c = core();
    c.schedule(T, cb(0, None));
    let r = c
        .run_batch(T, 0.0, false, &mut |h, _| {
            c.schedule(T, h);
            Ok(())
        })
        .unwrap();
    assert_eq!(r, YIELD);
}

#[test]
fn work_pending_keeps_the_driver_awake() {
    let c = core();
    c.schedule(T, cb(0, None));
    assert_eq!(c.prepare_sleep(T), Some(0.0));
    run(&c, |_| ());
    assert_eq!(c.prepare_sleep(T), None);
    c.end_sleep(T).unwrap();
}

#[test]
fn run_state_refuses_a_second_run_and_a_closed_core() {
    let c = core();
    c.begin_run(true).unwrap();
    assert!(matches!(
        c.begin_run(false),
        Err(SchedulerError::AlreadyRunning)
    ));
    assert_eq!(c.owner(), Some(TestBinding::thread_ident()));
    c.end_run(true);
    assert_eq!(c.owner(), None);
    c.schedule(T, cb(0, None));
    c.close(T);
    assert!(c.is_closed());
    assert_eq!(c.poll_fd(), -1);
    assert_eq!(c.ready_len(T), 0);
    assert!(matches!(
        c.run_batch(T, 1.0, false, &mut |_, _| Ok(())),
        Err(SchedulerError::Closed)
    ));
}

#[test]
fn a_replaced_registration_is_handed_back() {
    let c = core();
    let (a, b) = (cb(0, None), cb(1, None));
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe(2) writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let fd = fds[0];
    assert!(c
        .register(T, fd, Direction::Read, a.clone(), Trigger::Level)
        .unwrap()
        .is_none());
    let prev = c
        .register(T, fd, Direction::Read, b, Trigger::Level)
        .unwrap();
    assert_eq!(prev.map(|h| h.id), Some(0));
    let removed = c.unregister(T, fd, Direction::Read);
    assert_eq!(removed.map(|h| h.id), Some(1));
    for fd in fds {
        // SAFETY: both fds came from pipe(2) above and are closed once.
        unsafe { libc::close(fd) };
    }
}
