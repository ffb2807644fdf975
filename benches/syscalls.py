"""System calls per I/O event, counted with ``strace -c -f``: ours vs the peer loops.

Two workloads, each run in a fresh worker process under strace, once with ``n`` events and once
with a baseline count; the difference divided by the difference in events is the cost per event
(interpreter start-up, loop creation and teardown cancel out):

- ``echo``: the speed table's TCP echo row (``workloads.tcp_echo_protocol``, 1 connection:
  ``Protocol`` client and server in one loop, 1 KiB over 127.0.0.1), ``n`` round trips minus 1
  round trip; per round trip.  ``run.py`` runs this one for its README table.
- ``reader``: ``loop.add_reader`` on one end of a socketpair whose other end is served by a
  peer *process* (not traced). Each callback reads the byte that woke it and sends one byte to
  the peer, which answers 1 ms later: every event needs the loop to block; ``n`` events minus 0.

Each implementation runs in its own interpreter, as in ``run.py``: stock asyncio, uvloop and
rloop in the ``peers`` venv, ours in ``<repo>/.venv`` (or ``--python-ours``), a second build of
ours with ``--python-base``.

Usage::

    python3 benches/syscalls.py                   # asyncio,uvloop,rloop,ours-sync,ours-async
    python3 benches/syscalls.py --impls asyncio,ours-sync --workloads echo --n 2000
    python3 benches/syscalls.py --impls asyncio,ours,base --python-base <venv of another build>/bin/python

Needs ``strace``. Never run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

POLL_FAMILY = {"epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "poll", "ppoll",
               "select", "pselect6", "kevent"}
DEFAULT_IMPLS = "asyncio,uvloop,rloop,ours-sync,ours-async"
ECHO_N = 1000  # round trips in the counted run (the baseline run does 1)


# --------------------------------------------------------------------------- the worker


def _run(mode: str, main):  # type: ignore[no-untyped-def]
    import impls

    return impls.runtime(mode).run(main)


def worker_reader(mode: str, n: int, peer_fd: int) -> None:
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
                loop.remove_reader(sock.fileno())
                done.set_result(None)
            else:
                sock.send(b"x")

        if n:
            loop.add_reader(sock.fileno(), on_readable)  # rloop 0.5 takes fds only
            sock.send(b"x")
            await done

    _run(mode, main)
    sock.close()


def worker_echo(mode: str, n: int) -> None:
    import impls
    from workloads import tcp_echo_protocol

    tcp_echo_protocol(impls.runtime(mode), n, 1)


# --------------------------------------------------------------------------- the parent


def peer(sock: socket.socket) -> None:
    """Answer every byte with one byte, 1 ms later, until EOF (runs in a forked, untraced
    process): the delay makes sure the loop has gone idle and blocks for each event."""
    sock.setblocking(True)
    while sock.recv(1):
        time.sleep(0.001)
        sock.send(b"y")


def strace_counts(python: str, mode: str, workload: str, n: int) -> Counter[str]:
    """System calls of one worker process (and its threads), by name."""
    with tempfile.NamedTemporaryFile(suffix=".strace") as out:
        pass_fds: tuple[int, ...] = ()
        args = [python, str(HERE / "syscalls.py"), "--worker", workload, "--mode", mode,
                "--n", str(n)]
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
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        try:
            subprocess.run(["strace", "-c", "-f", "-o", out.name, *args], check=True,
                           pass_fds=pass_fds, capture_output=True, text=True, timeout=300,
                           env=env, cwd=str(HERE.parent))
        except subprocess.CalledProcessError as e:
            raise RuntimeError(f"worker exited {e.returncode}: {(e.stderr or '')[-300:]}") from e
        finally:
            if child_pid is not None:
                a.close()
                os.waitpid(child_pid, 0)
        counts: Counter[str] = Counter()
        for line in open(out.name):
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
            if m and m.group(2) != "total":
                counts[m.group(2)] += int(m.group(1))
        return counts


def per_event(python: str, mode: str, workload: str, n: int) -> tuple[float, float, dict[str, float]]:
    """(system calls per event, of which poll-family, per-call breakdown)."""
    base_n = 1 if workload == "echo" else 0
    full = strace_counts(python, mode, workload, n)
    empty = strace_counts(python, mode, workload, base_n)
    events = n - base_n
    diff = {k: (full[k] - empty[k]) / events for k in full if full[k] - empty[k] > 0}
    total = sum(diff.values())
    polls = sum(v for k, v in diff.items() if k in POLL_FAMILY)
    return total, polls, diff


def echo_table(pythons: dict[str, str | None], n: int = ECHO_N, log: Any = None) -> dict[str, Any]:
    """System calls per TCP echo round trip for each implementation in *pythons* (name ->
    interpreter, None when it has none); the ``syscalls`` section of ``results.json``."""
    import impls

    out: dict[str, Any] = {"workload": "tcp_echo_protocol", "connections": 1, "n": n,
                           "method": "strace -c -f, n round trips minus 1, divided by n - 1",
                           "impls": {}}
    if shutil.which("strace") is None:
        out["unavailable"] = "strace is not installed"
        return out
    for name, python in pythons.items():
        imp = impls.IMPLS[name]
        if python is None:
            out["impls"][name] = {"status": "unavailable", "reason": "no interpreter"}
            continue
        try:
            total, polls, diff = per_event(python, imp.mode, "echo", n)
        except Exception as e:  # noqa: BLE001 - one implementation failing is one cell
            out["impls"][name] = {"status": "error", "reason": f"{type(e).__name__}: {e}"[:300]}
        else:
            out["impls"][name] = {"status": "ok", "per_round_trip": round(total, 3),
                                  "poll_family": round(polls, 3),
                                  "by_call": {k: round(v, 3) for k, v in diff.items()}}
        if log:
            c = out["impls"][name]
            log(f"  syscalls {name:<12} " + (f"{c['per_round_trip']:.2f} per round trip"
                                              if c["status"] == "ok" else c["reason"]))
    return out


def _interpreters(a: argparse.Namespace, names: list[str]) -> dict[str, str | None]:
    import envs
    import impls

    out: dict[str, str | None] = {}
    for name in names:
        env = impls.IMPLS[name].env
        if env == "ours":
            py = envs.ours_python(a.python_ours)
            out[name] = str(py) if py else None
        elif env == "base":
            out[name] = a.python_base
        else:
            out[name] = str(envs.ensure_venv(env, log=lambda *m: print(*m, file=sys.stderr)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", choices=["reader", "echo"])
    p.add_argument("--mode", default="asyncio", help="worker only: the loop (impls.py modes)")
    p.add_argument("--impls", default=DEFAULT_IMPLS,
                   help="names or aliases of run.py (loops only)")
    p.add_argument("--workloads", default="echo,reader")
    p.add_argument("--n", type=int, default=ECHO_N)
    p.add_argument("--fd", type=int, default=-1)
    p.add_argument("--python-ours", default=None,
                   help="interpreter with our package (default <repo>/.venv/bin/python)")
    p.add_argument("--python-base", default=None,
                   help="interpreter with another build of our package (base-sync/base-async)")
    a = p.parse_args(argv)
    if a.worker == "reader":
        worker_reader(a.mode, a.n, a.fd)
        return 0
    if a.worker == "echo":
        worker_echo(a.mode, a.n)
        return 0
    import impls

    names = [n for n in impls.expand([a.impls])
             if impls.IMPLS[n].mode not in ("greenlet", "fiber")]
    pythons = _interpreters(a, names)
    print(f"{'workload':8} {'impl':11} {'syscalls/event':>15} {'poll-family/event':>18}  detail")
    for workload in a.workloads.split(","):
        for name in names:
            if pythons[name] is None:
                print(f"{workload:8} {name:11} {'no interpreter':>15}")
                continue
            try:
                total, polls, diff = per_event(pythons[name], impls.IMPLS[name].mode, workload,
                                               a.n)
            except Exception as e:  # noqa: BLE001 - report it and go on with the others
                print(f"{workload:8} {name:11} {'n/a':>15}  {type(e).__name__}: "
                      f"{' '.join(str(e).split())[-200:]}", flush=True)
                continue
            detail = ", ".join(f"{k} {v:.2f}" for k, v in sorted(diff.items(), key=lambda kv: -kv[1])
                               if v >= 0.05)
            print(f"{workload:8} {name:11} {total:15.2f} {polls:18.2f}  {detail}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
