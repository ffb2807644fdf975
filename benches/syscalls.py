"""System calls per I/O event, counted with ``strace -c -f``: ours vs stock asyncio.

Two workloads, each run in a fresh worker process under strace, once with ``n`` events and once
with none; the difference divided by ``n`` is the cost per event (start-up and teardown cancel
out):

- ``reader``: ``loop.add_reader`` on one end of a socketpair whose other end is served by a
  peer *process* (not traced). Each callback reads the byte that woke it and sends one byte to
  the peer, which answers 1 ms later: every event needs the loop to block.
- ``echo``: the TCP echo of ``benches/workloads.py`` (``Protocol`` client and server in one
  loop, 1 KiB over 127.0.0.1); per round trip.

Usage::

    .venv/bin/python benches/syscalls.py                      # every impl, both workloads
    .venv/bin/python benches/syscalls.py --impls asyncio,ours-sync --n 2000
    .venv/bin/python benches/syscalls.py --python-ours <venv of another build>/bin/python

``asyncio`` runs in the same interpreter as ours (stock ``asyncio.SelectorEventLoop``, without
importing trio_asyncio). Needs ``strace``. Never run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter

POLL_FAMILY = {"epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "poll", "ppoll",
               "select", "pselect6", "kevent"}


# --------------------------------------------------------------------------- the worker


def _new_loop(impl: str) -> asyncio.AbstractEventLoop:
    if impl == "asyncio":
        return asyncio.SelectorEventLoop()
    import trio_asyncio  # noqa: F401  (installs the policy)

    return asyncio.new_event_loop()


def _run(impl: str, main):  # type: ignore[no-untyped-def]
    if impl == "ours-async":
        import trio
        import trio_asyncio

        return trio_asyncio.run(trio_asyncio.aio_as_trio(main))
    loop = _new_loop(impl)
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def worker_reader(impl: str, n: int, peer_fd: int) -> None:
    sock = socket.socket(fileno=peer_fd)
    sock.setblocking(False)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        count = 0

        def on_readable() -> None:
            nonlocal count
            sock.recv(1)
            count += 1
            if count >= n:
                loop.remove_reader(sock)
                done.set_result(None)
            else:
                sock.send(b"x")

        if n:
            loop.add_reader(sock, on_readable)
            sock.send(b"x")
            await done

    _run(impl, main)
    sock.close()


def worker_echo(impl: str, n: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()

        class Server(asyncio.Protocol):
            def connection_made(self, t):  # type: ignore[no-untyped-def]
                self.t = t

            def data_received(self, data: bytes) -> None:
                self.t.write(data)

        class Client(asyncio.Protocol):
            def __init__(self) -> None:
                self.left = n
                self.got = 0
                self.done = loop.create_future()

            def connection_made(self, t):  # type: ignore[no-untyped-def]
                self.t = t

            def data_received(self, data: bytes) -> None:
                self.got += len(data)
                if self.got >= 1024:
                    self.got -= 1024
                    self.left -= 1
                    if self.left <= 0:
                        self.done.set_result(None)
                    else:
                        self.t.write(b"x" * 1024)

        server = await loop.create_server(Server, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        t, c = await loop.create_connection(Client, "127.0.0.1", port)
        if n:
            t.write(b"x" * 1024)
            await c.done
        t.close()
        server.close()
        await server.wait_closed()

    _run(impl, main)


# --------------------------------------------------------------------------- the parent


def peer(sock: socket.socket) -> None:
    """Answer every byte with one byte, 1 ms later, until EOF (runs in a forked, untraced
    process): the delay makes sure the loop has gone idle and blocks for each event."""
    sock.setblocking(True)
    while sock.recv(1):
        time.sleep(0.001)
        sock.send(b"y")


def strace_counts(python: str, impl: str, workload: str, n: int) -> Counter[str]:
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        pass_fds: tuple[int, ...] = ()
        args = [python, __file__, "--worker", workload, "--impl", impl, "--n", str(n)]
        child_pid = None
        if workload == "reader":
            a, b = socket.socketpair()
            child_pid = os.fork()
            if child_pid == 0:  # the peer
                a.close()
                try:
                    peer(b)
                finally:
                    os._exit(0)
            b.close()
            args += ["--fd", str(a.fileno())]
            pass_fds = (a.fileno(),)
        subprocess.run(["strace", "-c", "-f", "-o", out.name, *args], check=True,
                       pass_fds=pass_fds)
        if child_pid is not None:
            a.close()
            os.waitpid(child_pid, 0)
        counts: Counter[str] = Counter()
        for line in open(out.name):
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
            if m and m.group(2) != "total":
                counts[m.group(2)] += int(m.group(1))
        return counts


def per_event(python: str, impl: str, workload: str, n: int) -> tuple[float, float, dict[str, float]]:
    full = strace_counts(python, impl, workload, n)
    empty = strace_counts(python, impl, workload, 0)
    diff = {k: (full[k] - empty[k]) / n for k in full if full[k] - empty[k] > 0}
    total = sum(diff.values())
    polls = sum(v for k, v in diff.items() if k in POLL_FAMILY)
    return total, polls, diff


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", choices=["reader", "echo"])
    p.add_argument("--impl", default="asyncio")
    p.add_argument("--impls", default="asyncio,ours-sync,ours-async")
    p.add_argument("--workloads", default="reader,echo")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--fd", type=int, default=-1)
    p.add_argument("--python-ours", default=sys.executable,
                   help="interpreter with trio_asyncio installed (default: this one)")
    a = p.parse_args(argv)
    if a.worker == "reader":
        worker_reader(a.impl, a.n, a.fd)
        return 0
    if a.worker == "echo":
        worker_echo(a.impl, a.n)
        return 0
    print(f"{'workload':8} {'impl':11} {'syscalls/event':>15} {'poll-family/event':>18}  detail")
    for workload in a.workloads.split(","):
        for impl in a.impls.split(","):
            total, polls, diff = per_event(a.python_ours, impl, workload, a.n)
            detail = ", ".join(f"{k} {v:.2f}" for k, v in sorted(diff.items(), key=lambda kv: -kv[1])
                               if v >= 0.05)
            print(f"{workload:8} {impl:11} {total:15.2f} {polls:18.2f}  {detail}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
