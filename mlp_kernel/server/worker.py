"""Validate, render and preview run here: in worker processes, off the server's event loop, with limits.

Those three endpoints parse text any user with ``read`` sends: YAML (a 600-byte alias bomb), Jinja2 (``{{ 9
** 9 ** 9 }}`` is legal in the sandbox) and policies. Run on the event loop, one such request froze every
user's requests for seconds to minutes. Here each job runs in a separate process, so the loop only waits on a
pipe; a job that takes longer than ``timeout_s`` has its process killed (a thread could not be stopped, and
would keep the CPU and the GIL) and the caller gets ``WorkTimeout``; a job that allocates more than
``memory_mb`` gets a ``MemoryError`` in the worker (address-space limit), which is reported, not fatal.

Workers are forked from a fork server (``forkserver``; ``spawn`` where the platform has none), never from the
server itself (it has threads, so ``fork`` is unsafe). The fork server is a fresh, single-threaded process
that imports what the jobs use once (``preload.py``), so a new worker costs a fork (~0.06 s) instead of an
interpreter and its imports (~0.27 s of CPU on the development machine): workers are replaced whenever one
is killed (a timeout, a memory limit), and the servers of a busy hub each start their own. Workers are kept
between jobs, at most ``workers`` at a time; a request waits for a free worker, never the loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from ..startup import skip_slow_optional_imports


class WorkTimeout(Exception):
    """The job ran past the time limit; its worker was killed."""


class WorkFailed(Exception):
    """The worker could not finish the job (out of memory, or the process ended)."""


def _serve(conn: Connection, memory_mb: int) -> None:
    """Worker main loop: run ``(func, args)`` jobs and send back ``("ok", result)`` or ``("raise", exc)``."""
    skip_slow_optional_imports()
    if memory_mb > 0:
        try:
            import resource

            limit = memory_mb << 20
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            resource.setrlimit(resource.RLIMIT_AS, (limit if hard < 0 else min(limit, hard), hard))
        except (ImportError, ValueError, OSError):
            pass
    while True:
        try:
            func, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", func(*args))
        except MemoryError:
            reply = ("raise", WorkFailed(f"it needed more than {memory_mb} MB of memory"))
        except RecursionError:
            reply = ("raise", WorkFailed("it nests too deeply"))
        except Exception as e:
            reply = ("raise", e if _round_trips(e) else WorkFailed(f"{type(e).__name__}: {e}"))
        try:
            conn.send(reply)
        except Exception as e:  # an unpicklable result: say what it was
            conn.send(("raise", WorkFailed(f"{type(e).__name__}: {e}")))


def _round_trips(exc: BaseException) -> bool:
    """Whether the parent can unpickle ``exc`` (an exception whose __init__ takes other arguments than its
    ``args`` pickles fine and fails only on the other side, where it would be a 500)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return False
    return True


WARM_UP_S = 120.0  # a new worker's imports (jinja2, yaml, placement, the Kubernetes renderer) are not the job


def warm_up() -> None:
    """Import what the jobs use, so that a new worker's first job is timed, not its imports."""
    from . import preview, validation  # noqa: F401


def worker_context() -> Any:
    """The multiprocessing context workers start from: the fork server with ``preload.py``'s imports.

    The fork server is one per server process and shared with anything else in it that uses ``forkserver``;
    its preload list is set here only until it has started (later calls change nothing). It starts with the
    server's environment as it is then, and its workers inherit that, not later changes to ``os.environ``."""
    try:
        ctx = multiprocessing.get_context("forkserver")
    except ValueError:  # pragma: no cover - no fork server on this platform (Windows)
        return multiprocessing.get_context("spawn")
    ctx.set_forkserver_preload([f"{__package__}.preload"])
    return ctx


class _Worker:
    def __init__(self, ctx: Any, memory_mb: int) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_serve, args=(child, memory_mb), daemon=True, name="mlp-kernel-server-worker"
        )
        self.process.start()
        child.close()
        self.call(warm_up, (), WARM_UP_S)

    def call(self, func: Callable[..., Any], args: tuple[Any, ...], timeout_s: float) -> tuple[str, Any]:
        """Blocking: run in a thread of the pool, never on the event loop."""
        self.conn.send((func, args))
        if not self.conn.poll(timeout_s):
            self.kill()
            raise WorkTimeout(f"gave up after {timeout_s:g} s")
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            self.kill()
            raise WorkFailed("the worker process ended (out of memory?)") from None

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    def alive(self) -> bool:
        return self.process.is_alive() and not self.conn.closed


class WorkerPool:
    """``await pool.run(func, *args)``: ``func(*args)`` in a worker process, within the limits."""

    def __init__(self, workers: int = 2, timeout_s: float = 10.0, memory_mb: int = 1024) -> None:
        self.workers = max(1, workers)
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._ctx = worker_context()
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="mlp-kernel-worker")
        self._slots: asyncio.Semaphore | None = None

    async def run(self, func: Callable[..., Any], *args: Any) -> Any:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)
        async with self._slots:
            status, value = await asyncio.get_running_loop().run_in_executor(
                self._threads, self._call, func, args
            )
        if status == "raise":
            raise value
        return value

    def _call(self, func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is None or not worker.alive():
            worker = _Worker(self._ctx, self.memory_mb)
        reply = worker.call(func, args, self.timeout_s)  # kills the worker on timeout or failure
        if isinstance(reply[1], WorkFailed):
            worker.kill()  # after a MemoryError or RecursionError the process is not to be trusted
        else:
            with self._lock:
                self._idle.append(worker)
        return reply

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()
        self._threads.shutdown(wait=False)
