"""One watch-fed copy of a member's Kueue objects per API client, shared by every decision of the process.

``live.py`` used to list ClusterQueues, ResourceFlavors, LocalQueues and every Workload for each decision; a
queued kernel re-decides every ``reevaluate_s``, so the API server's work grew with notebooks x Workloads
(issue 15). A ``MemberCache`` lists each of those once, follows them with watches (``informer.py``), and keeps
the Workloads only as ``WorkloadCounters`` (``workloads.py``) updated per event, so a decision costs neither
requests for those kinds nor a pass over the Workloads. What is still read per decision: the visibility API's
queue positions (Kueue orders the queue; a copy here could not), which the caller asks for itself.

The cache is keyed by the ``ApiClient`` object and the namespace it may be limited to: one gateway process
holds one client per member, so every re-decision of its kernel (and of every kernel in a process that runs
many, such as ``benchmarks/bench_many_users.py``) shares one set of watches. A cache whose watches are not
synced (the API server went away) is not used: the caller reads directly, and reports the error.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes import client as k8s

from .informer import Informer, Key
from .kueue import KUEUE_GROUP
from .shapes import check_object
from .workloads import WorkloadCounters

#: (plural, kind, namespaced): the kinds placement reads; namespaced ones fall back to the member's namespace
#: when the client may not list them cluster-wide (a user's own ServiceAccount)
KINDS = (
    ("clusterqueues", "ClusterQueue", False),
    ("resourceflavors", "ResourceFlavor", False),
    ("localqueues", "LocalQueue", True),
    ("workloads", "Workload", True),
)


class MemberCache:
    """A member's ClusterQueues, ResourceFlavors and LocalQueues, and its Workloads as counters."""

    def __init__(self, api: k8s.ApiClient, version: str, namespace: str) -> None:
        self.version = version
        self.lock = threading.RLock()
        self.counters = WorkloadCounters()
        self.bad: dict[Key, str] = {}  # Workloads whose fields placement cannot read, with why
        self.informers: list[Informer] = []
        self._api, self._namespace = api, namespace

    def start(self) -> None:
        """List every kind (raising the API's error) and start following them."""
        from kubernetes.client.rest import ApiException

        try:
            for plural, kind, namespaced in KINDS:
                on_change = self._workload_changed if kind == "Workload" else None
                informer = self._informer(plural, kind, None, on_change)
                try:
                    informer.start()
                except ApiException as exc:
                    if exc.status != 403 or not namespaced or not self._namespace:
                        raise
                    informer = self._informer(plural, kind, self._namespace, on_change)
                    informer.start()
                self.informers.append(informer)
        except BaseException:
            self.stop()
            raise

    def _informer(self, plural: str, kind: str, namespace: str | None, on_change: Any) -> Informer:
        return Informer(self._api, KUEUE_GROUP, self.version, plural, kind, namespace, self.lock, on_change)

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()

    @property
    def synced(self) -> bool:
        return bool(self.informers) and all(i.synced for i in self.informers)

    @contextmanager
    def reading(self) -> Iterator[tuple[list[dict[str, Any]], WorkloadCounters]]:
        """The cached objects (no Workloads) and the Workload counters, unchanged while the block runs.

        Raises ``StateError`` for a Workload placement cannot read, as a direct read does."""
        with self.lock:
            if self.bad:
                from .kueue import StateError

                raise StateError(next(iter(self.bad.values())))
            objects = [o for i in self.informers if i.kind != "Workload" for o in i.objects.values()]
            yield objects, self.counters

    def _workload_changed(self, key: Key, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        self.bad.pop(key, None)
        if new is not None:
            try:
                check_object(new)
            except ValueError as exc:
                self.bad[key] = str(exc)
                new = None
        self.counters.put(key, new)


_registry_lock = threading.Lock()
_registry: dict[tuple[int, str], tuple[weakref.ref[Any], MemberCache]] = {}
_creating: dict[tuple[int, str], threading.Lock] = {}


def shared_cache(api: k8s.ApiClient, namespace: str, served_version: Callable[[], str]) -> MemberCache:
    """The process's cache for this client and namespace, started (listing everything) on first use;
    ``served_version`` (Kueue's API version there) is asked only then."""
    key = (id(api), namespace)
    with _registry_lock:
        creating = _creating.setdefault(key, threading.Lock())
    with creating:  # per client: decisions at once must not each list every Workload; other clients go on
        with _registry_lock:
            entry = _registry.get(key)
        if entry is not None and entry[0]() is api:
            return entry[1]
        if entry is not None:
            entry[1].stop()
        cache = MemberCache(api, served_version(), namespace)
        cache.start()
        with _registry_lock:
            _registry[key] = (weakref.ref(api), cache)
        return cache


def drop_caches() -> None:
    """Stop every cache (tests, and a benchmark comparing with direct reads)."""
    with _registry_lock:
        for _, cache in _registry.values():
            cache.stop()
        _registry.clear()
