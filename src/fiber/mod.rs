//! Stackful fibers for CPython (see `design/fibers.md`).
//!
//! One `PyThreadState` per OS thread, as in greenlet: each fiber runs on its own mmap'd C
//! stack (corosensei), and the *per-context* fields of the thread state are moved out of the
//! thread state into the outgoing context and back in from the incoming one around every
//! `Coroutine::resume`. Everything else in the thread state is shared by all fibers of the
//! thread (tracing/profiling functions, `threading.local` dict, async-gen hooks, the error
//! indicator, thread ids).
//!
//! # Where the thread-state fields live
//!
//! "Per-context fields" (3.11): `cframe` (+ the `current_frame` inside it), recursion depth,
//! `trash_delete_nesting`, `datastack_{chunk,top,limit}`, `exc_info` + `exc_state`,
//! `context`. Parent P resumes fiber F:
//!
//! ```text
//!                    PyThreadState (one per OS thread)     P's saved slot      F's saved slot
//!                    ---------------------------------     (Rust local in      (Fiber.shared,
//!                                                           resume(), P stack)  heap)
//! F never run        P's fields                            -                   empty + depth
//!                                                                               + context copy
//! F running          F's fields  (cframe -> F's stack)     P's fields          (moved out)
//!                    shared: c_tracefunc, dict, ...
//! F suspended        P's fields  (cframe -> P's stack)     -                   F's fields
//! F finished         P's fields                            -                   cleared: refs
//!                                                                               dropped, chunks
//!                                                                               freed
//!
//!   3.11 tracing flag (cframe->use_tracing) is *carried* from the outgoing context into the
//!   incoming one on every switch, so sys.settrace while a fiber was suspended takes effect.
//! ```
//!
//! A fiber's C stack, while it runs (grows down):
//!
//! ```text
//!   base  | corosensei entry | init closure | fs_run_bottom: bottom _PyCFrame
//!         |   (current_frame = NULL, previous = &root_cframe)  | start_body -> func(...)
//!         |   -> _PyEval_EvalFrameDefault ... -> suspend() -> Yielder::suspend   <- sp
//!   limit | 64 KiB PROT_NONE guard
//! ```
//!
//! # The only places a switch happens
//!
//! * [`switch::resume`] (used by `Fiber.switch`, `Fiber.throw` and the destructor's kill):
//!   `parent.save(); fiber.restore(); co.resume(); fiber.save(); parent.restore()`.
//! * [`switch::suspend`] (module-level `suspend()`): `Yielder::suspend` back into the
//!   innermost `resume`.
//! * A fiber's function returning: back into `resume` with a `Finished` value.
//!
//! No Python code runs inside the bracket and no exception is pending across it: values
//! and errors travel as Rust values ([`switch::Resume`], [`switch::Outcome`]).

mod error;
mod handle;
mod stack;
mod state;
mod stats;
mod switch;

pub use error::{FiberError, FiberExit};
pub use handle::{current, suspend, Fiber, FiberState};
pub use stats::statistics;

/// `PY_VERSION_HEX` of the headers the interpreter shim was compiled against.
pub fn built_version() -> u64 {
    state::built_version()
}

/// Whether the compiled shim's state fits its Rust buffer (checked at import).
pub fn layout_ok() -> bool {
    state::layout_ok()
}
