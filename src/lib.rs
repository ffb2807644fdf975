//! trio-asyncio on a Rust engine: the `trio_asyncio._engine` extension module.
//!
//! This file is a table of contents. The engine has three layers:
//! - [`fiber`]: stackful coroutines for CPython (the greenlet replacement);
//! - [`scheduler`]: the asyncio engine shared by both loops (ready FIFO, timers, reactor);
//! - [`transport`]: stream socket transport state (write buffer, flow control, socket calls);
//! - [`py`]: the Python-facing classes and the one place errors become exceptions.
//!
//! See `design/architecture.md` for how they fit together.

mod fiber;
mod py;
mod scheduler;
mod transport;

use pyo3::prelude::*;

/// The extension module. `gil_used = true`: the fiber code has not been reviewed for
/// free-threaded CPython, and free-threaded builds are refused at import.
#[pymodule(gil_used = true)]
mod _engine {
    use pyo3::prelude::*;

    #[pymodule_export]
    use crate::fiber::FiberExit;
    #[pymodule_export]
    use crate::py::fiber::{current, fiber_statistics, suspend, PyFiber};
    #[pymodule_export]
    use crate::py::handle::Handle;
    #[pymodule_export]
    use crate::py::handle::TimerHandle;
    #[pymodule_export]
    use crate::py::loop_core::LoopCore;
    #[pymodule_export]
    use crate::py::statistics::CoreStatistics;
    #[pymodule_export]
    use crate::py::stream_transport::StreamTransportCore;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        crate::py::fiber::check_runtime(m.py())?;
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("build_info", crate::py::build_info(m.py())?)?;
        m.add("RUN_IDLE", crate::scheduler::core::IDLE)?;
        m.add("RUN_STOP", crate::scheduler::core::STOP)?;
        m.add("RUN_YIELD", crate::scheduler::core::YIELD)?;
        m.add("DRIVER_BUDGET", crate::py::loop_core::DRIVER_BUDGET)?;
        crate::py::fastcall::install(m.py())?;
        Ok(())
    }
}
