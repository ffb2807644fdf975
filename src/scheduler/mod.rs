//! The asyncio engine shared by both loops (see design/scheduler.md).
