//! asyncio (and sniffio) objects the engine calls instead of re-implementing them: helpers
//! whose output is part of asyncio's observable behaviour (reprs, log lines,
//! exception-handler messages) and the running-loop functions. Each is imported once per
//! process.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

macro_rules! cached {
    ($(#[$m:meta])* $name:ident = $module:literal . $attr:literal) => {
        $(#[$m])*
        pub(crate) fn $name(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
            static CELL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
            CELL.import(py, $module, $attr)
        }
    };
}

cached!(
    /// `asyncio.format_helpers._format_callback_source(callback, args)`.
    format_callback_source = "asyncio.format_helpers"."_format_callback_source"
);
cached!(
    /// `asyncio.format_helpers.extract_stack(frame)`.
    extract_stack = "asyncio.format_helpers"."extract_stack"
);
cached!(
    /// `asyncio.base_events._format_handle(handle)` (slow-callback log lines).
    format_handle = "asyncio.base_events"."_format_handle"
);
cached!(
    /// `asyncio.coroutines.iscoroutine`.
    iscoroutine = "asyncio.coroutines"."iscoroutine"
);
cached!(
    /// `asyncio.coroutines.iscoroutinefunction`.
    iscoroutinefunction = "asyncio.coroutines"."iscoroutinefunction"
);
cached!(
    /// `asyncio.log.logger` (transport debug lines and warnings).
    logger = "asyncio.log"."logger"
);
cached!(
    /// `asyncio.protocols.BufferedProtocol` (which read path a protocol gets).
    buffered_protocol = "asyncio.protocols"."BufferedProtocol"
);
cached!(
    /// `_asyncio._get_running_loop`: asyncio's own (C) running-loop slot, not compatibility
    /// mode's Trio-aware replacement in `asyncio.events`.
    c_get_running_loop = "_asyncio"."_get_running_loop"
);
cached!(
    /// `_asyncio._set_running_loop` (running_loop.rs).
    c_set_running_loop = "_asyncio"."_set_running_loop"
);
cached!(
    /// `sniffio.thread_local`: the library sniffio names while a batch runs.
    sniffio_thread_local = "sniffio"."thread_local"
);
