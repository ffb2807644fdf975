//! Engine error types, one `thiserror` enum per layer.
//!
//! They become Python exceptions only in `py/errors.rs`.
