"""Where a launch's time went, to the millisecond: one log line per connected launch (issue 18).

Why: the first cell after a release pays placement, the backend's start (or a warm-pool claim), the connect,
the bootstrap and the restore of the carried-over variables; the progress line shows only the total at 0.1 s
resolution. Knowing which step costs what is what lets a change cut the right one, and the warm-pool
benchmark (``benchmarks/bench_pool.py``) reads this line from the gateway's log to print the breakdown and
to take its target from the restore it measured in the same run. Wall time (``perf_counter``), not the
gateway's clock: the line measures, it decides nothing.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("mlp_kernel.gateway.timing")

PREFIX = "launch timing (ms):"


class LaunchTiming:
    """Marks taken as a launch goes; ``line()`` names each step's milliseconds since the previous mark."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.steps: list[tuple[str, float]] = []

    def mark(self, step: str) -> None:
        now = time.perf_counter()
        self.steps.append((step, now - self.last))
        self.last = now

    def add(self, step: str, seconds: float) -> None:
        """A figure measured elsewhere (the restore's request and the kernel's own time)."""
        self.steps.append((step, seconds))

    def line(self, how: str) -> str:
        parts = [f"{step} {seconds * 1e3:.1f}" for step, seconds in self.steps]
        total = (time.perf_counter() - self.started) * 1e3
        return f"{PREFIX} {', '.join(parts)}; total {total:.1f} ({how})"

    def report(self, how: str) -> None:
        log.info("%s", self.line(how))
