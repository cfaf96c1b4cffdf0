"""The time every timer of the product reads and waits on, injectable so tests control it.

Why a clock object and not ``time.time()``/``asyncio.sleep`` at the call site: the gateway's idle release,
lease renewal and burst re-evaluation, and the backends' lease periods, are rules about time. Tested on real
time, each test waits out real periods (minutes of the suite spent asleep) and still cannot say "exactly at
the limit". Every part that keeps time takes a ``Clock`` (default ``SYSTEM``); a test passes a
``ManualClock`` and moves time itself. Bottom layer: it imports nothing of the product.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (what status, leases and records store)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""


class SystemClock:
    """Real time: ``time.time`` and ``asyncio.sleep``."""

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM: Clock = SystemClock()


class ManualClock:
    """Time that moves only when told to (``advance``): sleepers wake in deadline order, each one given a
    chance to run (and to sleep again) before later deadlines fire, as they would on real time."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._seq), fut))
        await fut

    @property
    def sleeping(self) -> int:
        """How many sleeps are waiting (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper whose deadline passes, in order."""
        end = self.now + seconds
        while self._sleepers and self._sleepers[0][0] <= end:
            due, _, fut = heapq.heappop(self._sleepers)
            self.now = max(self.now, due)
            if not fut.done():
                fut.set_result(None)
                for _ in range(5):  # let the woken task run up to its next await
                    await asyncio.sleep(0)
        self.now = end
        await asyncio.sleep(0)
