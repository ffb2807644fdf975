//! The asyncio engine shared by both loops (see `design/scheduler.md`).
//!
//! Pure Rust, no Python: [`core::Core`] is generic over a [`binding::Binding`] that decides
//! what the items are; the Python-facing `LoopCore` (`py/loop_core.rs`) holds one
//! `Core<PyBinding>` whose items are `Py<Handle>`.
//!
//! ```text
//!   call_soon ───────────────▶ ready FIFO ──(d) run batch──▶ callbacks
//!   call_soon_threadsafe ─▶ threadsafe queue ──(a)──┘ ▲ ▲
//!   call_at/call_later ───▶ timer heap ───(c) due─────┘ │
//!   add_reader/add_writer ▶ reactor (mio Registry) ──(b) ready fds (poller: mio Poll)
//!   any producer while the driver sleeps ──▶ waker (mio::Waker) ─▶ poller wakes
//! ```
//!
//! - [`core`]: the scheduler core (run state, the one enqueue path, I/O registrations, the
//!   sleep/wake protocol, the batch runner), one concept per file.
//! - [`binding`]: what the core needs from the layer above (item flags, clock, lock).
//! - [`cell`]: `LockCell`, the state cell whose lock is the GIL (the [`cell::Lock`] token).
//! - [`ready`]: the FIFO and asyncio's "one batch per iteration" rule.
//! - [`timers`]: `(when, seq)` min-heap, lazy cancellation, asyncio's compaction rule.
//! - [`reactor`]: persistent level-triggered fd registrations on mio (re-armed per event).
//! - [`poller`]: the `mio::Poll` the driver waits in.
//! - [`waker`]: the sleep/wake handshake (one wake-up per sleep, none while awake).
//! - [`clock`]: the native monotonic clock.

pub(crate) mod binding;
pub(crate) mod cell;
pub(crate) mod clock;
pub(crate) mod core;
pub(crate) mod error;
pub(crate) mod poller;
pub(crate) mod reactor;
pub(crate) mod ready;
pub(crate) mod timers;
pub(crate) mod waker;
