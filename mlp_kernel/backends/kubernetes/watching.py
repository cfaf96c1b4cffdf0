"""Watches that survive dropped connections, delivered to async code as a stream of plain dicts.

A watch is a long HTTP response; proxies, API server restarts and load balancers cut it. Each watch here runs
in its own daemon thread (the client's ``watch`` API is blocking) and pushes events onto an ``asyncio.Queue``
of the consumer's loop, so the loop is never blocked. It lists once to learn the current ``resourceVersion``,
then watches from there; when the stream ends or breaks it resumes from the last version it saw, with backoff
on errors, and relists when the server says the version is too old (HTTP 410). After every (re)list it emits
a ``SYNCED`` event naming the objects that exist, so a consumer notices an object deleted during a gap.
Daemon threads (not the default executor) so a watch blocked in a read never delays interpreter or loop
shutdown; a stopped watch's thread ends at the latest when its server-side timeout expires.

The requests are the client's own watch calls (``list_*(watch=True)``, read with the client's
``iter_resp_lines``) rather than ``kubernetes.watch.Watch.stream``: that helper either deserialises every
object into models (slow, and strict about shapes) or, with ``deserialize=False``, fails with a KeyError on
the server's ERROR events (it reads ``raw_object``, which only the deserialising path sets), which is exactly
the 410 Gone that resuming must handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from .calls import is_transient

WATCH_TIMEOUT_S = 20


@dataclass(frozen=True)
class WatchEvent:
    """One change seen by a watch. ``type`` is ADDED, MODIFIED, DELETED, SYNCED (after a list) or ERROR."""

    source: str
    type: str
    obj: dict[str, Any] = field(default_factory=dict)
    names: frozenset[str] = frozenset()
    error: BaseException | None = None


def _name(obj: dict[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


class ResumableWatch:
    """Watch ``list_fn(*args, **kwargs)`` until ``stop()``, posting ``WatchEvent``s to ``queue``."""

    def __init__(
        self,
        source: str,
        queue: asyncio.Queue[WatchEvent],
        list_fn: Callable[..., Any],
        *args: Any,
        timeout_s: int = WATCH_TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        self.source = source
        self._queue = queue
        self._loop = asyncio.get_running_loop()
        self._list_fn = list_fn
        self._args = args
        self._kwargs = kwargs
        self._timeout_s = timeout_s
        self._stopped = threading.Event()
        self._resp: Any = None
        self._thread = threading.Thread(target=self._run, name=f"mlp-watch-{source}", daemon=True)

    def start(self) -> ResumableWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching, at once and without blocking the caller (the gateway's event loop).

        The watch thread is usually blocked reading the response. ``close()`` from here waits for that read
        on a TLS connection (a real API server), that is until the next event or bookmark arrives: it froze
        the gateway's loop for 20-40 s after every kernel start. ``shutdown()`` shuts the socket down, which
        ends the blocked read at once; the thread then sees it was stopped and closes the response itself.
        """
        self._stopped.set()
        resp = self._resp
        if resp is None:
            return
        with contextlib.suppress(Exception):
            shutdown = getattr(resp, "shutdown", None)  # urllib3 >= 2.3
            if shutdown is not None:
                shutdown()
            else:  # an older urllib3: close from another thread, never from the caller's
                threading.Thread(target=resp.close, name="mlp-watch-close", daemon=True).start()

    def _post(self, event: WatchEvent) -> None:
        if self._stopped.is_set():
            return
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, event)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self._stopped.set()

    def _list(self) -> str:
        resp = self._list_fn(*self._args, _preload_content=False, _request_timeout=30, **self._kwargs)
        status = getattr(resp, "status", 200)
        if not 200 <= status <= 299:
            raise ApiException(status=status, reason=getattr(resp, "reason", "") or "list failed")
        body = json.loads(resp.data)
        items = body.get("items") or []
        for item in items:
            self._post(WatchEvent(self.source, "ADDED", item))
        self._post(WatchEvent(self.source, "SYNCED", names=frozenset(_name(i) for i in items)))
        return str(body.get("metadata", {}).get("resourceVersion") or "")

    def _run(self) -> None:
        version: str | None = None
        failures = 0
        while not self._stopped.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._stream(version)
                failures = 0
            except ApiException as exc:
                if exc.status == 410:  # too old: relist (the SYNCED event reveals deletions in the gap)
                    version = None
                    continue
                failures += 1
                if not is_transient(exc):  # 401/403/404: tell the consumer, keep trying slowly
                    self._post(WatchEvent(self.source, "ERROR", error=exc))
                self._pause(failures)
            except Exception:  # dropped connection, read timeout, torn chunk: resume from `version`
                failures += 1
                self._pause(failures)

    def _stream(self, version: str) -> str | None:
        """One watch request from ``version``; returns the version to resume from (None: relist)."""
        resp = self._list_fn(
            *self._args,
            watch=True,
            resource_version=version,
            timeout_seconds=self._timeout_s,
            allow_watch_bookmarks=True,
            _preload_content=False,
            _request_timeout=self._timeout_s + 10,
            **self._kwargs,
        )
        self._resp = resp
        try:
            status = getattr(resp, "status", 200)
            if not 200 <= status <= 299:
                raise ApiException(status=status, reason=getattr(resp, "reason", "") or "watch failed")
            for line in iter_resp_lines(resp):
                if self._stopped.is_set():
                    return version
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                kind = str(event.get("type"))
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise ApiException(status=obj.get("code") or 500, reason=obj.get("message", ""))
                version = str(obj.get("metadata", {}).get("resourceVersion") or version)
                if kind != "BOOKMARK":
                    self._post(WatchEvent(self.source, kind, obj))
            return version
        finally:
            self._resp = None
            with contextlib.suppress(Exception):
                if self._stopped.is_set():  # shut down by stop(): the connection cannot be reused
                    resp.close()
                else:
                    resp.release_conn()

    def _pause(self, failures: int) -> None:
        delay = min(10.0, 0.2 * 2 ** min(failures, 6)) * random.uniform(0.5, 1.0)
        deadline = time.monotonic() + delay
        while not self._stopped.is_set() and time.monotonic() < deadline:
            self._stopped.wait(0.1)
