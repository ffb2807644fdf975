//! Stream socket transports: the state and buffering behind `_engine.StreamTransportCore`
//! (`src/py/stream_transport/` is its Python face).
//!
//! Nothing here touches Python: the write buffer ([`buffer`]), the write-buffer limits and
//! protocol pause state ([`flow`]), and the non-blocking socket calls ([`sys`]). The Python
//! face owns the references (loop, socket, protocol) and calls into Python only between
//! uses of this state, never inside one. See `design/transports.md`.

pub(crate) mod buffer;
pub(crate) mod flow;
pub(crate) mod sys;

/// Errors of the transport layer; `src/py/errors.rs` turns them into the exceptions stock
/// asyncio raises.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// `set_write_buffer_limits` with `high < low` or `low < 0` (asyncio's message).
    #[error("high ({high}) must be >= low ({low}) must be >= 0")]
    BadLimits { high: i128, low: i128 },
    /// A failed socket call (`OSError` with its errno).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
