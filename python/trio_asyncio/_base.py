"""``BaseTrioEventLoop``: what both trio-asyncio loops share.

The hot asyncio methods (``call_soon``, ``call_later``, ``call_at``,
``call_soon_threadsafe``, ``time``, ``stop``, ``_add_reader``/``_remove_reader``/
``_add_writer``/``_remove_writer``, ``is_closed``) live in the Rust base class
``_engine.LoopCore``; this module adds the Python surface around them. Transports, sockets,
servers, TLS, unix sockets, pipes and ``sendfile`` come from asyncio's own selector loop
classes, which only ever reach the event loop through those methods, so they run unchanged
on the Rust reactor. See ``design/loops.md``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import math
import os
import selectors
import signal
import sys
import threading
import warnings
import weakref
from asyncio import base_events, coroutines, events
from asyncio import unix_events as _unix_events
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple, Unpack

import trio
from sniffio import thread_local as _sniffio_thread_local

# asyncio's own running-loop slot (C). Not ``asyncio.events._get_running_loop``, which
# compatibility mode replaces with a Trio-aware version.
from _asyncio import _get_running_loop as _c_get_running_loop
from _asyncio import _set_running_loop as _c_set_running_loop

from . import _fork
from ._context import current_loop
from ._engine import RUN_STOP as _STOP
from ._engine import RUN_YIELD as _YIELD
from ._engine import LoopCore
from ._executor import TrioExecutor
from ._handles import TrioTaskFuture, TrioTaskHandle
from ._stream_transport import NativeStreamTransportMixin
from ._util import run_aio_future

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

#: Longest single wait for I/O or a timer, in seconds (asyncio's MAXIMUM_SELECT_TIMEOUT):
#: a timer further away (``asyncio.sleep(math.inf)``, a far ``call_at``) is waited for in
#: several steps instead of overflowing a system call's timeout.
MAXIMUM_WAIT = 24 * 3600.0

#: Longest stretch of asyncio callbacks run back to back before the driver task yields to
#: Trio, in seconds (keeps Trio tasks and cancellation from starving).
DRIVER_BUDGET = 0.005

_GLOBAL_RUN_CONTEXT = trio._core._run.GLOBAL_RUN_CONTEXT  # private: see design/loops.md
_get_asyncgen_hooks = sys.get_asyncgen_hooks
_set_asyncgen_hooks = sys.set_asyncgen_hooks


def _in_trio_run_of(runner: object) -> bool:
    return runner is not None and getattr(_GLOBAL_RUN_CONTEXT, "runner", None) is runner


def wait_seconds(deadline: float, now: float) -> float:
    """How long to wait for a loop-time *deadline*: within ``[0, MAXIMUM_WAIT]``; a NaN
    deadline (which never fires) waits the maximum."""
    delay = deadline - now
    if delay != delay:  # NaN
        return MAXIMUM_WAIT
    return min(max(delay, 0.0), MAXIMUM_WAIT)


def _noop() -> None:
    pass


def _run_py_handle(handle: asyncio.Handle) -> None:
    if not handle._cancelled:
        handle._run()


class _ReactorSelector(selectors.BaseSelector):
    """A read-only ``selectors`` view of the loop's reactor registrations.

    asyncio's transports and some tests look at ``loop._selector`` (``get_key``,
    ``get_map``); registering and selecting go through the loop, never through this view.
    """

    def __init__(self, loop: BaseTrioEventLoop) -> None:
        self._loop_ref = weakref.ref(loop)

    def _key(self, fd: int) -> selectors.SelectorKey | None:
        loop = self._loop_ref()
        if loop is None or loop.is_closed():
            return None
        reader = loop._reader_handle(fd)
        writer = loop._writer_handle(fd)
        events_mask = (selectors.EVENT_READ if reader is not None else 0) | (
            selectors.EVENT_WRITE if writer is not None else 0
        )
        if not events_mask:
            return None
        return selectors.SelectorKey(fd, fd, events_mask, (reader, writer))

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        fd = selectors._fileobj_to_fd(fileobj)  # type: ignore[attr-defined]
        key = self._key(fd)
        if key is None:
            raise KeyError(f"{fileobj!r} is not registered")
        return key

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        loop = self._loop_ref()
        if loop is None or loop.is_closed():
            return {}
        keys = {}
        for fd in loop._fd_registrations():
            key = self._key(fd)
            if key is not None:
                keys[fd] = key
        return keys

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        raise NotImplementedError("register through loop.add_reader()/add_writer()")

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        raise NotImplementedError("unregister through loop.remove_reader()/remove_writer()")

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        raise NotImplementedError("the trio-asyncio loop polls its reactor itself")

    def close(self) -> None:
        pass


class BaseTrioEventLoop(NativeStreamTransportMixin, LoopCore, _unix_events._UnixSelectorEventLoop):  # type: ignore[misc]
    """An asyncio event loop that runs on top of Trio.

    Bases: :class:`asyncio.SelectorEventLoop` (for the transports; the selector itself is
    replaced by the Rust reactor).

    Every loop created by trio-asyncio derives from this class: :class:`TrioEventLoop`
    (from :func:`open_loop`) and the sync loop that :func:`asyncio.new_event_loop` returns
    once trio_asyncio is imported.

    :param queue_len: accepted for compatibility with trio-asyncio 0.16; the callback queue
        is unbounded (see design/conformance.md).
    """

    # Set while the loop's Trio side exists: the nursery Trio tasks are started in, the
    # run they live in, and its token.
    _nursery: trio.Nursery | None = None
    _trio_runner: object = None
    _trio_token: trio.lowlevel.TrioToken | None = None
    # The driver task's parking state (see _drive and _drive_inline).
    _parked = False
    _parked_deadline: float | None = None
    _inline = False
    _stopped_inline = False  # a batch run by _drive_inline ended with stop()
    _batch_sets_running_loop = False
    # The handler SIGINT had inside Trio before add_signal_handler(SIGINT) replaced it.
    _sigint_restore: Any = None

    if TYPE_CHECKING:
        # asyncio.BaseEventLoop internals that typeshed does not declare (the private names
        # used are listed in design/loops.md).
        _asyncgens: weakref.WeakSet[Any]
        _coroutine_origin_tracking_enabled: bool
        _default_executor: concurrent.futures.Executor | None
        _selector: _ReactorSelector | None
        _thread_id: int | None

        def _check_closed(self) -> None: ...
        def _check_callback(self, callback: object, method: str) -> None: ...
        def _check_default_executor(self) -> None: ...
        def _check_signal(self, sig: int) -> None: ...
        def _handle_signal(self, sig: int) -> None: ...
        def _set_coroutine_origin_tracking(self, enabled: bool) -> None: ...
        def _asyncgen_firstiter_hook(self, agen: Any) -> None: ...
        def _asyncgen_finalizer_hook(self, agen: Any) -> None: ...

    def __init__(self, queue_len: int | None = None) -> None:
        # BaseEventLoop.__init__ only; BaseSelectorEventLoop.__init__ would create a
        # selector and a self-pipe, both of which the Rust core replaces.
        base_events.BaseEventLoop.__init__(self)
        self._selector = _ReactorSelector(self)
        self._transports: weakref.WeakValueDictionary[int, Any] = weakref.WeakValueDictionary()
        self._signal_handlers: dict[int, asyncio.Handle] = {}
        # What _UnixSelectorEventLoop.__init__ would set: from 3.13 its unix servers record
        # their socket's inode here so close() can unlink the path (unused before 3.13).
        self._unix_server_sockets: dict[Any, int] = {}
        self._ssock = self._csock = None
        # asyncio counts its self-pipe here; the Rust core's waker plays that part.
        self._internal_fds = 1
        self._queue_len = queue_len
        self._close_files: set[int] = set()
        self._child_pidfds: dict[int, int] = {}
        # Trio tasks to start, and scopes to cancel, once the driver runs in Trio.
        self._pending_trio_tasks: list[TrioTaskHandle | trio.CancelScope] = []
        self._stopped_event = trio.Event()
        self._stopped_event.set()
        # Set in a forked child whose fork happened inside this loop's Trio run: the rest of
        # that run must not touch Trio (its kernel objects are the parent's; see _fork).
        self._trio_inherited = False
        _fork.track(self)

    def __repr__(self) -> str:
        state = "closed" if self.is_closed() else "running" if self.is_running() else "stopped"
        return f"<{type(self).__name__} {state} debug={self.get_debug()}>"

    # ------------------------------------------------------------------
    # Basic state
    # ------------------------------------------------------------------

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        self._set_debug(bool(enabled))

    # asyncio's self-pipe is replaced by the Rust core's waker.
    def _make_self_pipe(self) -> None:
        pass

    def _close_self_pipe(self) -> None:
        pass

    def _write_to_self(self) -> None:
        self.call_soon_threadsafe(_noop)

    def _process_events(self, event_list: Any) -> None:  # pragma: no cover
        raise RuntimeError("trio-asyncio loops dispatch fd events in the Rust core")

    def _run_once(self) -> None:  # pragma: no cover
        raise RuntimeError("trio-asyncio loops are driven by a Trio task, not _run_once()")

    def _timer_handle_cancelled(self, handle: Any) -> None:
        pass

    # ------------------------------------------------------------------
    # The driver: the Trio task code that runs asyncio callbacks
    # ------------------------------------------------------------------

    def _run_batch(self, in_trio: bool, wait: bool = False) -> int:
        """Run ready callbacks in Rust (``LoopCore._run_ready``); return its status.

        The only place callbacks are run from, for every driver (the Trio task of
        :meth:`_drive`, :meth:`_drive_inline`, and the sync loop's caller-side paths). With
        ``wait`` the core also blocks in its poller when idle (the sync loop before any Trio
        code ran); otherwise it returns after ``DRIVER_BUDGET`` seconds or when idle.

        Around the batch sniffio says "asyncio". ``in_trio`` (the batch runs inside a Trio
        run): the thread's async-generator hooks are the loop's own (CPython binds each
        generator to the finalizer installed when it is first iterated, so generators
        started by callbacks are finalised by the loop and those started by Trio tasks by
        Trio), and, for the async loop, asyncio's running loop is this one; all of it is
        restored before any Trio code runs. On the caller's side of a sync loop,
        ``run_forever`` has set the hooks and the running loop for the whole run already.
        """
        tl = _sniffio_thread_local
        prev_library = tl.name
        tl.name = "asyncio"
        if not in_trio:
            try:
                return self._run_ready(DRIVER_BUDGET, wait)
            finally:
                tl.name = prev_library
        prev_hooks = _get_asyncgen_hooks()
        _set_asyncgen_hooks(self._asyncgen_firstiter_hook, self._asyncgen_finalizer_hook)
        set_running_loop = self._batch_sets_running_loop
        if set_running_loop:
            prev_loop = _c_get_running_loop()
            _c_set_running_loop(self)
        try:
            return self._run_ready(DRIVER_BUDGET, wait)
        finally:
            if set_running_loop:
                _c_set_running_loop(prev_loop)
            _set_asyncgen_hooks(*prev_hooks)
            tl.name = prev_library

    async def _drive(self, set_running_loop: bool) -> None:
        """Run asyncio callbacks until :meth:`stop` takes effect.

        Trio-flavoured; the only place a loop waits inside Trio (a sync loop that has no
        Trio run yet waits in the core itself, see ``SyncTrioEventLoop.run_forever``). Each
        pass runs every ready callback in Rust with no Trio checkpoint in between
        (:meth:`_run_batch`); the task yields to Trio when it has nothing to do (sleeping
        until the next timer, an fd event or a wake-up) and after ``DRIVER_BUDGET`` seconds
        of continuous work.
        """
        poll_fd = self._poll_fd()
        self._batch_sets_running_loop = set_running_loop
        while True:
            if self._pending_trio_tasks:
                self._start_pending_trio_tasks()
            try:
                # In a forked child that inherited this Trio run, Trio cannot be waited in
                # (its kernel objects are the parent's): the core waits itself.
                status = self._run_batch(True, wait=self._trio_inherited)
            except (KeyboardInterrupt, SystemExit) as exc:
                if not self._forward_base_exception(exc):
                    raise
                continue
            if status == _STOP:
                return
            if status == _YIELD:
                if not self._trio_inherited:
                    await trio.lowlevel.checkpoint()
                continue
            if self._pending_trio_tasks or self._trio_inherited:
                continue  # inherited: forked in that batch, the next one waits in the core
            deadline = self._prepare_sleep()
            if deadline == 0.0:
                # Work arrived while preparing to sleep (or a timer is due at 0.0 on a
                # mock clock): run another pass.
                self._end_sleep()
                continue
            self._parked_deadline = deadline
            self._parked = True
            try:
                if deadline is None:
                    wake_at = math.inf
                else:
                    now = self.time()
                    wake_at = now + wait_seconds(deadline, now)
                with trio.CancelScope(deadline=wake_at) as scope:
                    await trio.lowlevel.wait_readable(poll_fd)
            finally:
                self._parked = False
                self._end_sleep()
            if self._stopped_inline:
                self._stopped_inline = False
                return  # stop() ran in a batch another task drove (_drive_inline)
            if scope.cancelled_caught:
                # Woken by the deadline: Trio delivered that as an Error(Cancelled) whose
                # traceback reaches this frame (and so the loop). Trio's run loop keeps the
                # last value sent into a task in a local, which for a sync loop sits on a
                # suspended, GC-invisible fiber stack; one more checkpoint replaces it.
                await trio.lowlevel.cancel_shielded_checkpoint()

    def _after_fork_in_child(self) -> None:
        """In a forked child: stop sharing kernel objects with the parent (see ``_fork``)."""
        if not self.is_closed():
            self._renew_after_fork()

    def _drive_inline(self) -> None:
        """Run the ready callbacks now, in the calling Trio task, if the driver is parked.

        Called from Trio tasks of this loop's run right after they queued work for the
        loop (:func:`run_aio_future` after scheduling an asyncio task, a Trio task started
        by :meth:`trio_as_future` after resolving its future). Running that work here,
        instead of waking the parked driver through Trio's scheduler, saves two trips
        through Trio per crossing. One batch runs (until the loop is idle again, its budget
        is spent or it was stopped); the parked driver is then woken only if it has work
        or an earlier deadline than the one it sleeps until.
        """
        if not self._parked or self._inline or not _in_trio_run_of(self._trio_runner):
            return
        self._inline = True
        self._end_sleep()
        try:
            if self._run_batch(True) == _STOP:
                self._stopped_inline = True
        except (KeyboardInterrupt, SystemExit) as exc:
            if not self._forward_base_exception(exc):
                raise
        finally:
            self._inline = False
            deadline = self._prepare_sleep()
            if deadline == 0.0 or deadline != self._parked_deadline or self._pending_trio_tasks:
                self._wake()

    def _forward_base_exception(self, exc: BaseException) -> bool:
        """Hook: deliver a KeyboardInterrupt/SystemExit raised by a callback elsewhere and
        keep driving (return True), or let it end the driver (return False)."""
        return False

    def _adopt_trio_clock(self) -> None:
        """Make ``time()`` read the clock of the Trio run we are in."""
        clock = trio.lowlevel.current_clock()
        offset = getattr(clock, "offset", None)
        if type(clock).__name__ == "SystemClock" and isinstance(offset, float):
            self._set_clock_offset(offset)
        else:
            self._set_clock_callable(clock.current_time)

    # ------------------------------------------------------------------
    # Trio tasks started from asyncio
    # ------------------------------------------------------------------

    def trio_as_future(
        self, proc: Callable[[Unpack[Ts]], Awaitable[T]], *args: Unpack[Ts]
    ) -> asyncio.Future[T]:
        """Start ``await proc(*args)`` in a new Trio task; return an asyncio future for it.

        The call itself can be made from any flavour on the loop's thread; awaiting the
        returned future is asyncio-flavoured. The future resolves to the task's result or
        error. Cancelling the future cancels the Trio task (or keeps it from starting); it
        then resolves to :exc:`asyncio.CancelledError`.

        :raises RuntimeError: if the loop is closed.
        """
        self._check_closed()
        fut: TrioTaskFuture = TrioTaskFuture(loop=self)
        self._start_trio_task(TrioTaskHandle(self, proc, args, fut, self._task_context()))
        return fut

    def run_trio_task(
        self, proc: Callable[[Unpack[Ts]], Awaitable[object]], *args: Unpack[Ts]
    ) -> TrioTaskHandle:
        """Start ``await proc(*args)`` in a new Trio task and return a handle to cancel it.

        An error raised by the task is reported to the loop's exception handler, which
        for an :func:`open_loop` loop ends the loop.

        :raises RuntimeError: if the loop is closed.
        """
        self._check_closed()
        handle = TrioTaskHandle(self, proc, args, None, self._task_context())
        self._start_trio_task(handle)
        return handle

    def _task_context(self) -> contextvars.Context:
        ctx = contextvars.copy_context()
        if ctx.get(current_loop) is not self:
            ctx.run(current_loop.set, self)
        return ctx

    def _start_trio_task(self, handle: TrioTaskHandle) -> None:
        if self._trio_inherited:
            raise RuntimeError(
                "this loop's Trio run was inherited across fork(): Trio code cannot run on it "
                "in the child until the current run ends"
            )
        nursery = self._nursery
        if nursery is not None and _in_trio_run_of(self._trio_runner):
            handle._context.run(nursery.start_soon, handle._run, name=handle._proc)  # type: ignore[arg-type]
        else:
            # Not inside our Trio run (a sync loop that is stopped, or running callbacks
            # on its caller's stack): the driver starts it on its next pass; a batch
            # running in the core's own wait returns for that.
            self._pending_trio_tasks.append(handle)
            self._interrupt()

    def _start_pending_trio_tasks(self) -> None:
        pending, self._pending_trio_tasks = self._pending_trio_tasks, []
        for item in pending:
            if isinstance(item, trio.CancelScope):
                item.cancel()
            else:
                self._start_trio_task(item)

    def _cancel_trio_scope(self, scope: trio.CancelScope) -> None:
        """Cancel the scope of a Trio task of this loop, from any code on its thread.

        Cancelling wakes the task through its run, so it happens right away only inside
        the loop's Trio run; elsewhere (asyncio code on a sync loop's caller stack, or
        between runs) the driver does it on its next pass, and closing the loop cancels
        every Trio task anyway.
        """
        if _in_trio_run_of(self._trio_runner):
            scope.cancel()
        else:
            self._pending_trio_tasks.append(scope)

    async def run_aio_coroutine(self, coro: Awaitable[T]) -> T:
        """Run an asyncio-flavoured coroutine as a task on this loop; return its result.

        This is a Trio-flavoured async function. Cancelling the calling Trio scope
        cancels the task (see :func:`run_aio_future`).
        """
        try:
            self._check_closed()
            fut = asyncio.ensure_future(coro, loop=self)
        except BaseException:
            close = getattr(coro, "close", None)
            if close is not None:
                close()
            raise
        return await run_aio_future(fut)

    run_aio_future = staticmethod(run_aio_future)

    async def synchronize(self) -> None:
        """Wait until every callback queued with ``call_soon`` before this call has run.

        This is a Trio-flavoured async function.
        """
        done = trio.Event()
        self.call_soon(done.set)
        await done.wait()

    async def wait_stopped(self) -> None:
        """Wait until the loop has stopped running (Trio-flavoured)."""
        await self._stopped_event.wait()

    # ------------------------------------------------------------------
    # Executors
    # ------------------------------------------------------------------

    def set_default_executor(self, executor: concurrent.futures.Executor) -> None:
        """Use *executor* for ``run_in_executor(None, ...)``.

        :raises TypeError: unless *executor* is a :class:`~concurrent.futures.ThreadPoolExecutor`
            (a :class:`TrioExecutor` is one), as stock asyncio requires.
        """
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor instance")
        self._default_executor = executor

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[Unpack[Ts]], T],
        *args: Unpack[Ts],
    ) -> asyncio.Future[T]:
        """Run ``func(*args)`` in *executor* (default: a :class:`TrioExecutor`).

        Any :class:`concurrent.futures.Executor` works; a :class:`TrioExecutor` runs the
        job in a Trio worker thread.
        """
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            self._check_default_executor()
            if executor is None:
                executor = TrioExecutor()
                self._default_executor = executor
        if isinstance(executor, TrioExecutor):
            return self.trio_as_future(_submit_to_trio_executor, executor, func, *args)
        return asyncio.wrap_future(executor.submit(func, *args), loop=self)

    # ------------------------------------------------------------------
    # File descriptors
    # ------------------------------------------------------------------

    def autoclose(self, fd: Any) -> None:
        """Close *fd* (an int or an object with ``fileno()``) when the loop closes."""
        if hasattr(fd, "fileno"):
            fd = fd.fileno()
        self._close_files.add(fd)

    def no_autoclose(self, fd: Any) -> None:
        """Undo :meth:`autoclose` for *fd*.

        :raises KeyError: if *fd* was not marked with :meth:`autoclose`.
        """
        if hasattr(fd, "fileno"):
            fd = fd.fileno()
        self._close_files.remove(fd)

    # ------------------------------------------------------------------
    # Signals
    # ------------------------------------------------------------------

    def add_signal_handler(
        self, sig: int, callback: Callable[[Unpack[Ts]], object], *args: Unpack[Ts]
    ) -> None:
        """Run ``callback(*args)`` as a loop callback whenever signal *sig* arrives.

        :raises TypeError: for a coroutine (function) callback.
        :raises ValueError: for an invalid or uncatchable signal number.
        :raises RuntimeError: outside the main thread, or if the loop is closed.
        """
        if coroutines.iscoroutine(callback) or coroutines.iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("set_wakeup_fd only works in main thread of the main interpreter")
        handle = events.Handle(callback, args, self, None)
        if sig == signal.SIGINT and sig not in self._signal_handlers:
            # Inside Trio, SIGINT has Trio's handler: removal puts it back.
            self._sigint_restore = (
                signal.getsignal(sig) if _in_trio_run_of(self._trio_runner) else None
            )
        self._signal_handlers[sig] = handle
        try:
            signal.signal(sig, self._on_signal)
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if exc.errno == 22:  # EINVAL
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise

    def _on_signal(self, signum: int, frame: object) -> None:
        self._handle_signal(signum)

    def _add_callback_signalsafe(self, handle: asyncio.Handle) -> None:
        self.call_soon_threadsafe(_run_py_handle, handle)

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove the handler for *sig*; return whether there was one."""
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False
        handler: Any = signal.SIG_DFL
        if sig == signal.SIGINT:
            restore, self._sigint_restore = self._sigint_restore, None
            inside = restore is not None and _in_trio_run_of(self._trio_runner)
            handler = restore if inside else signal.default_int_handler
        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == 22:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise
        return True

    # ------------------------------------------------------------------
    # Subprocesses: child exit arrives through the reactor (pidfd), no watcher thread
    # ------------------------------------------------------------------

    async def _make_subprocess_transport(  # type: ignore[override, unused-ignore]
        self,
        protocol: asyncio.BaseProtocol,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: Any = None,
        **kwargs: Any,
    ) -> asyncio.SubprocessTransport:
        if _user_child_watcher() is not None:
            # The user installed a child watcher (asyncio.set_child_watcher): asyncio's
            # own path, so that watcher (which may reap every child) sees this one too.
            return await super()._make_subprocess_transport(  # type: ignore[misc, no-any-return, unused-ignore]
                protocol, args, shell, stdin, stdout, stderr, bufsize, extra=extra, **kwargs
            )
        waiter = self.create_future()
        transp = _unix_events._UnixSubprocessTransport(  # type: ignore[attr-defined]
            self, protocol, args, shell, stdin, stdout, stderr, bufsize,
            waiter=waiter, extra=extra, **kwargs,
        )
        self._watch_child(transp.get_pid(), transp)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            await transp._wait()
            raise
        return transp  # type: ignore[no-any-return]

    def _watch_child(self, pid: int, transp: Any) -> None:
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            thread = threading.Thread(
                target=self._wait_child_in_thread, args=(pid, transp), daemon=True,
                name=f"trio-asyncio waitpid({pid})",
            )
            thread.start()
            return
        self._child_pidfds[pid] = pidfd
        self._add_reader(pidfd, self._child_exited, pid, transp)

    def _child_exited(self, pid: int, transp: Any) -> None:
        pidfd = self._child_pidfds.pop(pid)
        self._remove_reader(pidfd)
        os.close(pidfd)
        self.call_soon(transp._process_exited, _reap(pid))

    def _wait_child_in_thread(self, pid: int, transp: Any) -> None:
        returncode = _reap(pid, block=True)
        if not self.is_closed():
            self.call_soon_threadsafe(self.call_soon, transp._process_exited, returncode)

    # ------------------------------------------------------------------
    # Closing
    # ------------------------------------------------------------------

    def close(self) -> None:
        """Close the loop: drop queued callbacks, timers and fd registrations.

        :raises RuntimeError: if the loop is running.
        """
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        try:
            self._close_trio_side()
        finally:
            # Even if ending the Trio side was interrupted (Ctrl-C in its teardown): the
            # loop is closed, nothing leaks, and the interrupt propagates.
            self._close_core_side()

    def _close_core_side(self) -> None:
        if self._debug:
            base_events.logger.debug("Close %r", self)  # type: ignore[attr-defined]
        if not sys.is_finalizing():
            for sig in list(self._signal_handlers):
                self.remove_signal_handler(sig)
        for pidfd in self._child_pidfds.values():
            os.close(pidfd)
        self._child_pidfds.clear()
        for fd in self._close_files:
            try:
                os.close(fd)
            except OSError:
                pass
        self._close_files.clear()
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)
        self._close_core()
        self._internal_fds = 0
        self._selector = None

    def _close_trio_side(self) -> None:
        """Hook: end whatever Trio machinery the loop owns (the sync loop's fiber)."""


def _user_child_watcher() -> Any:
    """A child watcher set on the current policy that must see every child, if any.

    Watchers that wait for one pid at a time (asyncio's default ``ThreadedChildWatcher``,
    created lazily by ``get_child_watcher()``, and ``PidfdChildWatcher``) are ignored: the
    reactor's pidfd does the same job without a thread. Others (``SafeChildWatcher``,
    ``FastChildWatcher``, ``MultiLoopChildWatcher``, custom ones) may reap any child, so
    asyncio's path through the watcher is used.
    """
    policy = events.get_event_loop_policy()
    watcher = getattr(policy, "_watcher", None)
    if watcher is None or isinstance(
        watcher, (_unix_events.ThreadedChildWatcher, _unix_events.PidfdChildWatcher)
    ):
        return None
    return watcher


async def _submit_to_trio_executor(
    executor: TrioExecutor, func: Callable[[Unpack[Ts]], T], *args: Unpack[Ts]
) -> T:
    try:
        return await executor.submit(func, *args)
    except concurrent.futures.CancelledError as exc:
        # As asyncio.wrap_future does: a job that raised concurrent.futures.CancelledError
        # resolves the asyncio future with asyncio.CancelledError.
        raise asyncio.CancelledError(*exc.args) from None


def _reap(pid: int, block: bool = False) -> int:
    try:
        got, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    except ChildProcessError:
        base_events.logger.warning(  # type: ignore[attr-defined]
            "Unknown child process pid %d, will report returncode 255", pid
        )
        return 255
    if got == 0:  # pragma: no cover  (pidfd said it exited)
        got, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


__all__ = ["BaseTrioEventLoop", "TrioExecutor"]
