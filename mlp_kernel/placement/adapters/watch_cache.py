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
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubernetes import client as k8s

from .informer import Informer, Key
from .kueue import KUEUE_GROUP
from .shapes import check_object
from .summary import DATA_KEY, STALE_PERIODS, Summary, decode, parse_ref
from .workloads import WorkloadCounters

#: (plural, kind, namespaced): the kinds placement reads; namespaced ones fall back to the member's namespace
#: when the client may not list them cluster-wide (a user's own ServiceAccount)
KINDS = (
    ("clusterqueues", "ClusterQueue", False),
    ("resourceflavors", "ResourceFlavor", False),
    ("localqueues", "LocalQueue", True),
    ("workloads", "Workload", True),
)


@dataclass(frozen=True)
class WorkloadSource:
    """Where a decision's Workload counters come from: the member's queue summary, or this cache's own
    Workload watch (``summary`` None); ``note`` says which, and why not the summary, for the explanation."""

    summary: Summary | None
    note: str


class MemberCache:
    """A member's ClusterQueues, ResourceFlavors and LocalQueues, and its Workloads as counters: from the
    member's queue summary when the policy names one (``summary.py``), else from a watch of every Workload."""

    def __init__(
        self,
        api: k8s.ApiClient,
        version: str,
        namespace: str,
        summary: str | None = None,
        kinds: tuple[tuple[str, str, bool], ...] = KINDS,
    ) -> None:
        self.version = version
        self.lock = threading.RLock()
        self.counters = WorkloadCounters()
        self.bad: dict[Key, str] = {}  # Workloads whose fields placement cannot read, with why
        self.informers: list[Informer] = []
        self.summary_ref = summary
        self.summary_error = ""  # why the summary cannot be read at all (RBAC), for the explanation
        self._summary: Informer | None = None
        self._decoded: tuple[str, Summary | str] = ("", "")  # (resourceVersion, the summary or why not)
        self._kinds = tuple(k for k in kinds if not (summary and k[1] == "Workload"))
        self._starting_workloads = threading.Lock()
        self._fresh_since: datetime | None = None  # the summary fresh again while this cache's own watch runs
        self._api, self._namespace = api, namespace

    def start(self) -> None:
        """List every kind (raising the API's error) and start following them."""
        try:
            for kind in self._kinds:
                self._start_kind(*kind)
            if self.summary_ref:
                self._start_summary(self.summary_ref)
        except BaseException:
            self.stop()
            raise

    def _start_kind(self, plural: str, kind: str, namespaced: bool) -> None:
        from kubernetes.client.rest import ApiException

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

    def _start_summary(self, ref: str) -> None:
        """Watch the one summary ConfigMap; a client that may not read it counts Workloads itself."""
        from kubernetes import client as k8s
        from kubernetes.client.rest import ApiException

        namespace, name = parse_ref(ref)
        core = k8s.CoreV1Api(self._api)

        def list_it(**kwargs: Any) -> Any:
            return core.list_namespaced_config_map(
                namespace, field_selector=f"metadata.name={name}", **kwargs
            )

        informer = Informer(
            self._api, "", "v1", "configmaps", "ConfigMap", namespace, self.lock, None, call=list_it
        )
        try:
            informer.start()
        except ApiException as exc:
            if exc.status not in (401, 403):
                raise
            self.summary_error = f"cannot read queue summary {ref}: {exc.status} {exc.reason or ''}".strip()
            return
        self._summary = informer
        self.informers.append(informer)

    def _informer(self, plural: str, kind: str, namespace: str | None, on_change: Any) -> Informer:
        return Informer(self._api, KUEUE_GROUP, self.version, plural, kind, namespace, self.lock, on_change)

    def stop(self) -> None:
        for informer in self.informers:
            informer.stop()

    @property
    def synced(self) -> bool:
        return bool(self.informers) and all(i.synced for i in self.informers)

    def workload_source(self, now: datetime) -> WorkloadSource:
        """The summary when it is there, readable and fresh; otherwise this cache's own Workload watch,
        started now (listing every Workload once), with why in the note. Once the summary has been fresh
        again for ``STALE_PERIODS`` of its periods (its publisher is back), the own watch is stopped: a
        gateway that fell back once must not follow every Workload for the rest of its life, and a
        publisher that flaps does not make it list every Workload at each blip."""
        summary, why = self._current_summary(now)
        if summary is not None:
            self._stop_workloads_once_settled(summary, now)
            return WorkloadSource(
                summary, f"queue summary {self.summary_ref}, {summary.age_s(now):.0f} s old"
            )
        self._fresh_since = None
        if self.summary_ref:
            self._start_workloads()
        return WorkloadSource(None, f"{why}: counting Workloads itself" if why else "")

    @property
    def counting_workloads(self) -> bool:
        """Whether this cache follows every Workload itself (no summary, or fallen back from it)."""
        return any(i.kind == "Workload" for i in self.informers)

    def _stop_workloads_once_settled(self, summary: Summary, now: datetime) -> None:
        if not self.summary_ref or not self.counting_workloads:
            return
        if self._fresh_since is None or now < self._fresh_since:
            self._fresh_since = now
            return
        if (now - self._fresh_since).total_seconds() < STALE_PERIODS * summary.period_s:
            return
        with self._starting_workloads, self.lock:
            for informer in [i for i in self.informers if i.kind == "Workload"]:
                informer.stop()
                self.informers.remove(informer)
            self.counters, self.bad = WorkloadCounters(), {}
            self._fresh_since = None

    def _current_summary(self, now: datetime) -> tuple[Summary | None, str]:
        if not self.summary_ref:
            return None, ""
        if self._summary is None:
            return None, self.summary_error
        ref = self.summary_ref
        with self.lock:
            obj = next(iter(self._summary.objects.values()), None)
        if obj is None:
            return None, f"queue summary {ref} not found (is `mlp-kernel queue-summary` deployed?)"
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if self._decoded[0] != rv or not rv:
            try:
                self._decoded = (rv, decode(str((obj.get("data") or {}).get(DATA_KEY) or "")))
            except ValueError as exc:
                self._decoded = (rv, f"queue summary {ref} unreadable: {exc}")
        summary = self._decoded[1]
        if isinstance(summary, str):
            return None, summary
        if summary.stale(now):
            return None, (
                f"queue summary {ref} is stale ({summary.age_s(now):.0f} s old, published every "
                f"{summary.period_s:g} s; is its publisher running?)"
            )
        return summary, ""

    def _start_workloads(self) -> None:
        with self._starting_workloads:
            if self.counting_workloads:
                return
            with self.lock:  # a watch stopped earlier may still have delivered a late event
                self.counters, self.bad = WorkloadCounters(), {}
            self._start_kind("workloads", "Workload", True)

    @contextmanager
    def reading(
        self, source: WorkloadSource | None = None
    ) -> Iterator[tuple[list[dict[str, Any]], WorkloadCounters]]:
        """The cached objects (no Workloads) and the Workload counters (``source``'s summary's when it has
        one), unchanged while the block runs.

        Raises ``StateError`` for a Workload placement cannot read, as a direct read does."""
        from .kueue import StateError

        with self.lock:
            if source is not None and source.summary is not None:
                if source.summary.unreadable:
                    raise StateError(source.summary.unreadable[0])
                counters = source.summary.counters
            else:
                if self.bad:
                    raise StateError(next(iter(self.bad.values())))
                counters = self.counters
            objects = [
                o
                for i in self.informers
                if i.kind not in ("Workload", "ConfigMap")
                for o in i.objects.values()
            ]
            yield objects, counters

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
_registry: dict[tuple[int, str, str], tuple[weakref.ref[Any], MemberCache]] = {}
_creating: dict[tuple[int, str, str], threading.Lock] = {}


def shared_cache(
    api: k8s.ApiClient, namespace: str, served_version: Callable[[], str], summary: str | None = None
) -> MemberCache:
    """The process's cache for this client, namespace and queue summary (``namespace/name`` or None),
    started (listing what it follows) on first use; ``served_version`` (Kueue's API version) is asked only
    then."""
    key = (id(api), namespace, summary or "")
    with _registry_lock:
        creating = _creating.setdefault(key, threading.Lock())
    with creating:  # per client: decisions at once must not each list every Workload; other clients go on
        with _registry_lock:
            entry = _registry.get(key)
        if entry is not None and entry[0]() is api:
            return entry[1]
        if entry is not None:
            entry[1].stop()
        cache = MemberCache(api, served_version(), namespace, summary)
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
