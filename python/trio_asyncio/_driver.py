"""The driver: the one place asyncio callbacks are run from, and the Trio task that waits.

Callbacks run only inside ``LoopCore._run_batch`` (Rust: ``_run_ready`` with the running-loop
state installed around it), for every way a loop is driven: the Trio task of
:meth:`DriverMixin._drive` (``open_loop``'s task, or the sync loop's ``trio.run`` in its
fiber), :meth:`DriverMixin._drive_inline` (a Trio task of the loop's run that just queued
work for a parked driver), and the sync loop's caller-side paths. See "The driver" in
design/loops.md.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import trio

from ._engine import DRIVER_BUDGET, RUN_STOP, RUN_YIELD
from ._mixins import LoopMixin
from ._trio_run import in_trio_run_of

if TYPE_CHECKING:
    from ._handles import TrioTaskHandle

#: Longest single wait for I/O or a timer, in seconds (asyncio's MAXIMUM_SELECT_TIMEOUT):
#: a timer further away (``asyncio.sleep(math.inf)``, a far ``call_at``) is waited for in
#: several steps instead of overflowing a system call's timeout.
MAXIMUM_WAIT = 24 * 3600.0

# DRIVER_BUDGET (from the engine): the longest stretch of asyncio callbacks run back to
# back before the driver task yields to Trio, in seconds (keeps Trio tasks and
# cancellation from starving).


def wait_seconds(deadline: float, now: float) -> float:
    """How long to wait for a loop-time *deadline*: within ``[0, MAXIMUM_WAIT]``; a NaN
    deadline (which never fires) waits the maximum."""
    delay = deadline - now
    if delay != delay:  # NaN
        return MAXIMUM_WAIT
    return min(max(delay, 0.0), MAXIMUM_WAIT)


# The instance attributes DriverMixin keeps, declared as slots by BaseTrioEventLoop (see
# design/loops.md, "Instance state").
DRIVER_SLOTS = (
    "_parked",
    "_parked_deadline",
    "_inline",
    "_claimed",
    "_stopped_inline",
)


class DriverMixin(LoopMixin):
    """``_drive`` and ``_drive_inline`` of every trio-asyncio loop (both run callbacks
    through ``LoopCore._run_batch``)."""

    # The driver task's parking state (see _drive and _drive_inline); slots of the loop
    # (DRIVER_SLOTS), set by _init_driver.
    _parked: bool
    _parked_deadline: float | None
    _inline: bool
    _claimed: bool  # _claim_driver() ran; the next _drive_inline() runs the batch
    _stopped_inline: bool  # a batch run by _drive_inline ended with stop()

    def _init_driver(self) -> None:
        self._parked = False
        self._parked_deadline = None
        self._inline = False
        self._claimed = False
        self._stopped_inline = False
        # (LoopCore's) a batch run inside Trio also sets asyncio's running loop
        self._batch_sets_running_loop = False

    if TYPE_CHECKING:
        # BaseTrioEventLoop's (see there).
        _pending_trio_tasks: list[TrioTaskHandle | trio.CancelScope]
        _trio_inherited: bool
        _trio_runner: object

        def _start_pending_trio_tasks(self) -> None: ...

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
            if status == RUN_STOP:
                return
            if status == RUN_YIELD:
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

    def _claim_driver(self) -> None:
        """Take the parked driver's sleep over before queueing work that this Trio task
        will run itself with :meth:`_drive_inline`, called right after (without a
        checkpoint in between, and on every path).

        A call_soon made while the driver sleeps writes to the poller's wake-up fd, and the
        inline batch then polls to consume it: two system calls per crossing for a wake-up
        nobody needs. Leaving the sleeping state first makes the producer's notify a plain
        load.
        """
        if self._parked and not self._claimed and not self._inline and in_trio_run_of(
            self._trio_runner
        ):
            self._claimed = True
            self._end_sleep()

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
        if self._claimed:
            self._claimed = False  # _claim_driver() left the sleeping state already
        elif not self._parked or self._inline or not in_trio_run_of(self._trio_runner):
            return
        else:
            self._end_sleep()
        self._inline = True
        try:
            if self._run_batch(True) == RUN_STOP:
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


__all__ = ["DRIVER_BUDGET", "MAXIMUM_WAIT", "DriverMixin", "wait_seconds"]
