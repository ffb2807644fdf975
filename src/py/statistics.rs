//! `CoreStatistics`: the frozen record `LoopCore.statistics()` returns.

use pyo3::prelude::*;

use crate::scheduler::core::Statistics;

/// A snapshot of the core's counters (read by tests and benches).
#[pyclass(
    module = "trio_asyncio._engine",
    name = "CoreStatistics",
    frozen,
    get_all
)]
pub struct CoreStatistics {
    /// Callbacks in the ready FIFO.
    ready: usize,
    /// Timers in the heap, cancelled ones included.
    timers: usize,
    /// Cancelled timers still in the heap.
    cancelled_timers: usize,
    /// Registered readers.
    readers: usize,
    /// Registered writers.
    writers: usize,
    /// Handles queued from other threads, not yet moved to the ready FIFO.
    threadsafe: usize,
    /// Loop iterations run by `_run_ready`.
    iterations: u64,
    /// Callbacks run (cancelled ones skipped are not counted).
    callbacks: u64,
    /// Reactor polls (system calls) made by `_run_ready`.
    polls: u64,
    /// Level-triggered registrations re-armed after their event was delivered.
    rearms: u64,
    /// Wake-up writes made while the driver slept.
    wakeups: u64,
    /// Whether the driver is between `_prepare_sleep` and `_end_sleep`.
    sleeping: bool,
    /// Whether `_close_core` ran.
    closed: bool,
}

#[pymethods]
impl CoreStatistics {
    fn __repr__(&self) -> String {
        format!(
            "CoreStatistics(ready={}, timers={}, cancelled_timers={}, readers={}, writers={}, \
             threadsafe={}, iterations={}, callbacks={}, polls={}, rearms={}, wakeups={}, sleeping={}, \
             closed={})",
            self.ready,
            self.timers,
            self.cancelled_timers,
            self.readers,
            self.writers,
            self.threadsafe,
            self.iterations,
            self.callbacks,
            self.polls,
            self.rearms,
            self.wakeups,
            if self.sleeping { "True" } else { "False" },
            if self.closed { "True" } else { "False" },
        )
    }
}

impl From<Statistics> for CoreStatistics {
    fn from(s: Statistics) -> CoreStatistics {
        CoreStatistics {
            ready: s.ready,
            timers: s.timers,
            cancelled_timers: s.cancelled_timers,
            readers: s.readers,
            writers: s.writers,
            threadsafe: s.threadsafe,
            iterations: s.iterations,
            callbacks: s.callbacks,
            polls: s.polls,
            rearms: s.rearms,
            wakeups: s.wakeups,
            sleeping: s.sleeping,
            closed: s.closed,
        }
    }
}
