"""Run worker processes in parallel with a per-test watchdog (parent side, stdlib only).

One job = one test module on one side. A worker reports ``start``/``result`` lines; when a
test runs past the timeout the worker's process group is killed, the test is recorded as
``timeout`` and a new worker carries on with the tests that did not run yet. A worker that
dies mid-test (a crash in native code) is handled the same way with outcome ``crash``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from conformance import model


@dataclasses.dataclass(frozen=True)
class Side:
    """How to run one side: interpreter, imports done first, loop class and factory."""

    name: str  # "ours" or "stock"
    python: str
    imports: tuple[str, ...]
    loop_class: str
    loop_factory: str


@dataclasses.dataclass
class Job:
    side: Side
    module: str
    mode: str
    out_dir: Path
    timeout: float
    weight: int = 0  # rough duration estimate: big modules start first
    # Circuit breaker: after ``max_timeouts`` timeouts in a row (no test finishing in
    # between), or 4x as many in all, the rest of the module is recorded, not run.
    max_timeouts: int = 3
    timeouts_in_row: int = 0
    planned: list[str] = dataclasses.field(default_factory=list)
    results: dict[str, model.Record] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    attempts: int = 0
    secs: float = 0.0
    # live state of the current attempt
    proc: subprocess.Popen[bytes] | None = None
    events_path: Path | None = None
    offset: int = 0
    current: str | None = None
    last_event: float = 0.0
    done: bool = False
    started: float = 0.0

    @property
    def name(self) -> str:
        return f"[{self.side.name}] {self.module}"

    @property
    def stem(self) -> Path:
        return self.out_dir / self.side.name / self.module


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONFAULTHANDLER", "1")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONASYNCIODEBUG", None)
    return env


def _start(job: Job) -> None:
    job.attempts += 1
    job.stem.parent.mkdir(parents=True, exist_ok=True)
    job.events_path = job.stem.with_name(f"{job.module}.{job.attempts}.jsonl")
    job.events_path.write_text("")
    exclude = job.stem.with_name(f"{job.module}.exclude")
    exclude.write_text("".join(f"{i}\n" for i in job.results))
    cmd = [
        job.side.python, "-X", "faulthandler", "-m", "conformance.worker",
        "--module", job.module, "--mode", job.mode,
        "--loop-class", job.side.loop_class,
        "--events", str(job.events_path), "--exclude", str(exclude),
        "--timeout", str(job.timeout),
    ]
    if job.side.loop_factory:
        cmd += ["--loop-factory", job.side.loop_factory]
    for name in job.side.imports:
        cmd += ["--import", name]
    log = open(job.stem.with_name(f"{job.module}.log"), "ab")
    log.write(f"\n##### attempt {job.attempts}: {' '.join(cmd)}\n".encode())
    log.flush()
    job.proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env=_worker_env(), start_new_session=True, cwd=str(job.stem.parent),
    )
    log.close()
    job.offset = 0
    job.current = None
    job.done = False
    job.last_event = time.monotonic()
    if job.attempts == 1:
        job.started = job.last_event


def _read_events(job: Job) -> None:
    assert job.events_path is not None
    with open(job.events_path, encoding="utf-8") as f:
        f.seek(job.offset)
        chunk = f.read()
    end = chunk.rfind("\n")
    if end < 0:
        return
    job.offset += len(chunk[: end + 1].encode())
    for line in chunk[: end + 1].splitlines():
        event = json.loads(line)
        job.last_event = time.monotonic()
        kind = event.pop("ev")
        if kind == "start":
            job.current = event["id"]
        elif kind == "result":
            record = model.Record.from_json(event)
            job.results[record.id] = record
            job.timeouts_in_row = 0
            if record.id == job.current:
                job.current = None
        elif kind == "plan" and job.attempts == 1:
            job.notes = list(event.get("notes", []))
            job.planned = list(event.get("ids", []))
        elif kind == "done":
            job.done = True
        elif kind == "worker-error":
            pseudo = f"{job.module}.<worker>"
            job.results[pseudo] = model.Record(pseudo, model.ERROR, detail=event["detail"])


def _kill(job: Job) -> None:
    assert job.proc is not None
    try:
        os.killpg(job.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    job.proc.wait()


def _after_exit(job: Job, outcome: str, detail: str) -> bool:
    """Record what the dead attempt left behind; True if another attempt should run."""
    if job.current is not None:
        job.results[job.current] = model.Record(job.current, outcome, secs=job.timeout, detail=detail)
        job.current = None
        return True
    pseudo = f"{job.module}.<worker>"
    if pseudo not in job.results:
        job.results[pseudo] = model.Record(pseudo, outcome, detail=f"{detail} (outside a test)")
    return False


def _poll(job: Job, now: float) -> bool:
    """Advance one running job; True when the job is finished for good."""
    assert job.proc is not None
    _read_events(job)
    code = job.proc.poll()
    if code is None:
        if now - job.last_event <= job.timeout:
            return False
        _kill(job)
        _read_events(job)
        outcome, detail = model.TIMEOUT, f"no progress for {job.timeout:.0f}s, killed"
    else:
        _read_events(job)
        if job.done:
            job.proc = None
            return True
        reason = f"signal {-code}" if code < 0 else f"exit status {code}"
        outcome, detail = model.CRASH, f"worker died ({reason})"
        dump_at = job.timeout - min(5.0, job.timeout / 10)  # as the worker arms faulthandler
        if job.current is not None and now - job.last_event >= dump_at - 0.5:
            # Died after the in-worker traceback dump fired (faulthandler can crash while
            # walking greenlet stacks): the test had hung, so it is a timeout.
            outcome = model.TIMEOUT
            detail = f"hung, then the worker died ({reason}) while dumping tracebacks"
    job.proc = None
    retry = _after_exit(job, outcome, detail)
    if outcome == model.TIMEOUT:
        job.timeouts_in_row += 1
    timeouts = sum(r.outcome == model.TIMEOUT for r in job.results.values())
    if retry and (job.timeouts_in_row >= job.max_timeouts or timeouts >= 4 * job.max_timeouts):
        for test_id in job.planned:
            if test_id not in job.results:
                job.results[test_id] = model.Record(
                    test_id, model.TIMEOUT,
                    detail=f"not run: {job.timeouts_in_row} timeouts in a row, {timeouts} in all")
        return True
    if retry:
        _start(job)
    return not retry


def run_jobs(jobs: list[Job], workers: int, on_done: Callable[[Job], None]) -> None:
    """Run all jobs, ``workers`` at a time, largest test modules first."""
    pending = sorted(jobs, key=lambda j: j.weight, reverse=True)
    running: list[Job] = []
    try:
        while pending or running:
            while pending and len(running) < workers:
                job = pending.pop(0)
                _start(job)
                running.append(job)
            time.sleep(0.2)
            now = time.monotonic()
            for job in list(running):
                if _poll(job, now):
                    job.secs = time.monotonic() - job.started
                    running.remove(job)
                    on_done(job)
    finally:
        for job in running:
            if job.proc is not None and job.proc.poll() is None:
                _kill(job)


_SLOW = {"test_subprocess", "test_tasks", "test_ssl", "test_sslproto", "test_streams", "test_events"}


def list_modules(python: str) -> dict[str, int]:
    """Test modules of the interpreter's ``test.test_asyncio`` package -> weight."""
    code = (
        "import os, test.test_asyncio as p; d = os.path.dirname(p.__file__); "
        "print('\\n'.join(f'{f[:-3]} {os.path.getsize(os.path.join(d, f))}' "
        "for f in sorted(os.listdir(d)) if f.startswith('test_') and f.endswith('.py')))"
    )
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    modules: dict[str, int] = {}
    for line in out.stdout.splitlines():
        name, size = line.split()
        modules[name] = int(size) * (3 if name in _SLOW else 1)
    return modules


def emit_progress(job: Job) -> None:
    counts: dict[str, int] = {}
    for record in job.results.values():
        counts[record.outcome] = counts.get(record.outcome, 0) + 1
    text = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"{job.name}: {text} ({job.secs:.1f}s, {job.attempts} attempt(s))", file=sys.stderr, flush=True)
