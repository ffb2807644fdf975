//! Stackful fibers for CPython (see design/fibers.md).
