//! Python-facing classes and functions, and the conversion of engine errors to exceptions.

mod args;
mod asyncio_refs;
mod binding;
pub(crate) mod fastcall;
mod gil;
pub(crate) mod handle;
mod handle_pool;
mod handle_run;
pub(crate) mod loop_core;
mod running_loop;
pub(crate) mod statistics;
pub(crate) mod stream_transport;

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Facts about this build, for bug reports and the benches.
pub(crate) fn build_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("version", env!("CARGO_PKG_VERSION"))?;
    d.set_item("debug_assertions", cfg!(debug_assertions))?;
    d.set_item("target_os", std::env::consts::OS)?;
    d.set_item("target_arch", std::env::consts::ARCH)?;
    Ok(d)
}

pub(crate) mod errors;
pub(crate) mod fiber;
