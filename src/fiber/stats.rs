//! Process-wide fiber counters.
//!
//! Every update happens with the GIL held, which already serialises them, so an update is a
//! relaxed load + store (plain moves) instead of a locked read-modify-write: the switch path
//! pays no atomic instruction. Atomics are still used so that reads from any thread are
//! well-defined.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::stack;

static CREATED: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static FINISHED: AtomicU64 = AtomicU64::new(0);
static KILLED: AtomicU64 = AtomicU64::new(0);
static LEAKED: AtomicU64 = AtomicU64::new(0);
static SWITCHES: AtomicU64 = AtomicU64::new(0);

/// Increment under the GIL (see the module docs).
#[inline]
fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed) + 1, Relaxed);
}

pub(crate) fn created() {
    bump(&CREATED);
}
pub(crate) fn dropped() {
    bump(&DROPPED);
}
pub(crate) fn finished() {
    bump(&FINISHED);
}
pub(crate) fn killed() {
    bump(&KILLED);
}
pub(crate) fn leaked() {
    bump(&LEAKED);
}
pub(crate) fn switched() {
    bump(&SWITCHES);
}

/// A snapshot of the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statistics {
    /// `Fiber` objects alive (created and not yet destroyed).
    pub live: u64,
    /// Fibers ever created.
    pub created: u64,
    /// Fibers whose function returned or raised (including those killed and thrown into
    /// before starting).
    pub finished: u64,
    /// Unfinished fibers killed with `FiberExit` by their destructor.
    pub killed: u64,
    /// Unfinished fibers that could not be killed and whose stack was leaked.
    pub leaked: u64,
    /// Resumes (`switch`/`throw`/kill), i.e. round trips into a fiber.
    pub switches: u64,
    /// Stacks sitting in the per-thread pools.
    pub pooled_stacks: u64,
    /// Stacks currently mapped (running, suspended, or pooled; leaked ones included).
    pub mapped_stacks: u64,
}

/// Read the counters.
pub fn statistics() -> Statistics {
    let created = CREATED.load(Relaxed);
    Statistics {
        live: created - DROPPED.load(Relaxed).min(created),
        created,
        finished: FINISHED.load(Relaxed),
        killed: KILLED.load(Relaxed),
        leaked: LEAKED.load(Relaxed),
        switches: SWITCHES.load(Relaxed),
        pooled_stacks: stack::POOLED.load(Relaxed) as u64,
        mapped_stacks: stack::MAPPED.load(Relaxed) as u64,
    }
}
