//! What the scheduler core needs from the layer above it: the callback type it queues and
//! the few services only that layer can give (see `design/scheduler.md`, "Layering").
//!
//! The core is generic over one [`Binding`]; the Python binding (`py/binding.rs`) is the
//! only implementation outside the unit tests. Everything is monomorphised, so the trait
//! costs no indirect call on the hot paths.

use super::cell::Lock;
use super::error::SchedulerError;
use super::timers::Cancellable;

/// A queued callback: a ready callback or a timer. The flags live in the callback object
/// itself (asyncio's `Handle._cancelled`, `TimerHandle._scheduled`), so the core reads them
/// without asking the binding.
pub(crate) trait Callback: Cancellable + Send {
    /// Whether this is a timer (`call_at`/`call_later`), queued in the heap.
    fn is_timer(&self) -> bool;
    /// A timer's deadline in loop time (0.0 for a ready callback).
    fn when(&self) -> f64;
    /// Set asyncio's `_scheduled` flag (the timer is in the heap).
    fn set_scheduled(&self, scheduled: bool);
    /// Clear `_scheduled`, returning whether it was set.
    fn take_scheduled(&self) -> bool;
}

/// The layer above the core: its callback and clock types, its error type and the lock.
pub(crate) trait Binding: Sized + 'static {
    /// What the queues hold.
    type Item: Callback;
    /// An external clock (a callable returning loop time).
    type Clock: Send;
    /// The layer's error; every [`SchedulerError`] converts into it.
    type Error: From<SchedulerError>;
    /// Proof that the engine's lock is held (see [`Lock`]).
    type Token<'a>: Lock;

    /// A new reference to `item` (no code of the layer above runs).
    fn clone_item(t: Self::Token<'_>, item: &Self::Item) -> Self::Item;
    /// A new reference to `clock` (no code of the layer above runs).
    fn clone_clock(t: Self::Token<'_>, clock: &Self::Clock) -> Self::Clock;
    /// Call the external clock (may run code of the layer above).
    fn read_clock(t: Self::Token<'_>, clock: Self::Clock) -> Result<f64, Self::Error>;
    /// Run `f` with the lock released (a blocking wait).
    fn unlocked<R: Send>(t: Self::Token<'_>, f: impl FnOnce() -> R + Send) -> R;
    /// A wait was interrupted by a signal: run the layer's signal handlers (which may fail).
    fn check_signals(t: Self::Token<'_>) -> Result<(), Self::Error>;
    /// An identifier of the calling thread, as the layer above names threads (never 0).
    fn thread_ident() -> u64;
}
