"""Faults on demand: failing requests, slow responses and dropped watch connections.

The product must survive a flaky apiserver (500s, timeouts, watches cut mid-stream). Tests arm a fault on
one server with a path regex and it fires on the matching requests only, e.g.
``member.faults.fail_next(2, path=r"/pods$", method="POST")``.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from .errors import ApiError


@dataclass
class _Rule:
    pattern: re.Pattern[str]
    method: str | None
    remaining: int | None
    code: int = 500
    reason: str = "InternalError"
    message: str = ""
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and bool(self.pattern.search(path))


@dataclass
class _Drop:
    pattern: re.Pattern[str]
    before: float
    clean: bool


class Faults:
    """Armed faults for one server; thread-safe; ``clear()`` disarms everything."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: list[_Rule] = []
        self._delays: list[_Rule] = []
        self._drops: list[_Drop] = []
        self.fired: list[tuple[str, str, str]] = []  # (kind, method, path) of every fault that fired

    def fail_next(
        self,
        count: int = 1,
        path: str = ".*",
        method: str | None = None,
        code: int = 500,
        reason: str = "InternalError",
        message: str = "",
    ) -> None:
        """Answer the next ``count`` requests matching ``path`` (regex on the URL path) with ``code``."""
        with self._lock:
            self._errors.append(
                _Rule(
                    re.compile(path),
                    method,
                    count,
                    code,
                    reason,
                    message or f"injected fault: HTTP {code} for {path}",
                )
            )

    def slow(
        self, seconds: float, path: str = ".*", method: str | None = None, count: int | None = None
    ) -> None:
        """Delay matching requests by ``seconds`` (all of them, or the next ``count``)."""
        with self._lock:
            self._delays.append(_Rule(re.compile(path), method, count, delay=seconds))

    def drop_watches(self, path: str = ".*", clean: bool = False) -> None:
        """Cut every watch stream open now whose path matches.

        ``clean=False`` aborts the TCP connection mid-stream (the client sees a protocol error);
        ``clean=True`` ends the chunked stream normally, as an apiserver does at its request timeout.
        """
        with self._lock:
            self._drops.append(_Drop(re.compile(path), time.monotonic(), clean))

    def clear(self) -> None:
        with self._lock:
            self._errors.clear()
            self._delays.clear()
            self._drops.clear()

    # -- used by the HTTP layer -------------------------------------------------------------------------

    def before_request(self, method: str, path: str) -> None:
        delay = 0.0
        error: _Rule | None = None
        with self._lock:
            for rule in list(self._delays):
                if rule.matches(method, path):
                    delay = max(delay, rule.delay)
                    self._consume(self._delays, rule)
                    self.fired.append(("slow", method, path))
            for rule in list(self._errors):
                if rule.matches(method, path):
                    error = rule
                    self._consume(self._errors, rule)
                    self.fired.append(("error", method, path))
                    break
        if delay:
            time.sleep(delay)
        if error is not None:
            raise ApiError(error.code, error.reason, error.message)

    def watch_drop(self, started: float, path: str) -> bool | None:
        """None: keep the stream; False: abort it; True: end it cleanly."""
        with self._lock:
            for drop in self._drops:
                if started < drop.before and drop.pattern.search(path):
                    self.fired.append(("drop", "GET", path))
                    return drop.clean
        return None

    @staticmethod
    def _consume(rules: list[_Rule], rule: _Rule) -> None:
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                rules.remove(rule)
