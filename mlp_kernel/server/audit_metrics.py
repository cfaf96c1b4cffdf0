"""Prometheus counters of the audit log, by event and team, on jupyter_server's ``/metrics``.

The audit records are written by two kinds of process: every GPU (auto) gateway (public placements, refusals
for a budget or a data class) and this server (admin changes). Prometheus scrapes only the server. Rather than
a second channel from each gateway to the server (a socket, a comm, a metrics push), the server counts the
lines of the audit file itself: the file is already the one place every record goes, a gateway need not know
the server exists, and the counters can never disagree with the log (they count its lines). The count is
taken when Prometheus scrapes: ``AuditCollector.collect`` reads the lines appended since the last scrape (a
partial last line waits for its newline; a rotated or truncated file is read from its start), so there is no
timer and no lag.

Counters start at zero when the server starts and count the records written from then on (what a counter
means to ``rate()``); the file keeps the history. With ``MLP_KERNEL_AUDIT_LOG=-`` (records on stdout for a
log collector) there is no file to count and the counters stay at zero: count in the log pipeline instead.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

NAME = "mlp_kernel_audit_events"
HELP = "Audit log records (public placements, budget and data-class refusals, admin changes) by event, team"
MAX_READ = 16 * 1024 * 1024  # bytes read per scrape at most; the rest is counted at the next one


class AuditCollector(Collector):
    """Counts the records appended to one audit file, per (event, team)."""

    def __init__(self, path: Path | None = None, from_start: bool = False) -> None:
        self._lock = threading.Lock()
        self.counts: dict[tuple[str, str], int] = {}
        self.path: Path | None = None
        self.watch(path, from_start)

    def watch(self, path: Path | None, from_start: bool = False) -> None:
        """Count ``path`` from now on (its existing records too with ``from_start``); None: nothing."""
        with self._lock:
            self.path = path
            self._inode: int | None = None
            self._offset = 0
            self._partial = b""
            if path is not None and not from_start:
                try:
                    st = path.stat()
                    self._inode, self._offset = st.st_ino, st.st_size
                except OSError:
                    pass

    def refresh(self) -> None:
        """Count the lines appended since the last call."""
        with self._lock:
            if self.path is None:
                return
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except OSError:
                return  # not written yet
            try:
                st = os.fstat(fd)
                if st.st_ino != self._inode or st.st_size < self._offset:  # a new or truncated file
                    self._inode, self._offset, self._partial = st.st_ino, 0, b""
                os.lseek(fd, self._offset, os.SEEK_SET)
                data = os.read(fd, MAX_READ)
            finally:
                os.close(fd)
            self._offset += len(data)
            *lines, self._partial = (self._partial + data).split(b"\n")
            for raw in lines:
                self._count(raw)

    def _count(self, raw: bytes) -> None:
        try:
            doc = json.loads(raw)
        except ValueError:
            return
        if isinstance(doc, dict):
            key = (str(doc.get("event", "")), str(doc.get("team", "")))
            self.counts[key] = self.counts.get(key, 0) + 1

    def collect(self) -> Iterator[CounterMetricFamily]:
        self.refresh()
        family = CounterMetricFamily(NAME, HELP, labels=["event", "team"])
        with self._lock:
            for (event, team), n in sorted(self.counts.items()):
                family.add_metric([event, team or "none"], n)
        yield family

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(NAME, HELP, labels=["event", "team"])


COLLECTOR = AuditCollector()
REGISTRY.register(COLLECTOR)  # once per process, like the fleet metrics: jupyter_server serves REGISTRY
