"""The validation workers fork from a fork server that has the jobs' imports loaded (server/worker.py): the
threaded server never forks, and a worker replaced after a timeout costs a fork, not an interpreter."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from mlp_kernel.server.worker import WorkerPool, WorkTimeout


def parent_and_state() -> tuple[int, str, bool]:
    """In the worker: its parent's pid and command line, and whether the slow optional import is blocked."""
    ppid = os.getppid()
    cmdline = Path(f"/proc/{ppid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ppid, cmdline, "rfc3987_syntax" in sys.modules and sys.modules["rfc3987_syntax"] is None


def sleep_forever() -> None:
    import time

    time.sleep(3600)


def test_workers_fork_from_the_preloaded_fork_server_and_a_killed_one_is_replaced_from_it() -> None:
    pool = WorkerPool(workers=1, timeout_s=1.0, memory_mb=1024)

    async def scenario() -> tuple[tuple[int, str, bool], tuple[int, str, bool]]:
        first = await pool.run(parent_and_state)
        try:
            await pool.run(sleep_forever)
        except WorkTimeout:
            pass
        else:
            raise AssertionError("the runaway job was not stopped")
        return first, await pool.run(parent_and_state)

    try:
        first, second = asyncio.run(scenario())
    finally:
        pool.close()
    ppid, cmdline, blocked = first
    assert ppid != os.getpid(), "the server forked the worker itself"
    assert "multiprocessing.forkserver" in cmdline and "mlp_kernel.server.preload" in cmdline, cmdline
    assert blocked, "the worker imported rfc3987_syntax"
    assert second[0] == ppid, "the replacement did not come from the same fork server"
